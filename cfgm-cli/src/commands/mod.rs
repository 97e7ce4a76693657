//! One file per command: parse its arguments, call cfgm-core, render.

pub mod apply;
pub mod bootstrap;
pub mod catalog;
pub mod diff;
pub mod facts;
pub mod fleet_out;
pub mod graph;
pub mod hosts;
pub mod live;
pub mod plan;
pub mod rollouts;
pub mod validate;

use crate::ui::{diags_json, Ui};
use anyhow::Context;
use cfgm_core::{Catalog, Diagnostic, Tree};
use std::path::Path;

/// Loads the tree and compiles one host; on failure prints every
/// diagnostic (as JSON when asked) and returns `None`.
pub(crate) fn compile_one(
    ui: &Ui,
    dir: &Path,
    host: &str,
    facts: Option<&Path>,
    json: bool,
) -> anyhow::Result<Option<(Tree, Catalog)>> {
    let facts = match facts {
        Some(p) => Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("read facts {}", p.display()))?,
            )
            .with_context(|| format!("facts {}: not JSON", p.display()))?,
        ),
        None => None,
    };
    let (tree, mut diags) = Tree::load(dir)?;
    let registry = cfgm_modules::registry();
    let compiler = cfgm_core::Compiler::new(&tree, &registry);
    let result = compiler.compile_host(host, facts.as_ref());
    let catalog = match result {
        Ok(c) if diags.is_empty() => Some(c),
        Ok(_) => None,
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    match catalog {
        Some(c) => Ok(Some((tree, c))),
        None => {
            report_failure(ui, &tree, &mut diags, json, host);
            Ok(None)
        }
    }
}

fn report_failure(ui: &Ui, tree: &Tree, diags: &mut Vec<Diagnostic>, json: bool, host: &str) {
    cfgm_core::diag::sort_dedup(&tree.sources, diags);
    if json {
        ui.out(&format!(
            "{}\n",
            serde_json::json!({"ok": false, "host": host, "diagnostics": diags_json(&tree.sources, diags)})
        ));
    } else {
        ui.diagnostics(&tree.sources, diags);
        ui.error(&format!(
            "{host}: catalog does not compile ({})",
            cfgm_core::diag::plural(diags.len(), "problem")
        ));
    }
}
