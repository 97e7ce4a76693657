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
