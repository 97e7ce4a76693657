//! `make bench`: the agent's building blocks against their budgets.
//!
//! - facts: `facts::gather` of this machine ("/") and of a Debian root,
//!   each with a last report of 300 resources (with their observed state;
//!   the 100 files converged, so their text is put back from the kept
//!   catalog, as after a real no-op) in the state directory; budget
//!   < 50 ms (DESIGN.md: gather facts).
//!   The Debian root is `CFGM_BENCH_ROOT` if set, else the fleet harness's
//!   unpacked bookworm base (/var/cache/cfgm-test/base-*) if present, else
//!   a root made here from this machine's dpkg database, passwd, group,
//!   os-release and systemd unit files.
//! - signatures: verifying 10 signed commits in-process; compared with the
//!   ~1.3 ms measured when the building blocks were proven (AGENT-NOTES).

use cfgm_agent::facts::gather;
use cfgm_agent::signers::{verify_commit, AllowedSigners};
use git2::{Repository, Signature};
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Median and max of `n` runs after 3 warm-ups.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    for _ in 0..3 {
        std::hint::black_box(f());
    }
    let mut d: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    d.sort();
    (d[n / 2], d[n - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A last report of 300 resources, shaped as the engine writes it, and
/// the kept catalog of its 100 files (1 KiB of text each).
fn state_with_report(dir: &Path) {
    let text = |i: usize| format!("setting {i} = on\n").repeat(1024 / 16);
    let files: Vec<cfgm_core::Resource> = (0..300)
        .step_by(3)
        .map(|i| cfgm_core::Resource {
            id: cfgm_core::ResourceId::new("file", format!("/etc/app/conf-{i}.conf")),
            attrs: [("content".to_string(), serde_json::json!(text(i)))].into(),
            deps: Default::default(),
            origin: cfgm_core::catalog::Origin {
                file: "states/app.toml".into(),
                line: i + 1,
                column: 1,
            },
            hidden: Vec::new(),
            error: None,
        })
        .collect();
    let catalog = cfgm_core::Catalog::new("bench", files);
    assert!(cfgm_agent::cache::put(dir, "bench", "bench-key", &catalog));
    let resources: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            let (kind, name, observed) = match i % 3 {
                0 => (
                    "file",
                    format!("/etc/app/conf-{i}.conf"),
                    serde_json::json!({"exists": true, "kind": "file", "mode": "0644", "owner": "root",
                        "group": "root", "size": text(i).len(), "as_catalog": true}),
                ),
                1 => (
                    "pkg",
                    format!("package-{i}"),
                    serde_json::json!({"installed": true, "version": format!("1.{i}.0-1"), "arch": "amd64"}),
                ),
                _ => (
                    "service",
                    format!("svc-{i}"),
                    serde_json::json!({"running": true, "enabled": true}),
                ),
            };
            serde_json::json!({"id": {"kind": kind, "name": name}, "outcome": "unchanged",
                "seconds": 0.0001, "observed": observed})
        })
        .collect();
    let report = serde_json::json!({
        "host": "bench", "status": "converged", "catalog_id": catalog.id.0, "tree_id": "",
        "mode": "apply", "counts": {"unchanged": 300, "changed": 0, "would_change": 0, "failed": 0, "skipped": 0},
        "seconds": 0.01, "resources": resources,
    });
    std::fs::create_dir_all(dir.join("reports")).unwrap();
    std::fs::write(dir.join("reports/last.json"), format!("{report:#}")).unwrap();
    std::fs::write(
        dir.join("applied-commit"),
        "0123456789abcdef0123456789abcdef01234567\n",
    )
    .unwrap();
}

/// The Debian root to measure, and where it came from.
fn debian_root(tmp: &Path) -> (PathBuf, String) {
    if let Some(r) = std::env::var_os("CFGM_BENCH_ROOT") {
        return (PathBuf::from(r), "CFGM_BENCH_ROOT".into());
    }
    let mut bases: Vec<PathBuf> = std::fs::read_dir("/var/cache/cfgm-test")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(".unpacked").exists())
        .collect();
    bases.sort();
    if let Some(b) = bases.pop() {
        return (b.clone(), "the fleet's unpacked bookworm base".into());
    }
    // A root made of this machine's files.
    let root = tmp.join("root");
    let copy = |rel: &str| {
        let from = Path::new("/").join(rel);
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let _ = std::fs::copy(from, to);
    };
    for f in [
        "var/lib/dpkg/status",
        "etc/passwd",
        "etc/group",
        "etc/hostname",
        "etc/hosts",
        "usr/lib/os-release",
    ] {
        copy(f);
    }
    for dir in ["usr/lib/systemd/system", "etc/systemd/system"] {
        for e in std::fs::read_dir(Path::new("/").join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
            if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                copy(&rel);
            }
        }
    }
    (root, "a root made from this machine's files".into())
}

fn main() {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    state_with_report(&state);
    let budget = Duration::from_millis(50);

    let f = gather(Path::new("/"), &state);
    let restored = f
        .resources
        .iter()
        .filter(|r| {
            r.observed
                .as_ref()
                .is_some_and(|o| o.get("content").is_some())
        })
        .count();
    assert_eq!(
        restored, 100,
        "texts put back from the kept catalog: {:?}",
        f.problems
    );
    let (med, max) = time(50, || gather(Path::new("/"), &state));
    println!(
        "facts::gather(/): median {} (max {}) over 50 runs; budget < {}: {} [{} packages, {} services, {} users, {} interfaces, {} resources]",
        ms(med),
        ms(max),
        ms(budget),
        if med < budget { "within" } else { "OVER" },
        f.packages.len(),
        f.services.len(),
        f.users.len(),
        f.system.interfaces.len(),
        f.resources.len()
    );

    let (root, origin) = debian_root(t.path());
    let f = gather(&root, &state);
    let (med, max) = time(50, || gather(&root, &state));
    println!(
        "facts::gather(Debian root: {origin}): median {} (max {}) over 50 runs; budget < {}: {} [{} packages, {} services, {} users, {} resources]",
        ms(med),
        ms(max),
        ms(budget),
        if med < budget { "within" } else { "OVER" },
        f.packages.len(),
        f.services.len(),
        f.users.len(),
        f.resources.len()
    );

    // 10 signed commits, verified in-process.
    let repo = Repository::init_bare(t.path().join("r.git")).unwrap();
    let key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
    let public = key.public_key().to_openssh().unwrap();
    let signers = AllowedSigners::parse("allowed_signers", &format!("ops {public}\n")).unwrap();
    let who = Signature::now("bench", "bench@cfgm.invalid").unwrap();
    let mut commits = Vec::new();
    let mut parent: Option<git2::Oid> = None;
    for i in 0..10 {
        let blob = repo.blob(format!("{i}").as_bytes()).unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("f", blob, 0o100644).unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let prefs: Vec<&git2::Commit> = parents.iter().collect();
        let buf = repo
            .commit_create_buffer(&who, &who, &format!("c{i}"), &tree, &prefs)
            .unwrap();
        let content = std::str::from_utf8(&buf).unwrap().to_string();
        let pem = key
            .sign("git", HashAlg::Sha512, content.as_bytes())
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap();
        let c = repo.commit_signed(&content, pem.trim_end(), None).unwrap();
        commits.push(c);
        parent = Some(c);
    }
    let (med, max) = time(50, || {
        commits
            .iter()
            .all(|c| verify_commit(&repo, *c, &signers).unwrap().is_trusted())
    });
    assert!(commits
        .iter()
        .all(|c| verify_commit(&repo, *c, &signers).unwrap().is_trusted()));
    println!(
        "signers::verify_commit x10 (ed25519): median {} (max {}) over 50 runs; compared with ~1.3 ms when proven (AGENT-NOTES)",
        ms(med),
        ms(max)
    );
}
