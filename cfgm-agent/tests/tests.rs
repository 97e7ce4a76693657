//! cfgm-agent integration tests: the real binary against host roots in
//! temporary directories (file kinds need no chroot), and the run lock;
//! the library's building blocks of the daemon in the modules below.
//! Tests that need root say `skipped (needs root): NAME` and pass when not
//! root (see `needs_root`).

mod config;
mod daemon;
mod facts;
mod git;
mod metrics;
mod signers;
mod signing;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A port of 127.0.0.1 where a connect is refused at once and that no
/// other test can take while the socket lives: bound, never listening
/// (a port found free and released could be bound again by a parallel
/// test, which would then answer).
pub(crate) fn closed_port() -> (std::os::fd::OwnedFd, u16) {
    use rustix::net::{AddressFamily, SocketType};
    use std::net::{Ipv4Addr, SocketAddrV4};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = rustix::net::getsockname(&fd).unwrap();
    let port = SocketAddrV4::try_from(addr).unwrap().port();
    (fd, port)
}

/// How many reports the agent's history under `state` holds.
pub(crate) fn daemon_history(state: &Path) -> usize {
    std::fs::read_dir(state.join("reports/history"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether a test that needs root may run. Such tests converge roots
/// where new files belong to root (the agent chowns them to uid 0), chroot
/// for commands, or hand a path to another user; not root, they say so by
/// name and pass (`make test` runs as root), unless `CFGM_TEST_REQUIRE_ROOT`
/// is set, which makes a skip a failure.
fn needs_root(test: &str) -> bool {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return true;
    }
    assert!(
        std::env::var_os("CFGM_TEST_REQUIRE_ROOT").is_none(),
        "{test} needs root (CFGM_TEST_REQUIRE_ROOT is set)"
    );
    // Past the test harness's capture, so that it shows.
    let _ = writeln!(std::io::stderr(), "skipped (needs root): {test}");
    false
}

fn agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cfgm-agent"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A tree with one host `h` whose single state is `state`.
fn tree(dir: &Path, state: &str) {
    write(
        &dir.join("inventory.toml"),
        "[hosts.h]\ndc = \"dc1\"\nrole = \"r\"\n",
    );
    write(&dir.join("top.toml"), "\"*\" = [\"s\"]\n");
    write(&dir.join("states/s.toml"), state);
}

fn apply(tree: &Path, root: &Path, state: &Path, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(agent())
        .args(["apply", "--host", "h", "--json", "--tree"])
        .arg(tree)
        .arg("--root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

/// A temporary directory with the tree, root and state paths of a test.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let (tr, root, st) = (
        t.path().join("tree"),
        t.path().join("root"),
        t.path().join("state"),
    );
    (t, tr, root, st)
}

/// `cfgm-agent apply` with the output for people.
fn apply_human(tree: &Path, root: &Path, state: &Path) -> Output {
    Command::new(agent())
        .args(["apply", "--host", "h", "--color", "never", "--tree"])
        .arg(tree)
        .arg("--root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

fn outcome<'a>(report: &'a Value, id: &str) -> &'a str {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            format!(
                "{}[{}]",
                r["id"]["kind"].as_str().unwrap(),
                r["id"]["name"].as_str().unwrap()
            ) == id
        })
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or_else(|| panic!("{id} not in report: {report:#}"))
}

/// Every file under `dir` with its content (relative paths), sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push((rel + "/", Vec::new()));
                stack.push(p);
            } else if ft.is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                ));
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

const FILE_STATE: &str = r#"
[directory."/etc/app"]
mode = "0750"

[file."/etc/app/app.conf"]
content = "port = 8080\nworkers = 4\n"
mode = "0640"

[file."/etc/app/key.pem"]
content = "-----BEGIN KEY-----\nhunter2-very-secret\n-----END KEY-----\n"
secret = true
mode = "0600"

[symlink."/etc/app/current"]
target = "/etc/app/app.conf"

[directory."/var/cache/app"]
purge = true

[file."/var/cache/app/keep"]
content = "kept\n"

# In a subdirectory no resource declares: the purge must keep the subdirectory.
[file."/var/cache/app/sub/keep"]
content = "kept too\n"
"#;

/// A dry run never promises what apply cannot do: a file over a directory
/// is "would fail" with apply's own message and exit 1, and apply fails it
/// with the same words, touching nothing of it; the rest converges.
#[test]
fn a_dry_run_says_would_fail_and_exits_1() {
    // New files are root's: the apply chowns.
    if !needs_root("a_dry_run_says_would_fail_and_exits_1") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        "[file.\"/etc/blocked\"]\ncontent = \"x\\n\"\n\n[file.\"/etc/ok\"]\ncontent = \"ok\\n\"\n",
    );
    std::fs::create_dir_all(root.join("etc/blocked")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--color", "never"];
        args.extend_from_slice(extra);
        let out = Command::new(agent())
            .args(["apply", "--host", "h", "--tree"])
            .arg(&tr)
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(&st)
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let msg = "/etc/blocked is a directory; refusing to replace it with a file";
    let (code, text) = run(&["--dry-run"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("! file[/etc/blocked]  would fail: {msg}")),
        "{text}"
    );
    assert!(
        text.contains("1 would change, 0 unchanged, 1 would fail"),
        "{text}"
    );
    assert!(!root.join("etc/ok").exists());
    let (code, text) = run(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("! file[/etc/blocked]  failed: {msg}")),
        "{text}"
    );
    assert!(root.join("etc/blocked").is_dir());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/ok")).unwrap(),
        "ok\n"
    );
}

#[test]
fn file_kinds_converge_then_a_second_apply_changes_nothing() {
    if !needs_root("file_kinds_converge_then_a_second_apply_changes_nothing") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(&tr, FILE_STATE);
    std::fs::create_dir_all(root.join("var/cache/app/sub")).unwrap();
    write(&root.join("var/cache/app/stale"), "old\n");

    // A dry run on the fresh root predicts and changes nothing on disk.
    let before = snapshot(&root);
    let (out, dry) = apply(&tr, &root, &st, &["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&root), before, "the dry run changed the root");
    assert!(
        !dry.to_string().contains("hunter2"),
        "a secret leaked into the plan"
    );
    let predicted: Vec<String> = dry["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "would-change")
        .map(|r| r["id"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(predicted.len(), 7, "{dry:#}");

    let (out, first) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{first:#}");
    let changed: Vec<String> = first["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "changed")
        .map(|r| r["id"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        changed, predicted,
        "apply changed other resources than the dry run said"
    );
    assert!(
        !first.to_string().contains("hunter2"),
        "a secret leaked into the report"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/app/app.conf")).unwrap(),
        "port = 8080\nworkers = 4\n"
    );
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root.join(p)).unwrap().permissions(),
        ) & 0o7777
    };
    assert_eq!(mode("etc/app/app.conf"), 0o640);
    assert_eq!(mode("etc/app/key.pem"), 0o600);
    assert_eq!(mode("etc/app"), 0o750);
    assert_eq!(
        std::fs::read_link(root.join("etc/app/current")).unwrap(),
        Path::new("/etc/app/app.conf")
    );
    assert!(
        !root.join("var/cache/app/stale").exists(),
        "purge left an unmanaged file"
    );
    assert!(root.join("var/cache/app/keep").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("var/cache/app/sub/keep")).unwrap(),
        "kept too\n"
    );

    let (out, second) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success());
    assert_eq!(
        second["counts"]["changed"], 0,
        "second apply changed something: {second:#}"
    );
    assert_eq!(second["counts"]["unchanged"], 7);
}

#[test]
fn a_content_change_shows_a_unified_diff_and_keeps_a_backup() {
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        "[file.\"/etc/motd\"]\ncontent = \"line one\\nline two\\n\"\n",
    );
    write(&root.join("etc/motd"), "line one\nline 2\n");
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let diff = rep["resources"][0]["changes"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("--- a/etc/motd\n+++ b/etc/motd\n"), "{diff}");
    assert!(diff.contains("-line 2\n+line two\n"), "{diff}");
    // One directory per path: readable, then a hash of the exact path.
    let dirs: Vec<_> = std::fs::read_dir(st.join("backups"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let name = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("etc%motd-"), "{name}");
    let backups: Vec<_> = std::fs::read_dir(&dirs[0]).unwrap().flatten().collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        std::fs::read_to_string(backups[0].path()).unwrap(),
        "line one\nline 2\n"
    );
    // Human output reads like git diff.
    write(
        &tr.join("states/s.toml"),
        "[file.\"/etc/motd\"]\ncontent = \"line one\\nline three\\n\"\n",
    );
    let out = apply_human(&tr, &root, &st);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("~ file[/etc/motd]  changed"), "{text}");
    assert!(
        text.contains("-line two") && text.contains("+line three"),
        "{text}"
    );
    assert!(text.contains("1 changed, 0 unchanged"), "{text}");
}

#[test]
fn a_failed_resource_skips_its_dependents_and_the_rest_converges() {
    if !needs_root("a_failed_resource_skips_its_dependents_and_the_rest_converges") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        r#"
[file."/missing/dir/a.conf"]
content = "a\n"

[file."/etc/b.conf"]
content = "b\n"
require = ["file:/missing/dir/a.conf"]

[file."/etc/c.conf"]
content = "c\n"
"#,
    );
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(outcome(&rep, "file[/missing/dir/a.conf]"), "failed");
    assert_eq!(outcome(&rep, "file[/etc/b.conf]"), "skipped");
    assert_eq!(outcome(&rep, "file[/etc/c.conf]"), "changed");
    let err = rep["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "failed")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("parent directory /missing/dir does not exist"),
        "{err}"
    );
    let skip = rep["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "skipped")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(skip, "requires file[/missing/dir/a.conf], which failed");
    assert!(!root.join("etc/b.conf").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/c.conf")).unwrap(),
        "c\n"
    );
}

#[test]
fn a_catalog_that_does_not_compile_changes_nothing() {
    let (_t, tr, root, st) = dirs();
    tree(&tr, "[file.\"/etc/ok\"]\ncontent = \"fine\\n\"\n\n[file.\"/etc/bad\"]\ncontent = \"x\"\nrequire = [\"pkg:nope\"]\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let before = snapshot(&root);
    let out = apply_human(&tr, &root, &st);
    assert_eq!(out.status.code(), Some(3), "refused: does not compile");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("states/s.toml:6:12"), "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(snapshot(&root), before);
    // The kept report says so (monitoring must not see the last good run),
    // in the shape of any other report.
    let last: Value =
        serde_json::from_str(&std::fs::read_to_string(st.join("reports/last.json")).unwrap())
            .unwrap();
    assert_eq!(last["status"], "not-compiled");
    assert_eq!(last["host"], "h");
    assert_eq!(last["resources"], serde_json::json!([]));
    assert_eq!(last["diagnostics"][0]["code"], "missing-requisite");
}

#[test]
fn a_second_concurrent_run_is_refused() {
    if !needs_root("a_second_concurrent_run_is_refused") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(&tr, "[file.\"/etc/x\"]\ncontent = \"x\\n\"\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(&st).unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(st.join("lock"))
        .unwrap();
    held.lock().unwrap();
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert_eq!(out.status.code(), Some(4), "busy: retry later");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another cfgm-agent run holds"), "{err}");
    assert!(!root.join("etc/x").exists());
    held.unlock().unwrap();
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "released lock still refused");
    // Held, but the run whose pid the file holds is gone: what holds it is
    // a leftover child of that run (a command's supervisor that has not yet
    // closed what it inherited), for an instant. Waited for, not refused.
    std::fs::remove_file(root.join("etc/x")).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    held.lock().unwrap();
    std::fs::write(st.join("lock"), dead.to_string()).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        held.unlock().unwrap();
    });
    let (out, _) = apply(&tr, &root, &st, &[]);
    release.join().unwrap();
    assert!(
        out.status.success(),
        "a lock held after its run ended was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.join("etc/x").exists());
}

/// A small deterministic generator (no dependency), seeded from the clock;
/// the seed is printed so a failure can be replayed with CFGM_CRASH_SEED.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn crash_tree(dir: &Path, version: char, files: usize) {
    let mut s = String::from("[directory.\"/data\"]\n\n");
    for i in 0..files {
        s.push_str(&format!(
            "[file.\"/data/f{i:03}\"]\nsource = \"{version}{i:03}\"\n\n"
        ));
        // 32 KiB per file, different per file and version: a torn write shows.
        let body: String = format!("{version}{i:03}-").repeat(32 * 1024 / 5);
        write(&dir.join(format!("files/{version}{i:03}")), &body);
    }
    tree(dir, &s);
}

#[test]
fn sigkill_at_random_points_never_leaves_a_torn_file() {
    if !needs_root("sigkill_at_random_points_never_leaves_a_torn_file") {
        return;
    }
    const FILES: usize = 200;
    const TRIALS: usize = 50;
    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = t.path().join("root");
    let st = t.path().join("state");
    std::fs::create_dir_all(&root).unwrap();
    let trees = [t.path().join("a"), t.path().join("b")];
    crash_tree(&trees[0], 'A', FILES);
    crash_tree(&trees[1], 'B', FILES);
    let expect = |v: char, i: usize| format!("{v}{i:03}-").repeat(32 * 1024 / 5);

    // How long a full rewrite takes: kills land anywhere inside it. The
    // shortest of three, so that a slow moment while measuring (other
    // tests run beside this one) does not put most kills after the end.
    let (out, _) = apply(&trees[0], &root, &st, &[]);
    assert!(out.status.success());
    let mut full = u64::MAX;
    for k in 1..=3 {
        let t0 = Instant::now();
        let (out, _) = apply(&trees[k % 2], &root, &st, &[]);
        assert!(out.status.success());
        full = full.min(t0.elapsed().as_millis().max(20) as u64);
    }

    let seed = std::env::var("CFGM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: seed {seed}, full rewrite {full} ms");
    let mut rng = Lcg(seed);
    let mut killed_mid_run = 0;
    // At least TRIALS trials, more (to twice as many) until half of them
    // killed a running apply: a run after a kill rewrites only part of the
    // files, and the machine may be quieter than when `full` was measured.
    let mut trial = 0;
    while trial < TRIALS || (killed_mid_run < TRIALS / 2 && trial < 2 * TRIALS) {
        let tr = &trees[trial % 2];
        let mut child = Command::new(agent())
            .args(["apply", "--host", "h", "--json", "--tree"])
            .arg(tr)
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(&st)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next() % full));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        for i in 0..FILES {
            let got =
                std::fs::read_to_string(root.join(format!("data/f{i:03}"))).unwrap_or_default();
            assert!(
                got == expect('A', i) || got == expect('B', i),
                "trial {trial} (seed {seed}): data/f{i:03} is torn ({} bytes)",
                got.len()
            );
        }
        // Backups are part of recovery: each one whole, old or new.
        for dir in std::fs::read_dir(st.join("backups")).unwrap().flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let i: usize = name
                .strip_prefix("data%f")
                .and_then(|r| r.get(..3)?.parse().ok())
                .unwrap_or_else(|| panic!("backup directory {name}"));
            for b in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if b.file_name().to_string_lossy().starts_with('.') {
                    continue; // a temporary, never taken for a backup
                }
                let got = std::fs::read_to_string(b.path()).unwrap_or_default();
                assert!(
                    got == expect('A', i) || got == expect('B', i),
                    "trial {trial} (seed {seed}): a backup of data/f{i:03} is torn ({} bytes)",
                    got.len()
                );
            }
        }
        trial += 1;
    }
    assert!(
        killed_mid_run >= TRIALS / 2,
        "only {killed_mid_run} of {trial} kills hit a running apply"
    );
    // The next apply converges with no failure, and every file is new.
    let (out, rep) = apply(&trees[0], &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    assert_eq!(rep["counts"]["failed"], 0);
    for i in 0..FILES {
        assert_eq!(
            std::fs::read_to_string(root.join(format!("data/f{i:03}"))).unwrap(),
            expect('A', i)
        );
    }
    let (_, again) = apply(&trees[0], &root, &st, &[]);
    assert_eq!(again["counts"]["changed"], 0);
    // Interrupted writes left no temporary files behind.
    let leftovers: Vec<String> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_file_whose_template_fails_fails_alone_and_the_rest_converges() {
    if !needs_root("a_file_whose_template_fails_fails_alone_and_the_rest_converges") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        r#"
[file."/etc/app.conf"]
template = "app.conf.j2"

[file."/etc/app.ready"]
content = "ready\n"
require = ["file:/etc/app.conf"]

[file."/etc/other.conf"]
content = "other\n"
"#,
    );
    write(
        &tr.join("templates/app.conf.j2"),
        "port = {{ data.app.port }}\n",
    );
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let out = apply_human(&tr, &root, &st);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // The template problem is shown where it is, and the resource fails with it.
    assert!(err.contains("templates/app.conf.j2:1:11"), "{err}");
    assert!(
        text.contains("! file[/etc/app.conf]  failed: undefined variable in template: `data.app.port` (templates/app.conf.j2:1:11)"),
        "{text}"
    );
    assert!(
        text.contains(
            "- file[/etc/app.ready]  skipped: requires file[/etc/app.conf], which failed"
        ),
        "{text}"
    );
    assert!(text.contains("~ file[/etc/other.conf]  changed"), "{text}");
    assert!(!root.join("etc/app.conf").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/other.conf")).unwrap(),
        "other\n"
    );
}

/// A user who owns a directory on the way (here a home) must not be able
/// to point root's writes elsewhere with a symlink.
#[test]
fn writes_do_not_follow_a_users_symlink() {
    if !needs_root("writes_do_not_follow_a_users_symlink") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        "[file.\"/home/alice/.ssh/authorized_keys\"]\ncontent = \"ssh-ed25519 AAAA alice\\n\"\nmode = \"0600\"\n",
    );
    std::fs::create_dir_all(root.join("home/alice")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../etc", root.join("home/alice/.ssh")).unwrap();
    std::os::unix::fs::lchown(root.join("home/alice/.ssh"), Some(1000), Some(1000)).unwrap();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = rep["resources"][0]["error"].as_str().unwrap_or("");
    assert!(
        err.contains("/home/alice/.ssh is a symlink owned by uid 1000; refusing to follow it"),
        "{rep:#}"
    );
    assert!(
        !root.join("etc/authorized_keys").exists(),
        "root wrote through the user's symlink"
    );
}

/// A host root in which `cmd` can run: `/bin/sh` (dash) and the libraries it
/// needs, copied from this machine. Commands may use shell builtins only.
fn shell_root(root: &Path) {
    for (from, to) in [
        ("/bin/dash", "bin/sh"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        let dest = root.join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap();
    }
    std::fs::create_dir_all(root.join("data")).unwrap();
}

/// A temporary that a killed run left is found by the runs after it until
/// one has seen every file: a run whose condition left a file alone did
/// not look beside it, so it does not tell the next run that none is left
/// (the state directory's `no-temporaries`); the run that observes the file
/// removes the temporary.
#[test]
fn a_leftover_temporary_is_looked_for_until_a_run_has_seen_every_file() {
    if !needs_root("a_leftover_temporary_is_looked_for_until_a_run_has_seen_every_file") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    shell_root(&root);
    write(&root.join("data/f"), "x\n");
    write(&root.join("data/.f.cfgm-new"), "torn");
    let token = st.join("no-temporaries");
    tree(
        &tr,
        "[file.\"/data/f\"]\ncontent = \"x\\n\"\nonlyif = [\"/bin/sh\", \"-c\", \"exit 1\"]\n",
    );
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    assert!(
        !token.exists(),
        "a run that looked at no file said none is left"
    );
    assert!(root.join("data/.f.cfgm-new").exists());
    tree(&tr, "[file.\"/data/f\"]\ncontent = \"x\\n\"\n");
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    assert!(rep.to_string().contains("leftover"), "{rep:#}");
    assert!(
        !root.join("data/.f.cfgm-new").exists(),
        "the leftover stayed"
    );
    assert!(
        token.exists(),
        "a clean run that saw every file wrote no token"
    );
    // The next run trusts it: a temporary planted by hand (not a run's) is
    // not looked for.
    write(&root.join("data/.f.cfgm-new"), "planted");
    let (_, rep) = apply(&tr, &root, &st, &[]);
    assert_eq!(rep["counts"]["changed"], 0, "{rep:#}");
    // Without the token, the run that looks clears the temporaries of every
    // path written by its catalog, whatever the kind (a `line`), and by the
    // last apply's (a file no longer declared), not only of the files it
    // observes.
    write(&root.join("data/app.conf"), "a = 1\n");
    tree(
        &tr,
        "[file.\"/data/f\"]\ncontent = \"x\\n\"\n\n[file.\"/data/old\"]\ncontent = \"o\\n\"\n",
    );
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    tree(
        &tr,
        "[file.\"/data/f\"]\ncontent = \"x\\n\"\n\n[line.a]\npath = \"/data/app.conf\"\nline = \"a = 1\"\n",
    );
    std::fs::remove_file(&token).unwrap(); // as a killed run leaves it
    for left in [
        "data/.f.cfgm-new",
        "data/.old.cfgm-new",
        "data/.app.conf.cfgm-new",
    ] {
        write(&root.join(left), "torn");
    }
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    for left in [
        "data/.f.cfgm-new",
        "data/.old.cfgm-new",
        "data/.app.conf.cfgm-new",
    ] {
        assert!(!root.join(left).exists(), "{left} stayed");
    }
    assert!(token.exists());
}

/// The agent's own files in a state directory inside a root that is not
/// trusted: a symlink planted at their names is replaced, never written
/// through, and a FIFO in place of the token does not hang the run.
#[test]
fn state_files_are_never_written_through_a_planted_symlink() {
    let (t, tr, root, _) = dirs();
    let st = root.join("var/lib/cfgm");
    let victim = t.path().join("victim");
    write(&victim, "victim\n");
    std::fs::create_dir_all(st.join("catalog-cache")).unwrap();
    std::fs::create_dir_all(st.join("reports")).unwrap();
    for name in [
        "no-temporaries",
        "catalog-cache/h.msgpack",
        "reports/last.json",
    ] {
        std::os::unix::fs::symlink(&victim, st.join(name)).unwrap();
    }
    tree(&tr, "[file.\"/etc/motd\"]\ncontent = \"hi\\n\"\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    assert_eq!(rep["counts"]["changed"], 0, "{rep:#}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n");
    for name in [
        "no-temporaries",
        "catalog-cache/h.msgpack",
        "reports/last.json",
    ] {
        let m = std::fs::symlink_metadata(st.join(name)).unwrap();
        assert!(m.is_file(), "{name} is still a symlink");
    }
    // A FIFO where the token goes: read as no token, never waited on.
    std::fs::remove_file(st.join("no-temporaries")).unwrap();
    let fifo = std::ffi::CString::new(st.join("no-temporaries").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
}

/// Version `v` of a watched file, and a command that refreshes on its
/// change by logging the content it sees.
fn refresh_tree(dir: &Path, v: usize) {
    tree(
        dir,
        &format!(
            r#"
[file."/data/watched"]
content = "v{v}\n"

[cmd."log-refresh"]
run = "read v < /data/watched; echo \"$v\" >> /data/refresh.log"
refresh_only = true
watch = ["file:/data/watched"]
"#
        ),
    );
}

/// A watched file changes, the run is SIGKILLed at a random instant, a
/// recovery run follows: the refresh the change made due must have
/// happened (at least once) by the end of the recovery run, whatever the
/// instant of the kill. Before debts were recorded ahead of the change, a
/// kill between the write and the refresh lost the refresh for good.
#[test]
fn sigkill_at_random_points_never_loses_a_due_refresh() {
    if !needs_root("sigkill_at_random_points_never_loses_a_due_refresh") {
        return;
    }
    const TRIALS: usize = 50;
    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let (root, st, tr) = (
        t.path().join("root"),
        t.path().join("state"),
        t.path().join("tree"),
    );
    shell_root(&root);
    let log = root.join("data/refresh.log");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    // A whole run that changes the file and refreshes: kills land inside it.
    refresh_tree(&tr, 0);
    let t0 = Instant::now();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let full = t0.elapsed().as_micros().max(2000) as u64;
    assert_eq!(logged(), "v0\n");

    let seed = std::env::var("CFGM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("refresh crash test: seed {seed}, full run {full} µs");
    let mut rng = Lcg(seed);
    let mut killed_between = 0;
    for trial in 1..=TRIALS {
        refresh_tree(&tr, trial);
        let mut child = Command::new(agent())
            .args(["apply", "--host", "h", "--json", "--tree"])
            .arg(&tr)
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(&st)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next() % full));
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let written = std::fs::read_to_string(root.join("data/watched")).unwrap_or_default();
        let want = format!("v{trial}");
        if written.trim() == want && !logged().lines().any(|l| l == want) {
            killed_between += 1;
        }
        let (out, rep) = apply(&tr, &root, &st, &[]);
        assert!(
            out.status.success(),
            "trial {trial} (seed {seed}): exit {:?}: {}\n{rep:#}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            logged().lines().any(|l| l == want),
            "trial {trial} (seed {seed}): the refresh for {want} never happened; log:\n{}",
            logged()
        );
        assert!(
            !st.join("owed-refresh.json").exists(),
            "trial {trial}: a debt outlived its refresh"
        );
    }
    eprintln!("{killed_between} of {TRIALS} kills landed between the change and its refresh");
}

/// Each resource's report entry carries what was observed (after apply),
/// secrets as a hash: the report is also the host's facts about its catalog.
/// A file with nothing left to change is kept short in the report (its text
/// is the catalog's, marked `as_catalog`); the facts put the text back from
/// the catalog the agent keeps of that apply, and without that catalog they
/// drop the observation (a plan then says "unknown") rather than carry a
/// file without its text.
#[test]
fn the_report_carries_each_resources_observed_state_and_facts_restore_its_text() {
    if !needs_root("the_report_carries_each_resources_observed_state_and_facts_restore_its_text") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(&tr, FILE_STATE);
    std::fs::create_dir_all(root.join("var/cache/app/sub")).unwrap();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let entry = |rep: &Value, id: &str| {
        rep["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                format!(
                    "{}[{}]",
                    r["id"]["kind"].as_str().unwrap(),
                    r["id"]["name"].as_str().unwrap()
                ) == id
            })
            .unwrap()
            .clone()
    };
    let conf = entry(&rep, "file[/etc/app/app.conf]");
    assert_eq!(conf["observed"]["as_catalog"], true, "{conf:#}");
    assert!(conf["observed"].get("content").is_none(), "{conf:#}");
    assert_eq!(conf["observed"]["mode"], "0640");
    let key = entry(&rep, "file[/etc/app/key.pem]");
    assert!(key["observed"]["hash"].is_string(), "{key:#}");
    // A no-op: the text is nowhere in the report (the first apply's
    // changes showed it as a diff).
    let (_, again) = apply(&tr, &root, &st, &[]);
    assert_eq!(again["counts"]["changed"], 0, "{again:#}");
    let kept = std::fs::read_to_string(st.join("reports/last.json")).unwrap();
    assert!(kept.contains("\"observed\""));
    assert!(
        !kept.contains("port = 8080"),
        "the converged text is in the report"
    );
    assert!(!kept.contains("hunter2"), "a secret reached the report");
    // Drift repaired: the change shows the text that was there; the
    // observation after it is the catalog's text again.
    write(&root.join("etc/app/app.conf"), "port = 1\n");
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let conf = entry(&rep, "file[/etc/app/app.conf]");
    assert_eq!(conf["outcome"], "changed", "{conf:#}");
    assert!(
        conf["changes"].to_string().contains("-port = 1"),
        "{conf:#}"
    );
    assert_eq!(conf["observed"]["as_catalog"], true, "{conf:#}");
    let facts = |st: &Path| -> Value {
        let out = Command::new(agent())
            .args(["facts", "--json", "--root"])
            .arg(&root)
            .arg("--state-dir")
            .arg(st)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let f = facts(&st);
    let conf = entry(&f, "file[/etc/app/app.conf]");
    assert_eq!(
        conf["observed"]["content"], "port = 8080\nworkers = 4\n",
        "{conf:#}"
    );
    assert!(conf["observed"].get("as_catalog").is_none(), "{conf:#}");
    assert!(
        !f.to_string().contains("hunter2"),
        "a secret reached the facts"
    );
    // Without the catalog of that run, no short observation is passed on.
    std::fs::remove_dir_all(st.join("catalog-cache")).unwrap();
    let f = facts(&st);
    let conf = entry(&f, "file[/etc/app/app.conf]");
    assert!(conf["observed"].is_null(), "{conf:#}");
    let problems = f["problems"].to_string();
    assert!(problems.contains("no longer kept"), "{problems}");
}

/// Secrets that are not a resource's own attributes stay on the host too:
/// the file a secret `line` edits (its observed content is the whole file),
/// a second `line` in that file (it would show the file, and its diff the
/// lines around it), a private key whose mode alone is managed (its
/// content is not observed at all), and a `line` in a file declared secret
/// whose content the catalog does not set. Neither the printed report, the kept
/// one, nor the facts carry them.
#[test]
fn secrets_beside_a_resource_never_reach_reports_or_facts() {
    if !needs_root("secrets_beside_a_resource_never_reach_reports_or_facts") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        r#"
[line.password]
path = "/etc/app.conf"
line = "password = hunter2"
secret = true

[line.port]
path = "/etc/app.conf"
line = "port = 80"

[file."/etc/host.key"]
mode = "0600"

[file."/etc/secrets.env"]
mode = "0600"
secret = true

[line.log-level]
path = "/etc/secrets.env"
line = "LOG=debug"
"#,
    );
    write(&root.join("etc/app.conf"), "a = 1\n");
    // A secret file whose content the catalog does not set: a line in it
    // would show it.
    write(&root.join("etc/secrets.env"), "TOKEN=t0k3n-abc123\n");
    write(
        &root.join("etc/host.key"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n",
    );
    let mut printed = String::new();
    for _ in 0..2 {
        let (out, rep) = apply(&tr, &root, &st, &[]);
        assert!(out.status.success(), "{rep:#}");
        printed.push_str(&rep.to_string());
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(root.join("etc/app.conf")).unwrap();
    assert!(
        text.contains("password = hunter2") && text.contains("port = 80"),
        "{text}"
    );
    let kept = std::fs::read_to_string(st.join("reports/last.json")).unwrap();
    let facts = Command::new(agent())
        .args(["facts", "--json", "--root"])
        .arg(&root)
        .arg("--state-dir")
        .arg(&st)
        .output()
        .unwrap();
    assert!(facts.status.success());
    let facts = String::from_utf8_lossy(&facts.stdout).into_owned();
    assert!(
        facts.contains("/etc/host.key"),
        "the facts know the key's resource"
    );
    for (what, text) in [("printed", &printed), ("kept", &kept), ("facts", &facts)] {
        for secret in ["hunter2", "b3BlbnNzaC1rZXktdjE", "t0k3n-abc123"] {
            assert!(!text.contains(secret), "{secret} reached the {what} report");
        }
    }
}

/// A request that is not this host's run (an unknown host, facts that are
/// not JSON, the lock held by another run) is refused — an unknown host
/// with a did-you-mean — and never replaces the host's kept report.
#[test]
fn an_unknown_host_is_refused_and_keeps_the_last_report() {
    if !needs_root("an_unknown_host_is_refused_and_keeps_the_last_report") {
        return;
    }
    let (_t, tr, root, st) = dirs();
    tree(&tr, "[file.\"/etc/x\"]\ncontent = \"x\\n\"\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success());
    let before = std::fs::read_to_string(st.join("reports/last.json")).unwrap();
    let out = Command::new(agent())
        .args(["apply", "--host", "hh", "--tree"])
        .arg(&tr)
        .arg("--root")
        .arg(&root)
        .arg("--state-dir")
        .arg(&st)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host `hh` is not in the inventory"), "{err}");
    assert!(err.contains("did you mean `h`?"), "{err}");
    assert_eq!(
        std::fs::read_to_string(st.join("reports/last.json")).unwrap(),
        before
    );
    // Facts that are not JSON: refused before anything runs.
    write(&tr.join("facts.json"), "{not json");
    let facts = tr.join("facts.json");
    let (out, _) = apply(&tr, &root, &st, &["--facts", facts.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    // The lock held by another run, also for a tree that does not compile
    // (whose report would replace the last one under the lock).
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(st.join("lock"))
        .unwrap();
    held.lock().unwrap();
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert_eq!(out.status.code(), Some(4));
    write(
        &tr.join("states/s.toml"),
        "[file.\"/etc/x\"]\nrequire = [\"file:/nope\"]\n",
    );
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert_eq!(out.status.code(), Some(4));
    held.unlock().unwrap();
    assert_eq!(
        std::fs::read_to_string(st.join("reports/last.json")).unwrap(),
        before,
        "a request that was not this host's run replaced its report"
    );
}

/// The agent's `--help` carries the exit-code table both binaries share;
/// a missing tree is refused (3) with its cause said once.
#[test]
fn help_documents_exit_codes_and_a_missing_tree_says_why_once() {
    for sub in [&[][..], &["apply"], &["run"], &["facts"], &["install"]] {
        let out = Command::new(agent())
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub:?} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(cfgm_core::exit::HELP), "{sub:?}: {text}");
    }
    let out = Command::new(agent())
        .args([
            "apply",
            "--dry-run",
            "--host",
            "h",
            "--tree",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cfgm-agent: error: /nonexistent: not a states tree: No such file or directory (os error 2)\n"
    );
}

/// A command's process group dies with the agent: a run killed mid-command
/// leaves nothing running (the next run would start it again beside it).
#[test]
fn a_killed_agents_commands_die_with_it() {
    let t = tempfile::tempdir().unwrap();
    let (tr, st, d) = (t.path().join("tree"), t.path().join("state"), t.path());
    // A shell, and a child of it in the background: both must go.
    tree(
        &tr,
        &format!(
            "[cmd.sleeper]\nrun = \"echo $$ > {d}/sh.pid; sleep 600 & echo $! > {d}/bg.pid; sleep 600\"\ncreates = \"{d}/never\"\n",
            d = d.display()
        ),
    );
    // Root "/": commands run on this machine, no chroot needed.
    let mut child = Command::new(agent())
        .args(["apply", "--host", "h", "--json", "--root", "/", "--tree"])
        .arg(&tr)
        .arg("--state-dir")
        .arg(&st)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read_pid = |f: &str| {
        std::fs::read_to_string(d.join(f))
            .ok()
            .filter(|s| s.ends_with('\n'))
            .map(|s| s.trim().to_string())
    };
    let t0 = Instant::now();
    let pids = loop {
        if let (Some(a), Some(b)) = (read_pid("sh.pid"), read_pid("bg.pid")) {
            break [a, b];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the command did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: the agent cannot clean up
    child.wait().unwrap();
    let running = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
    };
    let t0 = Instant::now();
    while pids.iter().any(|p| running(p)) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still running after the agent died: {:?}",
            pids.iter().filter(|p| running(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/x%y` and `/x/y` read alike once `/` is written `%`: their backups
/// must still go to directories of their own.
#[test]
fn backups_of_paths_that_read_alike_do_not_mix() {
    let (_t, tr, root, st) = dirs();
    tree(
        &tr,
        "[file.\"/x%y\"]\ncontent = \"new 1\\n\"\n\n[file.\"/x/y\"]\ncontent = \"new 2\\n\"\n",
    );
    write(&root.join("x%y"), "old 1\n");
    write(&root.join("x/y"), "old 2\n");
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    let mut held: Vec<Vec<String>> = std::fs::read_dir(st.join("backups"))
        .unwrap()
        .flatten()
        .map(|d| {
            std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .map(|b| std::fs::read_to_string(b.path()).unwrap())
                .collect()
        })
        .collect();
    held.sort();
    assert_eq!(held, [["old 1\n"], ["old 2\n"]]);
}

/// The compiled catalog is kept between runs, under a key of what it was
/// compiled from: an edit to the tree (no commit needed), a torn cache
/// file, or other facts are never served a stale catalog.
#[test]
fn the_catalog_cache_never_serves_a_stale_catalog() {
    let (_t, tr, root, st) = dirs();
    // With a dependency (the directory before the file in it): a catalog
    // with dependencies must be kept too.
    tree(
        &tr,
        "[directory.\"/etc/d\"]\n[file.\"/etc/d/b\"]\ncontent = \"b\\n\"\n[file.\"/etc/a\"]\ncontent = \"one\\n\"\n",
    );
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let (out, _) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success());
    let cache = st.join("catalog-cache/h.msgpack");
    assert!(cache.exists(), "the catalog was not kept");
    let (_, kept) = cfgm_agent::cache::read(&st, "h").expect("the kept catalog reads");
    assert_eq!(kept.resources.len(), 3);
    assert!(kept.resources.iter().any(|r| !r.deps.is_empty()));
    // Served from the cache: same catalog, nothing to do.
    let (_, rep) = apply(&tr, &root, &st, &[]);
    assert_eq!(rep["counts"]["changed"], 0);
    // An edit in place, no commit: compiled again.
    tree(&tr, "[file.\"/etc/a\"]\ncontent = \"two\\n\"\n");
    let (_, rep) = apply(&tr, &root, &st, &[]);
    assert_eq!(rep["counts"]["changed"], 1, "{rep:#}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/a")).unwrap(),
        "two\n"
    );
    // A torn cache file is ignored.
    let whole = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &whole[..whole.len() / 2]).unwrap();
    let (out, rep) = apply(&tr, &root, &st, &[]);
    assert!(out.status.success(), "{rep:#}");
    // Other facts, another key: a template reading them sees the new ones.
    tree(
        &tr,
        "[file.\"/etc/a\"]\ncontent = \"{{ facts.os | default('none') }}\\n\"\n",
    );
    let f = tr.join("facts.json");
    std::fs::write(&f, "{\"os\": \"first\"}").unwrap();
    apply(&tr, &root, &st, &["--facts", f.to_str().unwrap()]);
    std::fs::write(&f, "{\"os\": \"second\"}").unwrap();
    apply(&tr, &root, &st, &["--facts", f.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/a")).unwrap(),
        "second\n"
    );
}

/// Progress over a pipe: one line per resource on stderr as it finishes,
/// not all at the end — the line of a file that converges before a slow
/// command arrives while the command still runs; `--quiet` prints none,
/// and stdout holds the report either way.
#[test]
fn progress_streams_one_line_per_resource_over_a_pipe() {
    if !needs_root("progress_streams_one_line_per_resource_over_a_pipe") {
        return;
    }
    use std::io::BufRead;
    let (_t, tr, root, st) = dirs();
    shell_root(&root);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/sleep", root.join("bin/sleep")).unwrap();
    tree(
        &tr,
        r#"
[file."/data/first"]
content = "1\n"

[cmd.slow]
run = "/bin/sleep 2 && : > /data/slow-done"
creates = "/data/slow-done"
require = ["file:/data/first"]

[file."/data/last"]
content = "2\n"
require = ["cmd:slow"]
"#,
    );
    let mut child = Command::new(agent())
        .args(["apply", "--host", "h", "--color", "never", "--tree"])
        .arg(&tr)
        .arg("--root")
        .arg(&root)
        .arg("--state-dir")
        .arg(&st)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each line with whether the slow command had finished when it was
    // read: causal, not timed, so a loaded machine cannot fail it.
    let done = root.join("data/slow-done");
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<(bool, String)> = stderr
        .lines()
        .map(|l| (done.exists(), l.unwrap()))
        .collect();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{lines:?}");
    let at = |what: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(what))
            .unwrap_or_else(|| panic!("no progress line for {what}: {lines:?}"))
    };
    let (first_after_slow, first) = at("file[/data/first]");
    assert!(first.starts_with("[1/3] changed"), "{first}");
    let (_, slow) = at("cmd[slow]");
    assert!(slow.starts_with("[2/3] changed"), "{slow}");
    let (last_after_slow, _) = at("file[/data/last]");
    // Streamed: the first line came while the 2-second command still ran.
    assert!(
        !first_after_slow,
        "the first line came after the slow command ended: {lines:?}"
    );
    assert!(*last_after_slow);
    assert_eq!(lines.len(), 3, "one line per resource: {lines:?}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("3 changed"), "{report}");

    // --quiet: nothing on stderr, the report on stdout.
    std::fs::remove_file(root.join("data/first")).unwrap();
    let out = Command::new(agent())
        .args([
            "apply", "--quiet", "--host", "h", "--color", "never", "--tree",
        ])
        .arg(&tr)
        .arg("--root")
        .arg(&root)
        .arg("--state-dir")
        .arg(&st)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 changed, 2 unchanged"));
}
