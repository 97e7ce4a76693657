//! Planning: what must change for a catalog to hold, from what was observed.
//!
//! This module owns the unit of drift ([`Change`]), the run [`Mode`], and
//! the pure rules a run and an offline plan share: which changes a resource
//! needs given its observed state (through a kind's host-free `diff`), and
//! which refreshes those changes make due (`watch`, plus debts owed by
//! earlier runs). [`plan_catalog`] applies them to a whole catalog at once,
//! from observed states gathered elsewhere (an agent's facts), which is what
//! `cfgm plan` does for thousands of hosts.
//!
//! It knows no host and does no I/O: observing is the engine's business
//! (through providers), and so is applying. The engine calls the same
//! functions one resource at a time as it converges, so a plan and an apply
//! cannot disagree about what "changed" means.

use crate::catalog::{Catalog, DepKind, Resource, ResourceId};
use crate::provider::ModuleError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One unit of drift: an attribute, what the host has, what the catalog wants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub attr: String,
    /// What the host has (`null` when absent). Secrets: a hash.
    pub from: Value,
    /// What the catalog wants. Secrets: a hash.
    pub to: Value,
    /// For content: a unified diff, like `git diff` (never for secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Change {
    pub fn new(attr: impl Into<String>, from: impl Into<Value>, to: impl Into<Value>) -> Self {
        Change {
            attr: attr.into(),
            from: from.into(),
            to: to.into(),
            diff: None,
        }
    }

    pub fn with_diff(mut self, diff: Option<String>) -> Self {
        self.diff = diff;
        self
    }
}

/// Dry run or apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DryRun,
    Apply,
}

/// A kind's host-free diff: the changes that take an observed state to a
/// resource's desired state. `None` when the kind is unknown.
pub trait Differ: Sync {
    fn diff(&self, r: &Resource, observed: &Value) -> Option<Result<Vec<Change>, ModuleError>>;
}

/// The stand-in cause of a refresh owed by an earlier run (in `refreshed_by`).
pub fn earlier_run() -> ResourceId {
    ResourceId::new("earlier-run", "refresh")
}

/// The refreshes due for `r`: every watched resource that changed in this
/// run, and the debt of an earlier run if it owes one.
pub fn refresh_due(
    r: &Resource,
    changed: impl Fn(&ResourceId) -> bool,
    owed: &BTreeSet<ResourceId>,
) -> Vec<ResourceId> {
    let mut due: Vec<ResourceId> = r
        .deps
        .iter()
        .filter(|(d, k)| **k == DepKind::Watch && changed(d))
        .map(|(d, _)| d.clone())
        .collect();
    if owed.contains(&r.id) {
        due.push(earlier_run());
    }
    due
}

/// What a plan says of one resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Verdict {
    /// Observed, and nothing differs.
    Unchanged,
    /// Observed, and these attributes differ.
    Changes { changes: Vec<Change> },
    /// Nothing observed to plan against (e.g. a resource new in this
    /// change): apply will check it.
    Unknown { why: String },
    /// The diff itself failed (an observed state the kind cannot read).
    Error { error: String },
}

/// One resource of a plan: its verdict and the refreshes it would make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourcePlan {
    pub id: ResourceId,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Watched resources whose change would refresh this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refresh: Vec<ResourceId>,
    /// Watched resources that may change (their state is unknown): this
    /// one may refresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refresh_if: Vec<ResourceId>,
}

impl ResourcePlan {
    /// Whether this resource would change (attributes or a refresh).
    pub fn changes(&self) -> bool {
        matches!(self.verdict, Verdict::Changes { .. }) || !self.refresh.is_empty()
    }
}

/// Plans a whole catalog from observed states (by resource), without a
/// host: each resource's diff, then the refreshes those changes make due,
/// in catalog (dependency) order.
pub fn plan_catalog<'v>(
    catalog: &Catalog,
    differ: &dyn Differ,
    observed: impl Fn(&ResourceId) -> Option<&'v Value>,
    owed: &BTreeSet<ResourceId>,
) -> Vec<ResourcePlan> {
    let mut changed: BTreeMap<&ResourceId, bool> = BTreeMap::new();
    let mut unknown: BTreeSet<&ResourceId> = BTreeSet::new();
    let mut out = Vec::with_capacity(catalog.resources.len());
    for r in &catalog.resources {
        let verdict = if let Some(e) = &r.error {
            Verdict::Error { error: e.clone() }
        } else {
            match observed(&r.id) {
                None => Verdict::Unknown {
                    why: "not observed on this host yet (checked on apply)".into(),
                },
                Some(o) => match differ.diff(r, o) {
                    None => Verdict::Error {
                        error: format!("no kind `{}`", r.id.kind),
                    },
                    Some(Err(e)) => Verdict::Error {
                        error: e.to_string(),
                    },
                    Some(Ok(c)) if c.is_empty() => Verdict::Unchanged,
                    Some(Ok(changes)) => Verdict::Changes { changes },
                },
            }
        };
        let refresh = refresh_due(r, |d| changed.get(d).copied().unwrap_or(false), owed);
        let refresh_if: Vec<ResourceId> = r
            .watches()
            .filter(|d| unknown.contains(d))
            .cloned()
            .collect();
        let plan = ResourcePlan {
            id: r.id.clone(),
            verdict,
            refresh,
            refresh_if,
        };
        changed.insert(&r.id, plan.changes());
        if matches!(plan.verdict, Verdict::Unknown { .. }) || !plan.refresh_if.is_empty() {
            unknown.insert(&r.id);
        }
        out.push(plan);
    }
    out
}
