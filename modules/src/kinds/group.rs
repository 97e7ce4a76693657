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
    claims: cfgm_core::schema::no_claims,
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
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Group>();

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

#[derive(Default)]
pub struct Group;

/// How a group differs.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupChange {
    Create,
    Remove,
    Gid { from: Option<u32>, to: u32 },
}

impl KindChange for GroupChange {
    fn show(&self) -> Change {
        match self {
            GroupChange::Create => Change::new("ensure", Value::Null, "present"),
            GroupChange::Remove => Change::new("ensure", "present", "absent"),
            GroupChange::Gid { from, to } => Change::new("gid", *from, *to),
        }
    }
}

impl Module for Group {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = GroupChange;

    /// From the facts' group database.
    fn observe_facts(name: &str, _: &Desired, facts: &cfgm_core::facts::Facts) -> Option<Observed> {
        Some(match facts.groups.iter().find(|g| g.name == name) {
            None => Observed::default(),
            Some(g) => Observed {
                exists: true,
                gid: Some(g.gid),
            },
        })
    }

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        // What groupadd/groupmod would refuse, refused here: a dry run sees it.
        if let (Some(g), false) = (d.gid, d.ensure.absent()) {
            match host.group_with_gid(g)? {
                Some(other) if other != name => {
                    return Err(ModuleError::Invalid(format!(
                        "gid {g} is taken by group `{other}`"
                    )))
                }
                _ => {}
            }
        }
        Ok(match host.group(name)? {
            None => Observed::default(),
            Some(f) => Observed {
                exists: true,
                gid: f.get(2).and_then(|g| g.parse().ok()),
            },
        })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<GroupChange> {
        if d.ensure.absent() {
            return if o.exists {
                vec![GroupChange::Remove]
            } else {
                vec![]
            };
        }
        if !o.exists {
            return vec![GroupChange::Create];
        }
        match d.gid {
            Some(g) if o.gid != Some(g) => vec![GroupChange::Gid { from: o.gid, to: g }],
            _ => vec![],
        }
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[GroupChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let (mut create, mut remove) = (false, false);
        for c in changes {
            match c {
                GroupChange::Create => create = true,
                GroupChange::Remove => remove = true,
                // Given to groupadd or groupmod alike, below.
                GroupChange::Gid { .. } => {}
            }
        }
        if remove {
            host.run(&["groupdel", "--", name])?;
            return Ok(());
        }
        let mut argv: Vec<String> = Vec::new();
        if create {
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

#[cfg(test)]
mod tests {
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn diff() {
        let staff = json!({"exists": true, "gid": 50});
        diff_table(
            "group",
            &[
                (
                    "staff",
                    json!({"gid": 50}),
                    json!({"exists": false}),
                    &[r#"ensure: null → "present""#],
                ),
                ("staff", json!({"gid": 50}), staff.clone(), &[]),
                ("staff", json!({}), staff.clone(), &[]),
                ("staff", json!({"gid": 60}), staff.clone(), &["gid: 50 → 60"]),
                (
                    "staff",
                    json!({"ensure": "absent"}),
                    staff,
                    &[r#"ensure: "present" → "absent""#],
                ),
                (
                    "staff",
                    json!({"ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
            ],
        );
    }
}
