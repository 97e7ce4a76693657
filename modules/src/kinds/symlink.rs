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
};

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::Module;
use cfgm_core::engine::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

pub struct Symlink;

impl Module for Symlink {
    type Desired = Desired;
    type Observed = Observed;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        _: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
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

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<Change> {
        if d.ensure.absent() {
            return if o.exists {
                vec![Change::new(
                    "ensure",
                    o.kind.clone().unwrap_or_default(),
                    "absent",
                )]
            } else {
                vec![]
            };
        }
        if !o.exists {
            return vec![Change::new("target", Value::Null, d.target.clone())];
        }
        match o.kind.as_deref() {
            Some("symlink") if o.target.as_deref() == Some(d.target.as_str()) => vec![],
            Some("symlink") => vec![Change::new(
                "target",
                o.target.clone().unwrap_or_default(),
                d.target.clone(),
            )],
            other => vec![Change::new("type", other.unwrap_or("other"), "symlink")],
        }
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        _: &[Change],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let now = host.lstat(name)?;
        if d.ensure.absent() {
            return match now {
                Some(m) if m.is_symlink => host.remove_file(name),
                Some(_) => Err(ModuleError::Invalid(format!(
                    "{name} is not a symlink; not removing it"
                ))),
                None => Ok(()),
            };
        }
        if now.is_some_and(|m| m.is_dir) {
            return Err(ModuleError::Invalid(format!(
                "{name} is a directory; refusing to replace it"
            )));
        }
        // Atomic: a new link under a temporary name, renamed over the path.
        host.symlink(name, &d.target)
    }
}
