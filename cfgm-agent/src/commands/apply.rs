//! `cfgm-agent apply`: converge this host to its catalog once, print the
//! report.

use super::progress::Progress;
use cfgm_agent::converge::{converge_once, report_json, Config, TreeInput};
use cfgm_agent::RunError;
use cfgm_core::engine::EventSink;
use cfgm_core::Mode;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Print the report as JSON (and no progress lines).
    #[arg(long)]
    json: bool,
    /// No progress lines while it works (one per resource as it finishes,
    /// on stderr; a spinner for what runs when stderr is a terminal).
    #[arg(long, short)]
    quiet: bool,
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
    /// Converge to this commit of the configured repository (fetched and
    /// verified like the daemon does) instead of a tree directory.
    #[arg(long, value_name = "REV", conflicts_with = "tree")]
    commit: Option<String>,
    /// The agent's configuration (with --commit).
    #[arg(long, default_value = cfgm_agent::config::DEFAULT_PATH, value_name = "FILE")]
    config: PathBuf,
}

/// Runs the command; the exit code follows `cfgm_core::exit`.
pub fn run(a: Args) -> Result<u8, RunError> {
    let color_on = |terminal: bool| match a.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal,
    };
    let color = color_on(std::io::stdout().is_terminal());
    let progress =
        (!a.json && !a.quiet).then(|| Progress::start(color_on(std::io::stderr().is_terminal())));
    let sink = progress.clone().map(|p| p as Arc<dyn EventSink>);
    if let Some(rev) = &a.commit {
        let code = apply_commit(&a, rev, color, sink);
        if let Some(p) = &progress {
            p.finish();
        }
        return code;
    }
    let facts = match &a.facts {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| RunError::Refused(format!("read facts {}: {e}", p.display())))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| RunError::Refused(format!("facts {}: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let state_dir = a
        .state_dir
        .clone()
        .unwrap_or_else(|| a.root.join("var/lib/cfgm"));
    let cfg = Config {
        tree: TreeInput::Dir(a.tree),
        host: a.host,
        root: a.root,
        state_dir,
        facts,
        mode: if a.dry_run { Mode::DryRun } else { Mode::Apply },
        parallel: a.parallel,
        locked: false,
        keep_report: true,
    };
    let out = converge_once(&cfg, sink, None);
    if let Some(p) = &progress {
        p.finish();
    }
    let out = out?;
    print_report(
        &out.report,
        out.json.as_deref(),
        &out.diagnostics,
        &out.tree.sources,
        a.json,
        color,
    );
    let code = out.report.status.exit_code();
    // The process ends next: freeing the catalog's and the report's
    // thousands of pieces one by one is work for nothing.
    std::mem::forget(out);
    Ok(code)
}

/// `--commit REV`: pull that commit of the configured repository, verify
/// it, converge it; a refused commit changes nothing and exits 3.
fn apply_commit(
    a: &Args,
    rev: &str,
    color: bool,
    sink: Option<Arc<dyn EventSink>>,
) -> Result<u8, RunError> {
    let mut cfg = super::run::load_config(&a.config)?;
    if let Some(h) = &a.host {
        cfg.host = Some(h.clone());
    }
    if let Some(s) = &a.state_dir {
        cfg.state_dir = s.clone();
    }
    let mut daemon = cfgm_agent::daemon::Daemon::new(cfg, &a.root, None)?;
    let mode = if a.dry_run { Mode::DryRun } else { Mode::Apply };
    let report = daemon.cycle(Some(rev), mode, sink, None)?;
    let sources = cfgm_core::Sources::new();
    print_report(&report, None, &[], &sources, a.json, color);
    let accepted = report
        .pull
        .as_ref()
        .is_some_and(|p| matches!(p.verdict.as_str(), "fresh" | "unchanged"));
    Ok(if accepted {
        report.status.exit_code()
    } else {
        cfgm_core::exit::REFUSED
    })
}

fn print_report(
    report: &cfgm_core::Report,
    kept: Option<&[u8]>,
    diagnostics: &[cfgm_core::Diagnostic],
    sources: &cfgm_core::Sources,
    json: bool,
    color: bool,
) {
    if json {
        // One write, not one per line (a 1,000-resource report is 18,000
        // lines).
        let made;
        let text = match kept {
            Some(t) => t,
            None => {
                made = report_json(report);
                &made
            }
        };
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text);
        return;
    }
    for d in diagnostics {
        // It ends in a blank line that separates it from the next.
        eprint!("{}", d.render(sources, color));
    }
    match report.status {
        cfgm_core::RunStatus::NotCompiled | cfgm_core::RunStatus::Refused => eprintln!(
            "cfgm-agent: error: {}: {}",
            report.host,
            report.reason.as_deref().unwrap_or("nothing was applied")
        ),
        _ => {
            let _ = std::io::Write::write_all(
                &mut std::io::stdout().lock(),
                report.to_text(color).as_bytes(),
            );
        }
    }
}
