//! The agent daemon against real git repositories and keys made by the
//! test: `cfgm-agent run --once` and `apply --commit` on host roots in
//! temporary directories (file kinds only, so no chroot is needed).

use crate::signing::{commit_at, ed25519, now, set_main, signer_line, tree, Entry, Sign};
use git2::{Oid, Repository};
use serde_json::Value;
use ssh_key::PrivateKey;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Fleet {
    t: tempfile::TempDir,
    remote: Repository,
    key: PrivateKey,
}

const INVENTORY: &str = "[hosts.h]\ndc = \"dc1\"\nrole = \"r\"\n";
const TOP: &str = "\"*\" = [\"s\"]\n";

fn state(files: &[(&str, &str)]) -> String {
    files
        .iter()
        .map(|(p, c)| format!("[file.\"{p}\"]\ncontent = {c:?}\n\n"))
        .collect()
}

impl Fleet {
    fn new() -> Fleet {
        let t = tempfile::tempdir().unwrap();
        let remote = Repository::init_bare(t.path().join("states.git")).unwrap();
        let key = ed25519();
        std::fs::write(
            t.path().join("allowed_signers"),
            signer_line("release@ops", "", &key) + "\n",
        )
        .unwrap();
        std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
        let f = Fleet { t, remote, key };
        f.config("");
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.t.path().join(rel)
    }

    fn root(&self) -> PathBuf {
        self.path("root")
    }

    fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes agent.toml; `extra` lines are appended (or replace `repo`).
    fn config(&self, extra: &str) {
        let repo = if extra.contains("repo =") {
            String::new()
        } else {
            format!(
                "repo = {:?}\n",
                self.path("states.git").display().to_string()
            )
        };
        let text = format!(
            "{repo}allowed_signers = {:?}\nstate_dir = {:?}\nmetrics_textfile = {:?}\nhost = \"h\"\n{extra}",
            self.path("allowed_signers").display().to_string(),
            self.state_dir().display().to_string(),
            self.path("metrics/cfgm.prom").display().to_string(),
        );
        std::fs::write(self.path("agent.toml"), text).unwrap();
    }

    /// A commit of a states tree whose one state is `state`, on `parent`.
    fn commit(&self, parent: Option<Oid>, state: &str, sign: Sign) -> Oid {
        let t = tree(
            &self.remote,
            &[
                ("inventory.toml", Entry::File(INVENTORY.as_bytes())),
                ("top.toml", Entry::File(TOP.as_bytes())),
                ("states/s.toml", Entry::File(state.as_bytes())),
            ],
        );
        let parents: Vec<Oid> = parent.into_iter().collect();
        commit_at(&self.remote, t, &parents, "states", sign, now())
    }

    /// A commit signed by the trusted key, pushed to main.
    fn push(&self, parent: Option<Oid>, state: &str) -> Oid {
        let c = self.commit(parent, state, Sign::Ssh(&self.key, "git"));
        set_main(&self.remote, c);
        c
    }

    fn agent(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cfgm-agent"));
        c.args(args)
            .arg("--config")
            .arg(self.path("agent.toml"))
            .arg("--root")
            .arg(self.root());
        c
    }

    fn run_once(&self) -> (Output, Value) {
        let out = self.agent(&["run", "--once"]).output().unwrap();
        (out, self.last_report())
    }

    fn last_report(&self) -> Value {
        std::fs::read_to_string(self.state_dir().join("reports/last.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.root().join(p.trim_start_matches('/'))).ok()
    }

    fn applied(&self) -> Option<String> {
        std::fs::read_to_string(self.state_dir().join("applied-commit"))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A signed commit is applied and recorded; the report, history, facts and
/// a metrics file that promtool accepts are kept.
#[test]
fn a_signed_commit_is_applied_and_reported() {
    let f = Fleet::new();
    let c1 = f.push(None, &state(&[("/etc/motd", "hello\n")]));
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.read("/etc/motd").as_deref(), Some("hello\n"));
    assert_eq!(f.applied(), Some(c1.to_string()));
    assert_eq!(rep["status"], "converged");
    assert_eq!(rep["pull"]["verdict"], "fresh");
    assert_eq!(rep["pull"]["converged_to"], c1.to_string());
    assert_eq!(rep["tree_id"], c1.to_string());
    let log = stderr(&out);
    assert!(log.contains("signed by release@ops"), "{log}");
    assert_eq!(crate::daemon_history(&f.state_dir()), 1);
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(f.state_dir().join("facts.json")).unwrap())
            .unwrap();
    assert_eq!(facts["applied"]["commit"], c1.to_string());
    assert_eq!(facts["resources"][0]["id"]["name"], "/etc/motd");
    let metrics = std::fs::read_to_string(f.path("metrics/cfgm.prom")).unwrap();
    assert!(metrics.contains("cfgm_last_run_success 1"), "{metrics}");
    assert!(
        metrics.contains(&format!("cfgm_applied_commit_info{{commit=\"{c1}\"")),
        "{metrics}"
    );
    if let Some((code, text)) = crate::metrics::promtool(&metrics) {
        assert_eq!(code, 0, "promtool check metrics: {text}");
    }

    // Unchanged tip: nothing to do, still converged. The report keeps the
    // converged text short; the facts written after the run carry it.
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(rep["pull"]["verdict"], "unchanged");
    assert_eq!(rep["counts"]["changed"], 0);
    assert_eq!(
        rep["resources"][0]["observed"]["as_catalog"], true,
        "{rep:#}"
    );
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(f.state_dir().join("facts.json")).unwrap())
            .unwrap();
    assert_eq!(
        facts["resources"][0]["observed"]["content"], "hello\n",
        "{facts:#}"
    );
}

/// Unsigned, untrusted, wrong-namespace and non-descendant tips are each
/// refused with a clear reason; nothing of them is applied and the host
/// stays converged to the last good commit.
#[test]
fn untrusted_and_rollback_commits_are_refused_and_the_last_good_is_kept() {
    let f = Fleet::new();
    let good = f.push(None, &state(&[("/etc/motd", "good\n")]));
    let (out, _) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stranger = ed25519();
    let bad = state(&[("/etc/motd", "evil\n")]);
    let cases: Vec<(&str, Oid, &str)> = vec![
        (
            "unsigned",
            f.commit(Some(good), &bad, Sign::None),
            "not signed",
        ),
        (
            "untrusted",
            f.commit(Some(good), &bad, Sign::Ssh(&stranger, "git")),
            "not in allowed_signers",
        ),
        (
            "wrong namespace",
            f.commit(Some(good), &bad, Sign::Ssh(&f.key, "file")),
            "namespace",
        ),
        (
            "rollback",
            f.commit(None, &bad, Sign::Ssh(&f.key, "git")),
            "does not descend from the last applied commit",
        ),
    ];
    for (what, c, why) in cases {
        set_main(&f.remote, c);
        // Drift, to show the last good commit is still converged.
        std::fs::write(f.root().join("etc/motd"), "drifted\n").unwrap();
        let (out, rep) = f.run_once();
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        assert_eq!(rep["pull"]["verdict"], "refused", "{what}: {rep:#}");
        let reason = rep["pull"]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{what}: {reason}");
        assert!(stderr(&out).contains(why), "{what}: the log says why");
        assert_eq!(rep["pull"]["converged_to"], good.to_string(), "{what}");
        assert_eq!(f.read("/etc/motd").as_deref(), Some("good\n"), "{what}");
        assert_eq!(f.applied(), Some(good.to_string()), "{what}");
    }
    let metrics = std::fs::read_to_string(f.path("metrics/cfgm.prom")).unwrap();
    assert!(metrics.contains("cfgm_source_refused 1"), "{metrics}");
}

/// A fresh commit whose tree does not compile is not applied; the last
/// good one is converged and the report carries the diagnostics.
#[test]
fn a_commit_that_does_not_compile_keeps_the_last_good() {
    let f = Fleet::new();
    let good = f.push(None, &state(&[("/etc/motd", "good\n")]));
    assert_eq!(f.run_once().0.status.code(), Some(0));
    f.push(
        Some(good),
        "[file.\"/etc/motd\"]\ncontent = \"new\\n\"\nrequire = [\"pkg:nope\"]\n",
    );
    std::fs::write(f.root().join("etc/motd"), "drifted\n").unwrap();
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["pull"]["verdict"], "refused");
    assert!(
        rep["pull"]["reason"]
            .as_str()
            .unwrap()
            .contains("catalog does not compile"),
        "{rep:#}"
    );
    assert_eq!(rep["pull"]["diagnostics"][0]["code"], "missing-requisite");
    assert_eq!(rep["pull"]["converged_to"], good.to_string());
    assert_eq!(f.read("/etc/motd").as_deref(), Some("good\n"));
    assert_eq!(f.applied(), Some(good.to_string()));
}

/// An unreachable remote: the host keeps converging to the last good
/// commit (drift is corrected offline) and reports `stale`.
#[test]
fn an_unreachable_remote_is_stale_and_drift_is_still_corrected() {
    let f = Fleet::new();
    let good = f.push(None, &state(&[("/etc/motd", "good\n")]));
    assert_eq!(f.run_once().0.status.code(), Some(0));
    let (_closed, port) = crate::closed_port();
    f.config(&format!(
        "repo = \"git://127.0.0.1:{port}/states.git\"\nfetch_timeout = 5\n"
    ));
    std::fs::write(f.root().join("etc/motd"), "drifted\n").unwrap();
    let t0 = Instant::now();
    let (out, rep) = f.run_once();
    // Bounded by the fetch timeout, not hung (a loaded machine is slow).
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["pull"]["verdict"], "stale", "{rep:#}");
    assert_eq!(rep["pull"]["converged_to"], good.to_string());
    assert_eq!(f.read("/etc/motd").as_deref(), Some("good\n"));
    let metrics = std::fs::read_to_string(f.path("metrics/cfgm.prom")).unwrap();
    assert!(metrics.contains("cfgm_source_stale 1"), "{metrics}");
    assert!(metrics.contains("cfgm_fetch_failures_total 1"), "{metrics}");
}

/// Bad input, each a clear one-line reason: a corrupt config, a missing
/// config, a ref that does not exist, nothing good applied yet.
#[test]
fn bad_configuration_and_missing_refs_are_clear() {
    let f = Fleet::new();
    std::fs::write(f.path("agent.toml"), "repo = \"x\"\nintervall = 3\n").unwrap();
    let out = f.agent(&["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("agent.toml:2:1"), "{err}");
    assert!(err.contains("unknown field `intervall`"), "{err}");

    std::fs::remove_file(f.path("agent.toml")).unwrap();
    let out = f.agent(&["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("agent.toml"), "{}", stderr(&out));

    f.config("ref = \"refs/heads/nope\"\n");
    f.push(None, &state(&[("/etc/motd", "x\n")]));
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(rep["status"], "refused");
    assert_eq!(rep["pull"]["verdict"], "stale");
    let reason = rep["reason"].as_str().unwrap();
    assert!(reason.contains("no ref refs/heads/nope"), "{reason}");
    assert!(reason.contains("nothing applied yet"), "{reason}");
    assert!(f.read("/etc/motd").is_none());
}

/// A tree read from git objects compiles to the same catalog as the same
/// tree checked out.
#[test]
fn a_tree_in_git_objects_compiles_like_its_checkout() {
    let f = Fleet::new();
    let st = state(&[("/etc/a", "a\n"), ("/etc/b", "b\n")]);
    f.push(None, &st);
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = f.path("checkout");
    for (p, text) in [
        ("inventory.toml", INVENTORY),
        ("top.toml", TOP),
        ("states/s.toml", st.as_str()),
    ] {
        std::fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
        std::fs::write(dir.join(p), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cfgm-agent"))
        .args(["apply", "--dry-run", "--json", "--host", "h", "--tree"])
        .arg(&dir)
        .arg("--root")
        .arg(f.root())
        .arg("--state-dir")
        .arg(f.path("state2"))
        .output()
        .unwrap();
    let dry: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["catalog_id"], rep["catalog_id"]);
    assert!(rep["catalog_id"].as_str().unwrap().len() == 64);
}

/// `apply --commit REV`: a given commit of the followed ref, verified; one
/// that is not on the ref, or not trusted, is refused (exit 3) and nothing
/// else is converged in its place.
#[test]
fn apply_commit_converges_a_given_verified_commit() {
    let f = Fleet::new();
    let c1 = f.push(None, &state(&[("/etc/motd", "one\n")]));
    let c2 = f.push(Some(c1), &state(&[("/etc/motd", "two\n")]));
    let out = f
        .agent(&["apply", "--json", "--commit", &c1.to_string()[..12]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["pull"]["converged_to"], c1.to_string());
    assert_eq!(f.read("/etc/motd").as_deref(), Some("one\n"));
    // A dry run of the next commit plans and changes nothing.
    let out = f
        .agent(&["apply", "--json", "--dry-run", "--commit", &c2.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["counts"]["would_change"], 1);
    assert_eq!(f.read("/etc/motd").as_deref(), Some("one\n"));
    assert_eq!(f.applied(), Some(c1.to_string()));
    // Not on the ref: refused.
    let stray = f.commit(
        Some(c2),
        &state(&[("/etc/motd", "x\n")]),
        Sign::Ssh(&f.key, "git"),
    );
    let out = f
        .agent(&["apply", "--commit", &stray.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("is on no branch"), "{}", stderr(&out));
    // Untrusted: refused, and the last good is not converged in its place.
    let bad = f.commit(Some(c2), &state(&[("/etc/motd", "evil\n")]), Sign::None);
    set_main(&f.remote, bad);
    std::fs::write(f.root().join("etc/motd"), "drifted\n").unwrap();
    let out = f
        .agent(&["apply", "--commit", &bad.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not signed"), "{}", stderr(&out));
    assert_eq!(f.read("/etc/motd").as_deref(), Some("drifted\n"));
}

/// A rollout's commit on a release branch, ahead of the followed ref: it
/// is applied (signed, descends), and the daemon, whose ref is behind it,
/// keeps it instead of calling the ref a rollback; once the ref catches up
/// nothing changes.
#[test]
fn a_release_branch_commit_is_applied_and_the_daemon_keeps_it() {
    let f = Fleet::new();
    let c1 = f.push(None, &state(&[("/etc/motd", "one\n")]));
    assert_eq!(f.run_once().0.status.code(), Some(0));
    let c2 = f.commit(
        Some(c1),
        &state(&[("/etc/motd", "two\n")]),
        Sign::Ssh(&f.key, "git"),
    );
    f.remote
        .reference("refs/heads/release", c2, true, "test")
        .unwrap();
    let out = f
        .agent(&["apply", "--json", "--commit", &c2.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.read("/etc/motd").as_deref(), Some("two\n"));
    assert_eq!(f.applied(), Some(c2.to_string()));
    // The daemon follows main, still at c1: behind, not a rollback.
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["pull"]["verdict"], "behind", "{rep:#}");
    assert_eq!(rep["pull"]["converged_to"], c2.to_string());
    assert_eq!(f.read("/etc/motd").as_deref(), Some("two\n"));
    // main catches up: unchanged, nothing to do.
    set_main(&f.remote, c2);
    let (_, rep) = f.run_once();
    assert_eq!(rep["pull"]["verdict"], "unchanged");
    assert_eq!(rep["counts"]["changed"], 0);
    // An explicit older commit is still a rollback: refused.
    let out = f
        .agent(&["apply", "--commit", &c1.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("does not descend"),
        "{}",
        stderr(&out)
    );
}

/// Many files: a run long enough to be interrupted.
fn big_state(n: usize, version: &str) -> String {
    let mut s = String::from("[directory.\"/data\"]\n\n");
    for i in 0..n {
        s.push_str(&format!(
            "[file.\"/data/f{i:04}\"]\ncontent = \"{version} {i}\\n\"\n\n"
        ));
    }
    s
}

fn wait_for(path: &Path, timeout: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// SIGTERM mid-run: the running resource finishes, the report says the run
/// stopped, the lock is released, exit 0; the next run converges. SIGKILL
/// mid-run: the next run converges.
#[test]
fn sigterm_and_sigkill_mid_run_leave_a_host_the_next_run_converges() {
    let f = Fleet::new();
    f.push(None, &big_state(3000, "v1"));
    for signal in ["TERM", "KILL"] {
        let _ = std::fs::remove_dir_all(f.root().join("data"));
        let mut child = f
            .agent(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run is writing files, then signal it.
        assert!(wait_for(
            &f.root().join("data/f0010"),
            Duration::from_secs(60)
        ));
        let sig = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sig.success());
        let status = child.wait().unwrap();
        let files = std::fs::read_dir(f.root().join("data")).unwrap().count();
        if signal == "TERM" {
            assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
            let rep = f.last_report();
            assert_eq!(rep["status"], "stopped", "{}", rep["status"]);
            assert!(files < 3000, "the run did not stop ({files} files)");
            let skipped = rep["counts"]["skipped"].as_u64().unwrap();
            assert!(skipped > 0);
            assert_eq!(
                rep["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["error"] == "not started: the run was stopped")
                    .count() as u64,
                skipped
            );
        } else {
            assert_eq!(status.code(), None, "killed by SIGKILL");
        }
        // The lock is free and the next run converges.
        let (out, rep) = f.run_once();
        assert_eq!(
            out.status.code(),
            Some(0),
            "after SIG{signal}: {}",
            stderr(&out)
        );
        assert_eq!(rep["status"], "converged");
        assert_eq!(
            std::fs::read_dir(f.root().join("data")).unwrap().count(),
            3000
        );
    }
}

/// SIGHUP starts a cycle now instead of after the interval.
#[test]
fn sighup_runs_now() {
    let f = Fleet::new();
    f.config("interval = 3600\nsplay = 0\n");
    let c1 = f.push(None, &state(&[("/etc/motd", "one\n")]));
    let mut child = f
        .agent(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let applied = f.state_dir().join("applied-commit");
    assert!(wait_for(&applied, Duration::from_secs(30)));
    assert_eq!(f.applied(), Some(c1.to_string()));
    let c2 = f.push(Some(c1), &state(&[("/etc/motd", "two\n")]));
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    while f.applied() != Some(c2.to_string()) && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.applied(), Some(c2.to_string()), "SIGHUP did not run now");
    assert_eq!(f.read("/etc/motd").as_deref(), Some("two\n"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Requests that are not this host's run — a mistyped `--host`, the lock
/// held by another run, a facts file that is not JSON — exit with their
/// code and never replace the host's kept report or add to its history.
#[test]
fn a_wrong_request_never_replaces_the_hosts_report() {
    let f = Fleet::new();
    let c1 = f.push(None, &state(&[("/etc/motd", "one\n")]));
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["status"], "converged");
    let kept = std::fs::read_to_string(f.state_dir().join("reports/last.json")).unwrap();
    let history = crate::daemon_history(&f.state_dir());
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(f.state_dir().join("reports/last.json")).unwrap(),
            kept,
            "{what} replaced the kept report"
        );
        assert_eq!(crate::daemon_history(&f.state_dir()), history, "{what}");
    };

    // An unknown host, through the daemon's path (`apply --commit`).
    let out = f
        .agent(&["apply", "--commit", &c1.to_string(), "--host", "hh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("host `hh` is not in the inventory"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("did you mean `h`?"),
        "{}",
        stderr(&out)
    );
    unchanged("apply --commit --host hh");

    // The lock held by another run: busy, retry later.
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(f.state_dir().join("lock"))
        .unwrap();
    held.lock().unwrap();
    let (out, _) = f.run_once();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = f
        .agent(&["apply", "--commit", &c1.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    held.unlock().unwrap();
    unchanged("a run while the lock is held");

    // Bad arguments: clap's usage error (64), before anything runs.
    let out = f.agent(&["apply", "--commit"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let out = f.agent(&["run", "--nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    unchanged("bad arguments");

    // The same host and commit still converge and report.
    let out = f
        .agent(&["apply", "--commit", &c1.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A commit whose inventory no longer names this host is refused like one
/// that does not compile: the daemon converges the last good commit.
#[test]
fn a_commit_that_drops_this_host_keeps_the_last_good() {
    let f = Fleet::new();
    let c1 = f.push(None, &state(&[("/etc/motd", "one\n")]));
    assert_eq!(f.run_once().0.status.code(), Some(0));
    let t = tree(
        &f.remote,
        &[
            (
                "inventory.toml",
                Entry::File(b"[hosts.other]\ndc = \"dc1\"\nrole = \"r\"\n"),
            ),
            ("top.toml", Entry::File(TOP.as_bytes())),
            ("states/s.toml", Entry::File(b"")),
        ],
    );
    let c2 = commit_at(
        &f.remote,
        t,
        &[c1],
        "drop h",
        Sign::Ssh(&f.key, "git"),
        now(),
    );
    set_main(&f.remote, c2);
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["pull"]["verdict"], "refused", "{rep:#}");
    assert_eq!(rep["pull"]["converged_to"], c1.to_string());
    let reason = rep["pull"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("host `h` is not in the inventory"),
        "{reason}"
    );
    assert_eq!(f.applied(), Some(c1.to_string()));
}

/// The daemon's log (the journal, under systemd) shows a converge as it
/// goes: a line per changed resource, not only the run's summary.
#[test]
fn the_daemon_logs_each_changed_resource() {
    let f = Fleet::new();
    f.push(
        None,
        &state(&[("/etc/motd", "one\n"), ("/etc/issue", "two\n")]),
    );
    let (out, rep) = f.run_once();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rep["counts"]["changed"], 2);
    let log = stderr(&out);
    for id in ["file[/etc/motd]", "file[/etc/issue]"] {
        assert!(
            log.lines()
                .any(|l| l.contains("INFO") && l.contains("changed") && l.contains(id)),
            "no line for {id}:\n{log}"
        );
    }
}
