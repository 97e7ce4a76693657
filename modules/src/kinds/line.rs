//! `line`: one line present (or absent) in a file, optionally replacing
//! the line a regular expression matches.
//!
//! Edits an existing file in place (atomic write, mode and owner kept);
//! creating the file is the `file` kind's job, so a missing file is an
//! error. With `match`, the first matching line is replaced (or the line
//! appended when none matches); absent removes every line equal to `line`
//! or matching `match`. Edits of one file by several resources are
//! serialised.

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, Claim, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "line",
    doc: "A line in a file: present (replacing the line `match` finds) or absent.",
    attrs: &[
        AttrSpec::req("path", AttrType::Path, "the file to edit"),
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
        AttrSpec::opt(
            "secret",
            AttrType::Bool,
            "never show the line or the pattern (plans show a hash)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &["line", "match"],
    check,
    auto_deps,
    claims,
};

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    // `path` is absolute and in normal form by its type.
    let mut out = Vec::new();
    if let Some(Value::String(l)) = attrs.get("line") {
        if l.contains('\n') {
            out.push(Problem::attr("line", "a line cannot contain a newline"));
        }
    }
    out
}

/// A line edits part of its file.
fn claims(_name: &str, attrs: &Attrs) -> Vec<Claim> {
    match attrs.get("path") {
        Some(Value::String(p)) => vec![Claim::Edits(p.clone())],
        _ => Vec::new(),
    }
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

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{unified_diff, KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Line>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub path: String,
    pub line: String,
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub secret: Option<bool>,
}

impl Desired {
    fn secret(&self) -> bool {
        self.secret == Some(true)
    }

    fn regex(&self) -> Result<Option<regex::Regex>, ModuleError> {
        self.pattern
            .as_deref()
            .map(|p| {
                regex::Regex::new(p).map_err(|e| {
                    // The regex crate's message spans lines (pattern, caret,
                    // error); its last line says what is wrong.
                    let e = e.to_string();
                    let what = e.lines().last().unwrap_or("");
                    let what = what.trim_start_matches("error: ");
                    let p = if self.secret() { "(secret)" } else { p };
                    ModuleError::Invalid(format!("match: bad regular expression `{p}`: {what}"))
                })
            })
            .transpose()
    }
}

/// The file's text, kept so that `diff` can compute the edit (and show it).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Default)]
pub struct Line;

/// How a file differs from having (or not having) the line.
#[derive(Clone, Debug, PartialEq)]
pub enum LineChange {
    /// The file is missing: the line cannot be added (apply says so).
    NoFile { line: String, secret: bool },
    /// The line is added, replacing the line `match` found if any.
    Add {
        line: String,
        replaces: Option<String>,
        diff: String,
        secret: bool,
    },
    /// The line (and lines `match` finds) are removed.
    Remove {
        line: String,
        diff: String,
        secret: bool,
    },
}

impl KindChange for LineChange {
    /// A secret line shows as a hash on each side, and without a diff: the
    /// file around the line may hold the secret too.
    fn show(&self) -> Change {
        let shown = |v: Value, secret: bool| match (v, secret) {
            (Value::Null, _) => Value::Null,
            (v, true) => Value::String(cfgm_core::catalog::secret_text(&v)),
            (v, false) => v,
        };
        let diff = |d: &String, secret: bool| (!secret).then(|| d.clone());
        match self {
            LineChange::NoFile { line, secret } => {
                Change::new("line", Value::Null, shown(line.as_str().into(), *secret))
            }
            LineChange::Add {
                line,
                replaces,
                diff: d,
                secret,
            } => Change::new(
                "line",
                shown(replaces.clone().into(), *secret),
                shown(line.as_str().into(), *secret),
            )
            .with_diff(diff(d, *secret)),
            LineChange::Remove {
                line,
                diff: d,
                secret,
            } => Change::new("line", shown(line.as_str().into(), *secret), Value::Null)
                .with_diff(diff(d, *secret)),
        }
    }
}

fn no_such_file(d: &Desired) -> ModuleError {
    ModuleError::Invalid(format!(
        "{}: no such file (declare file[{}] to create it)",
        d.path, d.path
    ))
}

/// A symlink, a directory, a device: a line edits regular files only
/// (never through a link).
fn not_a_regular_file(d: &Desired) -> ModuleError {
    ModuleError::Invalid(format!("{} is not a regular file", d.path))
}

/// Held while a file is read, edited and written back.
static EDITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A file's lines as they are: each line's text and its own ending
/// (`"\n"`, `"\r\n"`, or `""` for a last line without one), so that an
/// edit puts back every line it does not own byte for byte.
struct Lines<'a> {
    items: Vec<(&'a str, &'a str)>,
    /// The ending new lines get: the file's first line's (`"\n"` when the
    /// file has none).
    eol: &'static str,
}

impl<'a> Lines<'a> {
    fn of(text: &'a str) -> Self {
        let items: Vec<(&str, &str)> = text
            .split_inclusive('\n')
            .map(|l| {
                if let Some(b) = l.strip_suffix("\r\n") {
                    (b, "\r\n")
                } else if let Some(b) = l.strip_suffix('\n') {
                    (b, "\n")
                } else {
                    (l, "")
                }
            })
            .collect();
        let eol = match items.first() {
            Some((_, "\r\n")) => "\r\n",
            _ => "\n",
        };
        Lines { items, eol }
    }

    /// Adds a line at `at`; a last line without an ending gets one first.
    fn insert(&mut self, at: usize, line: &'a str) {
        if at > 0 && at == self.items.len() {
            if let Some(last) = self.items.last_mut() {
                if last.1.is_empty() {
                    last.1 = self.eol;
                }
            }
        }
        self.items.insert(at, (line, self.eol));
    }

    fn text(&self) -> String {
        self.items.iter().flat_map(|(b, e)| [*b, *e]).collect()
    }
}

/// The file's text after the edit `d` asks for (the same text when nothing
/// is to be done). Pure: shared by `diff` and `apply`. Lines the edit does
/// not touch keep their bytes, line endings included.
fn edit(d: &Desired, re: Option<&regex::Regex>, text: &str) -> String {
    let mut lines = Lines::of(text);
    let before = lines.items.len();
    if d.ensure.absent() {
        lines
            .items
            .retain(|(l, _)| *l != d.line && !re.is_some_and(|r| r.is_match(l)));
        if lines.items.len() == before {
            return text.to_string();
        }
    } else if lines.items.iter().any(|(l, _)| *l == d.line) {
        return text.to_string();
    } else {
        match re.and_then(|r| lines.items.iter().position(|(l, _)| r.is_match(l))) {
            // The replaced line keeps its ending.
            Some(i) => lines.items[i].0 = &d.line,
            None => lines.insert(lines.items.len(), &d.line),
        }
    }
    lines.text()
}

impl Module for Line {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = LineChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        d.regex()?;
        // What apply would refuse, refused here too: a dry run sees it. A
        // missing file that a `file` resource of the catalog makes is a
        // change, not a failure.
        Ok(match host.lstat_read(&d.path)? {
            None if d.ensure.absent()
                || ctx.declares("file", &d.path)
                || ctx.comes_after("line", name, crate::MAKERS) =>
            {
                Observed::default()
            }
            None => return Err(no_such_file(d)),
            Some((m, _)) if !m.is_file => return Err(not_a_regular_file(d)),
            Some((_, b)) => Observed {
                exists: true,
                content: Some(String::from_utf8(b.unwrap_or_default()).map_err(|_| {
                    ModuleError::Invalid(format!("{} is not a text file (not utf-8)", d.path))
                })?),
            },
        })
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<LineChange> {
        // The regex was checked by observe; an invalid one matches nothing here.
        let re = d.regex().ok().flatten();
        if !o.exists {
            return if d.ensure.absent() {
                vec![]
            } else {
                vec![LineChange::NoFile {
                    line: d.line.clone(),
                    secret: d.secret(),
                }]
            };
        }
        let old = o.content.as_deref().unwrap_or("");
        let new = edit(d, re.as_ref(), old);
        if new == old {
            return vec![];
        }
        let diff = unified_diff(&d.path, old, &new);
        if d.ensure.absent() {
            return vec![LineChange::Remove {
                line: d.line.clone(),
                diff,
                secret: d.secret(),
            }];
        }
        let replaces = re
            .as_ref()
            .and_then(|r| old.lines().find(|l| r.is_match(l)))
            .map(str::to_string);
        vec![LineChange::Add {
            line: d.line.clone(),
            replaces,
            diff,
            secret: d.secret(),
        }]
    }

    /// The edit is made again from the file as it is now, under the lock
    /// that serialises edits of one file: another line resource may have
    /// changed it since it was observed, and the observed text must not
    /// overwrite that. Every change comes to the same: `edit`.
    fn apply(
        &self,
        host: &Host,
        _name: &str,
        d: &Desired,
        _: &[LineChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let re = d.regex()?;
        // Several line resources may edit one file, and the engine runs
        // independent resources in parallel: the read-modify-write is
        // serialised so that no edit overwrites another.
        let _guard = EDITS.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = match host.lstat(&d.path)? {
            Some(m) if m.is_file => host.read(&d.path)?.map(|b| (m, b)),
            Some(_) => return Err(not_a_regular_file(d)),
            None => None,
        };
        let Some((meta, bytes)) = bytes else {
            return Err(no_such_file(d));
        };
        let old = String::from_utf8(bytes).map_err(|_| {
            ModuleError::Invalid(format!("{} is not a text file (not utf-8)", d.path))
        })?;
        let new = edit(d, re.as_ref(), &old);
        if new == old {
            return Ok(());
        }
        host.write_atomic(&d.path, new.as_bytes(), meta.mode, meta.uid, meta.gid)
    }

    /// The file it edits: a purging directory keeps it.
    fn managed_paths(_name: &str, d: &Desired) -> Vec<String> {
        vec![d.path.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    fn d(line: &str, pattern: Option<&str>, absent: bool) -> Desired {
        Desired {
            path: "/f".into(),
            line: line.into(),
            pattern: pattern.map(str::to_string),
            ensure: crate::Ensure(absent.then(|| "absent".to_string())),
            secret: None,
        }
    }

    fn check(d: &Desired, old: &str, new: &str) {
        let re = d.regex().unwrap();
        assert_eq!(edit(d, re.as_ref(), old), new, "{d:?} on {old:?}");
        // A second edit changes nothing.
        assert_eq!(edit(d, re.as_ref(), new), new, "{d:?} twice");
    }

    #[test]
    fn a_secret_line_is_never_shown() {
        let mut d = d("token = S3CRET", Some("^token"), false);
        d.secret = Some(true);
        for old in [None, Some("a\ntoken = OLD-S3CRET\n")] {
            let o = Observed {
                exists: old.is_some(),
                content: old.map(str::to_string),
            };
            let shown: Vec<_> = Line::diff("l", &d, &o).iter().map(KindChange::show).collect();
            let c = serde_json::to_string(&shown).unwrap();
            assert!(
                !c.contains("S3CRET") && c.contains("(secret, blake3 "),
                "{c}"
            );
        }
    }

    #[test]
    fn edits() {
        check(&d("b", None, false), "a\n", "a\nb\n");
        check(&d("b", None, false), "a", "a\nb\n");
        check(&d("b", None, false), "", "b\n");
        check(&d("b", None, false), "b", "b");
        check(
            &d("x = 2", Some("^x\\s*="), false),
            "x=1\ny\nx=3\n",
            "x = 2\ny\nx=3\n",
        );
        check(&d("x = 2", Some("^x\\s*="), false), "y\n", "y\nx = 2\n");
        check(
            &d("x = 2", Some("^x\\s*="), false),
            "x = 2\nx=1\n",
            "x = 2\nx=1\n",
        );
        check(&d("b", None, true), "a\nb\nc\nb\n", "a\nc\n");
        check(&d("b", Some("^c"), true), "a\nb\nc1\n", "a\n");
        check(&d("b", None, true), "a\n", "a\n");
        check(&d("b", None, true), "b\n", "");
    }

    /// Lines the resource does not own stay byte for byte: CRLF endings,
    /// a last line without an ending, a stray `\r` inside a line.
    #[test]
    fn line_endings_are_kept() {
        check(&d("c", None, false), "a\r\nb\r\n", "a\r\nb\r\nc\r\n");
        check(&d("c", None, false), "a\r\nb", "a\r\nb\r\nc\r\n");
        check(&d("c", None, false), "a\nb\r\n", "a\nb\r\nc\n");
        check(&d("b", None, false), "a\r\nb\r\n", "a\r\nb\r\n");
        check(
            &d("x = 2", Some("^x="), false),
            "x=1\r\ny\r\n",
            "x = 2\r\ny\r\n",
        );
        check(&d("b", None, true), "a\r\nb\r\nc\rd\n", "a\r\nc\rd\n");
        check(&d("b", None, true), "a\nb", "a\n");
    }

    #[test]
    fn diff() {
        let text = |t: &str| json!({"exists": true, "content": t});
        diff_table(
            "line",
            &[
                (
                    "l",
                    json!({"path": "/f", "line": "b"}),
                    json!({"exists": false}),
                    &[r#"line: null → "b""#],
                ),
                (
                    "l",
                    json!({"path": "/f", "line": "b", "ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
                (
                    "l",
                    json!({"path": "/f", "line": "b"}),
                    text("a\n"),
                    &[r#"line: null → "b" (diff)"#],
                ),
                (
                    "l",
                    json!({"path": "/f", "line": "b"}),
                    text("a\nb\n"),
                    &[],
                ),
                (
                    "l",
                    json!({"path": "/f", "line": "x = 2", "match": "^x\\s*="}),
                    text("x=1\ny\n"),
                    &[r#"line: "x=1" → "x = 2" (diff)"#],
                ),
                (
                    "l",
                    json!({"path": "/f", "line": "b", "ensure": "absent"}),
                    text("a\nb\n"),
                    &[r#"line: "b" → null (diff)"#],
                ),
            ],
        );
    }

    #[test]
    fn a_missing_file_is_a_change_for_present_only() {
        let o = Observed::default();
        assert_eq!(
            Line::diff("n", &d("b", None, false), &o),
            [LineChange::NoFile {
                line: "b".into(),
                secret: false
            }]
        );
        assert!(Line::diff("n", &d("b", None, true), &o).is_empty());
    }
}
