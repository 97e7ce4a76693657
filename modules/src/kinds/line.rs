//! `line`: one line present (or absent) in a file, optionally replacing
//! the line a regular expression matches.

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "line",
    doc: "A line in a file: present (replacing the line `match` finds) or absent.",
    attrs: &[
        AttrSpec::req("path", AttrType::Str, "the file to edit"),
        AttrSpec::req("line", AttrType::Str, "the whole line"),
        AttrSpec::opt(
            "match",
            AttrType::Str,
            "a regular expression; the first matching line is replaced",
        ),
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
};

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(Value::String(p)) = attrs.get("path") {
        if !p.starts_with('/') {
            out.push(Problem::attr("path", "expected an absolute path"));
        }
    }
    if let Some(Value::String(l)) = attrs.get("line") {
        if l.contains('\n') {
            out.push(Problem::attr("line", "a line cannot contain a newline"));
        }
    }
    out
}

/// A line comes after the file resource it edits, when that is declared.
fn auto_deps(_name: &str, attrs: &Attrs) -> Vec<AutoDep> {
    match attrs.get("path") {
        Some(Value::String(p)) => vec![AutoDep {
            candidates: vec![ResourceId::new("file", p)],
        }],
        _ => Vec::new(),
    }
}
