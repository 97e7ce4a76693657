//! `symlink`: a symbolic link and where it points.

use cfgm_core::schema::{no_check, AttrSpec, AttrType, KindSpec};

pub static SPEC: KindSpec = KindSpec {
    kind: "symlink",
    doc: "A symbolic link pointing at `target`.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::req("target", AttrType::LinkTarget, "where the link points"),
    ],
    name_is_path: true,
    secret_attrs: &[],
    check: no_check,
    auto_deps: crate::path_auto_deps,
    claims: cfgm_core::schema::no_claims,
};

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Symlink>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    pub target: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Default)]
pub struct Symlink;

/// How a symlink differs.
#[derive(Clone, Debug, PartialEq)]
pub enum SymlinkChange {
    /// Something is at the path (`was`: what) and must not be.
    Remove { was: String },
    /// The link is missing (`from` is none) or points elsewhere.
    Target { from: Option<String>, to: String },
    /// Something else than a symlink is at the path.
    Type { was: String },
}

impl KindChange for SymlinkChange {
    fn show(&self) -> Change {
        match self {
            SymlinkChange::Remove { was } => Change::new("ensure", was.as_str(), "absent"),
            SymlinkChange::Target { from, to } => Change::new("target", from.clone(), to.as_str()),
            SymlinkChange::Type { was } => Change::new("type", was.as_str(), "symlink"),
        }
    }
}

/// What a symlink resource never replaces (a directory) or removes
/// (anything but a symlink).
fn in_the_way(name: &str, d: &Desired) -> ModuleError {
    ModuleError::Invalid(if d.ensure.absent() {
        format!("{name} is not a symlink; not removing it")
    } else {
        format!("{name} is a directory; refusing to replace it")
    })
}

impl Module for Symlink {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = SymlinkChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        // What apply would refuse, refused here too: a dry run sees it.
        match host.lstat(name)? {
            Some(m) if m.is_dir && !d.ensure.absent() => return Err(in_the_way(name, d)),
            Some(m) if !m.is_symlink && d.ensure.absent() => return Err(in_the_way(name, d)),
            None if !d.ensure.absent() => crate::parent_there(host, ("symlink", name), name, ctx)?,
            _ => {}
        }
        Ok(match host.lstat(name)? {
            None => Observed::default(),
            Some(m) if m.is_symlink => Observed {
                exists: true,
                kind: Some("symlink".into()),
                target: host.read_link(name)?,
            },
            Some(m) => Observed {
                exists: true,
                kind: Some(if m.is_dir { "directory" } else { "file" }.into()),
                target: None,
            },
        })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<SymlinkChange> {
        if d.ensure.absent() {
            return if o.exists {
                vec![SymlinkChange::Remove {
                    was: o.kind.clone().unwrap_or_default(),
                }]
            } else {
                vec![]
            };
        }
        if !o.exists {
            return vec![SymlinkChange::Target {
                from: None,
                to: d.target.clone(),
            }];
        }
        match o.kind.as_deref() {
            Some("symlink") if o.target.as_deref() == Some(d.target.as_str()) => vec![],
            Some("symlink") => vec![SymlinkChange::Target {
                from: Some(o.target.clone().unwrap_or_default()),
                to: d.target.clone(),
            }],
            other => vec![SymlinkChange::Type {
                was: other.unwrap_or("other").to_string(),
            }],
        }
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[SymlinkChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let remove = changes.iter().any(|c| match c {
            SymlinkChange::Remove { .. } => true,
            SymlinkChange::Target { .. } | SymlinkChange::Type { .. } => false,
        });
        let now = host.lstat(name)?;
        if remove {
            return match now {
                Some(m) if m.is_symlink => host.remove_file(name),
                Some(_) => Err(in_the_way(name, d)),
                None => Ok(()),
            };
        }
        if d.ensure.absent() {
            return Ok(());
        }
        if now.is_some_and(|m| m.is_dir) {
            return Err(in_the_way(name, d));
        }
        // Atomic: a new link under a temporary name, renamed over the path.
        host.symlink(name, &d.target)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn diff() {
        let link = json!({"exists": true, "kind": "symlink", "target": "/etc/b"});
        diff_table(
            "symlink",
            &[
                (
                    "/etc/l",
                    json!({"target": "/etc/a"}),
                    json!({"exists": false}),
                    &[r#"target: null → "/etc/a""#],
                ),
                ("/etc/l", json!({"target": "/etc/b"}), link.clone(), &[]),
                (
                    "/etc/l",
                    json!({"target": "/etc/a"}),
                    link.clone(),
                    &[r#"target: "/etc/b" → "/etc/a""#],
                ),
                (
                    "/etc/l",
                    json!({"target": "/etc/a"}),
                    json!({"exists": true, "kind": "file"}),
                    &[r#"type: "file" → "symlink""#],
                ),
                (
                    "/etc/l",
                    json!({"target": "/etc/a", "ensure": "absent"}),
                    link,
                    &[r#"ensure: "symlink" → "absent""#],
                ),
                (
                    "/etc/l",
                    json!({"target": "/etc/a", "ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
            ],
        );
    }
}
