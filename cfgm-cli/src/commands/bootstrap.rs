//! `cfgm bootstrap`: put the agent on hosts over SSH — its binary, the
//! allowed_signers file, then `cfgm-agent install` on the host (which
//! writes the configuration and the systemd unit and enables the service).
//! A new datacenter joins the fleet with one command.

use super::facts::{address, SshArgs};
use crate::ui::Ui;
use cfgm_cli::ssh::{fan_out, Session};
use cfgm_core::{exit, Selector, Tree};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The hosts (default: all).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// The states repository the agents follow.
    #[arg(long, value_name = "URL")]
    repo: String,
    /// The allowed_signers file the agents trust.
    #[arg(long, value_name = "FILE")]
    allowed_signers: PathBuf,
    /// The agent binary to copy (default: cfgm-agent next to this cfgm).
    #[arg(long, value_name = "FILE")]
    agent_binary: Option<PathBuf>,
    /// Seconds between the agents' runs.
    #[arg(long, value_name = "SECS")]
    interval: Option<u64>,
    /// Random extra seconds per run.
    #[arg(long, value_name = "SECS")]
    splay: Option<u64>,
    /// Install and enable the agent, but do not start it: the first
    /// rollout (`cfgm apply --commit`) decides when each host converges.
    #[arg(long)]
    no_start: bool,
    /// Hosts at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallel: usize,
    #[command(flatten)]
    ssh: SshArgs,
}

pub fn run(ui: &Ui, dir: &Path, a: Args) -> anyhow::Result<u8> {
    let (tree, _) = Tree::load(dir)?;
    let sel = match &a.select {
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
    let binary = match &a.agent_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("cfgm-agent"))
            .unwrap_or_else(|| PathBuf::from("cfgm-agent")),
    };
    let agent = std::fs::read(&binary).map_err(|e| {
        anyhow::anyhow!(
            "agent binary {}: {e} (pass --agent-binary)",
            binary.display()
        )
    })?;
    let signers = std::fs::read(&a.allowed_signers)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.allowed_signers.display()))?;
    let opts = a.ssh.options();
    let results = fan_out(&hosts, a.parallel, |h| -> Result<(), String> {
        let s = Session::connect(&address(h), &opts).map_err(|e| e.to_string())?;
        let t = Duration::from_secs(120);
        s.exec(&["mkdir", "-p", "/usr/local/sbin", "/etc/cfgm"], t)
            .map_err(|e| e.to_string())?;
        s.write_file("/usr/local/sbin/.cfgm-agent.new", &agent, 0o755)
            .map_err(|e| e.to_string())?;
        s.write_file("/etc/cfgm/.allowed_signers.new", &signers, 0o644)
            .map_err(|e| e.to_string())?;
        let mut argv = vec![
            "/usr/local/sbin/.cfgm-agent.new".to_string(),
            "install".into(),
            "--repo".into(),
            a.repo.clone(),
            "--allowed-signers".into(),
            "/etc/cfgm/.allowed_signers.new".into(),
        ];
        if let Some(i) = a.interval {
            argv.extend(["--interval".into(), i.to_string()]);
        }
        if let Some(sp) = a.splay {
            argv.extend(["--splay".into(), sp.to_string()]);
        }
        if a.no_start {
            argv.push("--no-start".into());
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = s.exec(&args, t).map_err(|e| e.to_string())?;
        let _ = s.exec(
            &[
                "rm",
                "-f",
                "/usr/local/sbin/.cfgm-agent.new",
                "/etc/cfgm/.allowed_signers.new",
            ],
            t,
        );
        if out.status != 0 {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "cfgm-agent install exited {}: {}",
                out.status,
                err.lines().last().unwrap_or("").trim()
            ));
        }
        Ok(())
    });
    let mut failed = 0;
    for (h, r) in hosts.iter().zip(&results) {
        match r {
            Ok(()) => ui.out(&format!(
                "  {} {}: agent installed{}\n",
                ui.green("✓"),
                h.name,
                if a.no_start {
                    " and enabled (not started)"
                } else {
                    " and started"
                }
            )),
            Err(e) => {
                failed += 1;
                ui.error(&format!("{}: {e}", h.name));
            }
        }
    }
    ui.out(&format!(
        "bootstrapped {} of {} hosts\n",
        hosts.len() - failed,
        hosts.len()
    ));
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}
