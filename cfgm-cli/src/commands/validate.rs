//! `cfgm validate`: compile every inventory host and check `rollout.toml`,
//! report every problem (and, as warnings, data keys nothing reads).
//!
//! With `--facts DIR`, each host compiles with the last facts it reported
//! (`DIR/<host>.json`, as `cfgm plan` reads them), so data layers and
//! states chosen by facts are checked as hosts will see them; hosts without
//! facts compile with the tree's `[default_facts]`, and are named.

use crate::commands::plan::read_facts;
use crate::ui::{diags_json, Ui};
use cfgm_core::diag::plural;
use cfgm_core::facts::template_facts;
use cfgm_core::{Compiler, Tree};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Print the outcome as JSON (summary and diagnostics with file, line, column).
    #[arg(long)]
    json: bool,
    /// Fail (exit 1) on warnings too, e.g. a data key that no state or template reads (for CI).
    #[arg(long)]
    deny_warnings: bool,
    /// Compile each host with its last facts, `DIR/<host>.json` (`cfgm facts fetch --out DIR`).
    #[arg(long, value_name = "DIR")]
    facts: Option<PathBuf>,
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let (tree, mut diags) = Tree::load(dir)?;
    let registry = cfgm_modules::registry();
    let compiler = Compiler::new(&tree, &registry);
    if let Some(f) = &args.facts {
        if !f.is_dir() {
            anyhow::bail!(
                "--facts {}: not a directory (fill one with `cfgm facts fetch --out DIR`)",
                f.display()
            );
        }
    }
    // Facts that cannot be read are an error, not a silent fallback.
    let mut bad = Vec::new();
    let mut known = std::collections::BTreeMap::new();
    if let Some(fdir) = &args.facts {
        for h in tree.hosts.keys() {
            match read_facts(fdir, h) {
                Ok(Some(f)) => {
                    known.insert(h.clone(), template_facts(&f));
                }
                Ok(None) => {}
                Err(e) => bad.push(e),
            }
        }
    }
    if !bad.is_empty() {
        anyhow::bail!("{}", bad.join("\n"));
    }
    let v = compiler.validate_with(&|h| known.get(&h.name).cloned());
    // Facts matter to this tree when it was given some, declares defaults,
    // or lets facts choose data layers: then say who compiled without.
    let facts_matter = args.facts.is_some()
        || tree.config.default_facts.is_some()
        || tree.config.hierarchy.iter().any(|l| l.contains("facts"));
    let without = (facts_matter && !v.without_facts.is_empty()).then(|| {
        let shown: Vec<&str> = v.without_facts.iter().take(5).map(String::as_str).collect();
        format!(
            "compiled without facts: {} of {} hosts ({}{}), with {}\n",
            v.without_facts.len(),
            v.hosts,
            shown.join(", "),
            if v.without_facts.len() > 5 {
                ", …"
            } else {
                ""
            },
            if tree.config.default_facts.is_some() {
                "cfgm.toml's [default_facts]"
            } else {
                "no facts (declare [default_facts] in cfgm.toml)"
            }
        )
    });
    diags.extend(v.diags.iter().cloned());
    // The rollout's waves are part of the tree: a bad rollout.toml fails
    // here, in CI, not when a release engineer starts a rollout.
    if let Err(d) = cfgm_core::rollout::RolloutConfig::load(&tree) {
        diags.extend(d);
    }
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
                "without_facts": v.without_facts,
                "elapsed_ms": (ms * 10.0).round() / 10.0,
                "diagnostics": diags_json(&tree.sources, &diags),
            })
        ));
    } else if diags.is_empty() {
        ui.diagnostics(&tree.sources, &warnings);
        if let Some(w) = &without {
            ui.out(w);
        }
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
        if let Some(w) = &without {
            ui.out(w);
        }
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
