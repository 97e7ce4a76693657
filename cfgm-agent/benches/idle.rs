//! `make bench`: the agent daemon's resident memory while it sleeps between
//! runs; budget < 20 MB (DESIGN.md: agent resident memory when idle).
//!
//! A states repository in a temporary directory with one commit signed by
//! a key made here (1,000 file resources of 1 KiB in 10 directories, like
//! the apply bench), and `cfgm-agent run` (the binary `make bench` builds)
//! on a host root in a temporary directory, pulling it. After its first run
//! (cold: it creates every file) and after a second one (no-op, started with
//! SIGHUP), the process's resident memory is sampled while it sleeps
//! (VmRSS from /proc/PID/status, the largest of 10 samples over a second),
//! split into anonymous memory (heap, stacks) and file pages (its binary),
//! with its peak (VmHWM).

use git2::{Oid, Repository, Signature};
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The budget, in bytes (20 MB).
const BUDGET: u64 = 20_000_000;

fn blob_tree(repo: &Repository, files: &[(&str, String)]) -> Oid {
    // a two-level tree is all this bench needs: "a" or "dir/a"
    let mut root = repo.treebuilder(None).unwrap();
    let mut dirs: std::collections::BTreeMap<&str, git2::TreeBuilder> = Default::default();
    for (path, text) in files {
        let blob = repo.blob(text.as_bytes()).unwrap();
        match path.split_once('/') {
            Some((d, name)) => {
                let b = dirs
                    .entry(d)
                    .or_insert_with(|| repo.treebuilder(None).unwrap());
                b.insert(name, blob, 0o100644).unwrap();
            }
            None => {
                root.insert(path, blob, 0o100644).unwrap();
            }
        }
    }
    for (d, b) in dirs {
        root.insert(d, b.write().unwrap(), 0o040000).unwrap();
    }
    root.write().unwrap()
}

/// A commit of `tree` on refs/heads/main, SSH-signed by `key` (namespace git).
fn signed_commit(repo: &Repository, tree: Oid, key: &PrivateKey) -> Oid {
    let who = Signature::now("bench", "bench@cfgm.invalid").unwrap();
    let tree = repo.find_tree(tree).unwrap();
    let buf = repo
        .commit_create_buffer(&who, &who, "states", &tree, &[])
        .unwrap();
    let content = std::str::from_utf8(&buf).unwrap().to_string();
    let pem = key
        .sign("git", HashAlg::Sha512, content.as_bytes())
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
    let c = repo.commit_signed(&content, pem.trim_end(), None).unwrap();
    repo.reference("refs/heads/main", c, true, "bench").unwrap();
    c
}

/// (VmRSS, RssAnon, RssFile, VmHWM) of a process, in bytes.
fn memory(pid: u32) -> (u64, u64, u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:"),
    )
}

/// The largest of 10 samples over a second, while the agent sleeps.
fn idle_memory(pid: u32) -> (u64, u64, u64, u64) {
    std::thread::sleep(Duration::from_millis(500)); // the run's last writes are done
    (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            memory(pid)
        })
        .max()
        .unwrap()
}

fn reports(state: &Path) -> usize {
    std::fs::read_dir(state.join("reports/history"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn wait_reports(state: &Path, n: usize, agent: &mut Child) -> Duration {
    let t0 = Instant::now();
    while reports(state) < n {
        if let Some(st) = agent.try_wait().unwrap() {
            panic!("cfgm-agent run exited: {st}");
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no report");
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn main() {
    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let repo = Repository::init_bare(t.path().join("states.git")).unwrap();
    let key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
    std::fs::write(
        t.path().join("allowed_signers"),
        format!("bench {}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let mut s = String::new();
    for d in 0..10 {
        writeln!(s, "[directory.\"/srv/d{d}\"]\nmode = \"0755\"\n").unwrap();
    }
    writeln!(s, "{{% for i in range(1000) %}}").unwrap();
    writeln!(
        s,
        "[file.\"/srv/d{{{{ i % 10 }}}}/f{{{{ i }}}}.conf\"]\ncontent = {{{{ (('line ' ~ i ~ ' of the generated config\\n') * 24) | tojson }}}}\nmode = \"0644\"\n"
    )
    .unwrap();
    writeln!(s, "{{% endfor %}}").unwrap();
    let tree = blob_tree(
        &repo,
        &[
            (
                "inventory.toml",
                "[hosts.h]\ndc = \"dc1\"\nrole = \"r\"\n".to_string(),
            ),
            ("top.toml", "\"*\" = [\"files\"]\n".to_string()),
            ("states/files.toml", s),
        ],
    );
    let commit = signed_commit(&repo, tree, &key);
    let root = t.path().join("root");
    let state = t.path().join("state");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let config = t.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "repo = {:?}\nallowed_signers = {:?}\nstate_dir = {:?}\nmetrics_textfile = {:?}\nhost = \"h\"\ninterval = 3600\nsplay = 0\n",
            t.path().join("states.git").display().to_string(),
            t.path().join("allowed_signers").display().to_string(),
            state.display().to_string(),
            t.path().join("metrics/cfgm.prom").display().to_string(),
        ),
    )
    .unwrap();

    let log = std::fs::File::create(t.path().join("agent.log")).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_cfgm-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = agent.id();
    let first = wait_reports(&state, 1, &mut agent);
    let applied = std::fs::read_to_string(state.join("applied-commit")).unwrap_or_default();
    assert_eq!(applied.trim(), commit.to_string(), "the commit was applied");
    let files = (0..10)
        .map(|d| {
            std::fs::read_dir(root.join(format!("srv/d{d}")))
                .unwrap()
                .count()
        })
        .sum::<usize>();
    assert_eq!(files, 1000);
    let cold = idle_memory(pid);
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    let second = wait_reports(&state, 2, &mut agent);
    let noop = idle_memory(pid);
    let top = largest_mappings(pid, 5);
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let st = agent.wait().unwrap();
    assert!(st.success(), "cfgm-agent run: {st}");

    for (what, took, (rss, anon, file, hwm)) in [
        ("after the first run (1,000 files created)", first, cold),
        ("after a second run (no-op, SIGHUP)", second, noop),
    ] {
        println!(
            "agent idle RSS {what}: {} (anonymous {}, file {}; peak {}); run took {:.0} ms; budget < {}: {}",
            mb(rss),
            mb(anon),
            mb(file),
            mb(hwm),
            took.as_secs_f64() * 1e3,
            mb(BUDGET),
            if rss < BUDGET { "within" } else { "OVER" }
        );
    }
    println!("agent idle RSS, largest mappings: {}", top.join(", "));
}

/// The `n` mappings of a process with the most resident memory, as
/// "NAME SIZE" (anonymous mappings are mimalloc's arenas, `[heap]` is the C
/// libraries' malloc).
fn largest_mappings(pid: u32, n: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut name = String::new();
    let mut v: Vec<(u64, String)> = Vec::new();
    for l in smaps.lines() {
        let mut w = l.split_whitespace();
        let first = w.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // "start-end perms offset dev inode [path]"
            let perms = w.next().unwrap_or("");
            let path = w.nth(3).unwrap_or("anonymous");
            let path = path.rsplit('/').next().unwrap_or(path);
            name = format!("{path} ({perms})");
        } else if first == "Rss:" {
            let kb: u64 = w.next().and_then(|k| k.parse().ok()).unwrap_or(0);
            v.push((kb, name.clone()));
        }
    }
    v.sort_by_key(|m| std::cmp::Reverse(m.0));
    v.into_iter()
        .take(n)
        .map(|(kb, name)| format!("{name} {}", mb(kb * 1024)))
        .collect()
}
