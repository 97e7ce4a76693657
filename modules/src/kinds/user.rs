//! `user`: a local user account (shadow tools) with its groups, shell,
//! home and ssh authorized keys.

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "user",
    doc: "A local user: uid, primary group, groups, shell, home, ssh authorized keys.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("uid", AttrType::Int, "numeric user id"),
        AttrSpec::opt("group", AttrType::Str, "primary group name"),
        AttrSpec::opt(
            "groups",
            AttrType::StrList,
            "supplementary groups (exactly these)",
        ),
        AttrSpec::opt("shell", AttrType::Str, "login shell, e.g. \"/bin/bash\""),
        AttrSpec::opt("home", AttrType::Str, "home directory (default /home/NAME)"),
        AttrSpec::opt("comment", AttrType::Str, "the GECOS field"),
        AttrSpec::opt(
            "system",
            AttrType::Bool,
            "a system account (only when created)",
        ),
        AttrSpec::opt(
            "ssh_keys",
            AttrType::StrList,
            "authorized ssh public keys (exactly these)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
};

fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
        && !name.starts_with('-');
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a valid user name"
        )));
    }
    if let Some(Value::Number(n)) = attrs.get("uid") {
        if n.as_i64()
            .is_none_or(|u| !(0..=u32::MAX as i64 - 1).contains(&u))
        {
            out.push(Problem::attr("uid", "a uid is between 0 and 4294967294"));
        }
    }
    if let Some(Value::Array(keys)) = attrs.get("ssh_keys") {
        for k in keys.iter().filter_map(Value::as_str) {
            let ok = k.split_whitespace().count() >= 2
                && (k.starts_with("ssh-") || k.starts_with("ecdsa-") || k.starts_with("sk-"));
            if !ok {
                out.push(Problem::attr(
                    "ssh_keys",
                    format!("`{}` is not an ssh public key", short(k)),
                ));
            }
        }
    }
    out
}

fn short(s: &str) -> String {
    if s.len() > 24 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(24).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}

/// A user comes after the groups it names.
fn auto_deps(_name: &str, attrs: &Attrs) -> Vec<AutoDep> {
    let mut out = Vec::new();
    if let Some(Value::String(g)) = attrs.get("group") {
        out.push(AutoDep {
            candidates: vec![ResourceId::new("group", g)],
        });
    }
    if let Some(Value::Array(gs)) = attrs.get("groups") {
        for g in gs.iter().filter_map(Value::as_str) {
            out.push(AutoDep {
                candidates: vec![ResourceId::new("group", g)],
            });
        }
    }
    out
}
