//! What the engine needs of a resource kind: the [`Provider`] contract,
//! the errors providers return, and the run-wide view they may consult.
//!
//! Providers are built by `cfgm-modules` from typed modules and bound to a
//! host; the core only calls them. Nothing here touches a host itself.

use crate::catalog::Resource;
use crate::plan::Change;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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

impl crate::plan::Differ for Providers {
    fn diff(&self, r: &Resource, observed: &Value) -> Option<Result<Vec<Change>, ModuleError>> {
        self.get(r.id.kind.as_str()).map(|p| p.diff(r, observed))
    }
}
