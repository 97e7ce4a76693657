//! `cfgm-agent apply`: converge this host to its catalog once, print the
//! report.

use cfgm_agent::converge::{converge_once, to_json, Config};
use cfgm_agent::RunError;
use cfgm_core::Mode;
use std::io::IsTerminal;
use std::path::PathBuf;

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

/// Runs the command; the exit code follows `cfgm_core::exit`.
pub fn run(a: Args) -> Result<u8, RunError> {
    let color = match a.color.as_str() {
        "always" => true,
        "never" => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
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
        tree: a.tree,
        host: a.host,
        root: a.root,
        state_dir,
        facts,
        mode: if a.dry_run { Mode::DryRun } else { Mode::Apply },
        parallel: a.parallel,
    };
    let out = converge_once(&cfg, None, None)?;
    let report = &out.report;
    if a.json {
        println!("{:#}", to_json(report));
    } else {
        for d in &out.diagnostics {
            eprint!("{}", d.render(&out.tree.sources, color));
            eprintln!();
        }
        if report.status == cfgm_core::RunStatus::NotCompiled {
            eprintln!(
                "cfgm-agent: error: {}: {}",
                report.host,
                report
                    .reason
                    .as_deref()
                    .unwrap_or("catalog does not compile")
            );
        } else {
            print!("{}", report.to_text(color));
        }
    }
    Ok(report.status.exit_code())
}
