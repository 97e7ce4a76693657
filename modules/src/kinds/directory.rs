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
};

// ---- behaviour -----------------------------------------------------------

use super::file::{ids, meta_changes, observe_meta, Observed as PathObserved};
use crate::host::{Host, HostRead};
use crate::module::Module;
use cfgm_core::engine::RunCtx;
use cfgm_core::schema::parse_mode;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

pub struct Directory;

/// Whether a purge must keep `path`: the catalog manages it, or something
/// below it (a file in an undeclared subdirectory keeps that subdirectory).
fn managed(ctx: &RunCtx, path: &str) -> bool {
    let below = format!("{path}/");
    ctx.managed_paths.contains(path)
        || ctx
            .managed_paths
            .range(below.clone()..)
            .next()
            .is_some_and(|m| m.starts_with(&below))
}

impl Module for Directory {
    type Desired = Desired;
    type Observed = Observed;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let path = observe_meta(host, name)?;
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

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<Change> {
        let mut out = Vec::new();
        let kind = o.path.kind.as_deref();
        if d.ensure.absent() {
            if o.path.exists {
                out.push(Change::new("ensure", kind.unwrap_or("directory"), "absent"));
            }
            return out;
        }
        if !o.path.exists {
            out.push(Change::new("ensure", Value::Null, "present"));
        } else if kind != Some("directory") {
            out.push(Change::new("type", kind.unwrap_or("other"), "directory"));
        }
        meta_changes(
            &mut out,
            &o.path,
            d.mode.as_deref(),
            d.owner.as_deref(),
            d.group.as_deref(),
        );
        if !o.unmanaged.is_empty() {
            out.push(Change::new(
                "purge",
                Value::from(o.unmanaged.clone()),
                Value::Array(vec![]),
            ));
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[Change],
        ctx: &RunCtx,
    ) -> Result<(), ModuleError> {
        let now = host.lstat(name)?;
        if d.ensure.absent() {
            return match now {
                Some(m) if m.is_dir => host.remove_tree(name),
                Some(_) => Err(ModuleError::Invalid(format!(
                    "{name} is not a directory; not removing it"
                ))),
                None => Ok(()),
            };
        }
        if now.is_some_and(|m| !m.is_dir) {
            return Err(ModuleError::Invalid(format!(
                "{name} exists and is not a directory; refusing to replace it"
            )));
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
        for c in changes {
            match c.attr.as_str() {
                "mode" => host.chmod(
                    name,
                    d.mode.as_deref().and_then(parse_mode).unwrap_or(0o755),
                )?,
                "owner" | "group" => host.chown(name, uid, gid)?,
                "purge" => {
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
                _ => {}
            }
        }
        Ok(())
    }
}
