//! cfgm-modules: the resource kinds.
//!
//! One file per kind under `kinds/`, each holding the kind's [`KindSpec`]
//! (the attributes the compiler checks, cross-attribute rules, automatic
//! dependencies) and its behaviour (a [`Module`]: observe, a pure diff into
//! the kind's own closed change type, apply). Every OS call of cfgm lives
//! in this crate; the core sees the kinds only through what the table
//! [`KINDS`] derives: the compiler's [`registry`], a host's [`providers`],
//! and the host-free diff of plans ([`diff`], [`Kinds`]).
//!
//! **Adding a kind is one file and one line:** `kinds/NAME.rs` with its
//! `SPEC`, its `Module` and `pub static KIND: KindDef = KindDef::of::<…>()`,
//! and its name in the [`kinds!`] list below, which declares the module and
//! its entry in [`KINDS`] at once. Tests, counts and docs follow the table.

use cfgm_core::plan::Differ;
use cfgm_core::schema::{parent_dirs, AutoDep, Registry};
use cfgm_core::{Change, KindSpec, ModuleError, Providers, Resource, ResourceId};
use serde_json::Value;

pub mod host;
pub mod module;
pub mod statefile;

pub use host::{Host, HostRead};
pub use module::{BatchItem, Erased, KindChange, KindDef, Module};

/// Declares the kind modules (`kinds::NAME`, in `src/kinds/NAME.rs`) and
/// the table of their entries, [`KINDS`], from one list of names.
macro_rules! kinds {
    ($($kind:ident),+ $(,)?) => {
        /// One module per resource kind.
        pub mod kinds {
            $(pub mod $kind;)+
        }

        /// Every kind cfgm knows, one entry each: the one registration.
        pub static KINDS: &[&KindDef] = &[$(&kinds::$kind::KIND),+];
    };
}

kinds! {
    file,
    directory,
    symlink,
    pkg,
    service,
    user,
    group,
    cmd,
    sysctl,
    line,
    cron,
    pkgrepo,
}

/// The entry of a kind, by name.
pub fn kind(name: &str) -> Option<&'static KindDef> {
    KINDS.iter().copied().find(|k| k.spec().kind == name)
}

/// The providers of every kind, bound to a host.
pub fn providers(host: &Host) -> Providers {
    KINDS
        .iter()
        .map(|k| (k.spec().kind, k.provider(host)))
        .collect()
}

/// Every kind cfgm knows, for the compiler.
pub fn registry() -> Registry {
    KINDS.iter().fold(Registry::new(), |r, k| r.with(k.spec()))
}

/// Every kind's spec, by name, for documentation and tests.
pub fn specs() -> Vec<&'static KindSpec> {
    let r = registry();
    r.names().filter_map(|n| r.get(n)).collect()
}

/// One resource's changes from an observed state (as its kind's observe
/// serialises it: a report's `observed`, an agent's facts), without a
/// host; `None` when no kind has the resource's kind name. The same
/// function the engine's providers diff with, so a plan and an apply
/// cannot disagree.
pub fn diff(r: &Resource, observed: &Value) -> Option<Result<Vec<Change>, ModuleError>> {
    kind(&r.id.kind).map(|k| k.diff(r, observed))
}

/// What `observe` would return for `r`, answered from a host's facts
/// (`None`: the kind is unknown, or the facts cannot tell).
pub fn observe_facts(
    r: &Resource,
    facts: &cfgm_core::facts::Facts,
) -> Option<Result<Value, ModuleError>> {
    kind(&r.id.kind).and_then(|k| k.observe_facts(r, facts))
}

/// Puts back into an observed state of `r`, as a report keeps it, what was
/// left out because `r`'s catalog says it (`cfgm_core::schema::AS_CATALOG_KEY`).
/// `r` must come from the catalog the report names. False when nothing was
/// left out (or the kind is unknown).
pub fn restore_converged(r: &Resource, observed: &mut Value) -> Result<bool, ModuleError> {
    match kind(&r.id.kind) {
        Some(k) => k.restore_converged(r, observed),
        None => Ok(false),
    }
}

/// Every kind's host-free diff, as the planner takes it:
/// `cfgm_core::plan::plan_catalog(&catalog, &cfgm_modules::Kinds, …)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kinds;

impl Differ for Kinds {
    fn diff(&self, r: &Resource, observed: &Value) -> Option<Result<Vec<Change>, ModuleError>> {
        diff(r, observed)
    }
}

/// Automatic dependencies shared by the path kinds: the nearest declared
/// parent directory, and the user and group that own the path.
pub(crate) fn path_auto_deps(name: &str, attrs: &cfgm_core::schema::Attrs) -> Vec<AutoDep> {
    let mut out = vec![AutoDep {
        candidates: parent_dirs(name)
            .into_iter()
            .map(|p| ResourceId::new("directory", p))
            .collect(),
    }];
    if let Some(Value::String(o)) = attrs.get("owner") {
        out.push(AutoDep {
            candidates: vec![ResourceId::new("user", o)],
        });
    }
    if let Some(Value::String(g)) = attrs.get("group") {
        out.push(AutoDep {
            candidates: vec![ResourceId::new("group", g)],
        });
    }
    out
}

/// Kinds whose apply may make what another resource needs (a package
/// brings directories, files, users, groups and units; a command anything):
/// a resource that comes after one of them has its preconditions checked
/// only by apply — the documented blind spot of a dry run.
pub(crate) const MAKERS: &[&str] = &["pkg", "cmd"];

/// The parent directory of a path that a write will need: there, or made
/// by a resource of the catalog (a declared directory; `mkdir -p` makes
/// the rest). Otherwise the error apply would hit, for a dry run to see.
pub(crate) fn parent_there(
    host: &HostRead,
    (kind, name): (&str, &str),
    p: &str,
    ctx: &cfgm_core::provider::RunCtx,
) -> Result<(), ModuleError> {
    let parent = host::parent_of(p);
    // Something there (a directory, or a link apply judges itself).
    if host.exists(parent)?
        || ctx.managed_paths().contains(parent)
        || ctx.comes_after(kind, name, MAKERS)
    {
        Ok(())
    } else {
        Err(host::missing_parent(p))
    }
}

/// The owner and group of a path: on the host, or declared in the catalog
/// (a `user`/`group` resource, applied first by the automatic edge).
/// Otherwise the error apply would hit, for a dry run to see.
pub(crate) fn owners_there(
    host: &HostRead,
    (kind, name): (&str, &str),
    owner: Option<&str>,
    group: Option<&str>,
    ctx: &cfgm_core::provider::RunCtx,
) -> Result<(), ModuleError> {
    // The host first (the common case, and cheap); the catalog's graph
    // only for a name the host does not have.
    let user_missing = match owner {
        Some(u) => host.uid(u)?.is_none() && !ctx.declares("user", u),
        None => false,
    };
    let group_missing = match group {
        Some(g) => host.gid(g)?.is_none() && !ctx.declares("group", g),
        None => false,
    };
    if !(user_missing || group_missing) || ctx.comes_after(kind, name, MAKERS) {
        return Ok(());
    }
    if let (Some(u), true) = (owner, user_missing) {
        return Err(ModuleError::Invalid(format!(
            "no user `{u}` on the host (declare user[{u}])"
        )));
    }
    match group {
        Some(g) => Err(ModuleError::Invalid(format!(
            "no group `{g}` on the host (declare group[{g}])"
        ))),
        None => Ok(()),
    }
}

/// Whether `name` is a user or group name the shadow tools take as a name
/// and nothing else: lower-case letters, digits, `_` and `-`, not first
/// `-` (an option), not only digits (an id), at most 32 characters.
pub(crate) fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}

/// What an account name must look like, for messages.
pub(crate) const ACCOUNT_NAME: &str =
    "lower-case letters, digits, `_` and `-`; not first `-`, not only digits; at most 32";

/// Whether `p` is an absolute path in normal form (no `.`, `..` or empty
/// parts, no trailing `/`) without `:` or control characters, as a
/// passwd field or a working directory must be.
pub(crate) fn is_plain_abs_path(p: &str) -> bool {
    p.starts_with('/')
        && (p == "/"
            || p[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."))
        && !p.contains(':')
        && !p.chars().any(char::is_control)
}

/// A kind's `ensure` attribute in its `Desired`. Only "absent" changes
/// behaviour; "present" or "installed" (or leaving it out) mean the
/// resource must exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Ensure(pub Option<String>);

impl Ensure {
    pub fn absent(&self) -> bool {
        self.0.as_deref() == Some("absent")
    }
}

/// `ensure = "absent"` was written (on raw attributes, for spec checks).
pub(crate) fn is_absent(attrs: &cfgm_core::schema::Attrs) -> bool {
    attrs.get("ensure").and_then(Value::as_str) == Some("absent")
}

/// Helpers of the unit tests: the diff tables and the root-only tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use cfgm_core::catalog::Origin;
    use std::io::Write;

    /// Checks a kind's host-free diff against a table: a resource `name`
    /// with the `desired` attributes, the `observed` state (as the kind's
    /// observe serialises it), and the changes expected, one line each:
    /// `attr: from → to`, JSON values, ` (diff)` when a unified diff comes
    /// with the change. Goes through `cfgm_modules::diff`, as plans do.
    /// Reports every row that differs, then fails.
    pub fn diff_table(kind: &str, rows: &[(&str, Value, Value, &[&str])]) {
        let mut bad = Vec::new();
        for (i, (name, desired, observed, want)) in rows.iter().enumerate() {
            let r = resource(kind, name, desired);
            let got: Vec<String> = match diff(&r, observed) {
                None => vec![format!("no kind `{kind}`")],
                Some(Err(e)) => vec![format!("error: {e}")],
                Some(Ok(changes)) => changes.iter().map(line).collect(),
            };
            if got != *want {
                bad.push(format!(
                    "row {i}: {kind}[{name}] {desired} observed {observed}\n  want {want:#?}\n  got  {got:#?}"
                ));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    /// A compiled resource with these attributes.
    pub fn resource(kind: &str, name: &str, attrs: &Value) -> Resource {
        Resource {
            id: ResourceId::new(kind, name),
            attrs: serde_json::from_value(attrs.clone()).expect("attributes are a table"),
            deps: Default::default(),
            origin: Origin {
                file: "t".into(),
                line: 1,
                column: 1,
            },
            hidden: vec![],
            error: None,
        }
    }

    /// A change as a table line.
    pub fn line(c: &Change) -> String {
        format!(
            "{}: {} → {}{}",
            c.attr,
            c.from,
            c.to,
            if c.diff.is_some() { " (diff)" } else { "" }
        )
    }

    /// Whether the test may run: it needs root (it chowns to root, or
    /// follows only root's symlinks). Otherwise it says, by name, that it
    /// is skipped (`make test` runs as root), unless
    /// `CFGM_TEST_REQUIRE_ROOT` is set, which makes skipping a failure.
    pub fn needs_root(test: &str) -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert!(
            std::env::var_os("CFGM_TEST_REQUIRE_ROOT").is_none(),
            "{test} needs root (CFGM_TEST_REQUIRE_ROOT is set)"
        );
        // Past the test harness's capture, so that it shows.
        let _ = writeln!(std::io::stderr(), "skipped (needs root): {test}");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_and_plain_paths() {
        for ok in ["alice", "_apt", "www-data", "systemd-network", "u1", "a_b"] {
            assert!(is_account_name(ok), "{ok}");
        }
        for bad in [
            "", "-R/tmp/x", "--help", "1000", "Alice", "a:b", "a,b", "a b", "a/b",
        ] {
            assert!(!is_account_name(bad), "{bad}");
        }
        assert!(!is_account_name(&"a".repeat(33)));
        for ok in ["/", "/bin/bash", "/home/alice"] {
            assert!(is_plain_abs_path(ok), "{ok}");
        }
        for bad in [
            "bin/sh",
            "/home/../etc",
            "/a//b",
            "/a/",
            "/a:b",
            "/a\nb",
            "",
        ] {
            assert!(!is_plain_abs_path(bad), "{bad}");
        }
    }

    /// Every attribute a kind's spec declares deserialises into its
    /// `Desired` (with a value of the attribute's type), and an undeclared
    /// one is refused: the compiler's checks and the kind's behaviour agree
    /// on what a resource may say.
    #[test]
    fn every_kinds_desired_takes_exactly_its_specs_attributes() {
        use cfgm_core::schema::{AttrType, Attrs};
        use serde_json::json;
        fn sample(ty: AttrType) -> Value {
            match ty {
                AttrType::Str
                | AttrType::LinkTarget
                | AttrType::Template { .. }
                | AttrType::TreeFile { .. }
                | AttrType::TreeBinary { .. } => json!("x"),
                AttrType::Path => json!("/x"),
                AttrType::Int => json!(1),
                AttrType::Bool => json!(true),
                AttrType::StrList => json!(["x"]),
                AttrType::Scalar => json!("1"),
                AttrType::Mode => json!("0644"),
                AttrType::Enum(v) => json!(v[0]),
                AttrType::Table | AttrType::TemplateVars => json!({"k": "v"}),
            }
        }
        let mut bad = Vec::new();
        for k in KINDS {
            let spec = k.spec();
            let mut all: Attrs = spec
                .attrs
                .iter()
                .map(|a| (a.name.to_string(), sample(a.ty)))
                .collect();
            if let Err(e) = k.accepts(&all) {
                bad.push(format!("{}: the spec's attributes: {e}", spec.kind));
            }
            all.insert("no_such_attribute".into(), json!(true));
            if k.accepts(&all).is_ok() {
                bad.push(format!(
                    "{}: an undeclared attribute is accepted",
                    spec.kind
                ));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn every_kind_is_registered_once_with_documented_attributes() {
        let specs = specs();
        assert_eq!(specs.len(), KINDS.len(), "two kinds share a name");
        for s in specs {
            assert!(!s.doc.is_empty(), "{} has no doc", s.kind);
            for a in s.attrs {
                assert!(!a.doc.is_empty(), "{}.{} has no doc", s.kind, a.name);
                assert!(
                    !cfgm_core::schema::REQUISITES.contains(&a.name),
                    "{}.{} shadows a requisite",
                    s.kind,
                    a.name
                );
            }
        }
    }
}

/// README's kind reference names every kind and every attribute of each,
/// so that it cannot fall behind the specs.
#[cfg(test)]
mod readme {
    #[test]
    fn the_kind_reference_lists_every_attribute() {
        let readme = include_str!("../../README.md");
        let reference = &readme[readme.find("## Kind reference").expect("a kind reference")..];
        let mut missing = Vec::new();
        for k in crate::KINDS {
            let spec = k.spec();
            let head = format!("### {} —", spec.kind);
            let Some(at) = reference.find(&head) else {
                missing.push(format!("### {}", spec.kind));
                continue;
            };
            let section = &reference[at + head.len()..];
            let section = &section[..section.find("\n### ").unwrap_or(section.len())];
            for a in spec.attrs {
                if !section.contains(&format!("`{}`", a.name)) {
                    missing.push(format!("{}.{}", spec.kind, a.name));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "README's kind reference lacks: {missing:?}"
        );
    }
}
