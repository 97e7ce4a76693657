//! The agent's configuration file, `/etc/cfgm/agent.toml`.
//!
//! This module owns reading and checking that file into an [`AgentConfig`]:
//! every key has a type and, where it makes sense, a default; unknown keys
//! and bad values are errors located at `FILE:LINE:COL` (the same
//! [`Diagnostic`] shape the compiler uses for state files), and every bad
//! value in the file is reported, not only the first. It does not act on
//! the configuration: it opens no repository, reads no signers file and
//! resolves no hostname (an absent `host` stays `None` for the caller).
//!
//! ```toml
//! repo = "git://git.example.net/states.git"   # git://, ssh://, https://, file:// or an absolute path
//! ref = "refs/heads/main"                     # a full ref name (default)
//! allowed_signers = "/etc/cfgm/allowed_signers"
//! interval = 1800                             # seconds between runs (default), > 0
//! splay = 300                                 # up to this many seconds added at random (default), >= 0
//! fetch_timeout = 60                          # seconds for one fetch (default), > 0
//! state_dir = "/var/lib/cfgm"                 # default
//! metrics_textfile = "/var/lib/node_exporter/textfile/cfgm.prom"   # optional
//! allow_rollback = false                      # default
//! host = "web-1"                              # default: the hostname
//! ```

use cfgm_core::diag::{Diagnostic, Sources, Span};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where the agent reads its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/cfgm/agent.toml";

/// The agent's configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The states repository: a `git://`, `ssh://`, `https://` or `file://`
    /// URL, or an absolute path.
    pub repo: String,
    /// The full ref name to follow (`refs/heads/main`).
    pub refname: String,
    /// The OpenSSH allowed_signers file: the keys whose commits are applied.
    pub allowed_signers: PathBuf,
    /// Time between two runs.
    pub interval: Duration,
    /// Up to this much is added to each interval at random, so a fleet does
    /// not fetch at the same second.
    pub splay: Duration,
    /// The longest one fetch may take (connect, negotiate, download).
    pub fetch_timeout: Duration,
    /// The agent's own state: the fetched repository, the last applied
    /// commit, reports, lock.
    pub state_dir: PathBuf,
    /// A node exporter textfile-collector path for the metrics, if any.
    pub metrics_textfile: Option<PathBuf>,
    /// Apply a commit that does not descend from the last applied one.
    pub allow_rollback: bool,
    /// The inventory host to converge as; `None`: the hostname.
    pub host: Option<String>,
}

/// Why a configuration was not read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but is wrong; every problem is located.
    #[error("{}", one_line(sources, diagnostics))]
    Invalid {
        sources: Sources,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// Each problem as `FILE:LINE:COL: message` (with its notes after `;`).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid {
                sources,
                diagnostics,
            } => diagnostics.iter().map(|d| located(sources, d)).collect(),
        }
    }

    /// The problems for a person, with the source line and a caret.
    pub fn render(&self, color: bool) -> String {
        match self {
            ConfigError::Read { .. } => format!("error: {self}\n"),
            ConfigError::Invalid {
                sources,
                diagnostics,
            } => diagnostics
                .iter()
                .map(|d| d.render(sources, color))
                .collect(),
        }
    }
}

fn located(sources: &Sources, d: &Diagnostic) -> String {
    let mut s = match d.first_span() {
        Some(span) => format!(
            "{}: {}",
            sources.location(span.file, span.range.start),
            d.message
        ),
        None => d.message.clone(),
    };
    for n in &d.notes {
        s.push_str("; ");
        s.push_str(n);
    }
    s
}

fn one_line(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| located(sources, d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file as written; `Spanned` keeps where each value is for errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    repo: Spanned<String>,
    #[serde(rename = "ref")]
    refname: Option<Spanned<String>>,
    allowed_signers: Spanned<String>,
    interval: Option<Spanned<i64>>,
    splay: Option<Spanned<i64>>,
    fetch_timeout: Option<Spanned<i64>>,
    state_dir: Option<Spanned<String>>,
    metrics_textfile: Option<Spanned<String>>,
    allow_rollback: Option<bool>,
    host: Option<Spanned<String>>,
}

/// The URL schemes `repo` may use.
pub const SCHEMES: [&str; 4] = ["git://", "ssh://", "https://", "file://"];

impl AgentConfig {
    pub const DEFAULT_REF: &'static str = "refs/heads/main";
    pub const DEFAULT_INTERVAL: u64 = 1800;
    pub const DEFAULT_SPLAY: u64 = 300;
    pub const DEFAULT_FETCH_TIMEOUT: u64 = 60;
    pub const DEFAULT_STATE_DIR: &'static str = "/var/lib/cfgm";

    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AgentConfig::parse(&path.display().to_string(), &text)
    }

    /// Checks configuration text; `name` is the file name errors show.
    pub fn parse(name: &str, text: &str) -> Result<AgentConfig, ConfigError> {
        let sources = Sources::new();
        let file = sources.add(name, text);
        let raw: Raw = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let d = toml_error(file, &e);
                return Err(ConfigError::Invalid {
                    sources,
                    diagnostics: vec![d],
                });
            }
        };
        let mut diags = Vec::new();
        let mut bad = |range: Range<usize>, message: String, expected: &str| {
            diags.push(
                Diagnostic::error("agent-config", message.clone())
                    .primary(Span::new(file, range), message)
                    .note(format!("expected {expected}")),
            );
        };

        let repo = raw.repo.get_ref().trim().to_string();
        if let Err(why) = check_repo(&repo) {
            bad(
                raw.repo.span(),
                format!("repo: {why}"),
                "a git://, ssh://, https:// or file:// URL, or an absolute path",
            );
        }
        let refname = match &raw.refname {
            Some(r) => {
                let name = r.get_ref().clone();
                if !name.starts_with("refs/") || !git2::Reference::is_valid_name(&name) {
                    let hint = if !name.contains('/') && !name.is_empty() {
                        format!(" (for a branch write \"refs/heads/{name}\")")
                    } else {
                        String::new()
                    };
                    bad(
                        r.span(),
                        format!("ref: \"{name}\" is not a full ref name{hint}"),
                        "a full ref name such as \"refs/heads/main\"",
                    );
                }
                name
            }
            None => Self::DEFAULT_REF.to_string(),
        };
        let mut path = |v: &Spanned<String>, key: &str| -> PathBuf {
            let p = PathBuf::from(v.get_ref());
            if !p.is_absolute() {
                bad(
                    v.span(),
                    format!("{key}: \"{}\" is not an absolute path", v.get_ref()),
                    "an absolute path",
                );
            }
            p
        };
        let allowed_signers = path(&raw.allowed_signers, "allowed_signers");
        let state_dir = raw
            .state_dir
            .as_ref()
            .map(|v| path(v, "state_dir"))
            .unwrap_or_else(|| PathBuf::from(Self::DEFAULT_STATE_DIR));
        let metrics_textfile = raw
            .metrics_textfile
            .as_ref()
            .map(|v| path(v, "metrics_textfile"));
        let mut seconds = |v: &Option<Spanned<i64>>, key: &str, default: u64, min: i64| match v {
            None => Duration::from_secs(default),
            Some(s) if *s.get_ref() < min => {
                let what = if min > 0 {
                    "a number of seconds greater than 0"
                } else {
                    "a number of seconds, 0 or more"
                };
                bad(
                    s.span(),
                    format!("{key}: {} is out of range", s.get_ref()),
                    what,
                );
                Duration::ZERO
            }
            Some(s) => Duration::from_secs(*s.get_ref() as u64),
        };
        let interval = seconds(&raw.interval, "interval", Self::DEFAULT_INTERVAL, 1);
        let splay = seconds(&raw.splay, "splay", Self::DEFAULT_SPLAY, 0);
        let fetch_timeout = seconds(
            &raw.fetch_timeout,
            "fetch_timeout",
            Self::DEFAULT_FETCH_TIMEOUT,
            1,
        );
        let host = raw.host.as_ref().map(|h| {
            let name = h.get_ref().clone();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                bad(
                    h.span(),
                    format!("host: \"{name}\" is not a host name"),
                    "letters, digits, '-', '_' and '.'",
                );
            }
            name
        });

        if !diags.is_empty() {
            diags.sort_by_key(|d| d.first_span().map(|s| s.range.start));
            return Err(ConfigError::Invalid {
                sources,
                diagnostics: diags,
            });
        }
        Ok(AgentConfig {
            repo,
            refname,
            allowed_signers,
            interval,
            splay,
            fetch_timeout,
            state_dir,
            metrics_textfile,
            allow_rollback: raw.allow_rollback.unwrap_or(false),
            host,
        })
    }
}

/// Whether a `repo` value names a repository the agent can fetch.
fn check_repo(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("empty".into());
    }
    if let Some(scheme) = SCHEMES.iter().find(|s| repo.starts_with(**s)) {
        let rest = &repo[scheme.len()..];
        if rest.is_empty() || rest == "/" {
            return Err(format!("\"{repo}\" names no repository"));
        }
        if *scheme == "file://" && !rest.starts_with('/') {
            return Err(format!("\"{repo}\": a file:// URL needs an absolute path"));
        }
        return Ok(());
    }
    if repo.starts_with('/') {
        return Ok(());
    }
    if let Some((scheme, _)) = repo.split_once("://") {
        return Err(format!("the scheme \"{scheme}://\" is not supported"));
    }
    if repo.contains(':') && repo.contains('@') {
        return Err(format!(
            "\"{repo}\" looks like scp syntax; write it as ssh://user@host/path"
        ));
    }
    Err(format!("\"{repo}\" is neither a URL nor an absolute path"))
}

/// A TOML or typing error, where toml found it.
fn toml_error(file: cfgm_core::diag::FileId, e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim();
    let (head, rest) = msg.split_once('\n').unwrap_or((msg, ""));
    let mut d = Diagnostic::error("agent-config", head.to_string())
        .primary(Span::new(file, e.span().unwrap_or(0..0)), head.to_string());
    if !rest.trim().is_empty() {
        d = d.note(rest.trim().to_string());
    }
    d
}
