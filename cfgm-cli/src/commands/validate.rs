//! `cfgm validate`: compile every inventory host, report every problem.

use crate::ui::{diags_json, Ui};
use cfgm_core::diag::plural;
use cfgm_core::{Compiler, Tree};
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Print the outcome as JSON (summary and diagnostics with file, line, column).
    #[arg(long)]
    json: bool,
    /// Fail (exit 1) on warnings too, e.g. a data key that no state or template reads (for CI).
    #[arg(long)]
    deny_warnings: bool,
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let (tree, mut diags) = Tree::load(dir)?;
    let registry = cfgm_modules::registry();
    let compiler = Compiler::new(&tree, &registry);
    let v = compiler.validate();
    diags.extend(v.diags.iter().cloned());
    cfgm_core::diag::sort_dedup(&tree.sources, &mut diags);
    let warnings = cfgm_core::unused::unused_data_keys(&tree);
    let ok = diags.is_empty() && (warnings.is_empty() || !args.deny_warnings);
    let ms = v.elapsed.as_secs_f64() * 1000.0;
    if args.json {
        ui.out(&format!(
            "{}\n",
            serde_json::json!({
                "ok": ok,
                "warnings": diags_json(&tree.sources, &warnings),
                "hosts": v.hosts,
                "failed_hosts": v.failed_hosts,
                "distinct_catalogs": v.catalogs.len(),
                "catalogs": v.catalogs,
                // Which host has which catalog (hosts that compiled).
                "host_catalogs": v.host_catalogs,
                "resources": v.resources,
                "elapsed_ms": (ms * 10.0).round() / 10.0,
                "diagnostics": diags_json(&tree.sources, &diags),
            })
        ));
    } else if diags.is_empty() {
        ui.diagnostics(&tree.sources, &warnings);
        ui.out(&format!(
            "{} {}, {}, {}, compiled in {:.1} ms\n",
            ui.green("valid:"),
            plural(v.hosts, "host"),
            plural(v.catalogs.len(), "distinct catalog"),
            plural(v.resources, "resource"),
            ms
        ));
        if !warnings.is_empty() {
            let n = plural(warnings.len(), "warning");
            if args.deny_warnings {
                ui.error(&format!("{n}, denied by --deny-warnings"));
            } else {
                ui.warning(&n);
            }
        }
    } else {
        ui.diagnostics(&tree.sources, &warnings);
        ui.diagnostics(&tree.sources, &diags);
        let mut msg = format!("{} in the tree", plural(diags.len(), "problem"));
        if !v.failed_hosts.is_empty() {
            let shown: Vec<&str> = v.failed_hosts.iter().take(5).map(String::as_str).collect();
            msg.push_str(&format!(
                "; {} of {} {} compile ({}{})",
                v.failed_hosts.len(),
                plural(v.hosts, "host"),
                if v.failed_hosts.len() == 1 {
                    "does not"
                } else {
                    "do not"
                },
                shown.join(", "),
                if v.failed_hosts.len() > 5 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        ui.error(&msg);
    }
    Ok(if ok {
        cfgm_core::exit::OK
    } else {
        cfgm_core::exit::FAILED
    })
}
