//! `make bench`: the converge engine's budget, measured on a host root in
//! a temporary directory with the real file provider.
//!
//! 1,000 file resources (1 KiB each, in 10 directories): the first apply
//! that creates them, then a no-op apply of the converged host (budget
//! < 100 ms), each timed in-process (engine only, compile excluded) and as
//! the whole `cfgm-agent apply` process. Prints peak memory of the process.

use cfgm_core::engine::{self, Options};
use cfgm_core::Mode;
use cfgm_core::{Compiler, Tree};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn main() {
    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let tree_dir = t.path().join("tree");
    let root = t.path().join("root");
    let state = t.path().join("state");
    std::fs::create_dir_all(&root).unwrap();
    write(
        &tree_dir.join("inventory.toml"),
        "[hosts.h]\ndc = \"dc1\"\nrole = \"r\"\n",
    );
    write(&tree_dir.join("top.toml"), "\"*\" = [\"files\"]\n");
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
    write(&tree_dir.join("states/files.toml"), &s);

    let (tree, diags) = Tree::load(&tree_dir).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let registry = cfgm_modules::registry();
    let catalog = Compiler::new(&tree, &registry)
        .compile_host("h", None)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let host = cfgm_modules::Host::new(&root, &state).unwrap();
    let providers = cfgm_modules::providers(&host);
    let opts = Options {
        mode: Mode::Apply,
        parallel: 4,
        ..Options::default()
    };

    let t0 = Instant::now();
    let first = engine::run(&catalog, &providers, &opts);
    let first_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert!(
        first.ok() && first.counts.changed == 1010,
        "{:?}",
        first.counts
    );
    println!(
        "first apply, {} resources (creates 1,000 files): {first_ms:.1} ms (engine)",
        catalog.resources.len()
    );

    let mut times = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let r = engine::run(&catalog, &providers, &opts);
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(r.ok() && r.counts.changed == 0, "{:?}", r.counts);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "no-op apply, 1,000 converged files: median {median:.1} ms (min {:.1}, 10 runs; budget < 100 ms) (engine)",
        times[0]
    );

    // The whole process: load + compile + lock + converge + report.
    let bin = env!("CARGO_BIN_EXE_cfgm-agent");
    let mut wall = Vec::new();
    let mut rss = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        let out = Command::new(bin)
            .args(["apply", "--host", "h", "--json", "--tree"])
            .arg(&tree_dir)
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        wall.push(t0.elapsed().as_secs_f64() * 1000.0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["counts"]["changed"], 0);
        rss = v["peak_rss_kib"].as_u64().unwrap_or(0);
    }
    wall.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "no-op `cfgm-agent apply` process, 1,000 files: median {:.1} ms wall (5 runs; load, compile, converge, report); peak RSS {:.1} MiB",
        wall[2],
        rss as f64 / 1024.0
    );
    if median >= 100.0 {
        eprintln!("over budget");
        std::process::exit(1);
    }
}
