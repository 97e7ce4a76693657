//! `cfgm graph --host NAME`: the dependency DAG for Graphviz or machines.

use crate::ui::Ui;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Graphviz: `cfgm graph --host H | dot -Tsvg > graph.svg`.
    Dot,
    /// Nodes and edges as JSON.
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// The inventory host to compile.
    #[arg(long, value_name = "NAME")]
    host: String,
    /// Facts of the host (JSON), visible to templates as `facts`.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    format: Format,
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let json = matches!(args.format, Format::Json);
    let Some((_tree, c)) = super::compile_one(ui, dir, &args.host, args.facts.as_deref(), json)?
    else {
        return Ok(cfgm_core::exit::FAILED);
    };
    match args.format {
        Format::Dot => ui.out(&c.to_dot()),
        Format::Json => ui.out(&format!("{:#}\n", c.graph_json())),
    }
    Ok(cfgm_core::exit::OK)
}
