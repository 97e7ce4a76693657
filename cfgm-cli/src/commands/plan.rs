//! `cfgm plan --facts DIR`: exactly what the tree would change on each
//! selected host, planned from the facts the hosts reported (no host is
//! contacted), with the kinds' own diff — the function apply uses.

use super::fleet_out::{render, Format};
use crate::ui::Ui;
use cfgm_core::facts::{template_facts, Facts, SCHEMA_VERSION};
use cfgm_core::fleet::{plan_changes, Builder, HostStatus, ResourceChange};
use cfgm_core::plan::plan_catalog;
use cfgm_core::{exit, Compiler, ResourceId, Selector, Tree};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The facts documents, `DIR/<host>.json` (`cfgm facts fetch --out DIR`).
    #[arg(long, value_name = "DIR")]
    facts: PathBuf,
    /// Only the hosts this selector picks (`role:edge&dc:ams01`).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// Facts older than this many seconds are listed as stale, not planned.
    #[arg(long, value_name = "SECS")]
    max_age: Option<u64>,
    /// The output: text (for people), json (versioned schema), github (CI annotations).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Exit 2 when anything would change (0 nothing, 1 error).
    #[arg(long)]
    detailed_exitcode: bool,
}

/// What became of one host.
enum Outcome {
    Planned(Vec<ResourceChange>),
    Not(HostStatus, String, Vec<Value>),
}

/// A host's facts: `Ok(None)` when there are none.
pub(crate) fn read_facts(dir: &Path, host: &str) -> Result<Option<Facts>, String> {
    let path = dir.join(format!("{host}.json"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    // The version first: a newer document may not parse as this one.
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(default)]
        schema_version: u64,
    }
    let v: Version = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a facts document: {e}", path.display()))?;
    if v.schema_version == 0 || v.schema_version > SCHEMA_VERSION as u64 {
        return Err(format!(
            "{}: facts schema_version {}; this cfgm reads up to {SCHEMA_VERSION} (upgrade cfgm)",
            path.display(),
            v.schema_version
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{}: not a facts document: {e}", path.display()))
}

pub fn run(ui: &Ui, dir: &Path, args: Args) -> anyhow::Result<u8> {
    let (tree, tree_diags) = Tree::load(dir)?;
    if !args.facts.is_dir() {
        ui.error(&format!(
            "--facts {}: not a directory (fill one with `cfgm facts fetch --out DIR`)",
            args.facts.display()
        ));
        return Ok(exit::FAILED);
    }
    let registry = cfgm_modules::registry();
    let sel = match &args.select {
        None => Selector::all(),
        Some(text) => match Selector::parse(text, &tree.hosts) {
            Ok(s) => s,
            Err(errors) => {
                for e in errors {
                    ui.error(&format!("--select {text:?}: {e}"));
                }
                return Ok(exit::FAILED);
            }
        },
    };
    let hosts = sel.select(&tree.hosts);
    if hosts.is_empty() {
        ui.error(&format!("--select {:?} matches no host", sel.text));
        return Ok(exit::FAILED);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let compiler = Compiler::new(&tree, &registry);
    let mut b = Builder::new("plan");
    b.compared("tree", &tree.tree_id());
    b.compared("facts", &args.facts.display().to_string());
    for d in &tree_diags {
        b.diagnostic(d.to_json(&tree.sources));
    }
    let plan_host = |h: &cfgm_core::tree::Host| -> Outcome {
        let facts = match read_facts(&args.facts, &h.name) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Outcome::Not(
                    HostStatus::NoFacts,
                    format!("no {}.json in {}", h.name, args.facts.display()),
                    Vec::new(),
                )
            }
            Err(e) => return Outcome::Not(HostStatus::Failed, e, Vec::new()),
        };
        if let Some(max) = args.max_age {
            let age = now - facts.time;
            if age > max as i64 {
                return Outcome::Not(
                    HostStatus::StaleFacts,
                    format!(
                        "gathered {age} s ago ({}), more than --max-age {max}",
                        facts.time_utc
                    ),
                    Vec::new(),
                );
            }
        }
        let tf = template_facts(&facts);
        let compiled = compiler.compile_shared(h, Some(&tf));
        let catalog = match &*compiled {
            (Some(c), d) if d.is_empty() => c,
            (_, d) => {
                let diags = d.iter().map(|x| x.to_json(&tree.sources)).collect();
                return Outcome::Not(HostStatus::Failed, super::diff::one_line(&tree, d), diags);
            }
        };
        // What the host's facts say of each resource: what the kind reads
        // off the inventories (gathered with the facts, so never older than
        // the last run), else the last run's observation.
        let last: HashMap<&ResourceId, &Value> = facts
            .resources
            .iter()
            .filter_map(|r| r.observed.as_ref().map(|o| (&r.id, o)))
            .collect();
        // Answers from the inventories are made here; the last run's are
        // borrowed from the facts.
        let mut made: HashMap<&ResourceId, Value> = HashMap::new();
        for r in &catalog.resources {
            match cfgm_modules::observe_facts(r, &facts) {
                Some(Ok(v)) => {
                    made.insert(&r.id, v);
                }
                // (A resource whose attributes the kind refuses stays
                // unobserved: the plan shows it unknown, apply fails it.)
                Some(Err(_)) => {
                    made.insert(&r.id, Value::Null);
                }
                None => {}
            }
        }
        let observed = |id: &ResourceId| -> Option<&Value> {
            match made.get(id) {
                Some(Value::Null) => None,
                Some(v) => Some(v),
                None => last.get(id).copied(),
            }
        };
        let owed: BTreeSet<ResourceId> = facts.owed_refresh.iter().cloned().collect();
        let planned = plan_catalog(catalog, &cfgm_modules::Kinds, observed, &owed);
        Outcome::Planned(plan_changes(catalog, planned))
    };
    // Hosts stream through: planned in parallel by chunks, each reduced
    // to its change set before the next chunk.
    let mut errors = 0usize;
    for chunk in hosts.chunks(256) {
        let outs: Vec<Outcome> = chunk.par_iter().map(|h| plan_host(h)).collect();
        for (h, o) in chunk.iter().zip(outs) {
            match o {
                Outcome::Planned(changes) => b.host(h, changes),
                Outcome::Not(status, why, diags) => {
                    if status == HostStatus::Failed {
                        errors += 1;
                    }
                    for d in diags {
                        b.diagnostic(d);
                    }
                    b.host_without(h, status, why)
                }
            }
        }
    }
    let out = b.finish();
    render(ui, &out, args.format.or_json(args.json), "");
    Ok(if errors > 0 {
        exit::FAILED
    } else if args.detailed_exitcode && out.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}
