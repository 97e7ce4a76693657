//! The agent daemon: keep this host converged to the newest signed commit.
//!
//! Each cycle: pull (fetch, verify the signature, refuse rollbacks — see
//! [`crate::git`]), pick the commit to converge to (the fresh one, or the
//! last good one when the pull was stale or refused), gather facts, compile
//! this host's catalog straight from the commit's git objects and converge
//! it, record the commit as applied, then keep the report (with a bounded
//! history), the facts and the metrics. A fresh commit whose tree does not
//! compile is treated like a refused one: nothing of it is applied, the
//! last good commit is converged instead (drift keeps being corrected), and
//! the report says why.
//!
//! Between cycles the daemon sleeps `interval` plus a random splay so a
//! fleet does not hit the git server at once. SIGHUP starts a cycle now;
//! SIGTERM/SIGINT stop it: the resource in progress finishes, the report is
//! written, the lock released. This module owns that loop and nothing
//! below it: pulling, compiling, converging and rendering metrics are the
//! other modules' work.

use crate::config::AgentConfig;
use crate::converge::{self, converge_once, Config, RunError, TreeInput};
use crate::facts;
use crate::git::{Limits, PullOptions, PullVerdict, Puller, Refusal};
use crate::metrics::{self, Counters, Snapshot};
use cfgm_core::engine::{Event, EventSink};
use cfgm_core::report::PullInfo;
use cfgm_core::{Mode, Outcome, Report, RunStatus};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Flags the signal handlers set.
#[derive(Clone, Default)]
pub struct Signals {
    /// SIGTERM/SIGINT: stop (finish the running resource, report, exit).
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: start a cycle now.
    pub now: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers (SIGTERM, SIGINT → stop; SIGHUP → now).
    pub fn install() -> std::io::Result<Signals> {
        let s = Signals::default();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, s.stop.clone())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, s.now.clone())?;
        Ok(s)
    }
}

/// Logs a run's progress as it goes (the journal shows a first converge
/// resource by resource, not only its end): a line per resource that
/// changed (info), failed or was skipped (warn); every resource at debug.
pub struct LogSink;

impl EventSink for LogSink {
    fn event(&self, e: &Event<'_>) {
        match e {
            Event::RunStarted { catalog, mode } => tracing::debug!(
                catalog = catalog.id.short(),
                resources = catalog.resources.len(),
                ?mode,
                "run started"
            ),
            Event::ResourceStarted { id } => tracing::trace!(resource = %id, "started"),
            Event::ResourceFinished { report } => {
                let id = &report.id;
                match report.outcome {
                    Outcome::Failed => tracing::warn!(
                        resource = %id,
                        outcome = ?report.outcome,
                        error = report.error.as_deref().unwrap_or(""),
                        "resource failed"
                    ),
                    Outcome::Changed => {
                        let attrs: Vec<&str> =
                            report.changes.iter().map(|c| c.attr.as_str()).collect();
                        tracing::info!(
                            resource = %id,
                            changed = attrs.join(","),
                            seconds = format!("{:.2}", report.seconds),
                            "changed"
                        )
                    }
                    Outcome::Skipped => tracing::warn!(
                        resource = %id,
                        reason = report.error.as_deref().unwrap_or(""),
                        "resource skipped"
                    ),
                    _ => tracing::debug!(resource = %id, outcome = ?report.outcome, "done"),
                }
            }
            Event::RunFinished { .. } => {}
        }
    }
}

/// The daemon's state across cycles.
pub struct Daemon {
    cfg: AgentConfig,
    root: PathBuf,
    puller: Puller,
    counters: Counters,
    server: Option<metrics::Server>,
    parallel: usize,
}

impl Daemon {
    /// Opens the agent's repository; `metrics_listen` serves the metrics.
    pub fn new(
        cfg: AgentConfig,
        root: &Path,
        metrics_listen: Option<std::net::SocketAddr>,
    ) -> Result<Daemon, RunError> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
            RunError::Io(format!(
                "create state directory {}: {e}",
                cfg.state_dir.display()
            ))
        })?;
        let puller = Puller::open(PullOptions::from_config(&cfg))
            .map_err(|e| RunError::Io(e.to_string()))?;
        let server = match metrics_listen {
            Some(addr) => Some(
                metrics::Server::start(addr, Arc::new(Mutex::new(String::new())))
                    .map_err(|e| RunError::Io(format!("metrics on {addr}: {e}")))?,
            ),
            None => None,
        };
        Ok(Daemon {
            cfg,
            root: root.to_path_buf(),
            puller,
            counters: Counters::default(),
            server,
            parallel: 4,
        })
    }

    /// The metrics endpoint's address, when one is served.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|s| s.local_addr())
    }

    /// One cycle: pull, converge the right commit, keep report, facts and
    /// metrics. `rev`: converge to that commit of the followed ref instead
    /// of its tip (a rollout's target); then a refused commit is only
    /// reported, the last good one is not converged in its place. `mode`:
    /// a dry run changes nothing and records nothing.
    pub fn cycle(
        &mut self,
        rev: Option<&str>,
        mode: Mode,
        sink: Option<Arc<dyn EventSink>>,
        stop: Option<Arc<AtomicBool>>,
    ) -> Result<Report, RunError> {
        let t0 = Instant::now();
        // One cycle at a time per state directory, pull to report.
        let _lock = crate::lock::RunLock::acquire(&self.cfg.state_dir)?;
        self.counters.runs += 1;
        let verdict = match rev {
            Some(r) => self.puller.pull_commit(r),
            None => self.puller.pull(),
        };
        match &verdict {
            PullVerdict::Stale { .. } => self.counters.fetch_failures += 1,
            PullVerdict::Refused { refusal, .. } => match refusal {
                Refusal::Rollback { .. } => self.counters.rollbacks_refused += 1,
                _ => self.counters.verification_failures += 1,
            },
            _ => {}
        }
        let fetched = match &verdict {
            PullVerdict::Fresh { commit, .. }
            | PullVerdict::Unchanged { commit }
            | PullVerdict::Behind { tip: commit, .. }
            | PullVerdict::Refused { commit, .. } => Some(commit.to_string()),
            PullVerdict::Stale { .. } => None,
        };
        let mut pull = PullInfo {
            verdict: verdict.code().to_string(),
            reason: verdict.reason(),
            fetched,
            converged_to: None,
            diagnostics: Vec::new(),
        };
        let last_good = self.puller.last_applied();
        // The commits to try, in order: the pull's target, then (when that
        // is a fresh commit that turns out not to compile) the last good.
        let mut candidates: Vec<git2::Oid> = match (&verdict, rev) {
            (PullVerdict::Fresh { commit, .. } | PullVerdict::Unchanged { commit }, _) => {
                vec![*commit]
            }
            (PullVerdict::Behind { applied, .. }, _) => vec![*applied],
            // Asked for one commit: no other is converged in its place.
            (_, Some(_)) => Vec::new(),
            _ => verdict.target().into_iter().collect(),
        };
        if let (Some(l), None) = (last_good, rev) {
            if !candidates.contains(&l) {
                candidates.push(l);
            }
        }
        let mut report = None;
        // The catalog the chosen report ran, for the facts after it.
        let mut ran = None;
        // This host is in no candidate's inventory: a wrong request (a
        // mistyped `--host`), not this host's run, whose report stays.
        let mut unknown_host = None;
        for commit in candidates {
            let out = match self.converge_commit(commit, mode, sink.clone(), stop.clone()) {
                Ok(o) => o,
                Err(e @ RunError::Busy(_)) => return Err(e),
                Err(RunError::UnknownHost(msg)) => {
                    // A commit that drops this host is refused like one
                    // that does not compile; the last good one still runs.
                    pull.verdict = "refused".into();
                    pull.reason = format!("refused {commit}: {}", msg.replace("\n  = ", "; "));
                    unknown_host = Some(msg);
                    continue;
                }
                Err(e) => {
                    // The commit's files could not be read as a tree.
                    pull.verdict = "refused".into();
                    pull.reason = format!("refused {commit}: {e}");
                    continue;
                }
            };
            if out.report.status == RunStatus::NotCompiled && Some(commit) != last_good {
                // Nothing of a commit that does not compile is applied; the
                // last good one is converged instead.
                pull.verdict = "refused".into();
                pull.reason = format!(
                    "refused {commit}: {}",
                    out.report
                        .reason
                        .as_deref()
                        .unwrap_or("it does not compile")
                );
                pull.diagnostics = out.report.diagnostics.clone();
                report = Some(out.report);
                continue;
            }
            if mode == Mode::Apply && out.report.status != RunStatus::NotCompiled {
                self.puller
                    .record_applied(commit)
                    .map_err(|e| RunError::Io(format!("record applied commit: {e}")))?;
            }
            pull.converged_to = Some(commit.to_string());
            report = Some(out.report);
            ran = out.catalog;
            break;
        }
        if !matches!(pull.verdict.as_str(), "fresh" | "unchanged" | "behind") {
            if let Some(last) = &pull.converged_to {
                if !pull.reason.contains("keeping") {
                    pull.reason
                        .push_str(&format!("; converged the last good commit {last}"));
                }
            }
        }
        if let (None, Some(msg)) = (&report, unknown_host) {
            return Err(RunError::UnknownHost(msg));
        }
        let mut report = match report {
            // Only a refused fresh commit was tried, and nothing good is
            // known: nothing applied.
            Some(r) if pull.converged_to.is_some() => r,
            Some(mut r) => {
                r.status = RunStatus::Refused;
                r
            }
            None => {
                let host = self.host_name()?;
                let mut r = Report::not_applied(&host, mode, RunStatus::Refused);
                r.reason = Some(pull.reason.clone());
                r
            }
        };
        if pull.converged_to.is_none() && report.reason.is_none() {
            report.reason = Some(pull.reason.clone());
        }
        report.pull = Some(pull);
        if mode == Mode::Apply {
            converge::keep_report(&self.cfg.state_dir, &report);
            self.publish(&report, ran.as_ref());
        }
        tracing::info!(
            status = ?report.status,
            pull = report.pull.as_ref().map(|p| p.verdict.as_str()).unwrap_or(""),
            commit = report.pull.as_ref().and_then(|p| p.converged_to.as_deref()).unwrap_or("-"),
            changed = report.counts.changed,
            failed = report.counts.failed,
            skipped = report.counts.skipped,
            seconds = format!("{:.2}", t0.elapsed().as_secs_f64()),
            "{}",
            report.pull.as_ref().map(|p| p.reason.as_str()).unwrap_or("")
        );
        Ok(report)
    }

    fn host_name(&self) -> Result<String, RunError> {
        match &self.cfg.host {
            Some(h) => Ok(h.clone()),
            None => converge::hostname(&self.root),
        }
    }

    /// Compiles `commit` for this host (from git objects) and converges it.
    fn converge_commit(
        &self,
        commit: git2::Oid,
        mode: Mode,
        sink: Option<Arc<dyn EventSink>>,
        stop: Option<Arc<AtomicBool>>,
    ) -> Result<converge::Outcome, RunError> {
        let files = self
            .puller
            .files(commit, &Limits::default())
            .map_err(|e| RunError::Refused(e.to_string()))?;
        // Templates see the system facts and packages, nothing of the last run.
        let gathered = facts::gather_for_templates(&self.root);
        let cfg = Config {
            tree: TreeInput::Commit {
                files: Arc::new(files),
                commit: commit.to_string(),
            },
            host: Some(self.host_name()?),
            root: self.root.clone(),
            state_dir: self.cfg.state_dir.clone(),
            facts: Some(facts::template_facts(&gathered)),
            mode,
            parallel: self.parallel,
            locked: true,
            keep_report: false,
        };
        converge_once(&cfg, sink, stop)
    }

    /// Facts and metrics after a run (`catalog`: the one it ran).
    fn publish(&mut self, report: &Report, catalog: Option<&cfgm_core::Catalog>) {
        let gathered = facts::gather_after(&self.root, &self.cfg.state_dir, report, catalog);
        if let Ok(text) = serde_json::to_string_pretty(&gathered) {
            crate::state::write_state_file(&self.cfg.state_dir.join("facts.json"), &text);
        }
        let applied_commit = self.puller.last_applied().map(|c| c.to_string());
        let applied = applied_commit
            .as_deref()
            .map(|c| (c, report.catalog_id.as_str()));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let text = metrics::render(&Snapshot {
            report: Some(report),
            run_ended: Some(now),
            pull: report.pull.as_ref(),
            applied,
            counters: &self.counters,
        });
        if let Some(path) = &self.cfg.metrics_textfile {
            if let Err(e) = metrics::write_textfile(path, &text) {
                tracing::warn!("metrics textfile {}: {e}", path.display());
            }
        }
        if let Some(s) = &self.server {
            s.set(text);
        }
    }

    /// The loop: a cycle, then sleep interval + splay (SIGHUP wakes it),
    /// until SIGTERM/SIGINT. `once`: one cycle. Returns the exit code.
    pub fn run(&mut self, once: bool, signals: &Signals) -> u8 {
        let sink: Arc<dyn EventSink> = Arc::new(LogSink);
        loop {
            signals.now.store(false, Ordering::SeqCst);
            let code = match self.cycle(
                None,
                Mode::Apply,
                Some(sink.clone()),
                Some(signals.stop.clone()),
            ) {
                Ok(r) => r.status.exit_code(),
                Err(e) => {
                    tracing::error!("{e}");
                    e.exit_code()
                }
            };
            if signals.stop.load(Ordering::SeqCst) {
                tracing::info!("stopping on a signal");
                return cfgm_core::exit::OK;
            }
            if once {
                return code;
            }
            // Asleep until the next run: give back what this one used.
            crate::memory::release();
            let wait = self.cfg.interval + splay(self.cfg.splay);
            tracing::debug!("next run in {:.0} s", wait.as_secs_f64());
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if signals.stop.load(Ordering::SeqCst) {
                    tracing::info!("stopping on a signal");
                    return cfgm_core::exit::OK;
                }
                if signals.now.load(Ordering::SeqCst) {
                    tracing::info!("SIGHUP: running now");
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A random duration in [0, max]: each agent of a fleet picks its own.
fn splay(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    let frac = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(frac)
}
