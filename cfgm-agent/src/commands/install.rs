//! `cfgm-agent install`: put the agent on this host as a systemd service.
//!
//! Copies this binary to /usr/local/sbin, the allowed_signers file and the
//! configuration to /etc/cfgm, the unit to /etc/systemd/system, and enables
//! and (re)starts the service. With `--repo` it writes a new configuration
//! from `dist/agent.toml` (`--interval`/`--splay` set its timing); without,
//! the one in place is kept. Refuses without systemd as PID 1.

use cfgm_agent::config::{AgentConfig, DEFAULT_PATH};
use cfgm_agent::RunError;
use std::path::{Path, PathBuf};

const UNIT: &str = include_str!("../../dist/cfgm-agent.service");
const CONFIG: &str = include_str!("../../dist/agent.toml");
const BIN: &str = "/usr/local/sbin/cfgm-agent";
const UNIT_PATH: &str = "/etc/systemd/system/cfgm-agent.service";
const SIGNERS_PATH: &str = "/etc/cfgm/allowed_signers";

#[derive(clap::Args)]
pub struct Args {
    /// The states repository (writes a new configuration).
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    /// The allowed_signers file to trust (copied to /etc/cfgm/allowed_signers).
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// Seconds between runs in the new configuration (with --repo).
    #[arg(long, value_name = "SECS", requires = "repo")]
    interval: Option<u64>,
    /// Up to this many seconds added to each interval at random (with --repo).
    #[arg(long, value_name = "SECS", requires = "repo")]
    splay: Option<u64>,
    /// Install and enable, but do not start the service now.
    #[arg(long)]
    no_start: bool,
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> RunError {
    move |e| RunError::Io(format!("{what}: {e}"))
}

/// Writes a file atomically with a mode.
fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    // Not a run's temporary name (`.NAME.cfgm-new`, which runs look for
    // beside the files they manage): the install's own, made new.
    let tmp = dir.join(format!(
        ".{}.cfgm-install",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .map_err(io(tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(io(tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display()))
}

fn systemctl(args: &[&str]) -> Result<(), RunError> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .map_err(io("systemctl"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RunError::Io(format!(
            "systemctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub fn run(a: Args) -> Result<u8, RunError> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(RunError::Refused(
            "systemd is not running on this host (no /run/systemd/system): install the binary \
             yourself and start `cfgm-agent run` from your init system"
                .into(),
        ));
    }
    // The configuration: a new one from the flags, or the one in place.
    let config = Path::new(DEFAULT_PATH);
    if let Some(signers) = &a.allowed_signers {
        let text = std::fs::read(signers).map_err(io(signers.display()))?;
        put(Path::new(SIGNERS_PATH), &text, 0o644)?;
    }
    match &a.repo {
        Some(repo) => {
            let text = CONFIG
                .replace("@REPO@", repo)
                .replace("@ALLOWED_SIGNERS@", SIGNERS_PATH)
                .replace(
                    "@INTERVAL@",
                    &a.interval
                        .unwrap_or(AgentConfig::DEFAULT_INTERVAL)
                        .to_string(),
                )
                .replace(
                    "@SPLAY@",
                    &a.splay.unwrap_or(AgentConfig::DEFAULT_SPLAY).to_string(),
                );
            AgentConfig::parse(DEFAULT_PATH, &text)
                .map_err(|e| RunError::Refused(e.lines().join("\n")))?;
            put(config, text.as_bytes(), 0o644)?;
        }
        None if config.exists() => {}
        None => {
            return Err(RunError::Refused(format!(
                "no configuration at {DEFAULT_PATH} yet: pass --repo URL --allowed-signers FILE"
            )))
        }
    }
    let cfg = AgentConfig::load(config).map_err(|e| RunError::Refused(e.lines().join("\n")))?;
    if !cfg.allowed_signers.exists() {
        return Err(RunError::Refused(format!(
            "{}: no allowed_signers file (pass --allowed-signers FILE)",
            cfg.allowed_signers.display()
        )));
    }
    // The binary: this one, unless it already runs from there.
    let me = std::env::current_exe().map_err(io("this binary"))?;
    if me != Path::new(BIN) {
        let bytes = std::fs::read(&me).map_err(io(me.display()))?;
        put(Path::new(BIN), &bytes, 0o755)?;
    }
    put(Path::new(UNIT_PATH), UNIT.as_bytes(), 0o644)?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "cfgm-agent.service"])?;
    if !a.no_start {
        systemctl(&["restart", "cfgm-agent.service"])?;
    }
    println!(
        "cfgm-agent installed: {BIN}, {DEFAULT_PATH} (repo {}), {UNIT_PATH}; service {}",
        cfg.repo,
        if a.no_start {
            "enabled"
        } else {
            "enabled and started"
        }
    );
    Ok(cfgm_core::exit::OK)
}
