//! `pkg`: a Debian package through apt/dpkg: installed (any version),
//! pinned to a version, or absent.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "pkg",
    doc: "A package (apt/dpkg): installed, pinned to a version, or absent.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["installed", "absent"]),
            "\"installed\" (default) or \"absent\"",
        ),
        AttrSpec::opt(
            "version",
            AttrType::Str,
            "exact version to pin, e.g. \"1.22.1-9\"",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
};

fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if attrs.get("ensure").and_then(|v| v.as_str()) == Some("absent")
        && attrs.contains_key("version")
    {
        out.push(Problem::attr(
            "version",
            "a version makes no sense with ensure = \"absent\"",
        ));
    }
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a Debian package name (lower-case letters, digits, + - .)"
        )));
    }
    out
}
