//! `cfgm-agent apply`: compile this host's catalog, converge, report.

use super::lock::RunLock;
use anyhow::{bail, Context};
use cfgm_core::engine::{self, Mode, Options};
use cfgm_core::{Compiler, Tree};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The states tree (a directory, normally a git checkout).
    #[arg(long, default_value = ".", value_name = "DIR")]
    tree: PathBuf,
    /// The inventory host to converge as (default: this host's hostname).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Show what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Converge a host root filesystem mounted at DIR instead of this machine
    /// (files under DIR; packages, services and users through chroot).
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Agent state: lock, backups, last report (default: ROOT/var/lib/cfgm).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Facts of the host (JSON), visible to templates as `facts`.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// How many independent resources converge at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    parallel: usize,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, default_value = "auto", value_name = "WHEN")]
    color: String,
}

/// The host's name: its hostname under the root.
fn hostname(root: &Path) -> anyhow::Result<String> {
    let from_root = std::fs::read_to_string(root.join("etc/hostname")).ok();
    let name = match from_root {
        Some(n) if !n.trim().is_empty() => n,
        _ if root == Path::new("/") => {
            std::fs::read_to_string("/proc/sys/kernel/hostname").context("read hostname")?
        }
        _ => bail!("{}: no etc/hostname; pass --host", root.display()),
    };
    Ok(name.trim().split('.').next().unwrap_or("").to_string())
}

/// Peak resident memory of this process in KiB (VmHWM), for the report.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let color = match a.color.as_str() {
        "always" => true,
        "never" => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    let root = a
        .root
        .canonicalize()
        .with_context(|| format!("root {}", a.root.display()))?;
    let state_dir = a
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join("var/lib/cfgm"));
    let host_name = match &a.host {
        Some(h) => h.clone(),
        None => hostname(&root)?,
    };
    let facts = match &a.facts {
        Some(p) => Some(serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(p).with_context(|| format!("read facts {}", p.display()))?,
        )?),
        None => None,
    };

    // Compile first: nothing is applied unless everything compiled.
    let (tree, mut diags) = Tree::load(&a.tree)?;
    let registry = cfgm_modules::registry();
    let compiler = Compiler::new(&tree, &registry);
    let (catalog, resource_diags) = compiler.compile_host_partial(&host_name, facts.as_ref());
    let catalog = match catalog {
        Some(c) if diags.is_empty() => c,
        _ => {
            diags.extend(resource_diags);
            let report = compile_failed(&tree, &mut diags, &host_name, a.json, color);
            if !a.dry_run {
                // Monitoring must not keep seeing the last good run.
                save_report(&state_dir, &report);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    // Resources whose file template failed are in the catalog, marked: they
    // fail (and skip their dependents); everything else converges.
    if !resource_diags.is_empty() && !a.json {
        for d in &resource_diags {
            eprint!("{}", d.render(&tree.sources, color));
            eprintln!();
        }
    }

    let _lock = RunLock::acquire(&state_dir)?;
    let host = cfgm_modules::Host::new(&root, &state_dir)?;
    let providers = cfgm_modules::providers(&host);
    let opts = Options {
        mode: if a.dry_run { Mode::DryRun } else { Mode::Apply },
        parallel: a.parallel,
        owed_refresh: load_owed(&state_dir),
    };
    let mut report = engine::run(&catalog, &providers, &opts);
    report.tree_id = tree.tree_id();
    if !a.dry_run {
        save_owed(&state_dir, &report.owed_refresh);
    }

    let mut json = serde_json::to_value(&report)?;
    if let Some(kib) = peak_rss_kib() {
        json["peak_rss_kib"] = kib.into();
    }
    if !a.dry_run {
        save_report(&state_dir, &json);
    }
    if a.json {
        println!("{json:#}");
    } else {
        print!("{}", report.to_text(color));
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints why the catalog did not compile; returns the report to keep.
fn compile_failed(
    tree: &Tree,
    diags: &mut Vec<cfgm_core::Diagnostic>,
    host: &str,
    json: bool,
    color: bool,
) -> serde_json::Value {
    cfgm_core::diag::sort_dedup(&tree.sources, diags);
    let d: Vec<_> = diags.iter().map(|d| d.to_json(&tree.sources)).collect();
    let report = serde_json::json!({
        "ok": false,
        "host": host,
        "compiled": false,
        "tree_id": tree.tree_id(),
        "diagnostics": d,
    });
    if json {
        println!("{report:#}");
    } else {
        for d in diags.iter() {
            eprint!("{}", d.render(&tree.sources, color));
            eprintln!();
        }
        eprintln!("cfgm-agent: error: {host}: catalog does not compile ({} problems); nothing was applied", diags.len());
    }
    report
}

/// Refreshes owed by earlier runs (`STATE_DIR/owed-refresh.json`).
fn load_owed(state_dir: &Path) -> std::collections::BTreeSet<cfgm_core::ResourceId> {
    std::fs::read_to_string(state_dir.join("owed-refresh.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<cfgm_core::ResourceId>>(&t).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Records the refreshes this run owes the next (atomically; removed when none).
fn save_owed(state_dir: &Path, owed: &[cfgm_core::ResourceId]) {
    let path = state_dir.join("owed-refresh.json");
    if owed.is_empty() {
        let _ = std::fs::remove_file(&path);
    } else if let Ok(text) = serde_json::to_string_pretty(owed) {
        write_state_file(&path, &text);
    }
}

/// Keeps the last report in STATE_DIR/reports/last.json.
fn save_report(state_dir: &Path, json: &serde_json::Value) {
    write_state_file(&state_dir.join("reports/last.json"), &format!("{json:#}"));
}

/// Writes one of the agent's own files atomically (temporary name, then
/// rename). Best effort: the run's outcome does not depend on it.
fn write_state_file(path: &Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, format!("{text}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}
