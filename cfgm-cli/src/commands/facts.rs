//! `cfgm facts fetch`: copy the selected hosts' latest facts over SSH into
//! a directory (`DIR/<host>.json`), for `cfgm plan --facts DIR`.

use crate::ui::Ui;
use cfgm_cli::ssh::{fan_out, Session, SshOptions};
use cfgm_core::{exit, Selector, Tree};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum Facts {
    /// Copy every selected host's latest facts (written by its agent) over SSH.
    Fetch(FetchArgs),
}

#[derive(clap::Args)]
pub struct FetchArgs {
    /// The hosts (default: all).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// Where to save `<host>.json`.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Hosts at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    parallel: usize,
    #[command(flatten)]
    ssh: SshArgs,
    /// The facts file on each host.
    #[arg(long, default_value = "/var/lib/cfgm/facts.json", value_name = "PATH")]
    remote_path: String,
}

/// SSH options shared by every fleet command.
#[derive(clap::Args, Clone)]
pub struct SshArgs {
    /// The private key (default: the keys of ssh-agent).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The host keys to trust; an unknown or changed key is refused.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// The remote user.
    #[arg(long, default_value = "root", value_name = "USER")]
    pub user: String,
    /// Seconds before a host counts as unreachable.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub timeout: u64,
}

impl SshArgs {
    pub fn options(&self) -> SshOptions {
        let mut o = SshOptions {
            user: self.user.clone(),
            identity: self.identity.clone(),
            timeout: Duration::from_secs(self.timeout.max(1)),
            ..SshOptions::default()
        };
        if let Some(k) = &self.known_hosts {
            o.known_hosts = k.clone();
        }
        o
    }
}

pub fn run(ui: &Ui, dir: &Path, f: Facts) -> anyhow::Result<u8> {
    match f {
        Facts::Fetch(a) => fetch(ui, dir, a),
    }
}

/// Where a host is reached: its inventory address, else its name.
pub fn address(h: &cfgm_core::tree::Host) -> String {
    h.address.clone().unwrap_or_else(|| h.name.clone())
}

fn fetch(ui: &Ui, dir: &Path, a: FetchArgs) -> anyhow::Result<u8> {
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
    std::fs::create_dir_all(&a.out)?;
    let opts = a.ssh.options();
    let results = fan_out(&hosts, a.parallel, |h| -> Result<usize, String> {
        let s = Session::connect(&address(h), &opts).map_err(|e| e.to_string())?;
        let bytes = s
            .read_file(&a.remote_path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no facts yet (the agent has not run)", a.remote_path))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a facts document: {e}", a.remote_path))?;
        let v = doc["schema_version"].as_u64().unwrap_or(0);
        if v == 0 || v > cfgm_core::facts::SCHEMA_VERSION as u64 {
            return Err(format!(
                "{}: facts schema_version {v}, this cfgm reads up to {}",
                a.remote_path,
                cfgm_core::facts::SCHEMA_VERSION
            ));
        }
        let path = a.out.join(format!("{}.json", h.name));
        let tmp = a.out.join(format!(".{}.json.tmp", h.name));
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("save {}: {e}", path.display()))?;
        Ok(bytes.len())
    });
    let mut failed = 0;
    for (h, r) in hosts.iter().zip(&results) {
        if let Err(e) = r {
            failed += 1;
            ui.error(&format!("{}: {e}", h.name));
        }
    }
    ui.out(&format!(
        "facts of {} of {} hosts saved in {}{}\n",
        hosts.len() - failed,
        hosts.len(),
        a.out.display(),
        if failed > 0 {
            format!("; {failed} unreachable or without facts (listed above)")
        } else {
            String::new()
        }
    ));
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}
