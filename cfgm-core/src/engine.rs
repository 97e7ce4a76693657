//! The converge engine: the one path from a catalog to a converged host.
//!
//! For each resource in catalog order: observe → diff → (a dry run stops
//! here) → apply → observe again; a resource whose diff is still non-empty
//! after apply has failed ("did not converge"). Resources whose
//! dependencies are done run in waves: the independent resources of a wave
//! run in parallel (bounded), the resources of a batched kind (packages) go
//! to their provider together, as one transaction, and one batch at a time.
//! A failed resource skips everything that depends on it, and nothing else.
//! `watch` refreshes the watcher once per run when anything it watches
//! changed. A panic in a provider fails that resource only.
//!
//! The engine knows no resource kind and makes no OS call: it drives the
//! [`Provider`]s it is handed (from `cfgm-modules`). A dry run goes through
//! the same code as an apply and stops before `apply`/`refresh`, so the plan
//! shows exactly what apply does; providers cannot tell the modes apart.

use crate::catalog::{Catalog, DepKind, Resource, ResourceId};
use crate::report::{Outcome, Report, ResourceReport};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

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

/// Why a provider call failed. Messages are lower case and say what was
/// being done; the engine prefixes the resource (`file[/etc/motd]: …`).
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` failed ({status}): {stderr}")]
    Command {
        argv: String,
        status: String,
        stderr: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("did not converge: still differs in {0}")]
    DidNotConverge(String),
    #[error("{0}")]
    Other(String),
}

/// Facts about the run that providers may need: the catalog-wide view.
#[derive(Debug, Default)]
pub struct RunCtx {
    /// Names of every path resource (file, directory, symlink) in the catalog,
    /// so a purging directory keeps what the catalog manages.
    pub managed_paths: BTreeSet<String>,
}

/// A resource kind's behaviour, as the engine sees it (type-erased; see the
/// typed `Module` trait in cfgm-modules).
pub trait Provider: Send + Sync {
    /// Reads the resource's current state. Must not change the host.
    /// "Absent" is a state, not an error.
    fn observe(&self, r: &Resource, ctx: &RunCtx) -> Result<Value, ModuleError>;
    /// The changes that take `observed` to the resource's desired state.
    /// Pure: no host access (plans run it offline from facts).
    fn diff(&self, r: &Resource, observed: &Value) -> Result<Vec<Change>, ModuleError>;
    /// Makes the changes. Called only with the non-empty result of `diff`.
    fn apply(&self, r: &Resource, changes: &[Change], ctx: &RunCtx) -> Result<(), ModuleError>;
    /// Reacts to a change of a watched resource (restart, rerun); says
    /// whether it did anything. Only then is the resource "changed" (and
    /// its own watchers refreshed).
    fn refresh(&self, _r: &Resource, _ctx: &RunCtx) -> Result<bool, ModuleError> {
        Ok(false)
    }
    /// Resources of a batched kind are applied together by `apply_batch`,
    /// one batch at a time (e.g. one apt transaction for all packages).
    fn batched(&self) -> bool {
        false
    }
    /// Applies several resources at once; one result per item, in order.
    fn apply_batch(
        &self,
        items: &[(&Resource, &[Change])],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        items.iter().map(|(r, c)| self.apply(r, c, ctx)).collect()
    }
    /// Whether a non-empty diff right after apply is a failure. A command
    /// guarded by `onlyif` still "wants" to run after running.
    fn verify_after_apply(&self, _r: &Resource) -> bool {
        true
    }
}

/// The providers of every kind, by kind name.
pub type Providers = BTreeMap<&'static str, Box<dyn Provider>>;

/// Dry run or apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DryRun,
    Apply,
}

/// Where refresh debts are kept durably (the agent's state directory).
///
/// A refresh becomes due when a watched resource changes; if the run dies
/// between that change and the refresh, the next run would see the watched
/// resource converged and never refresh. So the engine records the debt
/// *before* it applies a change that makes it due, and clears it only once
/// the refresh has happened: a killed run never loses a refresh (it may,
/// at worst, repeat one).
pub trait DebtLedger: Send + Sync {
    /// Records, durably, that these resources owe a refresh. Called before
    /// the change that makes it due; an error stops that change.
    fn owe(&self, ids: &[ResourceId]) -> Result<(), String>;
    /// The refresh of `id` happened (it was run and did not fail).
    fn paid(&self, id: &ResourceId);
}

/// Engine settings.
#[derive(Clone)]
pub struct Options {
    pub mode: Mode,
    /// How many independent resources run at once.
    pub parallel: usize,
    /// Resources that still owe a refresh from an earlier run: a watched
    /// resource changed then, but the refresh never happened (the watcher
    /// failed or was skipped, or the run was killed). They refresh now.
    pub owed_refresh: BTreeSet<ResourceId>,
    /// Where debts are recorded as they arise (apply only); without one,
    /// they are only in the report, at the end of the run.
    pub ledger: Option<Arc<dyn DebtLedger>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mode", &self.mode)
            .field("parallel", &self.parallel)
            .field("owed_refresh", &self.owed_refresh)
            .field("ledger", &self.ledger.is_some())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Apply,
            parallel: 4,
            owed_refresh: BTreeSet::new(),
            ledger: None,
        }
    }
}

/// The stand-in cause of a refresh owed by an earlier run (in `refreshed_by`).
pub fn earlier_run() -> ResourceId {
    ResourceId::new("earlier-run", "refresh")
}

/// The state of one resource during a run.
#[derive(Clone, Debug)]
enum Done {
    /// Converged; `changed` says whether this run changed it (or would).
    Ok {
        changed: bool,
    },
    Failed,
    Skipped,
}

/// Converges (or, in a dry run, plans) a catalog.
pub fn run(catalog: &Catalog, providers: &Providers, opts: &Options) -> Report {
    let t0 = Instant::now();
    let n = catalog.resources.len();
    let index: BTreeMap<&ResourceId, usize> = catalog
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.id, i))
        .collect();
    let ctx = RunCtx {
        managed_paths: catalog
            .resources
            .iter()
            .filter(|r| matches!(r.id.kind.as_str(), "file" | "directory" | "symlink"))
            .map(|r| r.id.name.clone())
            .collect(),
    };
    let mut done: Vec<Option<Done>> = vec![None; n];
    let mut reports: Vec<Option<ResourceReport>> = vec![None; n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.parallel.max(1))
        .build()
        .ok();
    // Kahn's bookkeeping: how many dependencies each resource still waits
    // for, and who waits for it. (Dependencies outside the catalog do not
    // hold anything back.)
    let mut waiting: Vec<usize> = vec![0; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    // Who watches each resource: their refresh debt is recorded before it changes.
    let mut watchers: Vec<Vec<ResourceId>> = vec![Vec::new(); n];
    for (i, r) in catalog.resources.iter().enumerate() {
        for (d, kind) in &r.deps {
            if let Some(&j) = index.get(d) {
                waiting[i] += 1;
                dependents[j].push(i);
                if *kind == DepKind::Watch {
                    watchers[j].push(r.id.clone());
                }
            }
        }
    }
    let turn = Turn {
        ctx: &ctx,
        mode: opts.mode,
        ledger: match opts.mode {
            Mode::Apply => opts.ledger.as_deref(),
            Mode::DryRun => None,
        },
        debts: Default::default(),
    };
    let mut next: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    loop {
        // A wave: everything whose dependencies are all done, in catalog order.
        let mut ready = std::mem::take(&mut next);
        ready.sort_unstable();
        if ready.is_empty() {
            // Only a hand-made catalog with a cycle gets here with work
            // left (a compiled one is a DAG): fail the rest, never loop.
            for i in 0..n {
                if done[i].is_none() {
                    done[i] = Some(Done::Failed);
                    reports[i] = Some(ResourceReport::failed(
                        &catalog.resources[i],
                        "dependency cycle".into(),
                        0.0,
                    ));
                }
            }
            break;
        }
        // Skip what depends on a failure; batch the batched kinds.
        let mut singles = Vec::new();
        let mut batches: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &ready {
            let r = &catalog.resources[i];
            let failed_dep = r.deps.keys().find(|d| {
                index
                    .get(d)
                    .is_some_and(|&j| matches!(done[j], Some(Done::Failed) | Some(Done::Skipped)))
            });
            if let Some(d) = failed_dep {
                let why = match done[index[d]] {
                    Some(Done::Failed) => "failed",
                    _ => "was skipped",
                };
                done[i] = Some(Done::Skipped);
                reports[i] = Some(ResourceReport::skipped(
                    r,
                    format!("requires {d}, which {why}"),
                ));
                continue;
            }
            if let Some(e) = &r.error {
                // Compiled with an error (a file template that did not render).
                done[i] = Some(Done::Failed);
                reports[i] = Some(ResourceReport::failed(r, e.clone(), 0.0));
                continue;
            }
            match providers.get(r.id.kind.as_str()) {
                Some(p) if p.batched() => batches.entry(r.id.kind.as_str()).or_default().push(i),
                _ => singles.push(i),
            }
        }
        let changed_in_run = |done: &Vec<Option<Done>>, id: &ResourceId| {
            index
                .get(id)
                .is_some_and(|&j| matches!(done[j], Some(Done::Ok { changed: true })))
        };
        // Which ready resources must refresh (a watched resource changed).
        let refresh_due: BTreeMap<usize, Vec<ResourceId>> = ready
            .iter()
            .filter_map(|&i| {
                let r = &catalog.resources[i];
                let mut changed: Vec<ResourceId> = r
                    .deps
                    .iter()
                    .filter(|(d, k)| **k == DepKind::Watch && changed_in_run(&done, d))
                    .map(|(d, _)| d.clone())
                    .collect();
                if opts.owed_refresh.contains(&r.id) {
                    changed.push(earlier_run());
                }
                (!changed.is_empty()).then_some((i, changed))
            })
            .collect();
        // Batched kinds: one batch at a time, on this thread.
        for (kind, items) in &batches {
            let p = &providers[kind];
            let results =
                converge_batch(catalog, p.as_ref(), items, &turn, &refresh_due, &watchers);
            for (i, (d, rep)) in items.iter().zip(results) {
                done[*i] = Some(d);
                reports[*i] = Some(rep);
            }
        }
        // Everything else in parallel.
        let work = |&i: &usize| {
            let r = &catalog.resources[i];
            let refresh = refresh_due.get(&i).cloned().unwrap_or_default();
            match providers.get(r.id.kind.as_str()) {
                Some(p) => converge_one(r, p.as_ref(), &turn, &refresh, &watchers[i]),
                None => (
                    Done::Failed,
                    ResourceReport::failed(r, format!("no provider for kind `{}`", r.id.kind), 0.0),
                ),
            }
        };
        let results: Vec<(Done, ResourceReport)> = match &pool {
            Some(pool) if singles.len() > 1 => pool.install(|| {
                use rayon::prelude::*;
                singles.par_iter().map(work).collect()
            }),
            _ => singles.iter().map(work).collect(),
        };
        for (i, (d, rep)) in singles.iter().zip(results) {
            done[*i] = Some(d);
            reports[*i] = Some(rep);
        }
        for &i in &ready {
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    next.push(j);
                }
            }
        }
    }
    let mut report = Report::new(
        catalog,
        opts.mode,
        reports
            .into_iter()
            .map(|r| r.expect("every resource is reported"))
            .collect(),
        t0.elapsed().as_secs_f64(),
    );
    report.owed_refresh = match opts.mode {
        // What was owed (by earlier runs, of resources still in the
        // catalog) or became owed in this run, less what was refreshed.
        Mode::Apply => {
            let (incurred, paid) = turn.debts.into_inner().expect("debts");
            opts.owed_refresh
                .iter()
                .filter(|id| index.contains_key(id))
                .chain(incurred.iter())
                .filter(|id| !paid.contains(id))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        }
        // A dry run changes nothing, so it leaves every debt as it was.
        Mode::DryRun => opts.owed_refresh.iter().cloned().collect(),
    };
    report
}

/// What every resource of a run shares: the run's view, its mode, and where
/// refresh debts go (apply only).
struct Turn<'a> {
    ctx: &'a RunCtx,
    mode: Mode,
    ledger: Option<&'a dyn DebtLedger>,
    /// Refresh debts this run incurred, and the refreshes it made.
    debts: std::sync::Mutex<(BTreeSet<ResourceId>, BTreeSet<ResourceId>)>,
}

impl Turn<'_> {
    /// Records the debts a change is about to make due (see [`DebtLedger`]).
    fn owe(&self, watchers: &[ResourceId]) -> Result<(), ModuleError> {
        if watchers.is_empty() {
            return Ok(());
        }
        if let Some(l) = self.ledger {
            l.owe(watchers).map_err(|e| {
                ModuleError::Other(format!("cannot record the refresh it makes due: {e}"))
            })?;
        }
        let mut d = self.debts.lock().expect("debts");
        d.0.extend(watchers.iter().cloned());
        Ok(())
    }

    /// A refresh of `id` happened.
    fn paid(&self, id: &ResourceId) {
        if let Some(l) = self.ledger {
            l.paid(id);
        }
        self.debts.lock().expect("debts").1.insert(id.clone());
    }
}

/// Runs a provider call, turning a panic into an error of this resource.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, ModuleError>) -> Result<T, ModuleError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ModuleError::Other(format!("{what} panicked: {msg}")))
        }
    }
}

fn plan_one(r: &Resource, p: &dyn Provider, ctx: &RunCtx) -> Result<Vec<Change>, ModuleError> {
    let observed = guarded("observe", || p.observe(r, ctx))?;
    guarded("diff", || p.diff(r, &observed))
}

/// After apply: observe again; what still differs is a failure.
fn verify(r: &Resource, p: &dyn Provider, ctx: &RunCtx) -> Result<(), ModuleError> {
    if !p.verify_after_apply(r) {
        return Ok(());
    }
    let left = plan_one(r, p, ctx)?;
    if left.is_empty() {
        Ok(())
    } else {
        Err(ModuleError::DidNotConverge(
            left.iter()
                .map(|c| c.attr.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }
}

fn converge_one(
    r: &Resource,
    p: &dyn Provider,
    turn: &Turn,
    refresh: &[ResourceId],
    watchers: &[ResourceId],
) -> (Done, ResourceReport) {
    let t = Instant::now();
    let secs = |t: Instant| t.elapsed().as_secs_f64();
    let changes = match plan_one(r, p, turn.ctx) {
        Ok(c) => c,
        Err(e) => {
            return (
                Done::Failed,
                ResourceReport::failed(r, e.to_string(), secs(t)),
            )
        }
    };
    if turn.mode == Mode::Apply && !changes.is_empty() {
        let applied = turn
            .owe(watchers)
            .and_then(|_| guarded("apply", || p.apply(r, &changes, turn.ctx)))
            .and_then(|_| verify(r, p, turn.ctx));
        if let Err(e) = applied {
            let mut rep = ResourceReport::failed(r, e.to_string(), secs(t));
            rep.changes = changes;
            return (Done::Failed, rep);
        }
    }
    finish(r, p, turn, changes, refresh, t)
}

fn finish(
    r: &Resource,
    p: &dyn Provider,
    turn: &Turn,
    changes: Vec<Change>,
    refresh: &[ResourceId],
    t: Instant,
) -> (Done, ResourceReport) {
    let mut refreshed = Vec::new();
    if !refresh.is_empty() {
        // A dry run cannot ask; it predicts that the refresh acts.
        let acted = match turn.mode {
            Mode::DryRun => true,
            Mode::Apply => match guarded("refresh", || p.refresh(r, turn.ctx)) {
                Ok(acted) => {
                    turn.paid(&r.id);
                    acted
                }
                Err(e) => {
                    let mut rep = ResourceReport::failed(
                        r,
                        format!("refresh: {e}"),
                        t.elapsed().as_secs_f64(),
                    );
                    rep.changes = changes;
                    return (Done::Failed, rep);
                }
            },
        };
        if acted {
            refreshed = refresh.to_vec();
        }
    }
    let changed = !changes.is_empty() || !refreshed.is_empty();
    let outcome = match (changed, turn.mode) {
        (false, _) => Outcome::Unchanged,
        (true, Mode::Apply) => Outcome::Changed,
        (true, Mode::DryRun) => Outcome::WouldChange,
    };
    let rep = ResourceReport {
        id: r.id.clone(),
        outcome,
        changes,
        refreshed_by: refreshed,
        error: None,
        seconds: t.elapsed().as_secs_f64(),
    };
    (Done::Ok { changed }, rep)
}

fn converge_batch(
    catalog: &Catalog,
    p: &dyn Provider,
    items: &[usize],
    turn: &Turn,
    refresh_due: &BTreeMap<usize, Vec<ResourceId>>,
    watchers: &[Vec<ResourceId>],
) -> Vec<(Done, ResourceReport)> {
    let (ctx, mode) = (turn.ctx, turn.mode);
    let t = Instant::now();
    let plans: Vec<Result<Vec<Change>, ModuleError>> = items
        .iter()
        .map(|&i| plan_one(&catalog.resources[i], p, ctx))
        .collect();
    let mut out: Vec<Option<(Done, ResourceReport)>> = vec![None; items.len()];
    let mut to_apply: Vec<(usize, Vec<Change>)> = Vec::new();
    for (k, plan) in plans.into_iter().enumerate() {
        let r = &catalog.resources[items[k]];
        match plan {
            Err(e) => out[k] = Some((Done::Failed, ResourceReport::failed(r, e.to_string(), 0.0))),
            Ok(c) if c.is_empty() || mode == Mode::DryRun => {
                let refresh = refresh_due.get(&items[k]).cloned().unwrap_or_default();
                out[k] = Some(finish(r, p, turn, c, &refresh, t));
            }
            Ok(c) => to_apply.push((k, c)),
        }
    }
    // Debts first: every watcher of what the batch changes.
    let owed: Vec<ResourceId> = to_apply
        .iter()
        .flat_map(|(k, _)| watchers[items[*k]].iter().cloned())
        .collect();
    if let Err(e) = turn.owe(&owed) {
        for (k, changes) in to_apply.drain(..) {
            let mut rep = ResourceReport::failed(&catalog.resources[items[k]], e.to_string(), 0.0);
            rep.changes = changes;
            out[k] = Some((Done::Failed, rep));
        }
    }
    if !to_apply.is_empty() {
        let batch: Vec<(&Resource, &[Change])> = to_apply
            .iter()
            .map(|(k, c)| (&catalog.resources[items[*k]], c.as_slice()))
            .collect();
        let results = match catch_unwind(AssertUnwindSafe(|| p.apply_batch(&batch, ctx))) {
            Ok(r) if r.len() == batch.len() => r,
            Ok(_) => batch
                .iter()
                .map(|_| {
                    Err(ModuleError::Other(
                        "provider returned a wrong number of results".into(),
                    ))
                })
                .collect(),
            Err(_) => batch
                .iter()
                .map(|_| Err(ModuleError::Other("apply panicked".into())))
                .collect(),
        };
        for ((k, changes), res) in to_apply.into_iter().zip(results) {
            let r = &catalog.resources[items[k]];
            let res = res.and_then(|_| verify(r, p, ctx));
            out[k] = Some(match res {
                Ok(()) => {
                    let refresh = refresh_due.get(&items[k]).cloned().unwrap_or_default();
                    finish(r, p, turn, changes, &refresh, t)
                }
                Err(e) => {
                    let mut rep =
                        ResourceReport::failed(r, e.to_string(), t.elapsed().as_secs_f64());
                    rep.changes = changes;
                    (Done::Failed, rep)
                }
            });
        }
    }
    out.into_iter()
        .map(|o| o.expect("every batch item has an outcome"))
        .collect()
}
