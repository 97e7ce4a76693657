//! The report of a converge run (or a dry run): per resource, what happened
//! and what changed; per run, the catalog, counts and time.
//!
//! A report is data: it serialises to JSON for machines (and becomes the
//! host's next facts), and renders for people like `git diff` — a line per
//! changed resource, attribute `from → to`, unified diffs for content,
//! colour on a terminal. It never holds a secret: providers report hashes.

use crate::catalog::{Catalog, Resource, ResourceId};
use crate::engine::{Change, Mode};
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

/// One run on one host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub host: String,
    pub catalog_id: String,
    /// The states tree the catalog came from (a git commit, or a content hash).
    #[serde(default)]
    pub tree_id: String,
    pub mode: Mode,
    pub counts: Counts,
    pub seconds: f64,
    pub resources: Vec<ResourceReport>,
    /// Resources whose refresh was due but did not happen (they failed or
    /// were skipped): the next run refreshes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed_refresh: Vec<ResourceId>,
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
        Report {
            host: catalog.host.clone(),
            catalog_id: catalog.id.0.clone(),
            tree_id: String::new(),
            mode,
            counts,
            seconds,
            resources,
            owed_refresh: Vec::new(),
        }
    }

    /// Converged: nothing failed or was skipped.
    pub fn ok(&self) -> bool {
        self.counts.failed == 0 && self.counts.skipped == 0
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
                    "{verb}: {} (catalog {}, {} resources)",
                    self.host,
                    &self.catalog_id[..12.min(self.catalog_id.len())],
                    self.resources.len()
                )
            )
        );
        for r in &self.resources {
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
                        if *d == crate::engine::earlier_run() {
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
            summary.push_str(&format!(", {} failed", c.failed));
        }
        if c.skipped > 0 {
            summary.push_str(&format!(", {} skipped", c.skipped));
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
