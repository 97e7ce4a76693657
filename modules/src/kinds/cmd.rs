//! `cmd`: a shell command made idempotent by a guard (`creates`, `unless`,
//! `onlyif`), or run only as a refresh target (`refresh_only`).

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "cmd",
    doc: "A shell command, guarded by creates/unless/onlyif, or run only on refresh.",
    attrs: &[
        AttrSpec::req("run", AttrType::Str, "the command, run by /bin/sh -c"),
        AttrSpec::opt("creates", AttrType::Str, "skip when this path exists"),
        AttrSpec::opt("unless", AttrType::Str, "skip when this command succeeds"),
        AttrSpec::opt(
            "onlyif",
            AttrType::Str,
            "run only when this command succeeds",
        ),
        AttrSpec::opt(
            "refresh_only",
            AttrType::Bool,
            "run only when a watched resource changed",
        ),
        AttrSpec::opt("cwd", AttrType::Str, "working directory"),
        AttrSpec::opt("user", AttrType::Str, "run as this user"),
        AttrSpec::opt("env", AttrType::Table, "extra environment variables"),
        AttrSpec::opt(
            "timeout",
            AttrType::Int,
            "seconds before the command is killed (default 300)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
};

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let guarded = ["creates", "unless", "onlyif"]
        .iter()
        .any(|a| attrs.contains_key(*a))
        || attrs.get("refresh_only").and_then(|v| v.as_bool()) == Some(true);
    if guarded {
        Vec::new()
    } else {
        vec![Problem::attr(
            "run",
            "a command without `creates`, `unless`, `onlyif` or `refresh_only` would run on every apply",
        )]
    }
}
