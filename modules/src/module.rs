//! The typed module contract, its adapter to the engine, and a kind's entry
//! in the table of kinds.
//!
//! A kind implements [`Module`] with its own `Desired` (deserialised from
//! the catalog's attributes, unknown fields rejected), `Observed` (what is
//! on the host; "absent" is a value, serialisable so it can become facts)
//! and `Change`: a closed enum of the ways the kind can differ, so that a
//! change `apply` does not handle, or a misspelt one, does not compile.
//! `observe` only reads, `diff` is pure, `apply` changes the host.
//!
//! **How typed changes reach `apply`.** The engine is type-erased: it sees
//! a [`Provider`] and generic [`Change`]s (attribute, from, to, diff), which
//! it shows and keeps in reports. [`plan`] — the one diff function of a
//! kind, used by the engine's provider and by host-free plans alike —
//! deserialises `Desired` and `Observed`, calls `Module::diff`, shows each
//! typed change ([`KindChange::show`]) and returns a [`Planned`] holding
//! both the shown changes and the `Vec<M::Change>` itself, boxed as `Any`.
//! The engine hands that `Planned` back to the same provider's `apply`,
//! which downcasts it to `Vec<M::Change>` (a plan of another kind does not
//! downcast and is refused) and calls `Module::apply` with the typed
//! changes. Nothing is parsed back from strings, and what a plan shows is
//! made from exactly what apply acts on.
//!
//! [`KindDef`] is a kind's entry in `crate::KINDS`: its spec, its
//! host-free diff and how to bind it to a host. [`Erased`] is the
//! host-bound [`Provider`]; no module ever learns whether the run is a dry
//! run.

use crate::host::{Host, HostRead};
use cfgm_core::provider::{Planned, RunCtx};
use cfgm_core::schema::{Attrs, KindSpec};
use cfgm_core::{Change, ModuleError, Provider, Resource};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

pub trait Module: Send + Sync + Default + 'static {
    /// The kind's spec: `Desired` takes exactly its attributes.
    const SPEC: &'static KindSpec;
    type Desired: DeserializeOwned;
    type Observed: Serialize + DeserializeOwned;
    /// One unit of drift of this kind: a closed enum, consumed by `apply`
    /// with exhaustive matches.
    type Change: KindChange;

    /// Reads what is on the host. Must not change anything.
    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Self::Desired,
        ctx: &RunCtx,
    ) -> Result<Self::Observed, ModuleError>;

    /// The changes from `o` to `d`. Pure: no host access.
    /// What `observe` would return, answered from a host's facts instead
    /// of the host (`cfgm plan`): the kinds whose state the facts'
    /// inventories hold (packages, services, users, groups) answer for a
    /// resource the last run did not observe. `None` when the facts cannot
    /// tell exactly; the plan then says "unknown". Pure.
    fn observe_facts(
        _name: &str,
        _d: &Self::Desired,
        _facts: &cfgm_core::facts::Facts,
    ) -> Option<Self::Observed> {
        None
    }

    fn diff(name: &str, d: &Self::Desired, o: &Self::Observed) -> Vec<Self::Change>;

    /// Makes the changes `diff` returned.
    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Self::Desired,
        changes: &[Self::Change],
        ctx: &RunCtx,
    ) -> Result<(), ModuleError>;

    /// Reacts to a change of a watched resource.
    /// (Says whether it did anything: a restart, a run. Watchers of this
    /// resource see only that as a change.)
    fn refresh(
        &self,
        _host: &Host,
        _name: &str,
        _d: &Self::Desired,
        _ctx: &RunCtx,
    ) -> Result<bool, ModuleError> {
        Ok(false)
    }

    /// Whether resources of this kind are applied together (see `apply_batch`).
    fn batched(&self) -> bool {
        false
    }

    /// At most how many resources one batch holds (see `Provider::batch_limit`).
    fn batch_limit(&self) -> usize {
        usize::MAX
    }

    /// Applies several resources at once; one result per item, in order.
    fn apply_batch(
        &self,
        host: &Host,
        items: &[BatchItem<'_, Self>],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        items
            .iter()
            .map(|(n, d, c)| self.apply(host, n, d, c, ctx))
            .collect()
    }

    /// Whether a non-empty diff right after apply is a failure.
    fn verify_after_apply(&self, _d: &Self::Desired) -> bool {
        true
    }

    /// Leaves out of `o`, which `diff` found nothing to change in, what
    /// the desired state says anyway (a file's text), and marks it
    /// (`cfgm_core::schema::AS_CATALOG_KEY`): reports and their history
    /// stay small. [`Module::restore_converged`] must put back exactly
    /// what this left out.
    fn trim_converged(_d: &Self::Desired, _o: &mut Self::Observed) {}

    /// Puts back what [`Module::trim_converged`] left out of `o`, from the
    /// desired state of the same catalog. False when nothing was left out.
    fn restore_converged(_d: &Self::Desired, _o: &mut Self::Observed) -> bool {
        false
    }

    /// The host paths a resource of this kind manages or edits (a purging
    /// directory keeps them): its name when the spec says names are paths.
    fn managed_paths(name: &str, _d: &Self::Desired) -> Vec<String> {
        if Self::SPEC.name_is_path {
            vec![name.to_string()]
        } else {
            Vec::new()
        }
    }
}

/// One resource of a batch: its name, what it should be, what to change.
pub type BatchItem<'a, M> = (
    &'a str,
    &'a <M as Module>::Desired,
    &'a [<M as Module>::Change],
);

/// A kind's own change type.
pub trait KindChange: Send + Sync + 'static {
    /// The change as plans, reports and logs show it: the attribute, what
    /// the host has, what the catalog wants, and for text a unified diff.
    fn show(&self) -> Change;
}

/// A kind's entry in the table of kinds (`crate::KINDS`): everything else
/// — the compiler's registry, the providers of a host, the host-free diff
/// of plans — is derived from these.
pub struct KindDef {
    spec: &'static KindSpec,
    plan: fn(&Resource, &Value) -> Result<Planned, ModuleError>,
    bind: fn(&Host) -> Box<dyn Provider>,
    accepts: fn(&Attrs) -> Result<(), ModuleError>,
    from_facts: fn(&Resource, &cfgm_core::facts::Facts) -> Option<Result<Value, ModuleError>>,
    restore: fn(&Resource, &mut Value) -> Result<bool, ModuleError>,
}

impl KindDef {
    /// The entry of the kind `M`.
    pub const fn of<M: Module>() -> KindDef {
        KindDef {
            spec: M::SPEC,
            plan: plan::<M>,
            bind: bind::<M>,
            accepts: accepts::<M>,
            from_facts: from_facts::<M>,
            restore: restore::<M>,
        }
    }

    /// Puts back into an observed state of `r` (as a report keeps it) what
    /// was left out because the catalog says it (see
    /// [`Module::restore_converged`]); `r` must be the resource of the
    /// catalog the report names. False when nothing was left out.
    pub fn restore_converged(
        &self,
        r: &Resource,
        observed: &mut Value,
    ) -> Result<bool, ModuleError> {
        (self.restore)(r, observed)
    }

    /// What `observe` would see, from a host's facts (see
    /// [`Module::observe_facts`]), as the kind serialises it.
    pub fn observe_facts(
        &self,
        r: &Resource,
        facts: &cfgm_core::facts::Facts,
    ) -> Option<Result<Value, ModuleError>> {
        (self.from_facts)(r, facts)
    }

    pub fn spec(&self) -> &'static KindSpec {
        self.spec
    }

    /// The changes that take `observed` (as the kind's observe serialises
    /// it: a report's `observed`, an agent's facts) to the resource's
    /// desired state, without a host: the function the engine's provider
    /// uses too, so a plan and an apply cannot disagree.
    pub fn diff(&self, r: &Resource, observed: &Value) -> Result<Vec<Change>, ModuleError> {
        (self.plan)(r, observed).map(Planned::into_changes)
    }

    /// The kind's provider, bound to a host.
    pub fn provider(&self, host: &Host) -> Box<dyn Provider> {
        (self.bind)(host)
    }

    /// Whether these attributes make the kind's `Desired`.
    pub fn accepts(&self, attrs: &Attrs) -> Result<(), ModuleError> {
        (self.accepts)(attrs)
    }
}

impl std::fmt::Debug for KindDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindDef")
            .field("kind", &self.spec.kind)
            .finish_non_exhaustive()
    }
}

fn desired<M: Module>(attrs: &Attrs) -> Result<M::Desired, ModuleError> {
    // Straight from the borrowed attributes: no copy of the map per call
    // (every resource is deserialised at least twice per run).
    // Generic conditions (`onlyif`/`unless` on a kind that does not
    // declare them) are the provider's, not the kind's.
    let map = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(
        attrs
            .iter()
            .filter(|(k, _)| !cfgm_core::schema::is_guard(M::SPEC, k))
            .map(|(k, v)| (k.as_str(), v)),
    );
    M::Desired::deserialize(map).map_err(|e| ModuleError::Invalid(format!("attributes: {e}")))
}

fn restore<M: Module>(r: &Resource, observed: &mut Value) -> Result<bool, ModuleError> {
    if observed.get(cfgm_core::schema::AS_CATALOG_KEY) != Some(&Value::Bool(true)) {
        return Ok(false);
    }
    let d = desired::<M>(&r.attrs)?;
    let mut o = M::Observed::deserialize(&*observed)
        .map_err(|e| ModuleError::Invalid(format!("observed state: {e}")))?;
    if !M::restore_converged(&d, &mut o) {
        return Ok(false);
    }
    *observed = observed_json(o)?;
    Ok(true)
}

fn accepts<M: Module>(attrs: &Attrs) -> Result<(), ModuleError> {
    desired::<M>(attrs).map(drop)
}

/// The one diff of kind `M`: desired from the resource's attributes,
/// observed from JSON, the typed changes and how they show.
pub fn plan<M: Module>(r: &Resource, observed: &Value) -> Result<Planned, ModuleError> {
    let d = desired::<M>(&r.attrs)?;
    if observed.get(GUARDED).is_some() {
        // A condition left the resource alone: nothing to change.
        return Ok(Planned::none());
    }
    // From the borrowed value: no copy of the observed state.
    let o = M::Observed::deserialize(observed)
        .map_err(|e| ModuleError::Invalid(format!("observed state: {e}")))?;
    Ok(typed_plan::<M>(&r.id.name, &d, &o))
}

/// The kind's diff, and how its changes show.
fn typed_plan<M: Module>(name: &str, d: &M::Desired, o: &M::Observed) -> Planned {
    let typed = M::diff(name, d, o);
    if typed.is_empty() {
        return Planned::none();
    }
    let shown = typed.iter().map(KindChange::show).collect();
    Planned::new(shown, typed)
}

fn from_facts<M: Module>(
    r: &Resource,
    facts: &cfgm_core::facts::Facts,
) -> Option<Result<Value, ModuleError>> {
    if r.attrs
        .keys()
        .any(|k| cfgm_core::schema::is_guard(M::SPEC, k))
    {
        // Facts cannot tell what a condition would say today.
        return None;
    }
    let d = match desired::<M>(&r.attrs) {
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    let o = M::observe_facts(&r.id.name, &d, facts)?;
    Some(observed_json(o))
}

fn bind<M: Module>(host: &Host) -> Box<dyn Provider> {
    Box::new(Erased {
        module: M::default(),
        host: host.clone(),
    })
}

/// The typed changes of a plan `plan::<M>` made.
fn typed<M: Module>(planned: &Planned) -> Result<&[M::Change], ModuleError> {
    match planned.typed::<Vec<M::Change>>() {
        Some(c) => Ok(c),
        None if planned.is_empty() => Ok(&[]),
        None => Err(ModuleError::Other(format!(
            "changes planned by another kind than {}",
            M::SPEC.kind
        ))),
    }
}

/// The key of an observed state that a condition stopped (see
/// `cfgm_core::schema::GUARDS`).
use cfgm_core::schema::CONDITION_KEY as GUARDED;

/// Runs a resource's generic conditions (`onlyif`, then `unless`) on the
/// host: `Some(why)` when they leave it alone. Commands, like the kinds'
/// reads, run in the host root and may not change it by contract.
fn guard<M: Module>(host: &HostRead, r: &Resource) -> Result<Option<String>, ModuleError> {
    for (name, want_success) in [("onlyif", true), ("unless", false)] {
        if !cfgm_core::schema::is_guard(M::SPEC, name) {
            continue;
        }
        let Some(argv) = r.attrs.get(name).and_then(Value::as_array) else {
            continue;
        };
        let argv: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
        if argv.is_empty() {
            continue;
        }
        let out = host.query(&argv)?;
        if out.status.success() != want_success {
            let status = match out.status.code() {
                Some(c) => format!("exited {c}"),
                None => "was killed".to_string(),
            };
            return Ok(Some(format!("{name} {argv:?} {status}: left as it is")));
        }
    }
    Ok(None)
}

/// A [`Module`] bound to a host, as the engine's [`Provider`].
pub struct Erased<M: Module> {
    pub module: M,
    pub host: Host,
}

/// What observing a resource gave: the report's note that a condition
/// left it alone, or its desired and observed state.
enum Seen<M: Module> {
    Guarded(Value),
    State(M::Desired, M::Observed),
}

impl<M: Module> Erased<M> {
    /// The attributes made into a `Desired` once; the resource's condition,
    /// then the kind's `observe`.
    fn observe_typed(&self, r: &Resource, ctx: &RunCtx) -> Result<Seen<M>, ModuleError> {
        let d = desired::<M>(&r.attrs)?;
        if let Some(why) = guard::<M>(self.host.read_only(), r)? {
            return Ok(Seen::Guarded(serde_json::json!({ GUARDED: why })));
        }
        let o = self
            .module
            .observe(self.host.read_only(), &r.id.name, &d, ctx)?;
        Ok(Seen::State(d, o))
    }
}

/// An observed state as reports and facts carry it.
fn observed_json(o: impl Serialize) -> Result<Value, ModuleError> {
    serde_json::to_value(o).map_err(|e| ModuleError::Other(format!("observed state: {e}")))
}

impl<M: Module> Provider for Erased<M> {
    fn spec(&self) -> &'static KindSpec {
        M::SPEC
    }

    fn observe(&self, r: &Resource, ctx: &RunCtx) -> Result<Value, ModuleError> {
        match self.observe_typed(r, ctx)? {
            Seen::Guarded(why) => Ok(why),
            Seen::State(_, o) => observed_json(o),
        }
    }

    fn diff(&self, r: &Resource, observed: &Value) -> Result<Planned, ModuleError> {
        plan::<M>(r, observed)
    }

    fn observe_diff(&self, r: &Resource, ctx: &RunCtx) -> Result<(Value, Planned), ModuleError> {
        // The observed state diffed as the kind returned it: into JSON
        // once, for the report.
        let (d, mut o) = match self.observe_typed(r, ctx)? {
            Seen::Guarded(why) => return Ok((why, Planned::none())),
            Seen::State(d, o) => (d, o),
        };
        let planned = typed_plan::<M>(&r.id.name, &d, &o);
        if ctx.trim_converged && planned.is_empty() {
            M::trim_converged(&d, &mut o);
        }
        Ok((observed_json(o)?, planned))
    }

    fn apply(&self, r: &Resource, planned: &Planned, ctx: &RunCtx) -> Result<(), ModuleError> {
        let d = desired::<M>(&r.attrs)?;
        let changes = typed::<M>(planned)?;
        self.module.apply(&self.host, &r.id.name, &d, changes, ctx)
    }

    fn refresh(&self, r: &Resource, ctx: &RunCtx) -> Result<bool, ModuleError> {
        let d = desired::<M>(&r.attrs)?;
        // Conditions hold for refreshes too (a config test before a
        // reload): one that stops it fails the refresh, which stays owed.
        if let Some(why) = guard::<M>(self.host.read_only(), r)? {
            return Err(ModuleError::Invalid(format!("not refreshed: {why}")));
        }
        self.module.refresh(&self.host, &r.id.name, &d, ctx)
    }

    fn batched(&self) -> bool {
        self.module.batched()
    }

    fn batch_limit(&self) -> usize {
        self.module.batch_limit()
    }

    fn apply_batch(
        &self,
        items: &[(&Resource, &Planned)],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        let ds: Vec<Result<M::Desired, ModuleError>> =
            items.iter().map(|(r, _)| desired::<M>(&r.attrs)).collect();
        let mut results: Vec<Result<(), ModuleError>> = Vec::with_capacity(items.len());
        let mut ok_items: Vec<BatchItem<'_, M>> = Vec::new();
        let mut slots = Vec::new();
        for (i, ((r, p), d)) in items.iter().zip(&ds).enumerate() {
            match d.as_ref().map_err(|e| ModuleError::Invalid(e.to_string())) {
                Ok(d) => match typed::<M>(p) {
                    Ok(c) => {
                        ok_items.push((r.id.name.as_str(), d, c));
                        slots.push(i);
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(e)),
                },
                Err(e) => results.push(Err(e)),
            }
        }
        let out = self.module.apply_batch(&self.host, &ok_items, ctx);
        for (slot, r) in slots.into_iter().zip(out) {
            results[slot] = r;
        }
        results
    }

    fn verify_after_apply(&self, r: &Resource) -> bool {
        desired::<M>(&r.attrs)
            .map(|d| self.module.verify_after_apply(&d))
            .unwrap_or(true)
    }

    fn managed_paths(&self, r: &Resource) -> Vec<String> {
        match desired::<M>(&r.attrs) {
            Ok(d) => M::managed_paths(&r.id.name, &d),
            // Attributes that do not make a `Desired` fail the resource;
            // its name still counts, when names are paths.
            Err(_) if M::SPEC.name_is_path => vec![r.id.name.clone()],
            Err(_) => Vec::new(),
        }
    }
}

/// A short, secret-free summary of content: size and hash.
pub fn content_summary(bytes: usize, hash: &str) -> String {
    format!("{bytes} bytes, blake3 {}", &hash[..12.min(hash.len())])
}

/// A unified diff of two texts, labelled with the path, like `git diff`.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}
