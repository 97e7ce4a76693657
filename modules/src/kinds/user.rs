//! `user`: a local user account with its uid, primary and supplementary
//! groups, shell, home, comment and ssh authorized keys.
//!
//! Observes by parsing the root's /etc/passwd and /etc/group; changes go
//! through the shadow tools (useradd, usermod, userdel), run via the host
//! (through chroot for another root). `ssh_keys` are exactly the lines of
//! HOME/.ssh/authorized_keys (file 0600, directory 0700, owned by the
//! user), written atomically. Passwords and groups' own attributes are not
//! managed here (groups are the `group` kind).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, AutoDep, KindSpec, Problem};
use cfgm_core::ResourceId;
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "user",
    doc: "A local user: uid, primary group, groups, shell, home, ssh authorized keys.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("uid", AttrType::Int, "numeric user id"),
        AttrSpec::opt("group", AttrType::Str, "primary group name"),
        AttrSpec::opt(
            "groups",
            AttrType::StrList,
            "supplementary groups (exactly these)",
        ),
        AttrSpec::opt("shell", AttrType::Path, "login shell, e.g. \"/bin/bash\""),
        AttrSpec::opt(
            "home",
            AttrType::Path,
            "home directory (default /home/NAME)",
        ),
        AttrSpec::opt(
            "move_home",
            AttrType::Bool,
            "when `home` changes, move the old home's content there (usermod --move-home; \
             the new place must not exist yet); without it only /etc/passwd changes",
        ),
        AttrSpec::opt("comment", AttrType::Str, "the GECOS field"),
        AttrSpec::opt(
            "system",
            AttrType::Bool,
            "a system account (only when created)",
        ),
        AttrSpec::opt(
            "ssh_keys",
            AttrType::StrList,
            "authorized ssh public keys (exactly these)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// Everything here reaches useradd/usermod/userdel or /etc/passwd: names
/// that cannot be read as options or ids, paths and a comment that cannot
/// break a passwd line.
fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if !crate::is_account_name(name) {
        out.push(Problem::resource(format!(
            "`{name}` is not a user name ({})",
            crate::ACCOUNT_NAME
        )));
    }
    if let Some(Value::String(g)) = attrs.get("group") {
        if !crate::is_account_name(g) {
            out.push(Problem::attr(
                "group",
                format!("`{g}` is not a group name ({})", crate::ACCOUNT_NAME),
            ));
        }
    }
    if let Some(Value::Array(gs)) = attrs.get("groups") {
        for g in gs.iter().filter_map(Value::as_str) {
            if !crate::is_account_name(g) {
                out.push(Problem::attr(
                    "groups",
                    format!("`{g}` is not a group name ({})", crate::ACCOUNT_NAME),
                ));
            }
        }
    }
    for attr in ["shell", "home"] {
        if let Some(Value::String(p)) = attrs.get(attr) {
            if !crate::is_plain_abs_path(p) {
                out.push(Problem::attr(
                    attr,
                    format!("`{p}` is not an absolute path in normal form without `:`"),
                ));
            }
        }
    }
    if let Some(Value::String(c)) = attrs.get("comment") {
        if c.contains(':') || c.chars().any(char::is_control) {
            out.push(Problem::attr(
                "comment",
                "a comment cannot hold `:` or control characters (it is a passwd field)",
            ));
        }
    }
    if let Some(Value::Number(n)) = attrs.get("uid") {
        if n.as_i64()
            .is_none_or(|u| !(0..=u32::MAX as i64 - 1).contains(&u))
        {
            out.push(Problem::attr("uid", "a uid is between 0 and 4294967294"));
        }
    }
    if let Some(Value::Array(keys)) = attrs.get("ssh_keys") {
        for k in keys.iter().filter_map(Value::as_str) {
            let ok = k.split_whitespace().count() >= 2
                && (k.starts_with("ssh-") || k.starts_with("ecdsa-") || k.starts_with("sk-"));
            if !ok {
                out.push(Problem::attr(
                    "ssh_keys",
                    format!("`{}` is not an ssh public key", short(k)),
                ));
            }
        }
    }
    out
}

fn short(s: &str) -> String {
    if s.len() > 24 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(24).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}

/// A user comes after the groups it names.
fn auto_deps(_name: &str, attrs: &Attrs) -> Vec<AutoDep> {
    let mut out = Vec::new();
    if let Some(Value::String(g)) = attrs.get("group") {
        out.push(AutoDep {
            candidates: vec![ResourceId::new("group", g)],
        });
    }
    if let Some(Value::Array(gs)) = attrs.get("groups") {
        for g in gs.iter().filter_map(Value::as_str) {
            out.push(AutoDep {
                candidates: vec![ResourceId::new("group", g)],
            });
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<User>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub move_home: Option<bool>,
    #[serde(default)]
    pub system: Option<bool>,
    #[serde(default)]
    pub ssh_keys: Option<Vec<String>>,
}

/// The account as `/etc/passwd` and `/etc/group` have it, and its
/// authorized keys file when the catalog manages keys.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Supplementary groups, sorted.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Only observed when `ssh_keys` is desired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshObserved>,
}

/// HOME/.ssh and HOME/.ssh/authorized_keys.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SshObserved {
    /// The non-empty lines of authorized_keys; `None` when the file is missing.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// "MODE OWNER" of the directory and of the file, e.g. "0700 alice".
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Default)]
pub struct User;

/// How a user account differs. A new account gets its attributes from
/// useradd, so it is `Create` (and its keys) only.
#[derive(Clone, Debug, PartialEq)]
pub enum UserChange {
    Create,
    Remove,
    Uid { from: Option<u32>, to: u32 },
    /// The primary group.
    Group { from: Option<String>, to: String },
    /// Supplementary groups, sorted.
    Groups { from: Vec<String>, to: Vec<String> },
    Shell { from: Option<String>, to: String },
    Home { from: Option<String>, to: String },
    Comment { from: Option<String>, to: String },
    /// The lines of authorized_keys (`from` none: no file).
    SshKeys {
        from: Option<Vec<String>>,
        to: Vec<String>,
    },
    /// The keys are right, the modes or owners of `.ssh` or the file not.
    SshKeysMode { from: String, to: String },
}

impl KindChange for UserChange {
    fn show(&self) -> Change {
        match self {
            UserChange::Create => Change::new("ensure", Value::Null, "present"),
            UserChange::Remove => Change::new("ensure", "present", "absent"),
            UserChange::Uid { from, to } => Change::new("uid", *from, *to),
            UserChange::Group { from, to } => Change::new("group", from.clone(), to.as_str()),
            UserChange::Groups { from, to } => Change::new("groups", from.clone(), to.clone()),
            UserChange::Shell { from, to } => Change::new("shell", from.clone(), to.as_str()),
            UserChange::Home { from, to } => Change::new("home", from.clone(), to.as_str()),
            UserChange::Comment { from, to } => {
                Change::new("comment", from.clone(), to.as_str())
            }
            UserChange::SshKeys { from, to } => Change::new("ssh_keys", from.clone(), to.clone()),
            UserChange::SshKeysMode { from, to } => {
                Change::new("ssh_keys_mode", from.as_str(), to.as_str())
            }
        }
    }
}

fn home_of(name: &str, d: &Desired, o: Option<&Observed>) -> String {
    d.home
        .clone()
        .or_else(|| o.and_then(|o| o.home.clone()))
        .unwrap_or_else(|| format!("/home/{name}"))
}

/// What useradd/usermod would refuse, refused when observing so that a
/// dry run sees it (and apply says the same): a uid another account has,
/// a group that neither exists nor is declared in the catalog.
fn preconditions(
    host: &HostRead,
    name: &str,
    d: &Desired,
    ctx: &RunCtx,
) -> Result<(), ModuleError> {
    if let Some(u) = d.uid {
        match host.user_with_uid(u)? {
            Some(other) if other != name => {
                return Err(ModuleError::Invalid(format!(
                    "uid {u} is taken by user `{other}`"
                )))
            }
            _ => {}
        }
    }
    if let (Some(new), Some(true)) = (&d.home, d.move_home) {
        // usermod --move-home refuses a place that exists.
        let old = host.passwd(name)?.and_then(|f| f.get(5).cloned());
        if old.is_some_and(|o| &o != new) && host.exists(new)? {
            return Err(ModuleError::Invalid(format!(
                "move_home: {new} exists already; usermod --move-home moves a home only to a new place"
            )));
        }
    }
    let groups = d.group.iter().chain(d.groups.iter().flatten());
    let made = ctx.comes_after("user", name, crate::MAKERS);
    for g in groups {
        if !made && !ctx.declares("group", g) && host.gid(g)?.is_none() {
            return Err(ModuleError::Invalid(format!(
                "group '{g}' does not exist (declare group[{g}])"
            )));
        }
    }
    Ok(())
}

fn keys_path(home: &str) -> (String, String) {
    let dir = format!("{}/.ssh", home.trim_end_matches('/'));
    let file = format!("{dir}/authorized_keys");
    (dir, file)
}

impl Module for User {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = UserChange;

    /// Its home: a purging directory (`/home`) keeps the homes of the
    /// users the catalog declares.
    fn managed_paths(name: &str, d: &Desired) -> Vec<String> {
        if d.ensure.absent() {
            Vec::new()
        } else {
            vec![home_of(name, d, None)]
        }
    }

    /// From the facts' passwd and group databases. Authorized keys are not
    /// in the facts: an existing user whose `ssh_keys` are managed is
    /// unknown until apply.
    fn observe_facts(name: &str, d: &Desired, facts: &cfgm_core::facts::Facts) -> Option<Observed> {
        let Some(u) = facts.users.iter().find(|u| u.name == name) else {
            return Some(Observed::default());
        };
        if d.ssh_keys.is_some() {
            return None;
        }
        let mut groups: Vec<String> = facts
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name.clone())
            .collect();
        groups.sort();
        groups.dedup();
        let group = facts
            .groups
            .iter()
            .find(|g| g.gid == u.gid)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| u.gid.to_string());
        Some(Observed {
            exists: true,
            uid: Some(u.uid),
            group: Some(group),
            groups,
            shell: Some(u.shell.clone()),
            home: Some(u.home.clone()),
            comment: Some(u.comment.clone()),
            ssh: None,
        })
    }

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        if !d.ensure.absent() {
            preconditions(host, name, d, ctx)?;
        }
        let Some(f) = host.passwd(name)? else {
            return Ok(Observed::default());
        };
        let field = |i: usize| f.get(i).cloned().unwrap_or_default();
        let gid: Option<u32> = field(3).parse().ok();
        let mut groups: Vec<String> = host
            .groups()?
            .into_iter()
            .filter(|g| {
                g.get(3)
                    .is_some_and(|m| m.split(',').any(|u| u.trim() == name))
            })
            .filter_map(|g| g.into_iter().next())
            .collect();
        groups.sort();
        groups.dedup();
        let mut o = Observed {
            exists: true,
            uid: field(2).parse().ok(),
            group: match gid {
                Some(g) => Some(host.group_name(g)?),
                None => None,
            },
            groups,
            shell: Some(field(6)),
            home: Some(field(5)),
            comment: Some(field(4)),
            ssh: None,
        };
        if d.ssh_keys.is_some() {
            let (dir, file) = keys_path(&home_of(name, d, Some(&o)));
            let describe = |p: &str| -> Result<Option<String>, ModuleError> {
                Ok(match host.lstat(p)? {
                    Some(m) => Some(format!("{:04o} {}", m.mode, host.user_name(m.uid)?)),
                    None => None,
                })
            };
            let keys = host.read(&file)?.map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            });
            o.ssh = Some(SshObserved {
                keys,
                dir: describe(&dir)?,
                file: describe(&file)?,
            });
        }
        Ok(o)
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<UserChange> {
        let mut out = Vec::new();
        if d.ensure.absent() {
            if o.exists {
                out.push(UserChange::Remove);
            }
            return out;
        }
        if !o.exists {
            out.push(UserChange::Create);
            // A new account gets every attribute from useradd; only the keys,
            // which live in a file, are a change of their own.
            if let Some(keys) = d.ssh_keys.as_ref().filter(|k| !k.is_empty()) {
                out.push(UserChange::SshKeys {
                    from: None,
                    to: keys.clone(),
                });
            }
            return out;
        }
        type Field = fn(Option<String>, String) -> UserChange;
        let fields: [(Field, &Option<String>, &Option<String>); 4] = [
            (|from, to| UserChange::Group { from, to }, &d.group, &o.group),
            (|from, to| UserChange::Shell { from, to }, &d.shell, &o.shell),
            (|from, to| UserChange::Home { from, to }, &d.home, &o.home),
            (
                |from, to| UserChange::Comment { from, to },
                &d.comment,
                &o.comment,
            ),
        ];
        for (change, want, have) in fields {
            if let Some(w) = want {
                if have.as_ref() != Some(w) {
                    out.push(change(have.clone(), w.clone()));
                }
            }
        }
        if let Some(u) = d.uid {
            if o.uid != Some(u) {
                out.push(UserChange::Uid { from: o.uid, to: u });
            }
        }
        if let Some(gs) = &d.groups {
            let mut want = gs.clone();
            want.sort();
            want.dedup();
            if want != o.groups {
                out.push(UserChange::Groups {
                    from: o.groups.clone(),
                    to: want,
                });
            }
        }
        if let Some(keys) = &d.ssh_keys {
            let ssh = o.ssh.as_ref();
            let have = ssh.and_then(|s| s.keys.clone());
            let want_keys: Vec<String> = keys.iter().map(|k| k.trim_end().to_string()).collect();
            if have.as_ref() != Some(&want_keys) {
                out.push(UserChange::SshKeys {
                    from: have,
                    to: want_keys,
                });
            } else {
                let want_dir = format!("0700 {name}");
                let want_file = format!("0600 {name}");
                let dir = ssh.and_then(|s| s.dir.clone());
                let file = ssh.and_then(|s| s.file.clone());
                if dir.as_deref() != Some(&want_dir) || file.as_deref() != Some(&want_file) {
                    out.push(UserChange::SshKeysMode {
                        from: format!(
                            "dir {}, file {}",
                            dir.as_deref().unwrap_or("missing"),
                            file.as_deref().unwrap_or("missing")
                        ),
                        to: format!("dir {want_dir}, file {want_file}"),
                    });
                }
            }
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[UserChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let mut t = Todo::default();
        for c in changes {
            match c {
                UserChange::Create => t.create = true,
                UserChange::Remove => t.remove = true,
                UserChange::Uid { .. } => t.uid = true,
                UserChange::Group { .. } => t.group = true,
                UserChange::Groups { .. } => t.groups = true,
                UserChange::Shell { .. } => t.shell = true,
                UserChange::Home { .. } => t.home = true,
                UserChange::Comment { .. } => t.comment = true,
                UserChange::SshKeys { .. } | UserChange::SshKeysMode { .. } => t.keys = true,
            }
        }
        if t.remove {
            host.run(&["userdel", "--", name])?;
            return Ok(());
        }
        let mut argv: Vec<String> = Vec::new();
        let creating = t.create;
        let flag = |argv: &mut Vec<String>, f: &str, v: Option<String>, changed: bool| {
            if let Some(v) = v {
                if creating || changed {
                    argv.extend([f.to_string(), v]);
                }
            }
        };
        flag(&mut argv, "--uid", d.uid.map(|u| u.to_string()), t.uid);
        flag(&mut argv, "--gid", d.group.clone(), t.group);
        // A new account has no supplementary groups to clear.
        let groups = d.groups.as_ref().filter(|g| !(creating && g.is_empty()));
        flag(
            &mut argv,
            "--groups",
            groups.map(|g| g.join(",")),
            t.groups,
        );
        flag(&mut argv, "--shell", d.shell.clone(), t.shell);
        flag(&mut argv, "--home", d.home.clone(), t.home);
        if t.home && !creating && d.move_home == Some(true) {
            argv.push("--move-home".into());
        }
        flag(&mut argv, "--comment", d.comment.clone(), t.comment);
        if creating {
            let mut add = vec!["useradd".to_string()];
            if d.system == Some(true) {
                add.push("--system".into());
            } else {
                add.push("--create-home".into());
            }
            if d.group.is_none() && d.system != Some(true) {
                // Debian's USERGROUPS_ENAB makes a group named after the user.
                add.push("--user-group".into());
            }
            add.extend(argv);
            add.extend(["--".into(), name.into()]);
            host.run(&add)?;
        } else if !argv.is_empty() {
            let mut m = vec!["usermod".to_string()];
            m.extend(argv);
            m.extend(["--".into(), name.into()]);
            host.run(&m)?;
        }
        if let Some(keys) = &d.ssh_keys {
            if t.keys {
                write_keys(host, name, d, keys)?;
            }
        }
        Ok(())
    }
}

/// What an apply has to do, from the changes.
#[derive(Default)]
struct Todo {
    create: bool,
    remove: bool,
    uid: bool,
    group: bool,
    groups: bool,
    shell: bool,
    home: bool,
    comment: bool,
    keys: bool,
}

/// HOME/.ssh (0700) and HOME/.ssh/authorized_keys (0600), owned by the user.
fn write_keys(host: &Host, name: &str, d: &Desired, keys: &[String]) -> Result<(), ModuleError> {
    let f = host
        .passwd(name)?
        .ok_or_else(|| ModuleError::Other(format!("user {name} vanished")))?;
    let uid: u32 = f.get(2).and_then(|u| u.parse().ok()).unwrap_or(0);
    let gid: u32 = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0);
    let home = d
        .home
        .clone()
        .or_else(|| f.get(5).cloned())
        .unwrap_or_else(|| format!("/home/{name}"));
    let (dir, file) = keys_path(&home);
    if host.lstat(&home)?.is_none() {
        host.create_dir_all(&home)?;
        host.chmod(&home, 0o755)?;
        host.chown(&home, Some(uid), Some(gid))?;
    }
    match host.lstat(&dir)? {
        Some(m) if m.is_dir => {}
        Some(_) => {
            return Err(ModuleError::Invalid(format!(
                "{dir} exists and is not a directory"
            )))
        }
        None => host.create_dir_all(&dir)?,
    }
    host.chmod(&dir, 0o700)?;
    host.chown(&dir, Some(uid), Some(gid))?;
    let mut content = keys
        .iter()
        .map(|k| k.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    if !content.is_empty() {
        content.push('\n');
    }
    host.write_atomic(&file, content.as_bytes(), 0o600, uid, gid)
}

#[cfg(test)]
mod tests {
    use crate::testing::diff_table;
    use serde_json::json;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7 alice@laptop";

    #[test]
    fn diff() {
        let alice = json!({
            "exists": true, "uid": 1000, "group": "alice", "groups": ["adm"],
            "shell": "/bin/sh", "home": "/home/alice", "comment": "",
        });
        let with_ssh = |keys: serde_json::Value, dir: &str, file: &str| {
            let mut o = alice.clone();
            o["ssh"] = json!({"keys": keys, "dir": dir, "file": file});
            o
        };
        diff_table(
            "user",
            &[
                // A new account gets its attributes from useradd: only the
                // keys are a change of their own.
                (
                    "alice",
                    json!({"uid": 1000, "shell": "/bin/bash", "ssh_keys": [KEY]}),
                    json!({"exists": false, "groups": []}),
                    &[
                        r#"ensure: null → "present""#,
                        &format!(r#"ssh_keys: null → ["{KEY}"]"#),
                    ],
                ),
                (
                    "alice",
                    json!({"uid": 1000, "shell": "/bin/sh", "groups": ["adm"]}),
                    alice.clone(),
                    &[],
                ),
                (
                    "alice",
                    json!({
                        "uid": 1001, "group": "staff", "groups": ["sudo", "adm", "sudo"],
                        "shell": "/bin/bash", "home": "/srv/alice", "comment": "Alice",
                    }),
                    alice.clone(),
                    &[
                        r#"group: "alice" → "staff""#,
                        r#"shell: "/bin/sh" → "/bin/bash""#,
                        r#"home: "/home/alice" → "/srv/alice""#,
                        r#"comment: "" → "Alice""#,
                        "uid: 1000 → 1001",
                        r#"groups: ["adm"] → ["adm","sudo"]"#,
                    ],
                ),
                (
                    "alice",
                    json!({"ssh_keys": [KEY]}),
                    with_ssh(json!(null), "0700 alice", "0600 alice"),
                    &[&format!(r#"ssh_keys: null → ["{KEY}"]"#)],
                ),
                (
                    "alice",
                    json!({"ssh_keys": [KEY]}),
                    with_ssh(json!([KEY]), "0700 alice", "0600 alice"),
                    &[],
                ),
                (
                    "alice",
                    json!({"ssh_keys": [KEY]}),
                    with_ssh(json!([KEY]), "0755 root", "0644 alice"),
                    &[
                        r#"ssh_keys_mode: "dir 0755 root, file 0644 alice" → "dir 0700 alice, file 0600 alice""#,
                    ],
                ),
                (
                    "alice",
                    json!({"ensure": "absent"}),
                    alice,
                    &[r#"ensure: "present" → "absent""#],
                ),
                (
                    "alice",
                    json!({"ensure": "absent"}),
                    json!({"exists": false}),
                    &[],
                ),
            ],
        );
    }
}
