//! The converge engine: the one path from a catalog to a converged host.
//!
//! For each resource in catalog order: observe → diff → (a dry run stops
//! here) → apply → observe again; a resource whose diff is still non-empty
//! after apply has failed ("did not converge"). Resources whose
//! dependencies are done run in waves: the independent resources of a wave
//! run in parallel (bounded), the resources of a batched kind (packages:
//! one apt transaction; files: one durability barrier) are observed in
//! parallel and go to their provider together, one batch at a time.
//! A failed resource skips everything that depends on it, and nothing else.
//! `watch` refreshes the watcher once per run when anything it watches
//! changed. A panic in a provider fails that resource only.
//!
//! The engine knows no resource kind and makes no OS call: it drives the
//! [`Provider`]s it is handed (from `cfgm-modules`), and what it must know
//! of a kind (which host paths its resources manage) it asks the provider,
//! whose answer comes from the kind's spec. A dry run goes through the same
//! code as an apply and stops before `apply`/`refresh`, so the plan shows
//! exactly what apply does; providers cannot tell the modes apart. What a
//! diff found travels to apply as a [`Planned`], unopened: the engine shows
//! its changes, the kind acts on its own typed form of them.

use crate::catalog::{Catalog, DepKind, Resource, ResourceId};
use crate::plan::{self, Change, Mode};
use crate::provider::{ModuleError, Planned, Provider, Providers, RunCtx};
use crate::report::{Outcome, Report, ResourceReport};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a run tells its observers as it goes: the daemon's log lines and
/// metrics, a rollout's live view and progress bars subscribe to these.
#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        catalog: &'a Catalog,
        mode: Mode,
    },
    /// A resource is about to be observed (and, if it differs, applied).
    ResourceStarted {
        id: &'a ResourceId,
    },
    ResourceFinished {
        report: &'a ResourceReport,
    },
    RunFinished {
        report: &'a Report,
    },
}

/// Receives a run's events, from whichever thread converges the resource.
/// Must be quick: the run waits for it.
pub trait EventSink: Send + Sync {
    fn event(&self, e: &Event<'_>);
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
    /// Who hears about the run as it goes.
    pub sink: Option<Arc<dyn EventSink>>,
    /// Set to stop the run cooperatively: no resource starts after it is
    /// set, the running ones finish, and the report says the run stopped.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The report's observed states may leave out what the catalog says
    /// anyway, for resources with nothing to change (see
    /// `schema::AS_CATALOG_KEY`): only when the caller keeps this catalog.
    pub trim_converged: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mode", &self.mode)
            .field("parallel", &self.parallel)
            .field("owed_refresh", &self.owed_refresh)
            .field("ledger", &self.ledger.is_some())
            .field("sink", &self.sink.is_some())
            .field("cancel", &self.cancel)
            .field("trim_converged", &self.trim_converged)
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
            sink: None,
            cancel: None,
            trim_converged: false,
        }
    }
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
    let mut ctx = RunCtx::new(catalog, providers);
    ctx.trim_converged = opts.trim_converged;
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
            if let Some(j) = ctx.position(d) {
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
    let sink = opts.sink.as_deref();
    let emit = |e: Event<'_>| {
        if let Some(s) = sink {
            s.event(&e);
        }
    };
    let stopped = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    };
    emit(Event::RunStarted {
        catalog,
        mode: opts.mode,
    });
    let mut was_stopped = false;
    let mut next: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    loop {
        if stopped() {
            // Cooperative stop: nothing more starts; what ran is reported.
            was_stopped = true;
            for i in 0..n {
                if done[i].is_none() {
                    done[i] = Some(Done::Skipped);
                    let rep = ResourceReport::skipped(
                        &catalog.resources[i],
                        "not started: the run was stopped".into(),
                    );
                    emit(Event::ResourceFinished { report: &rep });
                    reports[i] = Some(rep);
                }
            }
            break;
        }
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
                ctx.position(d)
                    .is_some_and(|j| matches!(done[j], Some(Done::Failed) | Some(Done::Skipped)))
            });
            if let Some(d) = failed_dep {
                let why = match (ctx.position(d).and_then(|j| done[j].as_ref()), opts.mode) {
                    (Some(Done::Failed), Mode::Apply) => "failed",
                    (Some(Done::Failed), Mode::DryRun) => "would fail",
                    (_, Mode::Apply) => "was skipped",
                    (_, Mode::DryRun) => "would be skipped",
                };
                done[i] = Some(Done::Skipped);
                let rep = ResourceReport::skipped(r, format!("requires {d}, which {why}"));
                emit(Event::ResourceFinished { report: &rep });
                reports[i] = Some(rep);
                continue;
            }
            if let Some(e) = &r.error {
                // Compiled with an error (a file template that did not render).
                done[i] = Some(Done::Failed);
                let rep = ResourceReport::failed(r, e.clone(), 0.0);
                emit(Event::ResourceFinished { report: &rep });
                reports[i] = Some(rep);
                continue;
            }
            match providers.get(r.id.kind.as_str()) {
                Some(p) if p.batched() => batches.entry(r.id.kind.as_str()).or_default().push(i),
                _ => singles.push(i),
            }
        }
        let changed_in_run = |id: &ResourceId| {
            ctx.position(id)
                .is_some_and(|j| matches!(done[j], Some(Done::Ok { changed: true })))
        };
        // Which ready resources must refresh (a watched resource changed).
        let refresh_due: BTreeMap<usize, Vec<ResourceId>> = ready
            .iter()
            .filter_map(|&i| {
                let due =
                    plan::refresh_due(&catalog.resources[i], changed_in_run, &opts.owed_refresh);
                (!due.is_empty()).then_some((i, due))
            })
            .collect();
        // Batched kinds: one batch at a time, on this thread. Whole
        // transactions (packages) first; then kinds whose batches are
        // bounded (files), which come after them as they did when each
        // file went alone.
        let mut kinds: Vec<(&&str, &Vec<usize>)> = batches.iter().collect();
        kinds.sort_by_key(|(kind, _)| (std::cmp::Reverse(providers[**kind].batch_limit()), **kind));
        let chunks: Vec<(&str, &[usize])> = kinds
            .into_iter()
            .flat_map(|(kind, items)| {
                let limit = providers[*kind].batch_limit().max(1);
                items.chunks(limit).map(move |c| (*kind, c))
            })
            .collect();
        for (kind, items) in chunks {
            if stopped() {
                for &i in items {
                    done[i] = Some(Done::Skipped);
                    let rep = ResourceReport::skipped(
                        &catalog.resources[i],
                        "not started: the run was stopped".into(),
                    );
                    emit(Event::ResourceFinished { report: &rep });
                    reports[i] = Some(rep);
                }
                continue;
            }
            for &i in items {
                emit(Event::ResourceStarted {
                    id: &catalog.resources[i].id,
                });
            }
            let p = &providers[kind];
            let results = converge_batch(
                catalog,
                p.as_ref(),
                items,
                &turn,
                &refresh_due,
                &watchers,
                pool.as_ref(),
            );
            for (i, (d, rep)) in items.iter().zip(results) {
                emit(Event::ResourceFinished { report: &rep });
                done[*i] = Some(d);
                reports[*i] = Some(rep);
            }
        }
        // Everything else in parallel.
        let work = |&i: &usize| {
            let r = &catalog.resources[i];
            let refresh = refresh_due.get(&i).cloned().unwrap_or_default();
            let out = if stopped() {
                (
                    Done::Skipped,
                    ResourceReport::skipped(r, "not started: the run was stopped".into()),
                )
            } else {
                emit(Event::ResourceStarted { id: &r.id });
                match providers.get(r.id.kind.as_str()) {
                    Some(p) => converge_one(r, p.as_ref(), &turn, &refresh, &watchers[i]),
                    None => (
                        Done::Failed,
                        ResourceReport::failed(
                            r,
                            format!("no provider for kind `{}`", r.id.kind),
                            0.0,
                        ),
                    ),
                }
            };
            emit(Event::ResourceFinished { report: &out.1 });
            out
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
                .filter(|id| ctx.position(id).is_some())
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
    report.stopped = was_stopped || stopped();
    if report.stopped {
        report.status = crate::report::RunStatus::Stopped;
    }
    emit(Event::RunFinished { report: &report });
    report
}

/// What every resource of a run shares: the run's view, its mode, and where
/// refresh debts go (apply only).
struct Turn<'a> {
    ctx: &'a RunCtx<'a>,
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

/// Observes a resource and diffs it: what is there, and what must change.
fn plan_one(r: &Resource, p: &dyn Provider, ctx: &RunCtx) -> Result<(Value, Planned), ModuleError> {
    guarded("observe", || p.observe_diff(r, ctx))
}

/// After apply: observe again; what still differs is a failure. Returns
/// what was observed then (`None` when the kind does not verify).
fn verify(r: &Resource, p: &dyn Provider, ctx: &RunCtx) -> Result<Option<Value>, ModuleError> {
    if !p.verify_after_apply(r) {
        return Ok(None);
    }
    let (observed, left) = plan_one(r, p, ctx)?;
    if left.is_empty() {
        Ok(Some(observed))
    } else {
        Err(ModuleError::DidNotConverge(
            left.changes()
                .iter()
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
    let (mut observed, planned) = match plan_one(r, p, turn.ctx) {
        Ok(c) => c,
        Err(e) => {
            return (
                Done::Failed,
                ResourceReport::failed(r, e.to_string(), secs(t)),
            )
        }
    };
    if turn.mode == Mode::Apply && !planned.is_empty() {
        let applied = turn
            .owe(watchers)
            .and_then(|_| guarded("apply", || p.apply(r, &planned, turn.ctx)))
            .and_then(|_| verify(r, p, turn.ctx));
        match applied {
            Err(e) => {
                let mut rep = ResourceReport::failed(r, e.to_string(), secs(t));
                rep.changes = planned.into_changes();
                rep.observed = Some(r.redact_observed(observed));
                return (Done::Failed, rep);
            }
            Ok(Some(after)) => observed = after,
            Ok(None) => {}
        }
    }
    finish(r, p, turn, (observed, planned.into_changes()), refresh, t)
}

fn finish(
    r: &Resource,
    p: &dyn Provider,
    turn: &Turn,
    (observed, changes): (Value, Vec<Change>),
    refresh: &[ResourceId],
    t: Instant,
) -> (Done, ResourceReport) {
    let observed = Some(r.redact_observed(observed));
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
                    rep.observed = observed;
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
        observed,
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
    pool: Option<&rayon::ThreadPool>,
) -> Vec<(Done, ResourceReport)> {
    let (ctx, mode) = (turn.ctx, turn.mode);
    let t = Instant::now();
    // Observed in parallel (observing changes nothing), applied together.
    let plan = |&i: &usize| plan_one(&catalog.resources[i], p, ctx);
    let plans: Vec<Result<(Value, Planned), ModuleError>> = match pool {
        Some(pool) if items.len() > 1 => pool.install(|| {
            use rayon::prelude::*;
            items.par_iter().map(plan).collect()
        }),
        _ => items.iter().map(plan).collect(),
    };
    let mut out: Vec<Option<(Done, ResourceReport)>> = vec![None; items.len()];
    let mut to_apply: Vec<(usize, Planned)> = Vec::new();
    let mut before: BTreeMap<usize, Value> = BTreeMap::new();
    for (k, plan) in plans.into_iter().enumerate() {
        let r = &catalog.resources[items[k]];
        match plan {
            Err(e) => out[k] = Some((Done::Failed, ResourceReport::failed(r, e.to_string(), 0.0))),
            Ok((o, c)) if c.is_empty() || mode == Mode::DryRun => {
                let refresh = refresh_due.get(&items[k]).cloned().unwrap_or_default();
                out[k] = Some(finish(r, p, turn, (o, c.into_changes()), &refresh, t));
            }
            Ok((o, c)) => {
                before.insert(k, o);
                to_apply.push((k, c));
            }
        }
    }
    // Debts first: every watcher of what the batch changes.
    let owed: Vec<ResourceId> = to_apply
        .iter()
        .flat_map(|(k, _)| watchers[items[*k]].iter().cloned())
        .collect();
    if let Err(e) = turn.owe(&owed) {
        for (k, planned) in to_apply.drain(..) {
            let mut rep = ResourceReport::failed(&catalog.resources[items[k]], e.to_string(), 0.0);
            rep.changes = planned.into_changes();
            out[k] = Some((Done::Failed, rep));
        }
    }
    if !to_apply.is_empty() {
        let batch: Vec<(&Resource, &Planned)> = to_apply
            .iter()
            .map(|(k, c)| (&catalog.resources[items[*k]], c))
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
        // Observed again, in parallel too.
        let check = |(k, res): (&(usize, Planned), Result<(), ModuleError>)| {
            res.and_then(|_| verify(&catalog.resources[items[k.0]], p, ctx))
        };
        let pairs: Vec<_> = to_apply.iter().zip(results).collect();
        let verified: Vec<Result<Option<Value>, ModuleError>> = match pool {
            Some(pool) if pairs.len() > 1 => pool.install(|| {
                use rayon::prelude::*;
                pairs.into_par_iter().map(check).collect()
            }),
            _ => pairs.into_iter().map(check).collect(),
        };
        for ((k, planned), res) in to_apply.into_iter().zip(verified) {
            let changes = planned.into_changes();
            let r = &catalog.resources[items[k]];
            let observed = before.remove(&k).unwrap_or(Value::Null);
            out[k] = Some(match res {
                Ok(after) => {
                    let refresh = refresh_due.get(&items[k]).cloned().unwrap_or_default();
                    let observed = after.unwrap_or(observed);
                    finish(r, p, turn, (observed, changes), &refresh, t)
                }
                Err(e) => {
                    let mut rep =
                        ResourceReport::failed(r, e.to_string(), t.elapsed().as_secs_f64());
                    rep.changes = changes;
                    rep.observed = Some(r.redact_observed(observed));
                    (Done::Failed, rep)
                }
            });
        }
    }
    out.into_iter()
        .map(|o| o.expect("every batch item has an outcome"))
        .collect()
}
