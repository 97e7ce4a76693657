//! `cfgm catalog --host NAME`: one host's compiled catalog.

use crate::ui::Ui;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The inventory host to compile.
    #[arg(long, value_name = "NAME")]
    host: String,
    /// Facts of the host (JSON), visible to templates as `facts`.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// Print the catalog as JSON.
    #[arg(long)]
    json: bool,
    /// Show multi-line values (file content) in full instead of a summary.
    #[arg(long)]
    full: bool,
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let Some((_tree, c)) =
        super::compile_one(ui, dir, &args.host, args.facts.as_deref(), args.json)?
    else {
        return Ok(cfgm_core::exit::FAILED);
    };
    if args.json {
        ui.out(&format!("{:#}\n", c.to_json()));
    } else {
        let text = c.to_text(args.full);
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            ui.out(&format!("{}\n", ui.bold(first)));
        }
        for l in lines {
            ui.out(&format!("{l}\n"));
        }
    }
    Ok(cfgm_core::exit::OK)
}
