//! `cfgm-agent run`: the daemon (or one cycle with `--once`).

use cfgm_agent::config::{AgentConfig, DEFAULT_PATH};
use cfgm_agent::daemon::{Daemon, Signals};
use cfgm_agent::RunError;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The agent's configuration.
    #[arg(long, default_value = DEFAULT_PATH, value_name = "FILE")]
    config: PathBuf,
    /// One cycle (pull, converge, report), then exit with its code.
    #[arg(long)]
    once: bool,
    /// Converge a host root mounted at DIR instead of this machine.
    #[arg(long, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Also serve the metrics on this address (e.g. 127.0.0.1:9750).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(a: Args) -> Result<u8, RunError> {
    let cfg = load_config(&a.config)?;
    let signals = Signals::install().map_err(|e| RunError::Io(format!("signals: {e}")))?;
    let mut daemon = Daemon::new(cfg, &a.root, a.metrics_listen)?;
    if let Some(addr) = daemon.metrics_addr() {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    Ok(daemon.run(a.once, &signals))
}

/// Reads the configuration; its errors are located (file:line:column).
pub fn load_config(path: &std::path::Path) -> Result<AgentConfig, RunError> {
    AgentConfig::load(path).map_err(|e| RunError::Refused(e.lines().join("\n")))
}
