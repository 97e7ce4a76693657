//! `group`: a local group, its gid and members.
//!
//! Observes by parsing the root's /etc/group; changes go through groupadd,
//! groupmod, groupdel and `gpasswd -a`. `members` is additive: the users
//! listed are members, and members not listed stay (a user's own `groups`
//! is the exclusive side: a user whose `groups` the catalog sets gets
//! exactly those, so list such a user's memberships there, not here). A
//! group comes after the member users the catalog declares.

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;
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
        AttrSpec::opt(
            "members",
            AttrType::StrList,
            "users that are members (additive: members not listed stay)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
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
    if let Some(Value::Array(ms)) = attrs.get("members") {
        for m in ms.iter().filter_map(Value::as_str) {
            if !crate::is_account_name(m) {
                out.push(Problem::attr(
                    "members",
                    format!("`{m}` is not a user name ({})", crate::ACCOUNT_NAME),
                ));
            }
        }
        if crate::is_absent(attrs) {
            out.push(Problem::attr(
                "members",
                "`members` makes no sense with ensure = \"absent\"",
            ));
        }
    }
    out
}

/// A group comes after the member users the catalog declares (they must
/// exist to be added).
fn auto_deps(_name: &str, attrs: &Attrs) -> Vec<AutoDep> {
    match attrs.get("members") {
        Some(Value::Array(ms)) => ms
            .iter()
            .filter_map(Value::as_str)
            .map(|m| AutoDep {
                candidates: vec![ResourceId::new("user", m)],
            })
            .collect(),
        _ => Vec::new(),
    }
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
    #[serde(default)]
    pub members: Option<Vec<String>>,
}

/// The group as `/etc/group` has it; a missing group is `exists = false`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Its members (the fourth field), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Default)]
pub struct Group;

/// How a group differs.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupChange {
    Create,
    Remove,
    Gid { from: Option<u32>, to: u32 },
    /// Members to add (`from`: the members now, `to`: with them).
    Members {
        from: Vec<String>,
        to: Vec<String>,
        add: Vec<String>,
    },
}

impl KindChange for GroupChange {
    fn show(&self) -> Change {
        match self {
            GroupChange::Create => Change::new("ensure", Value::Null, "present"),
            GroupChange::Remove => Change::new("ensure", "present", "absent"),
            GroupChange::Gid { from, to } => Change::new("gid", *from, *to),
            GroupChange::Members { from, to, .. } => {
                Change::new("members", from.clone(), to.clone())
            }
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
            Some(g) => {
                let mut members = g.members.clone();
                members.sort();
                Observed {
                    exists: true,
                    gid: Some(g.gid),
                    members,
                }
            }
        })
    }

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
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
        if let Some(ms) = d.members.as_ref().filter(|_| !d.ensure.absent()) {
            // gpasswd refuses a user that does not exist: a dry run says so,
            // unless the catalog declares the user (made first).
            for m in ms {
                if !ctx.declares("user", m) && host.uid(m)?.is_none() {
                    return Err(ModuleError::Invalid(format!(
                        "members: no user `{m}` on the host (declare user[{m}])"
                    )));
                }
            }
        }
        Ok(match host.group(name)? {
            None => Observed::default(),
            Some(f) => {
                let mut members: Vec<String> = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                members.sort();
                members.dedup();
                Observed {
                    exists: true,
                    gid: f.get(2).and_then(|g| g.parse().ok()),
                    members,
                }
            }
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
        let mut out = Vec::new();
        if !o.exists {
            out.push(GroupChange::Create);
        } else if let Some(g) = d.gid.filter(|g| o.gid != Some(*g)) {
            out.push(GroupChange::Gid { from: o.gid, to: g });
        }
        let add: Vec<String> = d
            .members
            .iter()
            .flatten()
            .filter(|m| !o.members.contains(m))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !add.is_empty() {
            let mut to: Vec<String> = o.members.iter().chain(&add).cloned().collect();
            to.sort();
            out.push(GroupChange::Members {
                from: o.members.clone(),
                to,
                add,
            });
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[GroupChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let (mut create, mut remove, mut gid) = (false, false, false);
        let mut add: &[String] = &[];
        for c in changes {
            match c {
                GroupChange::Create => create = true,
                GroupChange::Remove => remove = true,
                GroupChange::Gid { .. } => gid = true,
                GroupChange::Members { add: a, .. } => add = a,
            }
        }
        if remove {
            host.run(&["groupdel", "--", name])?;
            return Ok(());
        }
        if create || gid {
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
        }
        for m in add {
            // gpasswd takes no `--`; both names are account names (checked
            // when compiling), never options.
            host.run(&["gpasswd", "-a", m.as_str(), name])?;
        }
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
                // members: additive; the change lists the members before and after.
                (
                    "staff",
                    json!({"members": ["bob", "alice"]}),
                    json!({"exists": true, "gid": 50, "members": ["alice", "carol"]}),
                    &[r#"members: ["alice","carol"] → ["alice","bob","carol"]"#],
                ),
                (
                    "staff",
                    json!({"members": ["alice"]}),
                    json!({"exists": true, "gid": 50, "members": ["alice", "carol"]}),
                    &[],
                ),
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
