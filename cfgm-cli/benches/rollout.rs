//! `make bench`: dispatching a rollout wave to 1,000 SSH endpoints.
//!
//! One real sshd (the Debian base image's, on an overlay of it) in private
//! mount and network namespaces answers on 1,000 loopback addresses; each
//! address is a host whose agent (the real `cfgm-agent apply --commit`,
//! through a wrapper that gives each address its own state directory)
//! fetches the signed commit from a local repository, verifies it,
//! compiles and converges. A first wave brings every host to the commit;
//! the measured second wave is a no-op everywhere: `cfgm apply
//! --all-at-once --concurrency 100` over the 1,000 hosts, wall time and
//! peak RSS of `cfgm`. Budget: < 60 s.
//!
//! Needs root (namespaces, overlay, chroot) and the fleet's Debian base
//! image (`testing/fleet base` makes it); says so and exits 0 otherwise.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const HOSTS: usize = 1000;

fn sh(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().expect("run");
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The Debian base root the module tests unpack (under
/// /var/cache/cfgm-test), or the fleet's image unpacked on the spot.
fn base_root() -> Option<PathBuf> {
    let find = || -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir("/var/cache/cfgm-test")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(".unpacked").exists() && p.join("usr/sbin/sshd").exists())
            .collect();
        v.sort();
        v.pop()
    };
    if let Some(b) = find() {
        return Some(b);
    }
    // Unpack the fleet's image the way the module tests do (making it
    // first with `testing/fleet base` if there is none).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let image = || -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir("/var/cache/fleet")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.zst"))
            .collect();
        v.sort();
        v.pop()
    };
    if image().is_none() {
        let _ = Command::new(repo.join("testing/fleet"))
            .arg("base")
            .status();
    }
    let tar = image()?;
    let dir = PathBuf::from("/var/cache/cfgm-test/base-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let ok = Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .arg("--numeric-owner")
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    std::fs::write(dir.join(".unpacked"), "").ok()?;
    Some(dir)
}

/// wait4 on a child: (wall seconds, peak RSS KiB, exit code).
fn measure(mut cmd: Command, events: &Path) -> (f64, i64, i32) {
    let t = Instant::now();
    let out = std::fs::File::create(events).expect("events file");
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::from(out)).spawn().expect("run cfgm");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child for its rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (t.elapsed().as_secs_f64(), usage.ru_maxrss, code)
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("rollout dispatch to {HOSTS} SSH endpoints: skipped (needs root: namespaces, overlay, chroot)");
        return;
    }
    let Some(base) = base_root() else {
        println!("rollout dispatch to {HOSTS} SSH endpoints: skipped (no Debian base image; `testing/fleet base` makes it)");
        return;
    };
    let target = PathBuf::from(env!("CARGO_BIN_EXE_cfgm"));
    let cfgm = target.clone();
    let agent = target.parent().unwrap().join("cfgm-agent");
    if !agent.exists() {
        sh(Command::new(env!("CARGO")).args(["build", "--release", "-p", "cfgm-agent"]));
    }
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let w = work.path();

    // Keys: the operator's ssh key, the release signing key.
    for k in ["id_ed25519", "release"] {
        sh(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
            .arg(w.join(k)));
    }
    let release_pub = std::fs::read_to_string(w.join("release.pub")).unwrap();
    let mut parts = release_pub.split_whitespace();
    std::fs::write(
        w.join("allowed_signers"),
        format!(
            "release@bench {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();

    // The states repository: one signed commit, one file per host.
    let src = w.join("src");
    std::fs::create_dir_all(src.join("states")).unwrap();
    std::fs::write(
        src.join("inventory.toml"),
        "[hosts.h]\ndc = \"dc1\"\nrole = \"r\"\n",
    )
    .unwrap();
    std::fs::write(src.join("top.toml"), "\"*\" = [\"s\"]\n").unwrap();
    std::fs::write(
        src.join("states/s.toml"),
        "[file.\"/etc/cfgm-bench\"]\ncontent = \"rolled out\\n\"\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        sh(Command::new("git")
            .arg("-C")
            .arg(&src)
            .args([
                "-c",
                "user.name=bench",
                "-c",
                "user.email=b@cfgm.invalid",
                "-c",
                "gpg.format=ssh",
            ])
            .arg("-c")
            .arg(format!("user.signingkey={}", w.join("release").display()))
            .args(args))
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-S", "-m", "bench"]);
    let commit = git(&["rev-parse", "HEAD"]);
    sh(Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&src)
        .arg(w.join("states.git")));

    // The operator's view: 1,000 hosts, one per loopback address.
    let tree = w.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut inv = String::new();
    let mut addrs = String::new();
    for i in 0..HOSTS {
        let a = format!("127.1.{}.{}", i / 250, i % 250 + 1);
        writeln!(
            inv,
            "[hosts.h{i:04}]\ndc = \"dc{}\"\nrole = \"r\"\naddress = \"{a}\"\n",
            i % 10
        )
        .unwrap();
        writeln!(addrs, "{a}").unwrap();
    }
    std::fs::write(tree.join("inventory.toml"), inv).unwrap();
    std::fs::write(tree.join("top.toml"), "\"*\" = [\"s\"]\n").unwrap();
    std::fs::create_dir_all(tree.join("states")).unwrap();
    std::fs::write(tree.join("states/s.toml"), "").unwrap();
    std::fs::write(w.join("addresses"), addrs).unwrap();

    // Into private mount and network namespaces, then the endpoints.
    // SAFETY: unshare changes only this process's namespaces.
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET) },
        0,
        "unshare"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ssh-fleet.sh");
    sh(Command::new("bash")
        .arg(&script)
        .arg(&base)
        .arg(w)
        .arg(&agent));

    let wave = |label: &str| {
        let mut c = Command::new(&cfgm);
        c.arg("--tree")
            .arg(&tree)
            .args([
                "apply",
                "--all-at-once",
                "--concurrency",
                "100",
                "--yes",
                "--json",
                "--agent",
                "bench-agent",
                "--commit",
                &commit,
            ])
            .arg("--identity")
            .arg(w.join("id_ed25519"))
            .arg("--known-hosts")
            .arg(w.join("known_hosts"))
            .arg("--journal-dir")
            .arg(w.join(format!("journal-{label}")));
        let r = measure(c, &w.join(format!("events-{label}.jsonl")));
        let journal = std::fs::read_dir(w.join(format!("journal-{label}")))
            .unwrap()
            .flatten()
            .next()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .unwrap_or_default();
        let replay = cfgm_core::rollout::Replayed::from_lines(&journal).unwrap();
        let converged = replay
            .hosts
            .values()
            .filter(|(s, _)| *s == cfgm_core::rollout::HostState::Converged)
            .count();
        (r, converged, replay)
    };
    let ((secs0, _, code0), ok0, r0) = wave("first");
    if code0 != 0 {
        let failed: Vec<_> = r0
            .hosts
            .iter()
            .filter(|(_, (s, _))| *s != cfgm_core::rollout::HostState::Converged)
            .take(3)
            .collect();
        panic!("the first wave failed ({ok0} of {HOSTS} converged): {failed:?}");
    }
    let ((secs, kib, code), ok, _) = wave("second");
    let _ = Command::new("pkill")
        .args(["-f", "sshd -f /etc/ssh/sshd_config.bench"])
        .status();
    assert_eq!(code, 0, "the no-op wave failed");
    // The rollout's own share of each host's time: from dispatch to verdict
    // (SSH connect, exec, report parsing) beyond what the agent itself
    // reported as its run time.
    let events = std::fs::read_to_string(w.join("events-second.jsonl")).unwrap_or_default();
    let mut over: Vec<f64> = Vec::new();
    let mut agent: Vec<f64> = Vec::new();
    for e in events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "host-done")
    {
        if let (Some(t), Some(a)) = (e["seconds"].as_f64(), e["agent_seconds"].as_f64()) {
            over.push(t - a);
            agent.push(a);
        }
    }
    over.sort_by(f64::total_cmp);
    agent.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "rollout overhead per host (dispatch to verdict, beyond the agent's own run): median {:.0} ms, p99 {:.0} ms; the agents' own no-op runs: median {:.0} ms ({} hosts)",
        pct(&over, 0.5) * 1000.0,
        pct(&over, 0.99) * 1000.0,
        pct(&agent, 0.5) * 1000.0,
        over.len()
    );
    println!(
        "rollout: a no-op wave to {HOSTS} SSH endpoints (real sshd and agents, concurrency 100): {secs:.1} s wall, {ok} converged, peak RSS of cfgm {} MiB (budget < 60 s); the first wave, which brought every host to the commit: {secs0:.1} s",
        kib / 1024
    );
    if secs >= 60.0 {
        eprintln!("over budget");
        std::process::exit(1);
    }
}
