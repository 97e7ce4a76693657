//! `line`: one line present (or absent) in a file, optionally replacing
//! the lines a regular expression matches.
//!
//! Edits an existing file (atomic write, mode and owner kept; every line
//! it does not own stays byte for byte, CRLF included); a missing file is
//! an error unless `create = true` (then it is made, 0644, root's). With
//! `match`, the matching line is replaced — the first (default), the last,
//! or all of them (`match_which`) — and when none matches the line is
//! inserted: at the end, or after the last line `insert_after` matches, or
//! before the first line `insert_before` matches ("BOF"/"EOF": the start
//! or the end of the file). With `backrefs = true`, `line` is a
//! replacement (`$1`, `${name}`) expanded from the matching lines, and
//! nothing is added when none matches. `ensure = "absent"` removes every
//! line equal to `line` or matching `match` (one of them is enough). Edits
//! of one file by several resources are serialised.

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, Claim, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

const WHICH: &[&str] = &["first", "last", "all"];

pub static SPEC: KindSpec = KindSpec {
    kind: "line",
    doc: "A line in a file: present (replacing the lines `match` finds) or absent.",
    attrs: &[
        AttrSpec::req("path", AttrType::Path, "the file to edit"),
        AttrSpec::opt(
            "line",
            AttrType::Str,
            "the whole line (required unless ensure = \"absent\" with `match`); with \
             backrefs, a replacement with $1, ${name}",
        ),
        AttrSpec::opt(
            "match",
            AttrType::Str,
            "a regular expression; the line(s) it matches are replaced (see match_which)",
        ),
        AttrSpec::opt(
            "match_which",
            AttrType::Enum(WHICH),
            "which matching line `match` replaces: \"first\" (default), \"last\" or \"all\"",
        ),
        AttrSpec::opt(
            "insert_after",
            AttrType::Str,
            "where a new line goes: after the last line this regular expression matches \
             (\"BOF\": first, \"EOF\": last, the default); at the end when none matches",
        ),
        AttrSpec::opt(
            "insert_before",
            AttrType::Str,
            "where a new line goes: before the first line this regular expression matches \
             (\"BOF\", \"EOF\"); at the end when none matches",
        ),
        AttrSpec::opt(
            "backrefs",
            AttrType::Bool,
            "`line` is expanded from each matching line's groups; no match, no change",
        ),
        AttrSpec::opt(
            "create",
            AttrType::Bool,
            "make the file (0644, root's) when it is missing",
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
    let has = |a: &str| attrs.contains_key(a);
    let yes = |a: &str| attrs.get(a) == Some(&Value::Bool(true));
    if let Some(Value::String(l)) = attrs.get("line") {
        if l.contains('\n') {
            out.push(Problem::attr("line", "a line cannot contain a newline"));
        }
    }
    if crate::is_absent(attrs) {
        if !has("line") && !has("match") {
            out.push(Problem::resource(
                "ensure = \"absent\" needs `line` or `match` to say which lines go",
            ));
        }
        for a in ["create", "insert_after", "insert_before", "backrefs"] {
            if has(a) {
                out.push(Problem::attr(
                    a,
                    format!("`{a}` makes no sense with ensure = \"absent\""),
                ));
            }
        }
    } else if !has("line") {
        out.push(Problem::resource(
            "a present line needs `line` (only ensure = \"absent\" goes without)",
        ));
    }
    if has("insert_after") && has("insert_before") {
        out.push(Problem::attr(
            "insert_before",
            "`insert_after` and `insert_before` exclude each other",
        ));
    }
    if yes("backrefs") && !has("match") {
        out.push(Problem::attr("backrefs", "`backrefs` needs `match`"));
    }
    if yes("backrefs") {
        for a in ["insert_after", "insert_before"] {
            if has(a) {
                out.push(Problem::attr(
                    a,
                    format!("`{a}` makes no sense with backrefs (such a line is only replaced)"),
                ));
            }
        }
    }
    if has("match_which") && !has("match") {
        out.push(Problem::attr("match_which", "`match_which` needs `match`"));
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
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Line>();

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub path: String,
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    #[serde(default)]
    pub match_which: Option<String>,
    #[serde(default)]
    pub insert_after: Option<String>,
    #[serde(default)]
    pub insert_before: Option<String>,
    #[serde(default)]
    pub backrefs: Option<bool>,
    #[serde(default)]
    pub create: Option<bool>,
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub secret: Option<bool>,
}

/// Where a new line goes.
enum Anchor {
    Bof,
    Eof,
    /// After the last line it matches.
    After(Regex),
    /// Before the first line it matches.
    Before(Regex),
}

/// The regular expressions of a `Desired`, compiled.
struct Patterns {
    matches: Option<Regex>,
    anchor: Anchor,
}

impl Desired {
    fn secret(&self) -> bool {
        self.secret == Some(true)
    }

    fn create(&self) -> bool {
        self.create == Some(true) && !self.ensure.absent()
    }

    fn backrefs(&self) -> bool {
        self.backrefs == Some(true)
    }

    fn line(&self) -> &str {
        self.line.as_deref().unwrap_or("")
    }

    fn regex(&self, attr: &str, p: &str) -> Result<Regex, ModuleError> {
        Regex::new(p).map_err(|e| {
            // The regex crate's message spans lines (pattern, caret,
            // error); its last line says what is wrong.
            let e = e.to_string();
            let what = e.lines().last().unwrap_or("");
            let what = what.trim_start_matches("error: ");
            let p = if self.secret() { "(secret)" } else { p };
            ModuleError::Invalid(format!("{attr}: bad regular expression `{p}`: {what}"))
        })
    }

    fn patterns(&self) -> Result<Patterns, ModuleError> {
        let matches = match &self.pattern {
            Some(p) => Some(self.regex("match", p)?),
            None => None,
        };
        let anchor = match (self.insert_after.as_deref(), self.insert_before.as_deref()) {
            (Some("BOF"), _) | (_, Some("BOF")) => Anchor::Bof,
            (Some("EOF"), _) | (_, Some("EOF")) | (None, None) => Anchor::Eof,
            (Some(a), _) => Anchor::After(self.regex("insert_after", a)?),
            (None, Some(b)) => Anchor::Before(self.regex("insert_before", b)?),
        };
        Ok(Patterns { matches, anchor })
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
    /// The file is missing, and something of the catalog is to make it
    /// first (a `file`, a package): the line cannot be planned yet.
    NoFile { line: String, secret: bool },
    /// The file is missing and `create` makes it.
    CreateFile { path: String },
    /// The line is added, or replaces the line(s) `match` found.
    Add {
        line: String,
        replaces: Option<String>,
        diff: String,
        secret: bool,
    },
    /// These lines are removed.
    Remove {
        lines: Vec<String>,
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
            LineChange::CreateFile { path } => Change::new("create", Value::Null, path.as_str()),
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
                lines,
                diff: d,
                secret,
            } => {
                let from = match lines.as_slice() {
                    [one] => Value::from(one.as_str()),
                    many => Value::from(many.to_vec()),
                };
                Change::new("line", shown(from, *secret), Value::Null).with_diff(diff(d, *secret))
            }
        }
    }
}

/// Held while a file is read, edited and written back.
static EDITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A file's lines as they are: each line's text and its own ending
/// (`"\n"`, `"\r\n"`, or `""` for a last line without one), so that an
/// edit puts back every line it does not own byte for byte.
struct Lines {
    items: Vec<(String, &'static str)>,
    /// The ending new lines get: the file's first line's (`"\n"` when the
    /// file has none).
    eol: &'static str,
}

impl Lines {
    fn of(text: &str) -> Self {
        let items: Vec<(String, &'static str)> = text
            .split_inclusive('\n')
            .map(|l| {
                if let Some(b) = l.strip_suffix("\r\n") {
                    (b.to_string(), "\r\n")
                } else if let Some(b) = l.strip_suffix('\n') {
                    (b.to_string(), "\n")
                } else {
                    (l.to_string(), "")
                }
            })
            .collect();
        let eol = match items.first() {
            Some((_, "\r\n")) => "\r\n",
            _ => "\n",
        };
        Lines { items, eol }
    }

    /// Adds a line at `at`; a line before it without an ending gets one.
    fn insert(&mut self, at: usize, line: &str) {
        if at > 0 {
            if let Some(prev) = self.items.get_mut(at - 1) {
                if prev.1.is_empty() {
                    prev.1 = self.eol;
                }
            }
        }
        self.items.insert(at, (line.to_string(), self.eol));
    }

    fn has(&self, line: &str) -> bool {
        self.items.iter().any(|(l, _)| l == line)
    }

    fn matching(&self, r: &Regex) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&i| r.is_match(&self.items[i].0))
            .collect()
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (b, e) in &self.items {
            s.push_str(b);
            s.push_str(e);
        }
        s
    }
}

/// What an edit did: the new text, the lines it replaced or removed (their
/// old text), and the first line it wrote.
struct Edit {
    text: String,
    old: Vec<String>,
    new: Option<String>,
}

/// The file's text after the edit `d` asks for (the same text when nothing
/// is to be done). Pure: shared by `diff` and `apply`. Lines the edit does
/// not touch keep their bytes, line endings included.
fn edit(d: &Desired, p: &Patterns, text: &str) -> Edit {
    let mut lines = Lines::of(text);
    let mut old = Vec::new();
    let mut new = None;
    let unchanged = |old, new| Edit {
        text: text.to_string(),
        old,
        new,
    };
    if d.ensure.absent() {
        lines.items.retain(|(l, _)| {
            let goes = d.line.as_deref() == Some(l.as_str())
                || p.matches.as_ref().is_some_and(|r| r.is_match(l));
            if goes {
                old.push(l.clone());
            }
            !goes
        });
        if old.is_empty() {
            return unchanged(old, new);
        }
        return Edit {
            text: lines.text(),
            old,
            new,
        };
    }
    let targets: Vec<usize> = match &p.matches {
        None => Vec::new(),
        Some(r) => {
            let all = lines.matching(r);
            match d.match_which.as_deref() {
                Some("all") => all,
                Some("last") => all.last().copied().into_iter().collect(),
                _ => all.first().copied().into_iter().collect(),
            }
        }
    };
    if d.backrefs() {
        let r = p.matches.as_ref().expect("backrefs has match (spec)");
        for i in targets {
            let body = lines.items[i].0.clone();
            let mut to = String::new();
            if let Some(caps) = r.captures(&body) {
                caps.expand(d.line(), &mut to);
            }
            if to != body {
                old.push(body);
                new.get_or_insert_with(|| to.clone());
                lines.items[i].0 = to;
            }
        }
    } else {
        let line = d.line();
        // One line wanted (first/last): there already, nothing to do.
        if d.match_which.as_deref() != Some("all") && lines.has(line) {
            return unchanged(old, new);
        }
        if !targets.is_empty() {
            for i in targets {
                if lines.items[i].0 != line {
                    old.push(std::mem::replace(&mut lines.items[i].0, line.to_string()));
                    new = Some(line.to_string());
                }
            }
        } else if !lines.has(line) {
            let at = match &p.anchor {
                Anchor::Bof => 0,
                Anchor::Eof => lines.items.len(),
                Anchor::After(r) => lines
                    .matching(r)
                    .last()
                    .map_or(lines.items.len(), |i| i + 1),
                Anchor::Before(r) => lines
                    .matching(r)
                    .first()
                    .copied()
                    .unwrap_or(lines.items.len()),
            };
            lines.insert(at, line);
            new = Some(line.to_string());
        }
    }
    if new.is_none() {
        return unchanged(old, new);
    }
    Edit {
        text: lines.text(),
        old,
        new,
    }
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
        d.patterns()?;
        // What apply would refuse, refused here too: a dry run sees it. A
        // missing file that a resource of the catalog makes (a `file`, a
        // package) is a change, not a failure.
        Ok(match host.lstat_read(&d.path)? {
            None if d.create() => {
                crate::parent_there(host, ("line", name), &d.path, ctx)?;
                Observed::default()
            }
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
        // The patterns were checked by observe; invalid ones plan nothing.
        let Ok(p) = d.patterns() else {
            return vec![];
        };
        let mut out = Vec::new();
        if !o.exists {
            if d.ensure.absent() {
                return out;
            }
            if !d.create() {
                return vec![LineChange::NoFile {
                    line: d.line().to_string(),
                    secret: d.secret(),
                }];
            }
            out.push(LineChange::CreateFile {
                path: d.path.clone(),
            });
        }
        let old = o.content.as_deref().unwrap_or("");
        let e = edit(d, &p, old);
        if e.text == old {
            return out;
        }
        let diff = unified_diff(&d.path, old, &e.text);
        if d.ensure.absent() {
            out.push(LineChange::Remove {
                lines: e.old,
                diff,
                secret: d.secret(),
            });
            return out;
        }
        out.push(LineChange::Add {
            line: e.new.unwrap_or_default(),
            replaces: e.old.into_iter().next(),
            diff,
            secret: d.secret(),
        });
        out
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
        let p = d.patterns()?;
        // Several line resources may edit one file, and the engine runs
        // independent resources in parallel: the read-modify-write is
        // serialised so that no edit overwrites another.
        let _guard = EDITS.lock().unwrap_or_else(|e| e.into_inner());
        let (meta, old) = match host.lstat(&d.path)? {
            Some(m) if m.is_file => {
                let bytes = host.read(&d.path)?.unwrap_or_default();
                let old = String::from_utf8(bytes).map_err(|_| {
                    ModuleError::Invalid(format!("{} is not a text file (not utf-8)", d.path))
                })?;
                (Some(m), old)
            }
            Some(_) => return Err(not_a_regular_file(d)),
            None if d.create() => (None, String::new()),
            None => return Err(no_such_file(d)),
        };
        let new = edit(d, &p, &old).text;
        match meta {
            Some(_) if new == old => Ok(()),
            Some(m) => host.write_atomic(&d.path, new.as_bytes(), m.mode, m.uid, m.gid),
            // `create`: a new file, root's, 0644.
            None => host.write_atomic(&d.path, new.as_bytes(), 0o644, 0, 0),
        }
    }

    /// The file it edits: a purging directory keeps it.
    fn managed_paths(_name: &str, d: &Desired) -> Vec<String> {
        vec![d.path.clone()]
    }
}

fn no_such_file(d: &Desired) -> ModuleError {
    ModuleError::Invalid(format!(
        "{}: no such file (declare file[{}] to create it, or set create = true)",
        d.path, d.path
    ))
}

/// A symlink, a directory, a device: a line edits regular files only
/// (never through a link).
fn not_a_regular_file(d: &Desired) -> ModuleError {
    ModuleError::Invalid(format!("{} is not a regular file", d.path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    fn d(line: &str, pattern: Option<&str>, absent: bool) -> Desired {
        Desired {
            path: "/f".into(),
            line: Some(line.into()),
            pattern: pattern.map(str::to_string),
            ensure: crate::Ensure(absent.then(|| "absent".to_string())),
            ..Desired::default()
        }
    }

    fn check(d: &Desired, old: &str, new: &str) {
        let p = d.patterns().unwrap();
        assert_eq!(edit(d, &p, old).text, new, "{d:?} on {old:?}");
        // A second edit changes nothing.
        assert_eq!(edit(d, &p, new).text, new, "{d:?} twice");
    }

    /// insert_after / insert_before (regex, BOF, EOF), match_which,
    /// backrefs, absent by pattern alone.
    #[test]
    fn placement_and_choices() {
        let with = |f: &dyn Fn(&mut Desired), line: &str, pattern: Option<&str>| {
            let mut d = d(line, pattern, false);
            f(&mut d);
            d
        };
        let after = |a: &str| {
            let a = a.to_string();
            move |d: &mut Desired| d.insert_after = Some(a.clone())
        };
        let before = |b: &str| {
            let b = b.to_string();
            move |d: &mut Desired| d.insert_before = Some(b.clone())
        };
        let text = "[a]\nx=1\n[b]\ny=1\n";
        check(&with(&after("^\\[a\\]"), "n=2", None), text, "[a]\nn=2\nx=1\n[b]\ny=1\n");
        check(&with(&before("^\\["), "n=2", None), text, "n=2\n[a]\nx=1\n[b]\ny=1\n");
        check(&with(&after("BOF"), "n=2", None), text, "n=2\n[a]\nx=1\n[b]\ny=1\n");
        check(&with(&before("EOF"), "n=2", None), text, "[a]\nx=1\n[b]\ny=1\nn=2\n");
        // The last line an insert_after matches; no match: the end.
        check(&with(&after("=1$"), "n=2", None), text, "[a]\nx=1\n[b]\ny=1\nn=2\n");
        check(&with(&after("^nothing"), "n=2", None), "a", "a\nn=2\n");
        // A match wins over the anchor.
        check(&with(&after("BOF"), "x=2", Some("^x=")), text, "[a]\nx=2\n[b]\ny=1\n");
        // Which match: first (default), last, all.
        let t = "k=1\nk=2\nk=3\n";
        check(&d("k=0", Some("^k="), false), t, "k=0\nk=2\nk=3\n");
        let which = |w: &str| {
            let w = w.to_string();
            move |d: &mut Desired| d.match_which = Some(w.clone())
        };
        check(&with(&which("last"), "k=0", Some("^k=")), t, "k=1\nk=2\nk=0\n");
        check(&with(&which("all"), "k=0", Some("^k=")), t, "k=0\nk=0\nk=0\n");
        // Backrefs: expanded per matching line; no match, no change.
        // (With `first`, a replaced line that no longer matches leaves the
        // next match to the next run: `all` converges in one.)
        let br = |d: &mut Desired| {
            d.backrefs = Some(true);
            d.match_which = Some("all".into());
        };
        check(
            &with(&br, "${1}=yes", Some("^(\\w+)=no$")),
            "a=no\nb=no\nc=1\n",
            "a=yes\nb=yes\nc=1\n",
        );
        check(&with(&br, "${1}=yes", Some("^(\\w+)=no$")), "c=1\n", "c=1\n");
        // Absent by pattern alone.
        let mut gone = d("", Some("^#"), true);
        gone.line = None;
        check(&gone, "#a\nb\n#c\n", "b\n");
    }

    /// The attribute rules, as the compiler applies them.
    #[test]
    fn attribute_rules() {
        let problems = |v: serde_json::Value| -> Vec<String> {
            let attrs = serde_json::from_value(v).unwrap();
            super::check("l", &attrs)
                .into_iter()
                .map(|p| p.message)
                .collect()
        };
        assert!(problems(json!({"path": "/f", "match": "^#", "ensure": "absent"})).is_empty());
        assert!(problems(json!({"path": "/f"}))[0].contains("needs `line`"));
        assert!(problems(json!({"path": "/f", "ensure": "absent"}))[0].contains("`line` or `match`"));
        assert!(problems(json!({"path": "/f", "line": "x", "backrefs": true}))[0]
            .contains("needs `match`"));
        assert!(problems(
            json!({"path": "/f", "line": "x", "insert_after": "a", "insert_before": "b"})
        )[0]
        .contains("exclude each other"));
        assert!(problems(json!({"path": "/f", "line": "x", "match_which": "all"}))[0]
            .contains("needs `match`"));
        assert!(
            problems(json!({"path": "/f", "line": "x", "ensure": "absent", "create": true}))[0]
                .contains("makes no sense")
        );
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
