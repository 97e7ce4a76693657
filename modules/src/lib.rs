//! cfgm-modules: the resource kinds.
//!
//! One file per kind under `kinds/`, each holding the kind's [`KindSpec`]
//! (the attributes the compiler checks, cross-attribute rules, automatic
//! dependencies). Every OS call of cfgm lives in this crate; the core only
//! sees the specs through [`registry`].
//!
//! Adding a kind: one file in `kinds/` and one line in [`registry`].

use cfgm_core::schema::{parent_dirs, AutoDep, Registry};
use cfgm_core::{KindSpec, Providers, ResourceId};
use serde_json::Value;

pub mod host;
pub mod kinds;
pub mod module;

pub use host::{Host, HostRead};
pub use module::{Erased, Module};

/// The providers of every kind, bound to a host. Kinds without behaviour
/// yet are absent: the engine fails their resources with a clear message.
pub fn providers(host: &Host) -> Providers {
    let mut p: Providers = Providers::new();
    fn add<M: Module>(p: &mut Providers, kind: &'static str, module: M, host: &Host) {
        p.insert(
            kind,
            Box::new(Erased {
                module,
                host: host.clone(),
            }),
        );
    }
    add(&mut p, "file", kinds::file::File, host);
    add(&mut p, "directory", kinds::directory::Directory, host);
    add(&mut p, "symlink", kinds::symlink::Symlink, host);
    add(&mut p, "pkg", kinds::pkg::Pkg, host);
    add(&mut p, "service", kinds::service::Service, host);
    add(&mut p, "user", kinds::user::User, host);
    add(&mut p, "group", kinds::group::Group, host);
    add(&mut p, "cmd", kinds::cmd::Cmd, host);
    add(&mut p, "sysctl", kinds::sysctl::Sysctl, host);
    add(&mut p, "line", kinds::line::Line, host);
    p
}

/// Every kind cfgm knows.
pub fn registry() -> Registry {
    Registry::new()
        .with(&kinds::file::SPEC)
        .with(&kinds::directory::SPEC)
        .with(&kinds::symlink::SPEC)
        .with(&kinds::pkg::SPEC)
        .with(&kinds::service::SPEC)
        .with(&kinds::user::SPEC)
        .with(&kinds::group::SPEC)
        .with(&kinds::cmd::SPEC)
        .with(&kinds::sysctl::SPEC)
        .with(&kinds::line::SPEC)
}

/// Every kind's spec, for documentation and tests.
pub fn specs() -> Vec<&'static KindSpec> {
    let r = registry();
    r.names().filter_map(|n| r.get(n)).collect()
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

    #[test]
    fn every_kind_is_registered_once_with_documented_attributes() {
        let specs = specs();
        assert_eq!(specs.len(), 10);
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
