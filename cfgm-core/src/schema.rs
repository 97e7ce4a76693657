//! The shape of resource kinds, as the compiler checks it.
//!
//! A [`KindSpec`] says which attributes a kind takes, of which type, which
//! are required, which are secret, which cross-attribute rules hold and which
//! automatic dependencies the kind implies. The specs themselves live with
//! the kinds in `cfgm-modules` (one file per kind); this module only defines
//! the types and the [`Registry`] the compiler is handed, so the core never
//! depends on any provider code.

use crate::catalog::ResourceId;
use serde_json::Value;
use std::collections::BTreeMap;

/// Attributes of one resource after rendering and parsing, by name.
pub type Attrs = BTreeMap<String, Value>;

/// The type of an attribute's value, checked at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    Str,
    Int,
    Bool,
    /// A list of strings.
    StrList,
    /// A string, an integer or a boolean (sysctl values, versions).
    Scalar,
    /// A file mode as an octal string: "0644", "755", "01777".
    Mode,
    /// One of the given strings.
    Enum(&'static [&'static str]),
    /// An absolute path on the host in normal form, like the name of a
    /// `file`: starts with `/`, no `.`, `..` or empty parts, no trailing
    /// `/`, no NUL. (`..` could lead out of `--root`; `/etc/./x` would be
    /// another name for `/etc/x`.)
    Path,
    /// The text of a symbolic link: any path, relative or absolute, but not
    /// empty and without NUL (the kernel could not store it).
    LinkTarget,
    /// A table of string keys to any values.
    Table,
    /// A path under the tree's `templates/`, rendered at compile time with
    /// the host's context into the attribute named here.
    Template {
        into: &'static str,
    },
    /// Variables for the resource's template: a table of any values,
    /// visible to the template as `vars`. Consumed at compile time (the
    /// rendered content carries them); the catalog does not hold them.
    TemplateVars,
    /// A path under the tree's `files/`, read at compile time into the
    /// attribute named here; bytes that are not UTF-8 text go base64 into
    /// `INTO_b64` instead (the kind must take that attribute too).
    TreeFile {
        into: &'static str,
    },
    /// A path under the tree's `files/` holding any bytes (a binary key),
    /// read at compile time into the attribute named here as lower-case
    /// hex.
    TreeBinary {
        into: &'static str,
    },
}

impl AttrType {
    /// What a person should write, for "expected …" messages.
    pub fn expected(&self) -> String {
        match self {
            AttrType::Str => "a string".into(),
            AttrType::Int => "an integer".into(),
            AttrType::Bool => "a boolean (true or false)".into(),
            AttrType::StrList => "a list of strings".into(),
            AttrType::Scalar => "a string, an integer or a boolean".into(),
            AttrType::Mode => "an octal mode string such as \"0644\"".into(),
            AttrType::Enum(v) => format!(
                "one of {}",
                v.iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            AttrType::Path => {
                "an absolute path in normal form (no `.`, `..` or `//`, no trailing `/`)".into()
            }
            AttrType::LinkTarget => "a link target (a path, not empty)".into(),
            AttrType::Table => "a table".into(),
            AttrType::TemplateVars => "a table of template variables".into(),
            AttrType::Template { .. } => "a template path (a string)".into(),
            AttrType::TreeFile { .. } | AttrType::TreeBinary { .. } => {
                "a file path under files/ (a string)".into()
            }
        }
    }

    /// Checks a value; `Err` says what is wrong with it.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        let ok = match (self, v) {
            (AttrType::Str, Value::String(_)) => true,
            (AttrType::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (AttrType::Bool, Value::Bool(_)) => true,
            (AttrType::StrList, Value::Array(a)) => a.iter().all(Value::is_string),
            (AttrType::Scalar, Value::String(_) | Value::Bool(_)) => true,
            (AttrType::Scalar, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (AttrType::Mode, Value::String(s)) => {
                if parse_mode(s).is_some() {
                    true
                } else if s.contains(['=', '+']) || s.starts_with(['u', 'g', 'o', 'a']) {
                    return Err(format!(
                        "`{s}` is a symbolic mode; cfgm takes octal modes only: a string of \
                         3 or 4 octal digits, e.g. \"0644\" (u=rw,go=r) or \"0750\" (u=rwx,g=rx)"
                    ));
                } else {
                    return Err(format!(
                        "`{s}` is not an octal file mode (expected e.g. \"0644\")"
                    ));
                }
            }
            (AttrType::Enum(opts), Value::String(s)) => {
                if opts.contains(&s.as_str()) {
                    true
                } else {
                    return Err(format!("`{s}` is not {}", self.expected()));
                }
            }
            (AttrType::Path, Value::String(s)) => {
                if crate::parse::is_normal_path(s) {
                    true
                } else if s.contains('\0') {
                    return Err(format!("{} holds a NUL character", shown(s)));
                } else if !s.starts_with('/') {
                    return Err(format!("{} is not an absolute path", shown(s)));
                } else {
                    return Err(format!(
                        "{} is not in normal form (expected no `.` or `..` parts, no `//` and no trailing `/`)",
                        shown(s)
                    ));
                }
            }
            (AttrType::LinkTarget, Value::String(s)) => {
                if s.contains('\0') {
                    return Err(format!("{} holds a NUL character", shown(s)));
                } else if s.is_empty() {
                    return Err("a link target cannot be empty".into());
                }
                true
            }
            (AttrType::Table | AttrType::TemplateVars, Value::Object(_)) => true,
            (
                AttrType::Template { .. } | AttrType::TreeFile { .. } | AttrType::TreeBinary { .. },
                Value::String(_),
            ) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {}, found {}",
                self.expected(),
                type_name(v)
            ))
        }
    }
}

/// A value for a message: quoted, with control characters (NUL …) escaped.
fn shown(s: &str) -> String {
    format!("`{}`", s.escape_debug())
}

/// Parses an octal mode string ("0644", "755").
pub fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

/// A person's name for a JSON value's type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub ty: AttrType,
    pub required: bool,
    pub doc: &'static str,
}

impl AttrSpec {
    pub const fn opt(name: &'static str, ty: AttrType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            doc,
        }
    }

    pub const fn req(name: &'static str, ty: AttrType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            doc,
        }
    }
}

/// A problem a kind's cross-attribute rule found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The attribute at fault, or `None` for the resource as a whole.
    pub attr: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn attr(attr: &str, message: impl Into<String>) -> Self {
        Self {
            attr: Some(attr.to_string()),
            message: message.into(),
        }
    }

    pub fn resource(message: impl Into<String>) -> Self {
        Self {
            attr: None,
            message: message.into(),
        }
    }
}

/// An automatic dependency a kind proposes: the first of `candidates` that
/// exists in the catalog becomes a requisite (nearest parent directory first).
/// A candidate named [`EVERY`] stands for every resource of its kind (a
/// package after every package repository).
#[derive(Clone, Debug)]
pub struct AutoDep {
    pub candidates: Vec<ResourceId>,
}

/// The name of an [`AutoDep`] candidate that means every resource of its kind.
pub const EVERY: &str = "*";

/// Everything the compiler knows about one resource kind.
pub struct KindSpec {
    /// The kind's name as written in state files: `file`, `pkg` …
    pub kind: &'static str,
    pub doc: &'static str,
    pub attrs: &'static [AttrSpec],
    /// The resource name must be an absolute path (file, directory, symlink).
    pub name_is_path: bool,
    /// Attributes whose values are never shown when the resource has
    /// `secret = true` (plans, catalogs, logs, reports and diagnostics show
    /// a hash or nothing). A kind with any must also take a `secret`
    /// boolean attribute.
    pub secret_attrs: &'static [&'static str],
    /// Cross-attribute rules (e.g. `content` and `template` exclude each
    /// other). Their messages are shown as they are, so they must never
    /// include the value of a secret attribute.
    pub check: fn(name: &str, attrs: &Attrs) -> Vec<Problem>,
    /// Automatic dependencies (a file after its parent directory …).
    pub auto_deps: fn(name: &str, attrs: &Attrs) -> Vec<AutoDep>,
    /// The host paths whose content the resource sets whole or edits in
    /// part: the compiler refuses a path one resource sets and another
    /// edits (each apply would undo the other).
    pub claims: fn(name: &str, attrs: &Attrs) -> Vec<Claim>,
}

/// What a resource does to a host path's content (see [`KindSpec::claims`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It sets the whole content (a `file` with content).
    Sets(String),
    /// It edits part of it (a `line`), keeping the rest.
    Edits(String),
}

impl Claim {
    pub fn path(&self) -> &str {
        match self {
            Claim::Sets(p) | Claim::Edits(p) => p,
        }
    }
}

/// No claims on any path's content.
pub fn no_claims(_: &str, _: &Attrs) -> Vec<Claim> {
    Vec::new()
}

impl KindSpec {
    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

impl std::fmt::Debug for KindSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindSpec")
            .field("kind", &self.kind)
            .finish()
    }
}

/// No cross-attribute rules.
pub fn no_check(_: &str, _: &Attrs) -> Vec<Problem> {
    Vec::new()
}

/// No automatic dependencies.
pub fn no_auto_deps(_: &str, _: &Attrs) -> Vec<AutoDep> {
    Vec::new()
}

/// The ancestors of an absolute path, nearest first: `/a/b/c` → `/a/b`, `/a`.
pub fn parent_dirs(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = std::path::Path::new(path);
    while let Some(parent) = p.parent() {
        if parent.as_os_str().is_empty() || parent == std::path::Path::new("/") {
            break;
        }
        out.push(parent.to_string_lossy().into_owned());
        p = parent;
    }
    out
}

/// The kinds a compiler knows, by name.
#[derive(Debug, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, &'static KindSpec>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, spec: &'static KindSpec) -> Self {
        self.kinds.insert(spec.kind, spec);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&'static KindSpec> {
        self.kinds.get(kind).copied()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }
}

/// Attributes every resource takes, whatever its kind: its requisites.
pub const REQUISITES: [&str; 3] = ["require", "watch", "before"];

/// Conditions every resource may carry (Salt's `onlyif`/`unless`), unless
/// its kind declares attributes of these names itself (`cmd`'s shell
/// conditions): argument vectors run on the host when the resource is
/// observed, in a dry run too. `onlyif` must exit 0 and `unless` must not,
/// or the resource is left as it is (its observed state says why).
pub static GUARDS: [AttrSpec; 2] = [
    AttrSpec::opt(
        "onlyif",
        AttrType::StrList,
        "a command (argument vector) that must succeed for the resource to be managed",
    ),
    AttrSpec::opt(
        "unless",
        AttrType::StrList,
        "a command (argument vector) whose success leaves the resource alone",
    ),
];

/// The key of an observed state that a condition stopped (the provider's
/// whole observation): its value says which condition and how. Plans and
/// reports show it; nothing is changed.
pub const CONDITION_KEY: &str = "cfgm_condition";

/// The key of an observed state that a report keeps short: `true` when
/// what the catalog says anyway was left out (the resource had nothing to
/// change, so that part of the host *is* the catalog's: a file's text).
/// The agent's facts put it back from the catalog the report names.
pub const AS_CATALOG_KEY: &str = "as_catalog";

/// The attribute spec of `name` for a resource of `spec`'s kind: its own,
/// or a generic condition ([`GUARDS`]).
pub fn attr_or_guard<'a>(spec: &'a KindSpec, name: &str) -> Option<&'a AttrSpec> {
    spec.attr(name)
        .or_else(|| GUARDS.iter().find(|g| g.name == name))
}

/// Whether `name` is a generic condition of this kind (one it does not
/// declare itself).
pub fn is_guard(spec: &KindSpec, name: &str) -> bool {
    spec.attr(name).is_none() && GUARDS.iter().any(|g| g.name == name)
}

/// A condition's argument vector: a program (not an option) and its
/// arguments.
pub fn check_guard(v: &Value) -> Result<(), String> {
    match v.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
        None => Err("expected a command as a list: [\"test\", \"-e\", \"/path\"]".into()),
        Some(p) if p.is_empty() || p.starts_with('-') => Err(format!(
            "`{p}` is not a program (the first element names what runs)"
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("01777"), Some(0o1777));
        assert_eq!(parse_mode("0648"), None);
        assert_eq!(parse_mode(""), None);
        assert_eq!(parse_mode("077777"), None);
    }

    /// A symbolic mode is refused with what is accepted instead.
    #[test]
    fn a_symbolic_mode_says_what_is_accepted() {
        for m in ["u=rwx,g=rx,o=", "a+r", "go-w"] {
            let e = AttrType::Mode.check(&Value::from(m)).unwrap_err();
            assert!(e.contains("symbolic mode") && e.contains("\"0644\""), "{e}");
        }
        let e = AttrType::Mode.check(&Value::from("0648")).unwrap_err();
        assert!(e.contains("not an octal file mode"), "{e}");
    }

    #[test]
    fn parents_nearest_first() {
        assert_eq!(
            parent_dirs("/etc/nginx/sites/a.conf"),
            vec!["/etc/nginx/sites", "/etc/nginx", "/etc"]
        );
        assert!(parent_dirs("/etc").is_empty());
    }

    #[test]
    fn type_errors_say_what_was_expected() {
        let e = AttrType::Bool
            .check(&Value::String("yes".into()))
            .unwrap_err();
        assert_eq!(e, "expected a boolean (true or false), found a string");
        let e = AttrType::Enum(&["present", "absent"])
            .check(&Value::String("gone".into()))
            .unwrap_err();
        assert_eq!(e, "`gone` is not one of \"present\", \"absent\"");
    }

    #[test]
    fn paths_are_absolute_and_normal() {
        let check = |s: &str| AttrType::Path.check(&Value::String(s.into()));
        assert_eq!(check("/etc/x"), Ok(()));
        assert_eq!(check("/"), Ok(()));
        assert_eq!(
            check("/tmp/../etc/x").unwrap_err(),
            "`/tmp/../etc/x` is not in normal form (expected no `.` or `..` parts, no `//` and no trailing `/`)"
        );
        assert_eq!(
            check("tmp/x").unwrap_err(),
            "`tmp/x` is not an absolute path"
        );
        assert_eq!(
            check("/a\0b").unwrap_err(),
            "`/a\\0b` holds a NUL character"
        );
        for bad in ["/a/", "//a", "/a/./b", "/a/.."] {
            assert!(check(bad).is_err(), "{bad}");
        }
        let link = |s: &str| AttrType::LinkTarget.check(&Value::String(s.into()));
        assert_eq!(link("../x"), Ok(()));
        assert!(link("").is_err());
        assert!(link("a\0").is_err());
    }
}
