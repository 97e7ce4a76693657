//! `group`: a local group and its gid.
//!
//! Observes by parsing the root's /etc/group; changes go through groupadd,
//! groupmod and groupdel. Membership is managed from the user side
//! (`user.groups`), never here.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "group",
    doc: "A local group with an optional fixed gid.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("gid", AttrType::Int, "numeric group id"),
        AttrSpec::opt(
            "system",
            AttrType::Bool,
            "a system group (only when created)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
};

/// The name reaches groupadd/groupmod/groupdel as an operand: no option,
/// no id, nothing the tools would read otherwise.
fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if !crate::is_account_name(name) {
        out.push(Problem::resource(format!(
            "`{name}` is not a group name ({})",
            crate::ACCOUNT_NAME
        )));
    }
    if let Some(Value::Number(n)) = attrs.get("gid") {
        if n.as_i64()
            .is_none_or(|g| !(0..=u32::MAX as i64 - 1).contains(&g))
        {
            out.push(Problem::attr("gid", "a gid is between 0 and 4294967294"));
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::Module;
use cfgm_core::engine::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub system: Option<bool>,
}

/// The group as `/etc/group` has it; a missing group is `exists = false`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

pub struct Group;

impl Module for Group {
    type Desired = Desired;
    type Observed = Observed;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        _: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        Ok(match host.group(name)? {
            None => Observed::default(),
            Some(f) => Observed {
                exists: true,
                gid: f.get(2).and_then(|g| g.parse().ok()),
            },
        })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<Change> {
        if d.ensure.absent() {
            return if o.exists {
                vec![Change::new("ensure", "present", "absent")]
            } else {
                vec![]
            };
        }
        if !o.exists {
            return vec![Change::new("ensure", Value::Null, "present")];
        }
        match d.gid {
            Some(g) if o.gid != Some(g) => vec![Change::new("gid", o.gid, g)],
            _ => vec![],
        }
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[Change],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        if d.ensure.absent() {
            host.run(&["groupdel", "--", name])?;
            return Ok(());
        }
        let mut argv: Vec<String> = Vec::new();
        if changes.iter().any(|c| c.attr == "ensure") {
            argv.push("groupadd".into());
            if d.system == Some(true) {
                argv.push("--system".into());
            }
        } else {
            argv.push("groupmod".into());
        }
        if let Some(g) = d.gid {
            argv.extend(["--gid".into(), g.to_string()]);
        }
        argv.extend(["--".into(), name.into()]);
        host.run(&argv)?;
        Ok(())
    }
}
