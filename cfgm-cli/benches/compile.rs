//! `make bench`: the compiler's performance budget, measured.
//!
//! 1. Compile one host's catalog of 10,000 resources (templated states with
//!    loops, requisites, automatic edges and a file template): budget < 50 ms.
//! 2. `cfgm validate` (the real binary, a whole process) over 10,000
//!    inventory hosts in 50 role × dc combinations: budget < 10 s.
//!
//! Prints the figures; exits non-zero if a budget is exceeded.

use cfgm_core::{Compiler, Tree};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

// The same allocator as the cfgm binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A tree whose one host compiles to `states * per_state * 4` resources.
fn big_tree(dir: &Path, states: usize, per_state: usize) {
    write(
        &dir.join("inventory.toml"),
        "[hosts.big1]\ndc = \"ams01\"\nrole = \"edge\"\naddress = \"10.77.1.11\"\n",
    );
    let names: Vec<String> = (0..states).map(|s| format!("\"app{s}\"")).collect();
    write(
        &dir.join("top.toml"),
        &format!("\"*\" = [{}]\n", names.join(", ")),
    );
    write(
        &dir.join("data/common.toml"),
        "[app]\nversion = \"1.2.3\"\nport = 8080\n",
    );
    write(
        &dir.join("templates/app.conf.j2"),
        "# {{ host.name }} in {{ host.dc }}\nlisten {{ data.app.port }};\n{% for i in range(3) %}worker {{ i }};\n{% endfor %}\n",
    );
    for s in 0..states {
        let mut t = String::new();
        writeln!(t, "[directory.\"/srv/s{s}\"]\nmode = \"0755\"\n").unwrap();
        writeln!(t, "{{% for i in range({per_state}) %}}").unwrap();
        writeln!(
            t,
            "[pkg.\"app{s}-{{{{ i }}}}\"]\nversion = \"{{{{ data.app.version }}}}\"\n"
        )
        .unwrap();
        writeln!(
            t,
            "[directory.\"/srv/s{s}/app{{{{ i }}}}\"]\nmode = \"0750\"\n"
        )
        .unwrap();
        writeln!(
            t,
            "[file.\"/srv/s{s}/app{{{{ i }}}}/app.conf\"]\ntemplate = \"app.conf.j2\"\nmode = \"0640\"\nrequire = [\"pkg:app{s}-{{{{ i }}}}\"]\n"
        )
        .unwrap();
        writeln!(
            t,
            "[service.\"app{s}-{{{{ i }}}}\"]\nrunning = true\nwatch = [\"file:/srv/s{s}/app{{{{ i }}}}/app.conf\"]\n"
        )
        .unwrap();
        writeln!(t, "{{% endfor %}}").unwrap();
        write(&dir.join(format!("states/app{s}.toml")), &t);
    }
}

/// A tree of `hosts` hosts over `roles` × `dcs`; catalogs differ by role
/// and dc only, or (`distinct`) every host's catalog differs from every
/// other's (each writes its own name into /etc/cfgm/host).
fn fleet_tree(dir: &Path, hosts: usize, roles: usize, dcs: usize, distinct: bool) {
    let mut inv = String::new();
    for h in 0..hosts {
        let (r, d) = (h % roles, (h / roles) % dcs);
        writeln!(
            inv,
            "[hosts.h{h:05}]\ndc = \"dc{d:02}\"\nrole = \"role{r}\"\naddress = \"10.77.{}.{}\"\n",
            d + 1,
            h % 250 + 2
        )
        .unwrap();
    }
    write(&dir.join("inventory.toml"), &inv);
    let mut top = String::from("\"*\" = [\"base\", \"sysctl\"]\n");
    for r in 0..roles {
        writeln!(top, "\"role:role{r}\" = [\"role{r}\"]").unwrap();
    }
    write(
        &dir.join("data/common.toml"),
        "[base]\npackages = [\"curl\", \"less\", \"jq\", \"htop\", \"tcpdump\", \"strace\"]\n[sysctl]\n\"net.core.somaxconn\" = 1024\n\"net.ipv4.tcp_syncookies\" = 1\n",
    );
    for d in 0..dcs {
        write(
            &dir.join(format!("data/dc/dc{d:02}.toml")),
            &format!("[site]\nresolver = \"10.77.{}.53\"\n", d + 1),
        );
    }
    write(
        &dir.join("states/base.toml"),
        "{% for p in data.base.packages %}\n[pkg.{{ p }}]\n{% endfor %}\n\n[file.\"/etc/resolv.conf\"]\ncontent = \"nameserver {{ data.site.resolver }}\\n\"\nmode = \"0644\"\n\n[directory.\"/etc/cfgm\"]\n\n[file.\"/etc/cfgm/site\"]\ntemplate = \"site.j2\"\n",
    );
    if distinct {
        write(
            &dir.join("states/own.toml"),
            "[file.\"/etc/cfgm/host\"]\ncontent = \"{{ host.name }}\\n\"\n",
        );
        top.push_str("\"name:h*\" = [\"own\"]\n");
    }
    write(&dir.join("top.toml"), &top);
    write(
        &dir.join("templates/site.j2"),
        "dc={{ host.dc }}\nrole={{ host.role }}\n",
    );
    write(
        &dir.join("states/sysctl.toml"),
        "{% for k, v in data.sysctl | items %}\n[sysctl.\"{{ k }}\"]\nvalue = {{ v | tojson }}\n{% endfor %}\n",
    );
    for r in 0..roles {
        let mut t = String::new();
        for i in 0..40 {
            writeln!(
                t,
                "[file.\"/etc/role{r}/conf{i}\"]\ncontent = \"role {r} item {i} in {{{{ host.dc }}}}\\n\"\nrequire = [\"pkg:curl\"]\n"
            )
            .unwrap();
        }
        writeln!(t, "[directory.\"/etc/role{r}\"]\n\n[service.role{r}]\nrunning = true\nwatch = [\"file:/etc/role{r}/conf0\"]").unwrap();
        write(&dir.join(format!("states/role{r}.toml")), &t);
    }
}

/// `cfgm validate --json` on a tree, as a whole process: wall seconds,
/// peak resident memory (KiB, from the kernel's accounting of the child),
/// and its JSON.
fn validate(tree: &Path) -> (f64, i64, serde_json::Value) {
    let bin = env!("CARGO_BIN_EXE_cfgm");
    let t = Instant::now();
    // Reaped by wait4 below (for its rusage), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(bin)
        .args(["validate", "--json", "--tree"])
        .arg(tree)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run cfgm");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped");
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut text).unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let secs = t.elapsed().as_secs_f64();
    let json: serde_json::Value = serde_json::from_slice(&text).expect("validate --json");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{json:#}"
    );
    (secs, usage.ru_maxrss, json)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let registry = cfgm_modules::registry();
    let mut over_budget = false;

    let d = tempfile::tempdir().unwrap();
    big_tree(d.path(), 5, 500);
    let (tree, diags) = Tree::load(d.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let mut times = Vec::new();
    let mut n = 0;
    // CFGM_BENCH_PROFILE=1: three compiles and stop (for valgrind/perf runs).
    let profile = std::env::var_os("CFGM_BENCH_PROFILE").is_some();
    for _ in 0..if profile { 3 } else { 15 } {
        // A fresh compiler each time: nothing cached between runs.
        let compiler = Compiler::new(&tree, &registry);
        let t = Instant::now();
        let c = compiler
            .compile_host("big1", None)
            .unwrap_or_else(|d| panic!("{d:?}"));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        n = c.resources.len();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "compile one host, {n} resources: median {median:.1} ms (min {:.1}, max {:.1}, 15 runs; budget < 50 ms)",
        times[0],
        times[times.len() - 1]
    );
    over_budget |= median >= 50.0;
    if profile {
        return;
    }

    let t = Instant::now();
    let (tree, _) = Tree::load(d.path()).unwrap();
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!("  (loading that tree: {load_ms:.1} ms, not included above)");
    drop(tree);

    let f = tempfile::tempdir().unwrap();
    fleet_tree(f.path(), 10_000, 5, 10, false);
    let mut runs = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..3 {
        let (secs, _, out) = validate(f.path());
        runs.push(secs);
        last = out;
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = runs[1];
    println!(
        "cfgm validate, {} hosts in 50 role x dc combinations: median {median:.2} s wall (3 runs, whole process; budget < 10 s); {} distinct catalogs, {} resources",
        last["hosts"], last["distinct_catalogs"], last["resources"]
    );
    over_budget |= median >= 10.0;

    // Memory flat in the number of hosts: every catalog differs.
    for (hosts, secs_budget, mib_budget) in [(10_000, 10.0, 300.0), (100_000, 25.0, 500.0)] {
        let f = tempfile::tempdir().unwrap();
        fleet_tree(f.path(), hosts, 5, 10, true);
        let (secs, kib, out) = validate(f.path());
        let mib = kib as f64 / 1024.0;
        println!(
            "cfgm validate, {hosts} hosts whose catalogs all differ: {secs:.2} s wall, peak RSS {mib:.0} MiB (budget < {secs_budget:.0} s, < {mib_budget:.0} MiB; before the caches were bounded every host's catalog stayed alive: ~165 KiB per host); {} distinct catalogs",
            out["distinct_catalogs"]
        );
        over_budget |= secs >= secs_budget || mib >= mib_budget;
    }
    if over_budget {
        eprintln!("over budget");
        std::process::exit(1);
    }
}
