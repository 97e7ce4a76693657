//! `file`: a regular file's content, mode and ownership, or its absence.
//!
//! Content comes inline (`content`), from a template under the tree's
//! `templates/` (`template`, rendered at compile time with the host's
//! context) or from a file under `files/` (`source`).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, KindSpec, Problem};

const ENSURE: &[&str] = &["present", "absent"];

pub static SPEC: KindSpec = KindSpec {
    kind: "file",
    doc: "A regular file: content, mode, owner, group; or ensure it is absent.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(ENSURE),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("content", AttrType::Str, "the file's content, inline"),
        AttrSpec::opt(
            "template",
            AttrType::Template { into: "content" },
            "a template under templates/, rendered with host, data and facts",
        ),
        AttrSpec::opt(
            "source",
            AttrType::TreeFile { into: "content" },
            "a file under files/ copied as is",
        ),
        AttrSpec::opt("mode", AttrType::Mode, "octal mode, e.g. \"0644\""),
        AttrSpec::opt("owner", AttrType::Str, "owning user name"),
        AttrSpec::opt("group", AttrType::Str, "owning group name"),
        AttrSpec::opt(
            "secret",
            AttrType::Bool,
            "never show the content (plans show a hash)",
        ),
    ],
    name_is_path: true,
    secret_attrs: &["content"],
    check,
    auto_deps: crate::path_auto_deps,
};

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let sources: Vec<&str> = ["content", "template", "source"]
        .into_iter()
        .filter(|a| attrs.contains_key(*a))
        .collect();
    let mut out = Vec::new();
    if sources.len() > 1 {
        out.push(Problem::attr(
            sources[1],
            format!(
                "`{}` and `{}` exclude each other: give the content one way",
                sources[0], sources[1]
            ),
        ));
    }
    if crate::is_absent(attrs) {
        for a in ["content", "template", "source", "mode", "owner", "group"] {
            if attrs.contains_key(a) {
                out.push(Problem::attr(
                    a,
                    format!("`{a}` makes no sense with ensure = \"absent\""),
                ));
            }
        }
    }
    out
}
