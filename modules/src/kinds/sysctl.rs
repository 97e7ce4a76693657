//! `sysctl`: a kernel parameter, live (/proc/sys) and persisted in
//! /etc/sysctl.d/.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "sysctl",
    doc: "A kernel parameter: set live and persisted in /etc/sysctl.d/.",
    attrs: &[
        AttrSpec::req(
            "value",
            AttrType::Scalar,
            "the value, e.g. 1 or \"4096 87380 6291456\"",
        ),
        AttrSpec::opt(
            "persist",
            AttrType::Bool,
            "also write /etc/sysctl.d/ (default true)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
};

fn check(name: &str, _: &Attrs) -> Vec<Problem> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if valid {
        Vec::new()
    } else {
        vec![Problem::resource(format!(
            "`{name}` is not a sysctl key (e.g. net.core.somaxconn)"
        ))]
    }
}
