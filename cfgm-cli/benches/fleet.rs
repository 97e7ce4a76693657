//! `make bench`: fleet-scale planning, measured as whole processes.
//!
//! A fleet of 10,000 hosts in 30 datacenters, 2 roles, ~300 resources per
//! host, every host's catalog distinct (each writes its own name into a
//! file). Facts on disk come from real agent runs: one root per role ×
//! datacenter is converged with the agent's library and its facts
//! gathered; every host gets those facts under its own name, one in ten
//! with a drifted file, one in fifty with a package removed by hand.
//!
//! 1. `cfgm plan --facts DIR` over the fleet: budget < 10 s.
//! 2. `cfgm diff` of two commits (a data value of one datacenter and one
//!    template changed): budget < 5 s.
//!
//! Each prints wall time and peak RSS (budget < 300 MiB: memory flat in
//! the number of hosts). Exits non-zero when over budget.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// How many hosts (CFGM_FLEET_HOSTS overrides, for profiling).
fn hosts() -> usize {
    std::env::var("CFGM_FLEET_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const DCS: usize = 30;
const ROLES: usize = 2;
/// Files per role state; with the base state a host has ~300 resources.
const FILES: usize = 280;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn host_name(h: usize) -> String {
    format!("h{h:05}")
}

fn dc_of(h: usize) -> usize {
    h % DCS
}

fn role_of(h: usize) -> usize {
    (h / DCS) % ROLES
}

/// The tree; `version` 2 changes dc00's resolver and one template line.
fn tree(dir: &Path, hosts: usize, version: u32) {
    let mut inv = String::new();
    for h in 0..hosts {
        writeln!(
            inv,
            "[hosts.{}]\ndc = \"dc{:02}\"\nrole = \"role{}\"\n",
            host_name(h),
            dc_of(h),
            role_of(h)
        )
        .unwrap();
    }
    write(&dir.join("inventory.toml"), &inv);
    let mut top = String::from("\"*\" = [\"base\"]\n");
    for r in 0..ROLES {
        writeln!(top, "\"role:role{r}\" = [\"role{r}\"]").unwrap();
    }
    write(&dir.join("top.toml"), &top);
    write(
        &dir.join("data/common.toml"),
        "[base]\npackages = [\"curl\", \"jq\", \"less\", \"htop\"]\n",
    );
    for d in 0..DCS {
        let resolver = if version == 2 && d == 0 { 99 } else { 53 };
        write(
            &dir.join(format!("data/dc/dc{d:02}.toml")),
            &format!("[site]\nresolver = \"10.77.{}.{resolver}\"\n", d + 1),
        );
    }
    write(
        &dir.join("states/base.toml"),
        "{% for p in data.base.packages %}\n[pkg.{{ p }}]\n{% endfor %}\n\n[directory.\"/etc/site\"]\n\n[file.\"/etc/site/resolv.conf\"]\ncontent = \"nameserver {{ data.site.resolver }}\\n\"\n\n[file.\"/etc/site/host\"]\ncontent = \"{{ host.name }}\\n\"\n\n[file.\"/etc/site/motd\"]\ntemplate = \"motd.j2\"\n",
    );
    let motd = if version == 2 {
        "{{ host.name }} ({{ host.role }} in {{ host.dc }}), managed by cfgm\n"
    } else {
        "{{ host.name }} ({{ host.role }} in {{ host.dc }})\n"
    };
    write(&dir.join("templates/motd.j2"), motd);
    for r in 0..ROLES {
        let mut t = format!("[directory.\"/srv/role{r}\"]\n\n");
        writeln!(t, "{{% for i in range({FILES}) %}}").unwrap();
        writeln!(
            t,
            "[file.\"/srv/role{r}/conf{{{{ i }}}}\"]\ncontent = \"role {r} item {{{{ i }}}} in {{{{ host.dc }}}}\\n\"\nmode = \"0640\"\n"
        )
        .unwrap();
        writeln!(t, "{{% endfor %}}").unwrap();
        write(&dir.join(format!("states/role{r}.toml")), &t);
    }
}

const DPKG: &[(&str, &str)] = &[
    ("curl", "7.88.1-10+deb12u5"),
    ("jq", "1.6-2.1"),
    ("less", "590-2"),
    ("htop", "3.2.2-2"),
    ("bash", "5.2.15-2+b2"),
];

/// Real facts of one role × datacenter: its catalog converged on a temp
/// root by the agent's library (packages stand in a hand-made dpkg
/// database), then gathered.
fn sample_facts(tree_dir: &Path, host: &str, work: &Path) -> Value {
    let root = work.join(format!("root-{host}"));
    let st = work.join(format!("state-{host}"));
    let status: String = DPKG
        .iter()
        .map(|(n, v)| {
            format!(
                "Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
            )
        })
        .collect();
    write(&root.join("var/lib/dpkg/status"), &status);
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    );
    write(&root.join("etc/group"), "root:x:0:\n");
    // Only the file kinds converge on a plain directory: a tree of the
    // host's catalog without its packages.
    let files_tree = work.join(format!("files-{host}"));
    copy_tree(tree_dir, &files_tree);
    let base = std::fs::read_to_string(files_tree.join("states/base.toml")).unwrap();
    let cut = base.find("[directory.").unwrap();
    write(&files_tree.join("states/base.toml"), &base[cut..]);
    let cfg = cfgm_agent::Config {
        tree: cfgm_agent::converge::TreeInput::Dir(files_tree),
        host: Some(host.into()),
        root: root.clone(),
        state_dir: st.clone(),
        facts: None,
        mode: cfgm_core::Mode::Apply,
        parallel: 2,
        locked: false,
        keep_report: true,
    };
    let out = cfgm_agent::converge_once(&cfg, None, None).unwrap();
    assert!(out.report.ok());
    serde_json::to_value(cfgm_agent::facts::gather(&root, &st)).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (s, d) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
        }
    }
}

/// A process's wall time and peak RSS (KiB), through wait4.
fn measure(mut cmd: Command) -> (f64, i64, i32) {
    let t = Instant::now();
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::null()).spawn().expect("run cfgm");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child for its rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (t.elapsed().as_secs_f64(), usage.ru_maxrss, code)
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=b@cfgm.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_cfgm");
    let mut over = false;
    let hosts = hosts();
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    // CFGM_FLEET_KEEP=1: keep the generated fleet (for profiling runs).
    let w = if std::env::var_os("CFGM_FLEET_KEEP").is_some() {
        let p = work.keep();
        eprintln!("keeping the fleet in {}", p.display());
        p
    } else {
        work.path().to_path_buf()
    };
    let w = w.as_path();
    let repo = w.join("repo");
    let t0 = Instant::now();
    tree(&repo, hosts, 1);
    // Real facts, one per role × datacenter.
    let mut samples: Vec<Value> = Vec::new();
    for h in 0..DCS * ROLES {
        samples.push(sample_facts(&repo, &host_name(h), w));
    }
    let facts = w.join("facts");
    std::fs::create_dir_all(&facts).unwrap();
    for h in 0..hosts {
        let mut f = samples[h % (DCS * ROLES)].clone();
        let name = host_name(h);
        f["host"] = name.clone().into();
        // Its own name file: what the sample's host wrote, with this name.
        for r in f["resources"].as_array_mut().unwrap() {
            if r["id"]["name"] == "/etc/site/host" {
                let c = format!("{name}\n");
                r["observed"]["hash"] = blake3::hash(c.as_bytes()).to_hex().to_string().into();
                r["observed"]["content"] = c.into();
            }
            if h % 10 == 3 && r["id"]["name"] == "/srv/role0/conf7" {
                r["observed"]["content"] = "edited by hand\n".into();
                r["observed"]["hash"] = "0".into();
            }
        }
        if h % 50 == 7 {
            f["packages"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p["name"] != "jq");
        }
        write(&facts.join(format!("{name}.json")), &f.to_string());
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    tree(&repo, hosts, 2);
    git(&repo, &["commit", "-q", "-am", "two"]);
    let per_host = samples[0]["resources"].as_array().unwrap().len() + DPKG.len() - 1;
    println!(
        "(fleet prepared in {:.0} s: {hosts} hosts, {DCS} datacenters, ~{per_host} resources per host, facts on disk {} MiB)",
        t0.elapsed().as_secs_f64(),
        dir_size(&facts) >> 20
    );

    let mut cmd = Command::new(bin);
    cmd.args(["--tree"])
        .arg(&repo)
        .args(["plan", "--json", "--facts"])
        .arg(&facts);
    let (secs, kib, code) = measure(cmd);
    assert_eq!(code, 0, "cfgm plan failed");
    println!(
        "cfgm plan, {hosts} hosts x ~{per_host} resources in {DCS} datacenters, facts on disk: {secs:.2} s wall, peak RSS {} MiB (budget < 10 s, < 300 MiB)",
        kib / 1024
    );
    over |= secs >= 10.0 || kib >= 300 * 1024;

    let mut cmd = Command::new(bin);
    cmd.args(["--tree"])
        .arg(&repo)
        .args(["diff", "--json", "--from", "HEAD~1", "--to", "HEAD"]);
    let (secs, kib, code) = measure(cmd);
    assert_eq!(code, 0, "cfgm diff failed");
    println!(
        "cfgm diff, the same fleet, two commits: {secs:.2} s wall, peak RSS {} MiB (budget < 5 s, < 300 MiB)",
        kib / 1024
    );
    over |= secs >= 5.0 || kib >= 300 * 1024;
    if over {
        eprintln!("over budget");
        std::process::exit(1);
    }
}

fn dir_size(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}
