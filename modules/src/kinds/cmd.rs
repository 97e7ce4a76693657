//! `cmd`: a shell command made idempotent by a guard (`creates`, `unless`,
//! `onlyif`), or run only as a refresh target (`refresh_only`).
//!
//! The one kind whose job is a shell: `/bin/sh -c RUN` (guards likewise),
//! as `user` (runuser), in `cwd` (env -C, so it stays inside a chroot root),
//! with `env`, killed after `timeout` seconds (default 300). Observing runs
//! the guards, which must not change the host; the plan says why the
//! command would run.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};
use serde_json::Value;

pub static SPEC: KindSpec = KindSpec {
    kind: "cmd",
    doc: "A shell command, guarded by creates/unless/onlyif, or run only on refresh.",
    attrs: &[
        AttrSpec::req("run", AttrType::Str, "the command, run by /bin/sh -c"),
        AttrSpec::opt("creates", AttrType::Path, "skip when this path exists"),
        AttrSpec::opt(
            "removes",
            AttrType::Path,
            "run only when this path exists (the counterpart of creates)",
        ),
        AttrSpec::opt("unless", AttrType::Str, "skip when this command succeeds"),
        AttrSpec::opt(
            "onlyif",
            AttrType::Str,
            "run only when this command succeeds",
        ),
        AttrSpec::opt(
            "refresh_only",
            AttrType::Bool,
            "run only when a watched resource changed",
        ),
        AttrSpec::opt("cwd", AttrType::Path, "working directory"),
        AttrSpec::opt("user", AttrType::Str, "run as this user"),
        AttrSpec::opt("env", AttrType::Table, "extra environment variables"),
        AttrSpec::opt(
            "timeout",
            AttrType::Int,
            "seconds before the command is killed (default 300)",
        ),
        AttrSpec::opt(
            "secret",
            AttrType::Bool,
            "never show the commands or the environment (plans show a hash)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &["run", "unless", "onlyif", "env"],
    check,
    auto_deps: no_auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// Beyond the guard rule: what reaches the argument vector (`runuser -u
/// USER --`, `env -C CWD`, the scripts) or the environment must be what it
/// says — a user name, an absolute directory, variable names — and no
/// string may hold a NUL byte, which no argument can carry.
fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    let guarded = ["creates", "removes", "unless", "onlyif"]
        .iter()
        .any(|a| attrs.contains_key(*a))
        || attrs.get("refresh_only").and_then(|v| v.as_bool()) == Some(true);
    if !guarded {
        out.push(Problem::attr(
            "run",
            "a command without `creates`, `removes`, `unless`, `onlyif` or `refresh_only` would run on every apply",
        ));
    }
    for a in ["run", "unless", "onlyif", "creates", "removes"] {
        if let Some(Value::String(s)) = attrs.get(a) {
            if s.contains('\0') {
                out.push(Problem::attr(a, "a command cannot hold a NUL byte"));
            }
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
    if let Some(Value::String(d)) = attrs.get("cwd") {
        if !crate::is_plain_abs_path(d) {
            out.push(Problem::attr(
                "cwd",
                format!("`{d}` is not an absolute path in normal form"),
            ));
        }
    }
    if let Some(Value::Object(env)) = attrs.get("env") {
        for (k, v) in env {
            let name_ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                out.push(Problem::attr(
                    "env",
                    format!("`{k}` is not an environment variable name (letters, digits, `_`)"),
                ));
            }
            if v.as_str().is_some_and(|s| s.contains('\0')) {
                out.push(Problem::attr(
                    "env",
                    format!("`{k}` cannot hold a NUL byte"),
                ));
            }
        }
    }
    if let Some(Value::Number(n)) = attrs.get("timeout") {
        if n.as_u64().is_none_or(|t| t == 0) {
            out.push(Problem::attr(
                "timeout",
                "a timeout is a positive number of seconds",
            ));
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{run_with_timeout, Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use std::process::Command;
use std::time::Duration;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Cmd>();

/// How long a command (or a guard) may run when `timeout` is not given.
const DEFAULT_TIMEOUT: u64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub run: String,
    #[serde(default)]
    pub creates: Option<String>,
    #[serde(default)]
    pub removes: Option<String>,
    #[serde(default)]
    pub unless: Option<String>,
    #[serde(default)]
    pub onlyif: Option<String>,
    #[serde(default)]
    pub refresh_only: Option<bool>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Map<String, Value>>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub secret: Option<bool>,
}

impl Desired {
    fn secret(&self) -> bool {
        self.secret == Some(true)
    }

    /// A command's failure as shown: a secret command's text, environment
    /// and output (which may echo them) are not.
    fn shown(&self, e: ModuleError) -> ModuleError {
        match e {
            ModuleError::Command { status, .. } if self.secret() => ModuleError::Other(format!(
                "the command failed ({status}); its text and output are not shown (secret = true)"
            )),
            ModuleError::Other(_) if self.secret() => ModuleError::Other(
                "the command could not run; its text is not shown (secret = true)".into(),
            ),
            e => e,
        }
    }

    /// How a guard is named in a reason: by its text, or only by its role
    /// when the resource is secret.
    fn named(&self, script: &str) -> String {
        match self.secret() {
            true => String::new(),
            false => format!(" `{script}`"),
        }
    }

    fn refresh_only(&self) -> bool {
        self.refresh_only == Some(true)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
    }

    /// The argv that runs `script` as this resource's user, in its cwd:
    /// `[runuser -u USER --] [env -C CWD] /bin/sh -c SCRIPT`. Going through
    /// `env -C` (not the process's working directory) keeps the directory
    /// inside the host root when the command runs through chroot.
    fn argv(&self, script: &str) -> Vec<String> {
        let mut argv: Vec<String> = Vec::new();
        if let Some(u) = &self.user {
            argv.extend(["runuser".into(), "-u".into(), u.clone(), "--".into()]);
        }
        if let Some(d) = &self.cwd {
            argv.extend(["env".into(), "-C".into(), d.clone()]);
        }
        argv.extend(["/bin/sh".into(), "-c".into(), script.to_string()]);
        argv
    }

    fn command(&self, host: &HostRead, argv: &[String]) -> Command {
        let mut c = host.command(argv);
        for (k, v) in self.env.iter().flatten() {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            c.env(k, v);
        }
        c
    }

    /// Runs a guard; whether it exited 0.
    fn guard(&self, host: &HostRead, script: &str) -> Result<bool, ModuleError> {
        let argv = self.argv(script);
        let out = run_with_timeout(self.command(host, &argv), &argv, self.timeout())
            .map_err(|e| self.shown(e))?;
        Ok(out.status.success())
    }
}

/// Whether the command would run, and why (or why not).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub would_run: bool,
    pub reason: String,
}

#[derive(Default)]
pub struct Cmd;

/// How a command "differs": it is due to run.
#[derive(Clone, Debug, PartialEq)]
pub enum CmdChange {
    /// Run it; `reason` says what the guards said.
    Run {
        reason: String,
        run: String,
        secret: bool,
    },
}

impl KindChange for CmdChange {
    /// A secret command shows as a hash.
    fn show(&self) -> Change {
        match self {
            CmdChange::Run {
                reason,
                run,
                secret,
            } => {
                let run = Value::String(run.clone());
                let to = match secret {
                    true => Value::String(cfgm_core::catalog::secret_text(&run)),
                    false => run,
                };
                Change::new("run", reason.as_str(), to)
            }
        }
    }
}

impl Cmd {
    fn run(host: &Host, d: &Desired) -> Result<(), ModuleError> {
        let argv = d.argv(&d.run);
        host.run_cmd(d.command(host, &argv), &argv, d.timeout())
            .map_err(|e| d.shown(e))?;
        Ok(())
    }
}

/// What the guards say; `refresh_only` is not a guard (see `observe`).
fn guards(host: &HostRead, d: &Desired) -> Result<Observed, ModuleError> {
    let mut reasons = Vec::new();
    if let Some(p) = &d.creates {
        if host.lstat(p)?.is_some() {
            return Ok(Observed {
                would_run: false,
                reason: format!("{p} exists"),
            });
        }
        reasons.push(format!("{p} does not exist"));
    }
    if let Some(p) = &d.removes {
        if host.lstat(p)?.is_none() {
            return Ok(Observed {
                would_run: false,
                reason: format!("{p} does not exist"),
            });
        }
        reasons.push(format!("{p} exists"));
    }
    if let Some(u) = &d.unless {
        let u_shown = d.named(u);
        if d.guard(host, u)? {
            return Ok(Observed {
                would_run: false,
                reason: format!("unless{u_shown} succeeded"),
            });
        }
        reasons.push(format!("unless{u_shown} failed"));
    }
    if let Some(g) = &d.onlyif {
        let g_shown = d.named(g);
        if !d.guard(host, g)? {
            return Ok(Observed {
                would_run: false,
                reason: format!("onlyif{g_shown} failed"),
            });
        }
        reasons.push(format!("onlyif{g_shown} succeeded"));
    }
    if reasons.is_empty() {
        reasons.push("no guard".into());
    }
    Ok(Observed {
        would_run: true,
        reason: reasons.join(", "),
    })
}

impl Module for Cmd {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = CmdChange;

    /// What `creates` names: purging it would run the command again.
    fn managed_paths(_name: &str, d: &Desired) -> Vec<String> {
        d.creates.iter().cloned().collect()
    }

    fn observe(
        &self,
        host: &HostRead,
        _name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        if d.refresh_only() {
            // Guards run at refresh time, not on every observe.
            return Ok(Observed {
                would_run: false,
                reason: "runs only when a watched resource changes".into(),
            });
        }
        guards(host, d)
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<CmdChange> {
        if d.refresh_only() || !o.would_run {
            return vec![];
        }
        vec![CmdChange::Run {
            reason: o.reason.clone(),
            run: d.run.clone(),
            secret: d.secret(),
        }]
    }

    fn apply(
        &self,
        host: &Host,
        _name: &str,
        d: &Desired,
        changes: &[CmdChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        // One run, whatever the guards said (the command is `d.run`).
        match changes.first() {
            Some(CmdChange::Run { .. }) => Cmd::run(host, d),
            None => Ok(()),
        }
    }

    /// A `refresh_only` command runs when a watched resource changed (and
    /// its guards let it); any other command already ran if its guards
    /// said so, and is not run twice.
    fn refresh(
        &self,
        host: &Host,
        _name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<bool, ModuleError> {
        if d.refresh_only() && guards(host, d)?.would_run {
            Cmd::run(host, d)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn verify_after_apply(&self, d: &Desired) -> bool {
        d.onlyif.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn argv_runs_as_the_user_in_the_directory() {
        let d: Desired = serde_json::from_value(json!({
            "run": "make install", "creates": "/x", "user": "build", "cwd": "/src"
        }))
        .unwrap();
        assert_eq!(
            d.argv(&d.run),
            [
                "runuser",
                "-u",
                "build",
                "--",
                "env",
                "-C",
                "/src",
                "/bin/sh",
                "-c",
                "make install"
            ]
        );
        assert_eq!(d.timeout(), Duration::from_secs(DEFAULT_TIMEOUT));
    }

    /// A command is due when its guards say so, and never by itself
    /// when it runs only on refresh.
    #[test]
    fn diff() {
        let due = json!({"would_run": true, "reason": "/x does not exist"});
        diff_table(
            "cmd",
            &[
                (
                    "c",
                    json!({"run": "make", "creates": "/x"}),
                    due.clone(),
                    &[r#"run: "/x does not exist" → "make""#],
                ),
                (
                    "c",
                    json!({"run": "make", "creates": "/x"}),
                    json!({"would_run": false, "reason": "/x exists"}),
                    &[],
                ),
                (
                    "c",
                    json!({"run": "make", "refresh_only": true}),
                    due,
                    &[],
                ),
            ],
        );
    }

    #[test]
    fn refresh_only_never_plans_a_run() {
        let d: Desired =
            serde_json::from_value(json!({"run": "x", "refresh_only": true})).unwrap();
        let o = Observed {
            would_run: true,
            reason: String::new(),
        };
        assert!(Cmd::diff("c", &d, &o).is_empty());
        let unknown =
            serde_json::from_value::<Desired>(json!({"run": "x", "shell": "zsh"}));
        assert!(unknown.is_err(), "unknown attributes are rejected");
    }

    #[test]
    fn a_secret_command_is_never_shown() {
        let d: Desired = serde_json::from_value(serde_json::json!({
            "run": "rotate --token S3CRET", "unless": "check S3CRET", "secret": true
        }))
        .unwrap();
        let o = Observed {
            would_run: true,
            reason: "unless failed".into(),
        };
        let shown: Vec<_> = Cmd::diff("c", &d, &o).iter().map(KindChange::show).collect();
        let c = serde_json::to_string(&shown).unwrap();
        assert!(
            !c.contains("S3CRET") && c.contains("(secret, blake3 "),
            "{c}"
        );
        let e = d.shown(ModuleError::Command {
            argv: "/bin/sh -c rotate --token S3CRET".into(),
            status: "exit status: 1".into(),
            stderr: "bad token S3CRET".into(),
        });
        assert!(!e.to_string().contains("S3CRET"), "{e}");
    }
}
