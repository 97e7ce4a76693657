//! `directory`: a directory's mode and ownership, optionally purged of
//! entries the catalog does not manage.

use cfgm_core::schema::{no_check, AttrSpec, AttrType, KindSpec};

pub static SPEC: KindSpec = KindSpec {
    kind: "directory",
    doc: "A directory: mode, owner, group; optionally purge unmanaged entries.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("mode", AttrType::Mode, "octal mode, e.g. \"0755\""),
        AttrSpec::opt("owner", AttrType::Str, "owning user name"),
        AttrSpec::opt("group", AttrType::Str, "owning group name"),
        AttrSpec::opt(
            "purge",
            AttrType::Bool,
            "remove entries no resource in the catalog manages",
        ),
    ],
    name_is_path: true,
    secret_attrs: &[],
    check: no_check,
    auto_deps: crate::path_auto_deps,
    claims: cfgm_core::schema::no_claims,
};

// ---- behaviour -----------------------------------------------------------

use super::file::{ids, meta_changes, observe_meta, MetaChange, Observed as PathObserved};
use crate::host::{Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::schema::parse_mode;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Directory>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub purge: Option<bool>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    #[serde(flatten)]
    pub path: PathObserved,
    /// With `purge`: entries no resource of the catalog manages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
}

#[derive(Default)]
pub struct Directory;

/// How a directory differs.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectoryChange {
    /// Nothing is at the path: the directory is made (with its parents).
    Create,
    /// Something is at the path (`was`: what) and must not be.
    Remove { was: String },
    /// Something else than a directory is at the path (never replaced).
    Type { was: String },
    Meta(MetaChange),
    /// With `purge`: entries no resource of the catalog manages, removed.
    Purge { unmanaged: Vec<String> },
}

impl KindChange for DirectoryChange {
    fn show(&self) -> Change {
        match self {
            DirectoryChange::Create => Change::new("ensure", Value::Null, "present"),
            DirectoryChange::Remove { was } => Change::new("ensure", was.as_str(), "absent"),
            DirectoryChange::Type { was } => Change::new("type", was.as_str(), "directory"),
            DirectoryChange::Meta(m) => m.show(),
            DirectoryChange::Purge { unmanaged } => {
                Change::new("purge", unmanaged.clone(), Value::Array(vec![]))
            }
        }
    }
}

/// Something else than a directory at the path: never removed or replaced
/// by a directory resource.
fn not_a_directory(name: &str, d: &Desired) -> ModuleError {
    ModuleError::Invalid(if d.ensure.absent() {
        format!("{name} is not a directory; not removing it")
    } else {
        format!("{name} exists and is not a directory; refusing to replace it")
    })
}

/// Whether a purge must keep `path`: the catalog manages it, or something
/// below it (a file in an undeclared subdirectory keeps that subdirectory),
/// or it is the temporary file of a managed path (`.NAME.cfgm-new`): a
/// write in flight — a `line` of the same wave — or one a killed run left,
/// which the resource that owns it removes itself.
fn managed(ctx: &RunCtx, path: &str) -> bool {
    managed_in(ctx.managed_paths(), path)
}

fn managed_in(paths: &std::collections::BTreeSet<String>, path: &str) -> bool {
    let below = format!("{path}/");
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let of_temp = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".cfgm-new"))
        .filter(|n| !n.is_empty())
        .is_some_and(|n| paths.contains(&format!("{dir}/{n}")));
    of_temp
        || paths.contains(path)
        || paths
            .range(below.clone()..)
            .next()
            .is_some_and(|m| m.starts_with(&below))
}

impl Module for Directory {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = DirectoryChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let path = observe_meta(host, name)?;
        // What apply would refuse, refused here too: a dry run sees it.
        if path.exists && path.kind.as_deref() != Some("directory") {
            return Err(not_a_directory(name, d));
        }
        if !d.ensure.absent() {
            crate::owners_there(host, ("directory", name), d.owner.as_deref(), d.group.as_deref(), ctx)?;
        }
        let mut unmanaged = Vec::new();
        if d.purge == Some(true) && path.kind.as_deref() == Some("directory") {
            let base = name.trim_end_matches('/');
            for entry in host.list_dir(name)? {
                let full = format!("{base}/{entry}");
                if !managed(ctx, &full) {
                    unmanaged.push(full);
                }
            }
        }
        Ok(Observed { path, unmanaged })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<DirectoryChange> {
        let mut out = Vec::new();
        let kind = o.path.kind.as_deref();
        if d.ensure.absent() {
            if o.path.exists {
                out.push(DirectoryChange::Remove {
                    was: kind.unwrap_or("directory").to_string(),
                });
            }
            return out;
        }
        if !o.path.exists {
            out.push(DirectoryChange::Create);
        } else if kind != Some("directory") {
            out.push(DirectoryChange::Type {
                was: kind.unwrap_or("other").to_string(),
            });
        }
        let meta = meta_changes(
            &o.path,
            d.mode.as_deref(),
            d.owner.as_deref(),
            d.group.as_deref(),
        );
        out.extend(meta.into_iter().map(DirectoryChange::Meta));
        if !o.unmanaged.is_empty() {
            out.push(DirectoryChange::Purge {
                unmanaged: o.unmanaged.clone(),
            });
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[DirectoryChange],
        ctx: &RunCtx,
    ) -> Result<(), ModuleError> {
        let (mut remove, mut chmod, mut chown, mut purge) = (false, false, false, false);
        for c in changes {
            match c {
                DirectoryChange::Remove { .. } => remove = true,
                // Made, or refused, from what is at the path now (below).
                DirectoryChange::Create | DirectoryChange::Type { .. } => {}
                DirectoryChange::Meta(MetaChange::Mode { .. }) => chmod = true,
                DirectoryChange::Meta(MetaChange::Owner { .. } | MetaChange::Group { .. }) => {
                    chown = true
                }
                DirectoryChange::Purge { .. } => purge = true,
            }
        }
        let now = host.lstat(name)?;
        if remove {
            return match now {
                Some(m) if m.is_dir => host.remove_tree(name),
                Some(_) => Err(not_a_directory(name, d)),
                None => Ok(()),
            };
        }
        if d.ensure.absent() {
            return Ok(());
        }
        if now.is_some_and(|m| !m.is_dir) {
            return Err(not_a_directory(name, d));
        }
        let (uid, gid) = ids(host, d.owner.as_deref(), d.group.as_deref())?;
        if now.is_none() {
            // Missing parents are created like `mkdir -p` (root, 0755).
            host.create_dir_all(name)?;
            host.chmod(
                name,
                d.mode.as_deref().and_then(parse_mode).unwrap_or(0o755),
            )?;
            if uid.is_some() || gid.is_some() {
                host.chown(name, uid, gid)?;
            }
        }
        if chmod {
            host.chmod(
                name,
                d.mode.as_deref().and_then(parse_mode).unwrap_or(0o755),
            )?;
        }
        if chown {
            host.chown(name, uid, gid)?;
        }
        if purge {
            // What is unmanaged now, not what was observed: the catalog's
            // view decides, and an entry gone meanwhile is no error.
            let base = name.trim_end_matches('/');
            for entry in host.list_dir(name)? {
                let full = format!("{base}/{entry}");
                if managed(ctx, &full) {
                    continue;
                }
                match host.lstat(&full)? {
                    Some(m) if m.is_dir => host.remove_tree(&full)?,
                    // A file is backed up first.
                    Some(_) => host.remove_file(&full)?,
                    None => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::diff_table;
    use serde_json::json;

    /// A purge keeps what the catalog manages, what lies above it, and the
    /// temporary file a write of a managed path goes through (a `line` in
    /// the same wave writes it while the purge lists the directory).
    #[test]
    fn a_purge_keeps_managed_paths_and_their_writes_in_flight() {
        let paths: std::collections::BTreeSet<String> =
            ["/etc/d/edited.conf", "/etc/d/sub/x"].iter().map(|s| s.to_string()).collect();
        let keeps = |p: &str| super::managed_in(&paths, p);
        assert!(keeps("/etc/d/edited.conf"));
        assert!(keeps("/etc/d/.edited.conf.cfgm-new"));
        assert!(keeps("/etc/d/sub"));
        assert!(!keeps("/etc/d/.other.conf.cfgm-new"));
        assert!(!keeps("/etc/d/unmanaged.conf"));
        assert!(!keeps("/etc/d/.cfgm-new"));
        assert!(!keeps("/etc/d/edited.conf.cfgm-new"));
    }

    #[test]
    fn diff() {
        let dir = json!({
            "exists": true, "kind": "directory", "mode": "0755", "owner": "root", "group": "root",
        });
        diff_table(
            "directory",
            &[
                (
                    "/srv/app",
                    json!({"mode": "0750", "owner": "app"}),
                    json!({"exists": false}),
                    &[
                        r#"ensure: null → "present""#,
                        r#"mode: null → "0750""#,
                        r#"owner: null → "app""#,
                    ],
                ),
                ("/srv/app", json!({"mode": "0755"}), dir.clone(), &[]),
                (
                    "/srv/app",
                    json!({"mode": "0700", "group": "app"}),
                    dir.clone(),
                    &[r#"mode: "0755" → "0700""#, r#"group: "root" → "app""#],
                ),
                (
                    "/srv/app",
                    json!({"purge": true}),
                    json!({
                        "exists": true, "kind": "directory", "mode": "0755", "owner": "root",
                        "group": "root", "unmanaged": ["/srv/app/old", "/srv/app/tmp"],
                    }),
                    &[r#"purge: ["/srv/app/old","/srv/app/tmp"] → []"#],
                ),
                (
                    "/srv/app",
                    json!({}),
                    json!({"exists": true, "kind": "file", "mode": "0644"}),
                    &[r#"type: "file" → "directory""#],
                ),
                (
                    "/srv/app",
                    json!({"ensure": "absent"}),
                    dir,
                    &[r#"ensure: "directory" → "absent""#],
                ),
                (
                    "/srv/app",
                    json!({"ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
            ],
        );
    }
}
