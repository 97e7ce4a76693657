//! `cron`: a job in `/etc/cron.d/NAME` — when it runs, as whom, what,
//! with which environment — or its absence.
//!
//! The file is cfgm's alone: a header naming the resource, the comment,
//! the environment lines (`NAME=value`, by name) and the job line
//! (`SCHEDULE USER COMMAND`), written atomically, mode 0644, owned by
//! root, as cron requires of /etc/cron.d. Everything cron would ignore or
//! read otherwise is refused at compile time, with its location: a file
//! name run-parts would skip, a schedule cron cannot parse, a command or
//! a value on more than one line. A `%` in the command is written `\%`, so
//! the command runs as written (cron would turn `%` into a newline).
//!
//! cron rereads /etc/cron.d on its own, nothing to refresh — but it sees a
//! change by the directory's modification time, to the second, so a job
//! written (or removed) in the very second cron started or reloaded would
//! go unseen until the next change: the one a fresh host makes when it
//! installs cron and its jobs in one run (seen in the module case). After
//! a change the directory is touched again once that second is over.
//! Installing cron is the `pkg` kind's job (a job comes after `pkg[cron]`
//! when declared).

use cfgm_core::schema::{parent_dirs, AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "cron",
    doc: "A cron job in /etc/cron.d/NAME: schedule, user, command, environment; or its absence.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt(
            "schedule",
            AttrType::Str,
            "when: five fields (minute hour day month weekday), e.g. \"*/10 * * * *\", or @daily, @reboot …",
        ),
        AttrSpec::opt("user", AttrType::Str, "who runs it (default root)"),
        AttrSpec::opt(
            "command",
            AttrType::Str,
            "what: one line, run by /bin/sh (`%` is taken literally)",
        ),
        AttrSpec::opt(
            "environment",
            AttrType::Table,
            "variables set for the job, e.g. { MAILTO = \"\" }",
        ),
        AttrSpec::opt("comment", AttrType::Str, "a comment line above the job"),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// What a schedule may be, for messages.
const SCHEDULES: &str = "five fields `minute hour day month weekday`, each `*`, `5`, `1-5`, \
    `1,15` or a step `*/10`, `1-30/5` (month and weekday also take names: `jan`, `mon`), \
    or one of @reboot @hourly @daily @weekly @monthly @yearly";

const KEYWORDS: &[&str] = &[
    "@reboot",
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field of a schedule: its name, bounds and the names it takes
/// (the first name stands for `low`).
struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        low: 0,
        high: 59,
        names: &[],
    },
    Field {
        name: "hour",
        low: 0,
        high: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        low: 1,
        high: 31,
        names: &[],
    },
    Field {
        name: "month",
        low: 1,
        high: 12,
        names: MONTHS,
    },
    // 0 and 7 are both Sunday.
    Field {
        name: "day of week",
        low: 0,
        high: 7,
        names: DAYS,
    },
];

impl Field {
    fn value(&self, s: &str) -> Result<u32, String> {
        if let Some(i) = self
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
        {
            return Ok(self.low + i as u32);
        }
        let n: u32 = match s.parse() {
            Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => n,
            _ if !self.names.is_empty() => {
                return Err(format!(
                    "{} `{s}` is not a number or a name like `{}`",
                    self.name, self.names[1]
                ))
            }
            _ => return Err(format!("{} `{s}` is not a number", self.name)),
        };
        if n < self.low || n > self.high {
            return Err(format!(
                "{} {n} is not in {}-{}",
                self.name, self.low, self.high
            ));
        }
        Ok(n)
    }

    /// One comma-separated item: `*`, `N`, `A-B`, optionally `/STEP`
    /// after `*` or a range (cron takes no step after a single value).
    fn item(&self, item: &str) -> Result<(), String> {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let ranged = match range {
            "*" => true,
            _ => match range.split_once('-') {
                Some((a, b)) if a.is_empty() || b.is_empty() => {
                    return Err(format!("{} range `{range}` lacks a bound", self.name))
                }
                Some((a, b)) => {
                    let (a, b) = (self.value(a)?, self.value(b)?);
                    if a > b {
                        return Err(format!(
                            "{} range `{range}` runs backwards",
                            self.name
                        ));
                    }
                    true
                }
                None => {
                    self.value(range)?;
                    false
                }
            },
        };
        if let Some(s) = step {
            if !ranged {
                return Err(format!(
                    "{} `{item}`: a step follows `*` or a range, e.g. `*/{s}`",
                    self.name
                ));
            }
            match s.parse::<u32>() {
                Ok(n) if n >= 1 && n <= self.high && s.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => {
                    return Err(format!(
                        "{} step `{s}` is not a number in 1-{}",
                        self.name, self.high
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Checks a schedule as cron (Debian's, vixie) reads it; `Err` says what
/// is wrong with it.
pub fn check_schedule(s: &str) -> Result<(), String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    if let [one] = fields.as_slice() {
        if one.starts_with('@') {
            return if KEYWORDS.contains(one) {
                Ok(())
            } else {
                Err(format!("`{one}` is not a cron keyword"))
            };
        }
    }
    if fields.len() != 5 {
        return Err(format!("{} fields, not 5", fields.len()));
    }
    for (f, text) in FIELDS.iter().zip(&fields) {
        for item in text.split(',') {
            if item.is_empty() {
                return Err(format!("{} `{text}` has an empty list item", f.name));
            }
            f.item(item)?;
        }
    }
    Ok(())
}

/// Whether run-parts (and so cron) reads a file of this name in
/// /etc/cron.d: letters, digits, `_` and `-` only.
fn is_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One line: no newline, no control character but tab.
fn one_line(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\t')
}

fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if !is_job_name(name) {
        out.push(Problem::resource(format!(
            "`{name}` is not a name cron reads in /etc/cron.d (letters, digits, `_` and `-`; \
             cron skips a file with a `.` or any other character)"
        )));
    }
    if crate::is_absent(attrs) {
        for a in ["schedule", "user", "command", "environment", "comment"] {
            if attrs.contains_key(a) {
                out.push(Problem::attr(
                    a,
                    format!("`{a}` makes no sense with ensure = \"absent\""),
                ));
            }
        }
        return out;
    }
    for a in ["schedule", "command"] {
        if !attrs.contains_key(a) {
            out.push(Problem::resource(format!(
                "a cron job needs `{a}` (or ensure = \"absent\")"
            )));
        }
    }
    if let Some(Value::String(s)) = attrs.get("schedule") {
        if let Err(e) = check_schedule(s) {
            out.push(Problem::attr(
                "schedule",
                format!("`{s}` is not a cron schedule ({e}); expected {SCHEDULES}"),
            ));
        }
    }
    if let Some(Value::String(u)) = attrs.get("user") {
        if !crate::is_account_name(u) {
            out.push(Problem::attr(
                "user",
                format!("`{u}` is not a user name ({})", crate::ACCOUNT_NAME),
            ));
        }
    }
    if let Some(Value::String(c)) = attrs.get("command") {
        if c.trim().is_empty() {
            out.push(Problem::attr("command", "the command is empty"));
        } else if !one_line(c) {
            out.push(Problem::attr(
                "command",
                "a cron command is one line (no newline or control characters)",
            ));
        }
    }
    if let Some(Value::String(c)) = attrs.get("comment") {
        if !one_line(c) {
            out.push(Problem::attr("comment", "a comment is one line"));
        }
    }
    if let Some(Value::Object(env)) = attrs.get("environment") {
        for (k, v) in env {
            let name_ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                out.push(Problem::attr(
                    "environment",
                    format!("`{k}` is not an environment variable name (letters, digits, `_`)"),
                ));
            }
            match v {
                Value::String(s) => {
                    if !one_line(s) || s.trim() != s || s.starts_with(['"', '\'']) {
                        out.push(Problem::attr(
                            "environment",
                            format!(
                                "{k}: cron takes a value on one line, without blanks at its \
                                 ends or a quote first"
                            ),
                        ));
                    }
                }
                Value::Number(_) | Value::Bool(_) => {}
                _ => out.push(Problem::attr(
                    "environment",
                    format!("{k}: expected a string, a number or a boolean"),
                )),
            }
        }
    }
    out
}

/// A job comes after the directory holding it and the cron package, when
/// they are declared, and after the user it runs as.
fn auto_deps(name: &str, attrs: &Attrs) -> Vec<AutoDep> {
    let mut out = vec![
        AutoDep {
            candidates: parent_dirs(&job_path(name))
                .into_iter()
                .map(|p| ResourceId::new("directory", p))
                .collect(),
        },
        AutoDep {
            candidates: vec![ResourceId::new("pkg", "cron")],
        },
    ];
    if let Some(Value::String(u)) = attrs.get("user") {
        out.push(AutoDep {
            candidates: vec![ResourceId::new("user", u)],
        });
    }
    out
}

/// Where a job lives.
fn job_path(name: &str) -> String {
    format!("/etc/cron.d/{name}")
}

// ---- behaviour -----------------------------------------------------------

use super::file::{meta_changes, MetaChange, Observed};
use crate::host::{Host, HostRead};
use crate::module::{content_summary, unified_diff, KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Cron>();

/// Makes a change of /etc/cron.d one that cron sees: cron compares the
/// directory's modification time, in whole seconds, with the time it had
/// when cron last loaded its jobs, so a change in the second of a load is
/// missed. Touched again after that second, the directory is newer than
/// any load that may have missed the change. (At most a second, and only
/// after a change.)
fn seen_by_cron(host: &Host) -> Result<(), ModuleError> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    // A little past the second: file times follow a coarse clock.
    let rest = Duration::from_nanos(u64::from(1_000_000_000 - into));
    std::thread::sleep(rest + Duration::from_millis(20));
    host.touch("/etc/cron.d")
}

/// A job file larger than this is compared by hash only (no unified diff).
const DIFF_LIMIT: usize = 1 << 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub environment: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Desired {
    fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("root")
    }

    /// The file as cron reads it.
    fn content(&self, name: &str) -> String {
        let mut s = format!("# cfgm: cron[{name}]; changes here are overwritten\n");
        if let Some(c) = &self.comment {
            s.push_str(&format!("# {c}\n"));
        }
        for (k, v) in self.environment.iter().flatten() {
            let v = match v {
                Value::String(s) if s.is_empty() => "\"\"".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            s.push_str(&format!("{k}={v}\n"));
        }
        let schedule = self.schedule.as_deref().unwrap_or("");
        let schedule: Vec<&str> = schedule.split_whitespace().collect();
        let command = self.command.as_deref().unwrap_or("").replace('%', "\\%");
        // cron ignores a last line without its newline.
        s.push_str(&format!(
            "{} {} {}\n",
            schedule.join(" "),
            self.user(),
            command.trim()
        ));
        s
    }
}

#[derive(Default)]
pub struct Cron;

/// How a job differs.
#[derive(Clone, Debug, PartialEq)]
pub enum CronChange {
    /// No file: the job is written.
    Create,
    /// A file (or something else, `was`) is there and must not be.
    Remove { was: String },
    /// Something else than a regular file is at the path.
    Type { was: String },
    /// The file says something else: size-and-hash summaries and a diff.
    Content {
        from: Option<String>,
        to: String,
        diff: Option<String>,
    },
    /// Not 0644 or not root's: cron would skip it.
    Meta(MetaChange),
}

impl KindChange for CronChange {
    fn show(&self) -> Change {
        match self {
            CronChange::Create => Change::new("ensure", Value::Null, "present"),
            CronChange::Remove { was } => Change::new("ensure", was.as_str(), "absent"),
            CronChange::Type { was } => Change::new("type", was.as_str(), "file"),
            CronChange::Content { from, to, diff } => {
                Change::new("content", from.clone(), to.as_str()).with_diff(diff.clone())
            }
            CronChange::Meta(m) => m.show(),
        }
    }
}

impl Module for Cron {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = CronChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        _: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        if !is_job_name(name) {
            return Err(ModuleError::Invalid(format!(
                "`{name}` is not a name cron reads in /etc/cron.d"
            )));
        }
        let path = job_path(name);
        let Some((m, bytes)) = host.lstat_read(&path)? else {
            return Ok(Observed::default());
        };
        let kind = if m.is_file {
            "file"
        } else if m.is_dir {
            "directory"
        } else if m.is_symlink {
            "symlink"
        } else {
            "other"
        };
        let mut o = Observed {
            exists: true,
            kind: Some(kind.into()),
            mode: Some(format!("{:04o}", m.mode)),
            owner: Some(host.user_name(m.uid)?),
            group: Some(host.group_name(m.gid)?),
            ..Observed::default()
        };
        if let Some(bytes) = bytes {
            o.hash = Some(blake3::hash(&bytes).to_hex().to_string());
            o.size = Some(bytes.len());
            if bytes.len() <= DIFF_LIMIT {
                o.content = String::from_utf8(bytes).ok();
            }
        }
        Ok(o)
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<CronChange> {
        let kind = o.kind.as_deref();
        if d.ensure.absent() {
            return match o.exists {
                true => vec![CronChange::Remove {
                    was: kind.unwrap_or("file").to_string(),
                }],
                false => vec![],
            };
        }
        let mut out = Vec::new();
        if !o.exists {
            out.push(CronChange::Create);
        } else if kind != Some("file") {
            out.push(CronChange::Type {
                was: kind.unwrap_or("other").to_string(),
            });
        }
        let want = d.content(name);
        let hash = blake3::hash(want.as_bytes()).to_hex().to_string();
        if o.hash.as_deref() != Some(hash.as_str()) {
            let path = job_path(name);
            out.push(CronChange::Content {
                from: o.hash.as_deref().zip(o.size).map(|(h, n)| content_summary(n, h)),
                to: content_summary(want.len(), &hash),
                diff: match &o.content {
                    Some(old) => Some(unified_diff(&path, old, &want)),
                    None if !o.exists => Some(unified_diff(&path, "", &want)),
                    None => None,
                },
            });
        }
        if o.exists {
            let meta = meta_changes(o, Some("0644"), Some("root"), Some("root"));
            out.extend(meta.into_iter().map(CronChange::Meta));
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[CronChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let (mut remove, mut write, mut chmod, mut chown) = (false, false, false, false);
        for c in changes {
            match c {
                CronChange::Remove { .. } => remove = true,
                CronChange::Create | CronChange::Type { .. } | CronChange::Content { .. } => {
                    write = true
                }
                CronChange::Meta(MetaChange::Mode { .. }) => chmod = true,
                CronChange::Meta(MetaChange::Owner { .. } | MetaChange::Group { .. }) => {
                    chown = true
                }
            }
        }
        let path = job_path(name);
        let now = host.lstat(&path)?;
        if remove {
            return match now {
                Some(m) if m.is_dir => Err(ModuleError::Invalid(format!(
                    "{path} is a directory; a cron job does not remove directories"
                ))),
                Some(_) => {
                    host.remove_file(&path)?;
                    seen_by_cron(host)
                }
                None => Ok(()),
            };
        }
        if d.ensure.absent() {
            return Ok(());
        }
        if now.is_some_and(|m| m.is_dir) {
            return Err(ModuleError::Invalid(format!(
                "{path} is a directory; refusing to replace it with a cron job"
            )));
        }
        if write {
            if !host.is_dir("/etc/cron.d") {
                return Err(ModuleError::Invalid(
                    "no /etc/cron.d: is cron installed? (declare pkg[cron])".into(),
                ));
            }
            let user = d.user();
            if host.uid(user)?.is_none() {
                return Err(ModuleError::Invalid(format!(
                    "no user `{user}` on the host (declare user[{user}])"
                )));
            }
            host.write_atomic(&path, d.content(name).as_bytes(), 0o644, 0, 0)?;
            return seen_by_cron(host);
        }
        if chmod {
            host.chmod(&path, 0o644)?;
        }
        if chown {
            host.chown(&path, Some(0), Some(0))?;
        }
        Ok(())
    }

    fn managed_paths(name: &str, _: &Desired) -> Vec<String> {
        vec![job_path(name)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn schedules_as_cron_reads_them() {
        for ok in [
            "* * * * *",
            "*/10 * * * *",
            "0 3 * * *",
            "0,15,30,45 8-18 * * mon-fri",
            "5 4 1 jan,JUL sun",
            "1-30/5 */2 1-31 1-12 0-7",
            "0 0 * * 7",
            "  0\t0 * *   * ",
            "@reboot",
            "@daily",
            "@annually",
        ] {
            assert_eq!(check_schedule(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("* * * *", "4 fields, not 5"),
            ("* * * * * *", "6 fields, not 5"),
            ("", "0 fields, not 5"),
            ("61 * * * *", "minute 61 is not in 0-59"),
            ("* 24 * * *", "hour 24 is not in 0-23"),
            ("* * 0 * *", "day of month 0 is not in 1-31"),
            ("* * * 13 *", "month 13 is not in 1-12"),
            ("* * * * 8", "day of week 8 is not in 0-7"),
            ("* * * june *", "month `june` is not a number or a name like `feb`"),
            ("* * * * monday", "day of week `monday` is not a number or a name like `mon`"),
            ("x * * * *", "minute `x` is not a number"),
            ("-1 * * * *", "minute range `-1` lacks a bound"),
            ("5/10 * * * *", "minute `5/10`: a step follows `*` or a range, e.g. `*/10`"),
            ("*/0 * * * *", "minute step `0` is not a number in 1-59"),
            ("*/x * * * *", "minute step `x` is not a number in 1-59"),
            ("10-5 * * * *", "minute range `10-5` runs backwards"),
            ("1,,2 * * * *", "minute `1,,2` has an empty list item"),
            ("@every", "`@every` is not a cron keyword"),
            ("@daily 1", "2 fields, not 5"),
        ] {
            assert_eq!(check_schedule(bad), Err(why.to_string()), "{bad}");
        }
    }

    fn problems(name: &str, attrs: Value) -> Vec<String> {
        let attrs: Attrs = serde_json::from_value(attrs).unwrap();
        check(name, &attrs)
            .into_iter()
            .map(|p| format!("{}: {}", p.attr.as_deref().unwrap_or("-"), p.message))
            .collect()
    }

    #[test]
    fn names_and_attributes_cron_would_misread_are_refused() {
        let job = json!({"schedule": "@daily", "command": "true"});
        assert!(problems("backup-db_2", job.clone()).is_empty());
        for name in ["backup.sh", "a/b", "", "..", "x y"] {
            assert_eq!(problems(name, job.clone()).len(), 1, "{name}");
        }
        let p = problems(
            "j",
            json!({
                "schedule": "* * * *", "command": "a\nb", "user": "-x",
                "environment": {"A B": "1", "PATH": " /bin", "OK": "x", "N": 1, "T": ["x"]},
            }),
        );
        assert_eq!(p.len(), 6, "{p:#?}");
        assert!(p[0].starts_with(
            "schedule: `* * * *` is not a cron schedule (4 fields, not 5); expected five fields"
        ));
        assert_eq!(
            problems("j", json!({"user": "bob"})),
            [
                "-: a cron job needs `schedule` (or ensure = \"absent\")",
                "-: a cron job needs `command` (or ensure = \"absent\")"
            ]
        );
        assert_eq!(
            problems("j", json!({"ensure": "absent", "command": "x"})),
            ["command: `command` makes no sense with ensure = \"absent\""]
        );
    }

    #[test]
    fn the_file_is_the_comment_the_environment_and_one_job_line() {
        let d: Desired = serde_json::from_value(json!({
            "schedule": " */5  * * * *", "user": "app", "command": "date +%s >> /tmp/t",
            "comment": "ticks", "environment": {"PATH": "/usr/bin:/bin", "MAILTO": "", "N": 3},
        }))
        .unwrap();
        assert_eq!(
            d.content("tick"),
            "# cfgm: cron[tick]; changes here are overwritten\n# ticks\n\
             MAILTO=\"\"\nN=3\nPATH=/usr/bin:/bin\n*/5 * * * * app date +\\%s >> /tmp/t\n"
        );
    }

    #[test]
    fn diff() {
        let want = "# cfgm: cron[tick]; changes here are overwritten\n0 3 * * * root true\n";
        let file = |content: &str, mode: &str, owner: &str| {
            json!({
                "exists": true, "kind": "file", "hash": blake3::hash(content.as_bytes()).to_hex().to_string(),
                "size": content.len(), "content": content, "mode": mode, "owner": owner, "group": "root",
            })
        };
        let job = json!({"schedule": "0 3 * * *", "command": "true"});
        diff_table(
            "cron",
            &[
                (
                    "tick",
                    job.clone(),
                    json!({"exists": false}),
                    &[
                        r#"ensure: null → "present""#,
                        r#"content: null → "69 bytes, blake3 246cac8f2be5" (diff)"#,
                    ],
                ),
                ("tick", job.clone(), file(want, "0644", "root"), &[]),
                (
                    "tick",
                    job.clone(),
                    file(&want.replace("0 3", "0 4"), "0664", "app"),
                    &[
                        r#"content: "69 bytes, blake3 b8dc7757fe59" → "69 bytes, blake3 246cac8f2be5" (diff)"#,
                        r#"mode: "0664" → "0644""#,
                        r#"owner: "app" → "root""#,
                    ],
                ),
                (
                    "tick",
                    job.clone(),
                    json!({"exists": true, "kind": "symlink", "mode": "0777", "owner": "root", "group": "root"}),
                    &[
                        r#"type: "symlink" → "file""#,
                        r#"content: null → "69 bytes, blake3 246cac8f2be5""#,
                        r#"mode: "0777" → "0644""#,
                    ],
                ),
                (
                    "tick",
                    json!({"ensure": "absent"}),
                    file(want, "0644", "root"),
                    &[r#"ensure: "file" → "absent""#],
                ),
                (
                    "tick",
                    json!({"ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
            ],
        );
    }
}
