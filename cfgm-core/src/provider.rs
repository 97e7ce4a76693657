//! What the engine needs of a resource kind: the [`Provider`] contract,
//! the errors providers return, the run-wide view they may consult, and
//! [`Planned`], the changes a diff found on their way to apply.
//!
//! Providers are built by `cfgm-modules` from typed modules and bound to a
//! host; the core only calls them. Nothing here touches a host itself, and
//! nothing here names a kind: what the engine must know of one (does its
//! name denote a host path?) it reads from the kind's [`KindSpec`].

use crate::catalog::Resource;
use crate::plan::Change;
use crate::schema::KindSpec;
use serde_json::Value;
use std::any::Any;
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
///
/// Each part is worked out from the catalog the first time a provider asks
/// for it, not before the run: a run in which no resource needs one (every
/// no-op of files) never builds it.
#[derive(Default)]
pub struct RunCtx<'a> {
    /// The catalog and its providers (none in a context made by hand).
    catalog: Option<(&'a crate::Catalog, &'a Providers)>,
    managed_paths: std::sync::OnceLock<BTreeSet<String>>,
    index: std::sync::OnceLock<std::collections::HashMap<&'a crate::ResourceId, usize>>,
    /// An observed state that needs no change may leave out what the
    /// catalog says anyway (see `schema::AS_CATALOG_KEY`): the caller keeps
    /// the catalog to put it back.
    pub trim_converged: bool,
}

impl std::fmt::Debug for RunCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCtx")
            .field("resources", &self.catalog.map(|(c, _)| c.resources.len()))
            .field("trim_converged", &self.trim_converged)
            .finish()
    }
}

/// Every host path these resources manage (see [`Provider::managed_paths`]).
pub fn managed_paths_of<'r>(
    resources: impl IntoIterator<Item = &'r Resource>,
    providers: &Providers,
) -> BTreeSet<String> {
    resources
        .into_iter()
        .flat_map(|r| match providers.get(r.id.kind.as_str()) {
            Some(p) => p.managed_paths(r),
            None => Vec::new(),
        })
        .collect()
}

impl<'a> RunCtx<'a> {
    /// The view of `catalog`, whose resources `providers` converge.
    pub fn new(catalog: &'a crate::Catalog, providers: &'a Providers) -> Self {
        RunCtx {
            catalog: Some((catalog, providers)),
            ..RunCtx::default()
        }
    }

    /// Every host path a resource of the catalog manages (see
    /// [`Provider::managed_paths`]), so a purging directory keeps them.
    pub fn managed_paths(&self) -> &BTreeSet<String> {
        self.managed_paths.get_or_init(|| match self.catalog {
            Some((c, providers)) => managed_paths_of(&c.resources, providers),
            None => BTreeSet::new(),
        })
    }

    /// Where `id` is in the catalog's resources (the run's index of them,
    /// made once).
    pub fn position(&self, id: &crate::ResourceId) -> Option<usize> {
        let (c, _) = self.catalog?;
        let index = self.index.get_or_init(|| {
            c.resources
                .iter()
                .enumerate()
                .map(|(i, r)| (&r.id, i))
                .collect()
        });
        index.get(id).copied()
    }

    fn resource(&self, id: &crate::ResourceId) -> Option<&'a Resource> {
        let (c, _) = self.catalog?;
        self.position(id).map(|i| &c.resources[i])
    }

    /// Whether the catalog declares `kind[name]`: a precondition that a
    /// resource of the same catalog satisfies (the parent directory, the
    /// group, the package that brings a unit) is not reported by a dry run.
    pub fn declares(&self, kind: &str, name: &str) -> bool {
        self.resource(&crate::ResourceId::new(kind, name)).is_some()
    }

    /// Whether `kind[name]` comes after (directly or not, through
    /// requisites and automatic edges) a resource of one of `kinds`:
    /// something that may make what it needs (a package brings a unit, a
    /// user, a file).
    pub fn comes_after(&self, kind: &str, name: &str, kinds: &[&str]) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![crate::ResourceId::new(kind, name)];
        while let Some(id) = todo.pop() {
            let deps = self.resource(&id).map(|r| r.deps.keys());
            for d in deps.into_iter().flatten() {
                if kinds.contains(&d.kind.as_str()) {
                    return true;
                }
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        false
    }
}

/// What a provider's `diff` found, on its way to `apply`: the changes as
/// plans and reports show them, and the same changes in the kind's own
/// closed type, which the core carries without opening.
///
/// The typed form is what the kind's `apply` acts on, so nothing is parsed
/// back from display strings; a `Planned` handed to another kind's provider
/// is refused there (its typed form does not downcast).
pub struct Planned {
    changes: Vec<Change>,
    typed: Box<dyn Any + Send + Sync>,
}

impl Planned {
    /// Changes with their typed form (read back with [`Planned::typed`]).
    pub fn new<T: Any + Send + Sync>(changes: Vec<Change>, typed: T) -> Self {
        Planned {
            changes,
            typed: Box::new(typed),
        }
    }

    /// Nothing to change.
    pub fn none() -> Self {
        Planned::untyped(Vec::new())
    }

    /// Changes without a typed form, for a provider that acts on the shown
    /// ones (or on nothing but the resource, as test doubles do).
    pub fn untyped(changes: Vec<Change>) -> Self {
        // `()` is zero-sized: no allocation for the common empty plan.
        Planned::new(changes, ())
    }

    /// The changes as shown: attribute, from, to, diff.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The typed form, if it is a `T`.
    pub fn typed<T: Any>(&self) -> Option<&T> {
        self.typed.downcast_ref()
    }

    /// The changes as shown, for the report.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

/// A resource kind's behaviour, as the engine sees it (type-erased; see the
/// typed `Module` trait in cfgm-modules).
pub trait Provider: Send + Sync {
    /// The spec of the provider's kind.
    fn spec(&self) -> &'static KindSpec;
    /// Reads the resource's current state. Must not change the host.
    /// "Absent" is a state, not an error.
    fn observe(&self, r: &Resource, ctx: &RunCtx) -> Result<Value, ModuleError>;
    /// The changes that take `observed` to the resource's desired state.
    /// Pure: no host access (plans run it offline from facts).
    fn diff(&self, r: &Resource, observed: &Value) -> Result<Planned, ModuleError>;
    /// `observe`, then `diff` of what it saw: what a run does for every
    /// resource. A provider may do both in one go (no trip of the observed
    /// state through JSON), with the result of the two calls.
    fn observe_diff(&self, r: &Resource, ctx: &RunCtx) -> Result<(Value, Planned), ModuleError> {
        let observed = self.observe(r, ctx)?;
        let planned = self.diff(r, &observed)?;
        Ok((observed, planned))
    }
    /// Makes the changes. Called only with the non-empty result of this
    /// provider's `diff` for `r`.
    fn apply(&self, r: &Resource, planned: &Planned, ctx: &RunCtx) -> Result<(), ModuleError>;
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
    /// At most how many resources go to one `apply_batch` (a run stops
    /// between batches, never inside one: a bound keeps a stop prompt).
    fn batch_limit(&self) -> usize {
        usize::MAX
    }
    /// Applies several resources at once; one result per item, in order.
    fn apply_batch(
        &self,
        items: &[(&Resource, &Planned)],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        items.iter().map(|(r, p)| self.apply(r, p, ctx)).collect()
    }
    /// Whether a non-empty diff right after apply is a failure. A command
    /// guarded by `onlyif` still "wants" to run after running.
    fn verify_after_apply(&self, _r: &Resource) -> bool {
        true
    }
    /// The host paths the resource manages or edits, which a purging
    /// directory must keep: by default its name, when the kind's names are
    /// paths (a kind that edits a file named by an attribute says so).
    fn managed_paths(&self, r: &Resource) -> Vec<String> {
        if self.spec().name_is_path {
            vec![r.id.name.clone()]
        } else {
            Vec::new()
        }
    }
}

/// The providers of every kind, by kind name.
pub type Providers = BTreeMap<&'static str, Box<dyn Provider>>;

impl crate::plan::Differ for Providers {
    fn diff(&self, r: &Resource, observed: &Value) -> Option<Result<Vec<Change>, ModuleError>> {
        self.get(r.id.kind.as_str())
            .map(|p| p.diff(r, observed).map(Planned::into_changes))
    }
}
