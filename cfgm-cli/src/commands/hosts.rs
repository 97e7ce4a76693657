//! `cfgm hosts`: the inventory, or what a selector picks from it. The one
//! inventory parser: scripts and the test harness ask this command instead
//! of reading inventory.toml themselves.

use crate::ui::Ui;
use cfgm_core::{exit, Selector, Tree};
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Only the hosts this selector picks (`role:edge`, `dc:ams01`,
    /// `tag:canary`, `name:GLOB`, joined with `&`).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// Print the hosts as JSON (every inventory field).
    #[arg(long)]
    json: bool,
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let (tree, diags) = Tree::load(dir)?;
    // Only the inventory matters here: a problem elsewhere in the tree
    // does not stop a listing.
    let inventory: Vec<_> = diags
        .iter()
        .filter(|d| {
            d.first_span()
                .is_some_and(|s| tree.sources.name(s.file) == "inventory.toml")
                || d.message.starts_with("inventory.toml")
        })
        .cloned()
        .collect();
    if !inventory.is_empty() {
        ui.diagnostics(&tree.sources, &inventory);
        ui.error("inventory.toml does not parse");
        return Ok(exit::FAILED);
    }
    let sel = match &args.select {
        None => Selector::all(),
        Some(text) => match Selector::parse(text, &tree.hosts) {
            Ok(s) => s,
            Err(errors) => {
                for e in errors {
                    ui.error(&format!("--select {text:?}: {e}"));
                }
                ui.err(&format!("  ({})\n", cfgm_core::select::SYNTAX));
                return Ok(exit::FAILED);
            }
        },
    };
    let hosts = sel.select(&tree.hosts);
    if hosts.is_empty() {
        ui.error(&format!("--select {:?} matches no host", sel.text));
        return Ok(exit::FAILED);
    }
    if args.json {
        let list: Vec<serde_json::Value> = hosts.iter().map(|h| h.to_context()).collect();
        ui.out(&format!("{}\n", serde_json::Value::Array(list)));
    } else {
        let w = hosts.iter().map(|h| h.name.len()).max().unwrap_or(4).max(4);
        let wd = hosts.iter().map(|h| h.dc.len()).max().unwrap_or(2).max(2);
        let wr = hosts.iter().map(|h| h.role.len()).max().unwrap_or(4).max(4);
        ui.out(&ui.bold(&format!(
            "{:w$}  {:wd$}  {:wr$}  {:15}  tags\n",
            "host", "dc", "role", "address"
        )));
        for h in &hosts {
            ui.out(&format!(
                "{:w$}  {:wd$}  {:wr$}  {:15}  {}\n",
                h.name,
                h.dc,
                h.role,
                h.address.as_deref().unwrap_or("-"),
                h.tags.join(",")
            ));
        }
    }
    Ok(exit::OK)
}
