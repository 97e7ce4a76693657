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
        AttrSpec::req("target", AttrType::Str, "where the link points"),
    ],
    name_is_path: true,
    secret_attrs: &[],
    check: no_check,
    auto_deps: crate::path_auto_deps,
};
