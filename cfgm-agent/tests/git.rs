//! The puller against real repositories made by the test: a local path,
//! `file://`, a `git daemon` on 127.0.0.1 (shallow, deepened), a closed
//! port, a server that never answers; anti-rollback; reading a commit's
//! files with symlinks.

use crate::signing::*;
use cfgm_agent::git::{
    read_applied, read_tree, write_applied, Limits, PullOptions, PullVerdict, Puller, Refusal,
    TreeError,
};
use git2::{Oid, Repository};
use ssh_key::PrivateKey;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A remote repository, a state directory and a trusted key.
struct Setup {
    _t: tempfile::TempDir,
    remote: Repository,
    remote_dir: PathBuf,
    state: PathBuf,
    signers: PathBuf,
    key: PrivateKey,
}

fn setup() -> Setup {
    let t = tempfile::tempdir().unwrap();
    let remote_dir = t.path().join("srv/states.git");
    let remote = Repository::init_bare(&remote_dir).unwrap();
    let key = ed25519();
    let signers = t.path().join("allowed_signers");
    std::fs::write(&signers, signer_line("release@ops", "", &key) + "\n").unwrap();
    Setup {
        state: t.path().join("state"),
        _t: t,
        remote,
        remote_dir,
        signers,
        key,
    }
}

impl Setup {
    fn opts(&self, url: &str) -> PullOptions {
        PullOptions {
            url: url.to_string(),
            refname: "refs/heads/main".into(),
            allowed_signers: self.signers.clone(),
            state_dir: self.state.clone(),
            allow_rollback: false,
            timeout: Duration::from_secs(10),
            depth: 1,
        }
    }

    fn path_url(&self) -> String {
        self.remote_dir.display().to_string()
    }

    /// A signed commit on top of `parent`, pushed to main.
    fn push(&self, parent: Option<Oid>, msg: &str) -> Oid {
        let parents: Vec<Oid> = parent.into_iter().collect();
        let c = commit(&self.remote, &parents, msg, Sign::Ssh(&self.key, "git"));
        set_main(&self.remote, c);
        c
    }
}

fn fresh(v: &PullVerdict) -> Oid {
    match v {
        PullVerdict::Fresh { commit, .. } => *commit,
        other => panic!("expected fresh, got {other:?}"),
    }
}

#[test]
fn pull_from_a_path_then_unchanged_then_descendant_then_rollback_refused() {
    let s = setup();
    let c1 = s.push(None, "one");
    let p = Puller::open(s.opts(&s.path_url())).unwrap();
    let v = p.pull();
    assert_eq!(fresh(&v), c1);
    assert!(
        v.reason().contains("signed by release@ops"),
        "{}",
        v.reason()
    );
    p.record_applied(c1).unwrap();
    assert_eq!(read_applied(&s.state), Some(c1));

    assert_eq!(p.pull(), PullVerdict::Unchanged { commit: c1 });

    let c2 = s.push(Some(c1), "two");
    let v = p.pull();
    assert!(
        matches!(v, PullVerdict::Fresh { commit, previous: Some(prev), rollback: false, .. } if commit == c2 && prev == c1),
        "{v:?}"
    );
    p.record_applied(c2).unwrap();

    // Force-push main back to c1, an ancestor of what was applied (or a
    // rollout took the host ahead of main): the applied commit is kept.
    set_main(&s.remote, c1);
    let v = p.pull();
    assert_eq!(
        v,
        PullVerdict::Behind {
            tip: c1,
            applied: c2
        }
    );
    assert_eq!(v.target(), Some(c2), "keeps converging to the last applied");
    assert!(v.reason().contains("behind"), "{}", v.reason());

    // A signed commit on another history: also not a descendant.
    let other = s.push(None, "unrelated");
    assert!(matches!(
        p.pull(),
        PullVerdict::Refused {
            refusal: Refusal::Rollback { .. },
            ..
        }
    ));

    // Unless rollback is allowed.
    let mut o = s.opts(&s.path_url());
    o.allow_rollback = true;
    let p2 = Puller::open(o).unwrap();
    let v = p2.pull();
    assert!(
        matches!(v, PullVerdict::Fresh { commit, rollback: true, .. } if commit == other),
        "{v:?}"
    );
}

#[test]
fn untrusted_tip_is_refused_and_last_good_kept_over_file_url() {
    let s = setup();
    let c1 = s.push(None, "one");
    let url = format!("file://{}", s.remote_dir.display());
    let p = Puller::open(s.opts(&url)).unwrap();
    fresh(&p.pull());
    p.record_applied(c1).unwrap();

    let stranger = ed25519();
    let bad = commit(&s.remote, &[c1], "evil", Sign::Ssh(&stranger, "git"));
    set_main(&s.remote, bad);
    let v = p.pull();
    match &v {
        PullVerdict::Refused {
            commit,
            refusal: Refusal::Signature(verdict),
            last_good,
        } => {
            assert_eq!(*commit, bad);
            assert_eq!(verdict.code(), "unknown-key");
            assert_eq!(*last_good, Some(c1));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        v.reason()
            .starts_with(&format!("refused {bad}: signed by ")),
        "{}",
        v.reason()
    );
    assert!(
        v.reason().ends_with(&format!("; keeping {c1}")),
        "{}",
        v.reason()
    );

    // An unsigned tip, likewise.
    let unsigned = commit(&s.remote, &[c1], "unsigned", Sign::None);
    set_main(&s.remote, unsigned);
    assert!(matches!(
        p.pull(),
        PullVerdict::Refused { refusal: Refusal::Signature(v), .. } if v.code() == "unsigned"
    ));

    // A key removed from allowed_signers stops being trusted, even for
    // the commit already applied.
    set_main(&s.remote, c1);
    std::fs::write(&s.signers, "").unwrap();
    assert!(matches!(
        p.pull(),
        PullVerdict::Refused { refusal: Refusal::Signature(v), .. } if v.code() == "unknown-key"
    ));
    // A malformed allowed_signers trusts nothing.
    std::fs::write(&s.signers, "garbage\n").unwrap();
    let v = p.pull();
    assert!(
        matches!(&v, PullVerdict::Refused { refusal: Refusal::Signers(e), .. } if e.contains(":1: no key")),
        "{v:?}"
    );
}

#[test]
fn a_missing_ref_is_stale_with_a_clear_reason() {
    let s = setup();
    s.push(None, "one");
    let mut o = s.opts(&s.path_url());
    o.refname = "refs/heads/production".into();
    let v = Puller::open(o).unwrap().pull();
    match &v {
        PullVerdict::Stale { reason, last_good } => {
            assert!(
                reason.contains("has no ref refs/heads/production")
                    && reason.contains("refs/heads/main"),
                "{reason}"
            );
            assert_eq!(*last_good, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreachable_remote_is_stale_quickly() {
    let s = setup();
    let c1 = s.push(None, "one");
    write_applied(&s.state, c1).unwrap();
    let (_closed, port) = crate::closed_port();
    // A refused connect is answered at once, long before the timeout.
    let mut o = s.opts(&format!("git://127.0.0.1:{port}/states.git"));
    o.timeout = Duration::from_secs(60);
    let start = Instant::now();
    let v = Puller::open(o).unwrap().pull();
    let took = start.elapsed();
    match &v {
        PullVerdict::Stale { reason, last_good } => {
            assert!(reason.contains("connect to git://127.0.0.1"), "{reason}");
            assert_eq!(*last_good, Some(c1));
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
    println!("closed port: stale after {took:?}: {}", v.reason());
}

#[test]
fn a_remote_that_never_answers_times_out() {
    let s = setup();
    // Accepts connections (the kernel's backlog) and never says a word.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut o = s.opts(&format!("git://127.0.0.1:{port}/states.git"));
    o.timeout = Duration::from_millis(1500);
    let start = Instant::now();
    let v = Puller::open(o).unwrap().pull();
    let took = start.elapsed();
    drop(l);
    assert!(
        matches!(&v, PullVerdict::Stale { reason, .. } if reason.contains("timed out")),
        "{v:?} after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "{took:?}"
    );
    println!("silent server: {} after {took:?}", v.reason());
}

/// `git daemon` serving `base` on a free port of 127.0.0.1, stopped by pid
/// when dropped. The `git-daemon` program is started itself, not through
/// the `git` wrapper: killing the wrapper would leave the daemon running.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    /// The port is found free, released, then given to git-daemon: should
    /// another test take it in between, git-daemon exits and another port
    /// is tried.
    fn start(base: &Path) -> Option<Daemon> {
        let exec_path = Command::new("git").arg("--exec-path").output().ok()?;
        let exec_path = String::from_utf8_lossy(&exec_path.stdout)
            .trim()
            .to_string();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(Path::new(&exec_path).join("git-daemon"))
                .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut d = Daemon { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if d.child.try_wait().ok()?.is_some() {
                    break; // could not listen there: another port
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(d);
                }
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn shallow_fetch_over_git_daemon_deepens_for_the_descendant_check() {
    let s = setup();
    let mut tip = None;
    for i in 0..5 {
        tip = Some(s.push(tip, &format!("c{i}")));
    }
    let first = tip.unwrap();
    let daemon = Daemon::start(s.remote_dir.parent().unwrap()).expect("git daemon on 127.0.0.1");
    let url = format!("git://127.0.0.1:{}/states.git", daemon.port);
    let p = Puller::open(s.opts(&url)).unwrap();
    let start = Instant::now();
    let v = p.pull();
    println!("depth 1 fetch: {:?}", start.elapsed());
    assert_eq!(fresh(&v), first);
    assert!(p.repository().is_shallow(), "a depth-1 fetch is shallow");
    let walk = |repo: &Repository, from: Oid| {
        let mut w = repo.revwalk().unwrap();
        w.push(from).unwrap();
        w.count()
    };
    assert_eq!(walk(p.repository(), first), 1, "only the tip was fetched");
    p.record_applied(first).unwrap();

    // 30 more commits: at depth 1 the applied one is out of reach, so the
    // puller deepens until it is.
    for i in 5..35 {
        tip = Some(s.push(tip, &format!("c{i}")));
    }
    let start = Instant::now();
    let v = p.pull();
    println!("deepened fetch: {:?}", start.elapsed());
    assert!(
        matches!(v, PullVerdict::Fresh { commit, previous: Some(prev), rollback: false, .. } if Some(commit) == tip && prev == first),
        "{v:?}"
    );
    p.record_applied(tip.unwrap()).unwrap();

    // A force-push to another history: deepened to the whole history, then
    // refused as a rollback.
    let other = s.push(None, "rewritten");
    let v = p.pull();
    assert_eq!(
        v,
        PullVerdict::Refused {
            commit: other,
            refusal: Refusal::Rollback {
                last_applied: tip.unwrap()
            },
            last_good: tip,
        }
    );
    drop(daemon);
}

#[test]
fn applied_commit_is_recorded_durably() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(read_applied(t.path()), None);
    let oid = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    write_applied(t.path(), oid).unwrap();
    assert_eq!(
        std::fs::read_to_string(t.path().join("applied-commit")).unwrap(),
        format!("{oid}\n")
    );
    assert_eq!(read_applied(t.path()), Some(oid));
    // Only the file itself is left (the temporary was renamed).
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("applied-commit")]);
}

#[test]
fn read_tree_lists_and_reads_files_and_refuses_escaping_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(t.path().join("r.git")).unwrap();
    let mk = |entries: &[(&str, Entry)]| {
        let tr = tree(&repo, entries);
        commit_at(&repo, tr, &[], "t", Sign::None, now())
    };
    let good = mk(&[
        ("inventory.toml", Entry::File(b"[hosts]\n")),
        ("states/base.toml", Entry::File(b"[file.\"/etc/motd\"]\n")),
        ("states/web/nginx.toml", Entry::File(b"[pkg.nginx]\n")),
        ("templates/motd.j2", Entry::File(b"hello\n")),
        // Inside the tree: read as the target's content.
        ("states/alias.toml", Entry::Link("base.toml")),
        ("files/motd", Entry::Link("../templates/motd.j2")),
        ("files/motd2", Entry::Link("motd")),
    ]);
    let files = read_tree(&repo, good, &Limits::default()).unwrap();
    assert_eq!(
        files.list("states"),
        vec![
            "states/alias.toml",
            "states/base.toml",
            "states/web/nginx.toml"
        ]
    );
    assert_eq!(
        files.list(""),
        files.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(files.len(), 7);
    assert_eq!(
        files.read("states/alias.toml"),
        files.read("states/base.toml")
    );
    assert_eq!(files.read("files/motd2").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(files.read("nope"), None);
    assert!(
        files.list("state").is_empty(),
        "a prefix is not a directory"
    );

    let refused =
        |entries: &[(&str, Entry)]| read_tree(&repo, mk(entries), &Limits::default()).unwrap_err();
    assert_eq!(
        refused(&[("files/shadow", Entry::Link("/etc/shadow"))]),
        TreeError::SymlinkEscapes {
            path: "files/shadow".into(),
            target: "/etc/shadow".into()
        }
    );
    let e = refused(&[("files/x", Entry::Link("../../etc/passwd"))]);
    assert_eq!(
        e.to_string(),
        "files/x: symlink to \"../../etc/passwd\" leads outside the tree"
    );
    // Out through a chain of in-tree links.
    let e = refused(&[("a", Entry::Link("b/c")), ("b/c", Entry::Link("../../x"))]);
    assert!(matches!(e, TreeError::SymlinkEscapes { .. }), "{e}");
    let e = refused(&[("d/f", Entry::File(b"")), ("l", Entry::Link("d"))]);
    assert!(
        e.to_string()
            .contains("a symlink to a directory is not supported"),
        "{e}"
    );
    let e = refused(&[("l", Entry::Link("m")), ("m", Entry::Link("l"))]);
    assert!(e.to_string().contains("too many levels of symlinks"), "{e}");
    let e = refused(&[("l", Entry::Link("missing"))]);
    assert!(e.to_string().contains("not a file of the tree"), "{e}");

    // Sizes are bounded.
    let big = vec![b'x'; 2048];
    let c = mk(&[("big", Entry::File(&big))]);
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let e = read_tree(&repo, c, &limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the tree exceeds a limit: big: 2048 bytes, more than 1024"
    );
    let limits = Limits {
        max_files: 3,
        ..Limits::default()
    };
    assert!(matches!(
        read_tree(&repo, good, &limits),
        Err(TreeError::TooLarge(_))
    ));
}
