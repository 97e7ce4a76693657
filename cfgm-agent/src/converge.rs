//! One converge of this host: the agent's unit of work.
//!
//! [`converge_once`] compiles this host's catalog from a states tree,
//! takes the run lock, converges through the engine (events go to the
//! caller's sink; a cancel flag stops it cooperatively), settles refresh
//! debts and keeps the report in the state directory. Whatever happens to
//! *this host's run* — converged, failed resources, a catalog that does not
//! compile, stopped — comes back as one [`Report`] shape. Errors that are
//! not a run of this host (the lock is held, an unknown host, an unreadable
//! root) are a [`RunError`] and never replace the kept report.

use crate::debts::FileLedger;
use crate::lock::RunLock;
use cfgm_core::engine::{self, EventSink, Options};
use cfgm_core::gitsource::{CommitFiles, GitSource};
use cfgm_core::{Compiler, Mode, Report, RunStatus, Tree};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Where the states tree comes from.
#[derive(Clone, Debug)]
pub enum TreeInput {
    /// A directory (an author's checkout, a test tree).
    Dir(PathBuf),
    /// A commit's files, read from git objects (never checked out).
    Commit {
        files: Arc<CommitFiles>,
        commit: String,
    },
}

impl TreeInput {
    /// Loads the tree; `Err` when there is no tree at all.
    pub fn load(&self) -> Result<(Tree, Vec<cfgm_core::Diagnostic>), RunError> {
        match self {
            TreeInput::Dir(d) => Tree::load(d).map_err(|e| RunError::Refused(e.to_string())),
            TreeInput::Commit { files, commit } => Ok(Tree::load_from(Box::new(GitSource::new(
                files.clone(),
                commit.clone(),
            )))),
        }
    }
}

/// What one run works on.
#[derive(Clone, Debug)]
pub struct Config {
    /// The states tree.
    pub tree: TreeInput,
    /// The inventory host to converge as (default: the hostname under `root`).
    pub host: Option<String>,
    /// The host's root filesystem ("/" for this machine).
    pub root: PathBuf,
    /// The agent's state: lock, debts, backups, reports.
    pub state_dir: PathBuf,
    /// Facts templates see as `facts`.
    pub facts: Option<Value>,
    pub mode: Mode,
    /// How many independent resources converge at once.
    pub parallel: usize,
    /// The caller already holds the run lock (the daemon holds it for a
    /// whole cycle: pull, converge, report).
    pub locked: bool,
    /// Keep the report in the state directory (an apply); the daemon keeps
    /// it itself, with the pull added.
    pub keep_report: bool,
}

/// A run that could not be this host's run; the kept report is untouched.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run holds the lock: retry later.
    #[error("{0}")]
    Busy(String),
    /// The request itself is wrong (missing root, no tree, bad facts).
    #[error("{0}")]
    Refused(String),
    /// The host is not in the tree's inventory: the message with its
    /// did-you-mean, as `cfgm` shows it.
    #[error("{0}")]
    UnknownHost(String),
    #[error("{0}")]
    Io(String),
}

impl RunError {
    /// The exit code (see `cfgm_core::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Busy(_) => cfgm_core::exit::BUSY,
            RunError::Refused(_) | RunError::UnknownHost(_) => cfgm_core::exit::REFUSED,
            RunError::Io(_) => cfgm_core::exit::FAILED,
        }
    }
}

/// The outcome of a run, with the compile diagnostics rendered for people
/// (the report holds them as JSON).
pub struct Outcome {
    pub report: Report,
    /// The tree's sources, to render diagnostics with file and line.
    pub tree: Tree,
    pub diagnostics: Vec<cfgm_core::Diagnostic>,
    /// The report's JSON as kept in the state directory (when it was).
    pub json: Option<Vec<u8>>,
    /// The catalog the run converged (none when it did not compile): the
    /// caller decides when to free it (a process about to end does not).
    pub catalog: Option<cfgm_core::Catalog>,
}

/// The host's name: its hostname under the root.
pub fn hostname(root: &Path) -> Result<String, RunError> {
    let from_root = std::fs::read_to_string(root.join("etc/hostname")).ok();
    let name = match from_root {
        Some(n) if !n.trim().is_empty() => n,
        _ if root == Path::new("/") => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| RunError::Io(format!("read hostname: {e}")))?,
        _ => {
            return Err(RunError::Refused(format!(
                "{}: no etc/hostname; pass --host",
                root.display()
            )))
        }
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

/// One run: compile, converge (or plan, in a dry run), report.
pub fn converge_once(
    cfg: &Config,
    sink: Option<Arc<dyn EventSink>>,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<Outcome, RunError> {
    let root = cfg
        .root
        .canonicalize()
        .map_err(|e| RunError::Refused(format!("root {}: {e}", cfg.root.display())))?;
    let host_name = match &cfg.host {
        Some(h) => h.clone(),
        None => hostname(&root)?,
    };
    // The kept catalog is read while the tree loads (most runs use it);
    // whether it is this tree's is known once the tree is. Only for a name
    // that can be an inventory host's (it names the cache file; the tree
    // says whether it is one).
    let plain =
        !host_name.is_empty() && !host_name.starts_with('.') && !host_name.contains(['/', '\0']);
    let kept_catalog = plain.then(|| {
        let (state_dir, host) = (cfg.state_dir.clone(), host_name.clone());
        std::thread::spawn(move || crate::cache::read(&state_dir, &host))
    });
    let (tree, mut diags) = cfg.tree.load()?;
    // An unknown host is a wrong request, not this host's run.
    if let Err(d) = tree.host(&host_name) {
        let mut msg = d.message.clone();
        for n in &d.notes {
            msg.push_str(&format!("\n  = {n}"));
        }
        return Err(RunError::UnknownHost(msg));
    }

    // Compile first: nothing is applied unless everything compiled.
    let registry = cfgm_modules::registry();
    let cache_key =
        (diags.is_empty()).then(|| crate::cache::key(&tree, &host_name, cfg.facts.as_ref()));
    // The kept catalog when it is this tree's; else the last apply's, whose
    // paths a run that looks for leftovers clears too.
    let (cached, previous) = match (kept_catalog.map(|t| t.join()), &cache_key) {
        (Some(Ok(Some((k, c)))), Some(key)) if k == *key => (Some(c), None),
        (Some(Ok(Some((_, c)))), _) => (None, Some(c)),
        _ => (None, None),
    };
    let from_cache = cached.is_some();
    let (catalog, resource_diags) = match cached {
        Some(c) => (Some(c), Vec::new()),
        None => {
            let compiler = Compiler::new(&tree, &registry);
            compiler.compile_host_partial(&host_name, cfg.facts.as_ref())
        }
    };
    let catalog = match catalog {
        Some(c) if diags.is_empty() => c,
        _ => {
            diags.extend(resource_diags);
            cfgm_core::diag::sort_dedup(&tree.sources, &mut diags);
            let mut json = None;
            let mut report = Report::not_applied(&host_name, cfg.mode, RunStatus::NotCompiled);
            report.tree_id = tree.tree_id();
            report.diagnostics = diags.iter().map(|d| d.to_json(&tree.sources)).collect();
            report.reason = Some(format!(
                "catalog does not compile ({} problem{}); nothing was applied",
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            ));
            if cfg.mode == Mode::Apply && cfg.keep_report {
                // Monitoring must not keep seeing the last good run; a
                // concurrent run owns the report, so only under the lock.
                let _lock = lock(cfg)?;
                json = Some(keep_report(&cfg.state_dir, &report));
            }
            return Ok(Outcome {
                report,
                tree,
                diagnostics: diags,
                json,
                catalog: None,
            });
        }
    };

    let _lock = lock(cfg)?;
    // A catalog that compiled whole is kept for the next run, by an apply
    // that holds the lock (one that finds the lock taken keeps nothing; a
    // dry run only reads the cache). While the cache holds the catalog an
    // apply runs, its report may leave out what that catalog says: facts
    // put it back from there (see `cfgm_core::schema::AS_CATALOG_KEY`).
    let trim_converged = cfg.mode == Mode::Apply
        && (from_cache
            || match (&cache_key, resource_diags.is_empty()) {
                (Some(k), true) => crate::cache::put(&cfg.state_dir, &host_name, k, &catalog),
                _ => false,
            });
    let host = cfgm_modules::Host::new(&root, &cfg.state_dir)
        .map_err(|e| RunError::Refused(format!("root {}: {e}", root.display())))?;
    let providers = cfgm_modules::providers(&host);
    let ledger = Arc::new(FileLedger::open(&cfg.state_dir));
    let opts = Options {
        mode: cfg.mode,
        parallel: cfg.parallel,
        owed_refresh: ledger.owed(),
        ledger: Some(ledger.clone()),
        sink,
        cancel,
        trim_converged,
    };
    let mut report = engine::run(&catalog, &providers, &opts);
    report.tree_id = tree.tree_id();
    // Resources whose file template failed are in the catalog, marked:
    // they failed (and skipped their dependents); their diagnostics go
    // with the report.
    report.diagnostics = resource_diags
        .iter()
        .map(|d| d.to_json(&tree.sources))
        .collect();
    let mut json = None;
    if cfg.mode == Mode::Apply {
        // Every resource observed (none skipped, none left alone by a
        // condition, which observes nothing), none failed: no temporary
        // file is left.
        let unobserved = report.resources.iter().any(|r| {
            r.observed
                .as_ref()
                .is_some_and(|o| o.get(cfgm_core::schema::CONDITION_KEY).is_some())
        });
        let mut clean = report.counts.failed == 0
            && report.counts.skipped == 0
            && !report.stopped
            && !unobserved;
        if clean && host.may_have_leftovers() {
            // Only files look beside themselves as they are observed: the
            // temporaries of every path this catalog, or the last apply's,
            // writes go too.
            let paths = cfgm_core::provider::managed_paths_of(
                [Some(&catalog), previous.as_ref()]
                    .into_iter()
                    .flatten()
                    .flat_map(|c| &c.resources),
                &providers,
            );
            clean = host.clear_leftovers(paths.iter().map(String::as_str));
        }
        host.settle_temps(clean);
        ledger
            .settle(&report.owed_refresh)
            .map_err(|e| RunError::Io(format!("record owed refreshes: {e}")))?;
        if cfg.keep_report {
            json = Some(keep_report(&cfg.state_dir, &report));
        }
    }
    Ok(Outcome {
        report,
        tree,
        diagnostics: resource_diags,
        json,
        catalog: Some(catalog),
    })
}

/// The run lock, unless the caller holds it.
fn lock(cfg: &Config) -> Result<Option<RunLock>, RunError> {
    if cfg.locked {
        Ok(None)
    } else {
        RunLock::acquire(&cfg.state_dir).map(Some)
    }
}

/// The report as kept and printed, serialized once: pretty JSON with the
/// run's peak memory, ending in a newline.
pub fn report_json(report: &Report) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Kept<'a> {
        #[serde(flatten)]
        report: &'a Report,
        #[serde(skip_serializing_if = "Option::is_none")]
        peak_rss_kib: Option<u64>,
    }
    let mut out = serde_json::to_vec_pretty(&Kept {
        report,
        peak_rss_kib: peak_rss_kib(),
    })
    .unwrap_or_default();
    out.push(b'\n');
    out
}

/// Keeps the report in the state directory; its JSON, for printing.
pub fn keep_report(state_dir: &Path, report: &Report) -> Vec<u8> {
    let json = report_json(report);
    crate::state::save_report(state_dir, &json, &status_name(report));
    json
}

/// The report's status as its JSON says it (history file names).
fn status_name(report: &Report) -> String {
    match serde_json::to_value(report.status) {
        Ok(Value::String(s)) => s,
        _ => "run".into(),
    }
}
