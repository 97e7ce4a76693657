//! The report of a converge run (or a dry run): per resource, what happened
//! and what changed; per run, the catalog, counts and time.
//!
//! A report is data: it serialises to JSON for machines (and becomes the
//! host's next facts), and renders for people like `git diff` — a line per
//! changed resource, attribute `from → to`, unified diffs for content,
//! colour on a terminal. It never holds a secret: providers report hashes.

use crate::catalog::{Catalog, Resource, ResourceId};
use crate::plan::{Change, Mode};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What happened to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Unchanged,
    Changed,
    WouldChange,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceReport {
    pub id: ResourceId,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Watched resources whose change refreshed (or would refresh) this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshed_by: Vec<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
    /// What was observed on the host (after apply, when it changed);
    /// secret attributes as a hash. With the run's other resources, this is
    /// the host's facts about its catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<serde_json::Value>,
}

impl ResourceReport {
    pub fn failed(r: &Resource, error: String, seconds: f64) -> Self {
        ResourceReport {
            id: r.id.clone(),
            outcome: Outcome::Failed,
            changes: Vec::new(),
            refreshed_by: Vec::new(),
            error: Some(error),
            seconds,
            observed: None,
        }
    }

    pub fn skipped(r: &Resource, why: String) -> Self {
        ResourceReport {
            id: r.id.clone(),
            outcome: Outcome::Skipped,
            changes: Vec::new(),
            refreshed_by: Vec::new(),
            error: Some(why),
            seconds: 0.0,
            observed: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub unchanged: usize,
    pub changed: usize,
    pub would_change: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// How a run ended, as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every resource converged (changed or not; a dry run: could be planned).
    Converged,
    /// A resource failed or was skipped; the rest converged.
    Failed,
    /// The catalog did not compile: nothing was applied (see `diagnostics`).
    NotCompiled,
    /// The input was refused before compiling (e.g. an unsigned commit):
    /// nothing was applied (see `reason`).
    Refused,
    /// Stopped by a signal before every resource started.
    Stopped,
}

impl RunStatus {
    /// The exit code of a run that ended so (see [`crate::exit`]).
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::Converged => crate::exit::OK,
            RunStatus::Failed => crate::exit::FAILED,
            RunStatus::NotCompiled | RunStatus::Refused => crate::exit::REFUSED,
            RunStatus::Stopped => crate::exit::STOPPED,
        }
    }
}

/// Where an agent's run came from: the pull from git before it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PullInfo {
    /// `fresh`, `unchanged`, `stale` or `refused`.
    pub verdict: String,
    /// The verdict in one line, for people.
    pub reason: String,
    /// The commit the fetched ref pointed at (or the one asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched: Option<String>,
    /// The commit this run applied (the last good one when the fetched
    /// commit was refused or did not compile). The report's `status` says
    /// whether the host got all of it: a run that was stopped or had
    /// failures names its commit here all the same, and the commit is
    /// recorded as applied, since part of it is on the host and going back
    /// past it would be a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged_to: Option<String>,
    /// Why the fetched commit did not compile, when it did not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<serde_json::Value>,
}

/// A run's resources as JSON, each one compact line in the list (a
/// pretty-printed report stays one line per resource, which `grep` can
/// read too). A large run's lines are made on two threads: a no-op of
/// 1,000 files spent most of its report time making them on one.
fn resource_lines<S: serde::Serializer>(
    resources: &[ResourceReport],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::{Error as _, SerializeSeq as _};
    use serde_json::value::{to_raw_value, RawValue};
    type Lines = Result<Vec<Box<RawValue>>, serde_json::Error>;
    let lines = |rs: &[ResourceReport]| -> Lines { rs.iter().map(to_raw_value).collect() };
    const ALONE: usize = 256;
    let made = if resources.len() < ALONE {
        lines(resources)
    } else {
        let (a, b) = resources.split_at(resources.len() / 2);
        std::thread::scope(|sc| {
            let second = sc.spawn(|| lines(b));
            let mut first = lines(a)?;
            match second.join() {
                Ok(rest) => first.extend(rest?),
                Err(_) => return Err(serde_json::Error::custom("a report's lines panicked")),
            }
            Ok(first)
        })
    };
    let made = made.map_err(S::Error::custom)?;
    let mut seq = s.serialize_seq(Some(made.len()))?;
    for line in &made {
        seq.serialize_element(line)?;
    }
    seq.end()
}

/// One run on one host. The same shape whether the catalog compiled or
/// not: a run that did not compile has no resources, its `status` says so
/// and `diagnostics` say why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub host: String,
    pub status: RunStatus,
    pub catalog_id: String,
    /// The states tree the catalog came from (a git commit, or a content hash).
    #[serde(default)]
    pub tree_id: String,
    pub mode: Mode,
    pub counts: Counts,
    pub seconds: f64,
    /// As JSON, one compact line per resource (see [`resource_lines`]).
    #[serde(serialize_with = "resource_lines")]
    pub resources: Vec<ResourceReport>,
    /// Resources whose refresh was due but did not happen (they failed or
    /// were skipped): the next run refreshes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed_refresh: Vec<ResourceId>,
    /// The run was stopped before every resource started (SIGTERM): the
    /// resources it did not start are skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Why the catalog did not compile (diagnostics as JSON, located).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<serde_json::Value>,
    /// Why the run was refused, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The pull before the run (agents that follow a git repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullInfo>,
}

impl Report {
    pub fn new(
        catalog: &Catalog,
        mode: Mode,
        resources: Vec<ResourceReport>,
        seconds: f64,
    ) -> Self {
        let mut counts = Counts::default();
        for r in &resources {
            match r.outcome {
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::Changed => counts.changed += 1,
                Outcome::WouldChange => counts.would_change += 1,
                Outcome::Failed => counts.failed += 1,
                Outcome::Skipped => counts.skipped += 1,
            }
        }
        let status = if counts.failed == 0 && counts.skipped == 0 {
            RunStatus::Converged
        } else {
            RunStatus::Failed
        };
        Report {
            host: catalog.host.clone(),
            status,
            catalog_id: catalog.id.0.clone(),
            tree_id: String::new(),
            mode,
            counts,
            seconds,
            resources,
            owed_refresh: Vec::new(),
            stopped: false,
            diagnostics: Vec::new(),
            reason: None,
            pull: None,
        }
    }

    /// The report of a run whose catalog did not compile (or that was
    /// refused): no resources, nothing applied.
    pub fn not_applied(host: &str, mode: Mode, status: RunStatus) -> Self {
        Report {
            host: host.to_string(),
            status,
            catalog_id: String::new(),
            tree_id: String::new(),
            mode,
            counts: Counts::default(),
            seconds: 0.0,
            resources: Vec::new(),
            owed_refresh: Vec::new(),
            stopped: false,
            diagnostics: Vec::new(),
            reason: None,
            pull: None,
        }
    }

    /// Converged: compiled, and nothing failed or was skipped.
    pub fn ok(&self) -> bool {
        self.status == RunStatus::Converged
    }

    /// The resources this run changed (apply) or would change (dry run).
    pub fn changed_ids(&self) -> Vec<&ResourceId> {
        self.resources
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Changed | Outcome::WouldChange))
            .map(|r| &r.id)
            .collect()
    }

    /// The report for people: changed, failed and skipped resources with
    /// their changes (unified diffs for content), then a summary line.
    pub fn to_text(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let verb = match self.mode {
            Mode::DryRun => "dry run",
            Mode::Apply => "apply",
        };
        let _ = writeln!(
            out,
            "{}",
            paint(
                "1",
                &format!(
                    "{verb}: {} (catalog {}, {})",
                    self.host,
                    &self.catalog_id[..12.min(self.catalog_id.len())],
                    crate::diag::plural(self.resources.len(), "resource")
                )
            )
        );
        if let Some(p) = &self.pull {
            let code = match p.verdict.as_str() {
                "fresh" | "unchanged" => "32",
                _ => "31",
            };
            let _ = writeln!(out, "{} {}", paint(code, "pull:"), p.reason);
        }
        for r in &self.resources {
            let condition = r
                .observed
                .as_ref()
                .and_then(|o| o.get(crate::schema::CONDITION_KEY))
                .and_then(|v| v.as_str());
            if let (Outcome::Unchanged, Some(why)) = (r.outcome, condition) {
                // A condition left it alone: say so, in a dry run too.
                let _ = writeln!(
                    out,
                    "{} {}  {}",
                    paint("90", "="),
                    paint("1", &r.id.to_string()),
                    paint("90", why)
                );
                continue;
            }
            let (mark, code) = match r.outcome {
                Outcome::Unchanged => continue,
                Outcome::Changed => ("~", "33"),
                Outcome::WouldChange => ("~", "33"),
                Outcome::Failed => ("!", "31"),
                Outcome::Skipped => ("-", "90"),
            };
            let what = match r.outcome {
                Outcome::Changed => "changed".to_string(),
                Outcome::WouldChange => "would change".to_string(),
                // A dry run's failure is one apply would hit: the same message.
                Outcome::Failed if self.mode == Mode::DryRun => {
                    format!("would fail: {}", r.error.as_deref().unwrap_or(""))
                }
                Outcome::Failed => format!("failed: {}", r.error.as_deref().unwrap_or("")),
                Outcome::Skipped => format!("skipped: {}", r.error.as_deref().unwrap_or("")),
                Outcome::Unchanged => unreachable!(),
            };
            let _ = writeln!(
                out,
                "{} {}  {}",
                paint(code, mark),
                paint("1", &r.id.to_string()),
                paint(code, &what)
            );
            for c in &r.changes {
                let _ = writeln!(out, "    {}: {} → {}", c.attr, short(&c.from), short(&c.to));
                if let Some(d) = &c.diff {
                    for line in d.lines() {
                        let painted = if line.starts_with("+++") || line.starts_with("---") {
                            paint("1", line)
                        } else if line.starts_with('+') {
                            paint("32", line)
                        } else if line.starts_with('-') {
                            paint("31", line)
                        } else if line.starts_with("@@") {
                            paint("36", line)
                        } else {
                            line.to_string()
                        };
                        let _ = writeln!(out, "      {painted}");
                    }
                }
            }
            if !r.refreshed_by.is_empty() {
                let by: Vec<String> = r
                    .refreshed_by
                    .iter()
                    .map(|d| {
                        if *d == crate::plan::earlier_run() {
                            "an earlier run (its refresh never happened)".to_string()
                        } else {
                            d.to_string()
                        }
                    })
                    .collect();
                let verb = if self.mode == Mode::DryRun {
                    "would refresh"
                } else {
                    "refreshed"
                };
                let _ = writeln!(out, "    {verb}: {} changed", by.join(", "));
            }
        }
        let c = &self.counts;
        let changed = match self.mode {
            Mode::Apply => format!("{} changed", c.changed),
            Mode::DryRun => format!("{} would change", c.would_change),
        };
        let mut summary = format!("{changed}, {} unchanged", c.unchanged);
        if c.failed > 0 {
            let verb = match self.mode {
                Mode::Apply => "failed",
                Mode::DryRun => "would fail",
            };
            summary.push_str(&format!(", {} {verb}", c.failed));
        }
        if c.skipped > 0 {
            summary.push_str(&format!(", {} skipped", c.skipped));
        }
        if self.stopped {
            summary.push_str(", stopped by a signal");
        }
        let _ = writeln!(
            out,
            "{} in {:.2} s",
            paint(if self.ok() { "32" } else { "31" }, &summary),
            self.seconds
        );
        out
    }
}

/// A value for a one-line `from → to`: strings bare, long ones cut.
fn short(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::Null => "(absent)".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let first = s.lines().next().unwrap_or("");
    if first.len() > 60 || s.contains('\n') {
        let cut: String = first.chars().take(57).collect();
        format!("{cut}…")
    } else {
        s
    }
}
