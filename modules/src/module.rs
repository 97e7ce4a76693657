//! The typed module contract and its adapter to the engine.
//!
//! A kind implements [`Module`] with its own `Desired` (deserialised from
//! the catalog's attributes, unknown fields rejected) and `Observed` (what
//! is on the host; "absent" is a value, serialisable so it can become
//! facts). `observe` only reads, `diff` is pure, `apply` changes the host.
//! [`Erased`] turns a `Module` into the engine's type-erased
//! [`Provider`]; no module ever learns whether the run is a dry run.

use crate::host::{Host, HostRead};
use cfgm_core::engine::RunCtx;
use cfgm_core::{Change, ModuleError, Provider, Resource};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

pub trait Module: Send + Sync + 'static {
    type Desired: DeserializeOwned;
    type Observed: Serialize + DeserializeOwned;

    /// Reads what is on the host. Must not change anything.
    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Self::Desired,
        ctx: &RunCtx,
    ) -> Result<Self::Observed, ModuleError>;

    /// The changes from `o` to `d`. Pure: no host access.
    fn diff(name: &str, d: &Self::Desired, o: &Self::Observed) -> Vec<Change>;

    /// Makes the changes `diff` returned.
    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Self::Desired,
        changes: &[Change],
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

    /// Applies several resources at once; one result per item, in order.
    fn apply_batch(
        &self,
        host: &Host,
        items: &[(&str, &Self::Desired, &[Change])],
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
}

/// A [`Module`] bound to a host, as the engine's [`Provider`].
pub struct Erased<M: Module> {
    pub module: M,
    pub host: Host,
}

fn desired<M: Module>(r: &Resource) -> Result<M::Desired, ModuleError> {
    // Straight from the borrowed attributes: no copy of the map per call
    // (every resource is deserialised at least twice per run).
    let map = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(
        r.attrs.iter().map(|(k, v)| (k.as_str(), v)),
    );
    M::Desired::deserialize(map).map_err(|e| ModuleError::Invalid(format!("attributes: {e}")))
}

impl<M: Module> Provider for Erased<M> {
    fn observe(&self, r: &Resource, ctx: &RunCtx) -> Result<Value, ModuleError> {
        let d = desired::<M>(r)?;
        let o = self
            .module
            .observe(self.host.read_only(), &r.id.name, &d, ctx)?;
        serde_json::to_value(o).map_err(|e| ModuleError::Other(format!("observed state: {e}")))
    }

    fn diff(&self, r: &Resource, observed: &Value) -> Result<Vec<Change>, ModuleError> {
        let d = desired::<M>(r)?;
        let o: M::Observed = serde_json::from_value(observed.clone())
            .map_err(|e| ModuleError::Invalid(format!("observed state: {e}")))?;
        Ok(M::diff(&r.id.name, &d, &o))
    }

    fn apply(&self, r: &Resource, changes: &[Change], ctx: &RunCtx) -> Result<(), ModuleError> {
        let d = desired::<M>(r)?;
        self.module.apply(&self.host, &r.id.name, &d, changes, ctx)
    }

    fn refresh(&self, r: &Resource, ctx: &RunCtx) -> Result<bool, ModuleError> {
        let d = desired::<M>(r)?;
        self.module.refresh(&self.host, &r.id.name, &d, ctx)
    }

    fn batched(&self) -> bool {
        self.module.batched()
    }

    fn apply_batch(
        &self,
        items: &[(&Resource, &[Change])],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        let ds: Vec<Result<M::Desired, ModuleError>> =
            items.iter().map(|(r, _)| desired::<M>(r)).collect();
        let mut ok_items = Vec::new();
        let mut slots = Vec::new();
        for (i, (r, c)) in items.iter().enumerate() {
            if let Ok(d) = &ds[i] {
                ok_items.push((r.id.name.as_str(), d, *c));
                slots.push(i);
            }
        }
        let mut results: Vec<Result<(), ModuleError>> = ds
            .iter()
            .map(|d| match d {
                Ok(_) => Ok(()),
                Err(e) => Err(ModuleError::Invalid(e.to_string())),
            })
            .collect();
        let out = self.module.apply_batch(&self.host, &ok_items, ctx);
        for (slot, r) in slots.into_iter().zip(out) {
            results[slot] = r;
        }
        results
    }

    fn verify_after_apply(&self, r: &Resource) -> bool {
        desired::<M>(r)
            .map(|d| self.module.verify_after_apply(&d))
            .unwrap_or(true)
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
