//! `group`: a local group (shadow tools).

use cfgm_core::schema::{no_auto_deps, no_check, AttrSpec, AttrType, KindSpec};

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
    check: no_check,
    auto_deps: no_auto_deps,
};
