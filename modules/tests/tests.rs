//! The resource kinds against a real Debian root: one data-driven case per
//! directory under `tests/cases/<kind>-<what>/`.
//!
//! A case is:
//! - `tree/`: a states tree with one host `test`; or `example`: `TREE
//!   HOST`, one of the repository's trees under `examples/` compiled for
//!   that host (with the tree's `[default_facts]`);
//! - `setup.sh` (optional): bash with `$ROOT` and `$OUTSIDE`, makes the
//!   start state;
//! - `expected-plan`: the sorted lines of the dry run, `kind[name] attr` per
//!   change, `kind[name] refresh` per due refresh, `kind[name] (failed)` /
//!   `(skipped)`; re-bless with `CFGM_BLESS=1`;
//! - `expect-failures` (optional): `kind[name] text` lines, the resources
//!   that fail (or are skipped) in apply and a piece of their error; a
//!   resource that fails in the dry run ("would fail") must fail in apply
//!   with the very same message;
//! - `expect-failures-again` (optional): the same for the second apply,
//!   when it differs from the first (a failed apt transaction that
//!   installed something the first time changes nothing the second);
//!   without it the second apply expects `expect-failures`;
//! - `check.sh`: bash with `$ROOT`, `$OUTSIDE` and `$STATE` (the state
//!   directory, with the backups), the assertion of the end state;
//! - `expected-report` (optional, blessed): the dry run as people read it;
//! - `secrets` (optional): strings no report may contain (the catalog's
//!   secret attributes are always checked);
//! - `netns` / `systemd` (markers): where the case runs, see below;
//! - `root.sh` (optional, `systemd` cases): bash with `$ROOT`, run on this
//!   machine before the root boots, to fetch what the container, which has
//!   no network, needs (e.g. `apt-get install --download-only` in a chroot).
//!
//! For each case the runner mounts a fresh overlay over an unpacked Debian
//! bookworm base, runs the setup, a dry run (the plan as expected, and the
//! overlay's upper directory — file list, sizes, modes, mtimes — unchanged),
//! an apply (no failure but the expected ones, exactly the resources the
//! dry run predicted changed), the check, and a second apply (nothing
//! changes). Commands run through `chroot ROOT`; nothing outside the
//! overlay is touched.
//!
//! `$OUTSIDE` is a directory beside the root (`ROOT/../outside`, on the
//! machine, not in the root) that a case may fill in its setup and point
//! symlinks at (absolute, `$OUTSIDE/…`, or relative, `../../outside`):
//! every run must leave it exactly as the setup left it (checked after the
//! dry run, the apply and the second apply), since whatever a run touches
//! resolves inside its root.
//!
//! The binary has its own `main` (`harness = false`) because cases need
//! processes of their own: it re-executes itself in a private mount
//! namespace, so that its overlays are invisible to the rest of the machine
//! and vanish with it; a `netns` case (sysctl) runs in a child with a
//! private network namespace and /proc mounted in the root, and may only
//! set `net.*` parameters, which that namespace owns, so no kernel
//! parameter of this machine ever changes; a `systemd` case runs inside
//! the root booted as a container (see `container.rs`). Needs root.
//!
//! Usage: `cargo test -p cfgm-modules --test tests [-- FILTER...]` as
//! root (`make module-test`); `CFGM_TEST_VERBOSE=1` shows each case's
//! apply report. Not root, every case is reported `skipped (needs root)`
//! and the run passes, so `cargo test --workspace` works for anyone; with
//! `CFGM_TEST_REQUIRE_ROOT` set a skip is a failure instead.

mod container;

use cfgm_core::engine::{self, Options};
use cfgm_core::Mode;
use cfgm_core::{Catalog, Compiler, Outcome, Report, Tree};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::time::Instant;

/// Marks the process that already runs in the private mount namespace.
const NS_ENV: &str = "CFGM_TEST_IN_NS";
/// How many cases run at once (apt and the shadow tools are mostly I/O).
const WORKERS: usize = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(NS_ENV).is_none() {
        if !is_root() {
            return skip_all(&args);
        }
        return reexec_in_namespace(&args);
    }
    if let Some(i) = args.iter().position(|a| a == "--case") {
        // A child running one case: in a private network namespace, or
        // inside a booted container (then the host root is "/").
        let name = args.get(i + 1).expect("--case NAME");
        let (case, place) = match std::env::var_os("CFGM_TEST_UPPER") {
            Some(upper) => (
                PathBuf::from(CONTAINER_CASE),
                Place::Container(PathBuf::from(upper)),
            ),
            None => (
                cases_dir().join(name),
                Place::Netns(PathBuf::from(
                    std::env::var("CFGM_TEST_BASE").expect("CFGM_TEST_BASE"),
                )),
            ),
        };
        return match run_case(&case, place) {
            Ok(log) => {
                print!("{log}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                print!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    // Libtest flags cargo may pass (--nocapture, --quiet …) are ignored;
    // the other arguments filter cases by substring.
    let t0 = Instant::now();
    let base = match base_root() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cases = selected_cases(&args);
    // The slow ones (apt) first, so that they overlap with the rest.
    cases.sort_by_key(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        (!n.starts_with("pkg-"), n)
    });
    // CFGM_TEST_VERBOSE=1 shows every case's apply report.
    let verbose = std::env::var_os("CFGM_TEST_VERBOSE").is_some();
    println!("running {} cases", cases.len());
    let queue = Mutex::new(VecDeque::from(cases.clone()));
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let name = case.file_name().unwrap().to_string_lossy().into_owned();
                let t = Instant::now();
                // A panicking case fails alone (its root is unmounted while unwinding).
                let result = std::panic::catch_unwind(|| {
                    if case.join("netns").exists() {
                        run_case_in_netns(&base, &name)
                    } else if case.join("systemd").exists() {
                        container::run_case(&base, &case)
                    } else {
                        run_case(&case, Place::Chroot(base.clone()))
                    }
                })
                .unwrap_or_else(|_| Err("the case panicked".into()));
                let secs = t.elapsed().as_secs_f64();
                match result {
                    Ok(log) if verbose => println!("case {name} ... ok ({secs:.1} s)\n{log}"),
                    Ok(_) => println!("case {name} ... ok ({secs:.1} s)"),
                    Err(e) => {
                        println!("case {name} ... FAILED ({secs:.1} s)\n{e}");
                        failed.lock().unwrap().push((name, e));
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    println!(
        "\n{} cases, {} failed, in {:.1} s",
        cases.len(),
        failed.len(),
        t0.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        // Again at the end, where a log cut to its tail (CI) still shows why.
        for (name, e) in &failed {
            println!("\n== {name} failed:\n{e}");
        }
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        println!("\nfailed: {}", names.join(", "));
        ExitCode::FAILURE
    }
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// The cases the arguments select: libtest flags cargo may pass
/// (--nocapture, --quiet …) are ignored; the other arguments filter cases
/// by substring.
fn selected_cases(args: &[String]) -> Vec<PathBuf> {
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str()))
        })
        .collect();
    cases.sort();
    cases
}

/// Not root: every case needs root (overlays, chroot, namespaces,
/// containers), so each is reported skipped, by name, and the run passes
/// — unless `CFGM_TEST_REQUIRE_ROOT` is set (`make module-test`, `make
/// test`), where a skip is a failure. The kinds' pure parts (diff tables,
/// spec and `Desired`) are unit tests that run for everyone.
fn skip_all(args: &[String]) -> ExitCode {
    let cases = selected_cases(args);
    if std::env::var_os("CFGM_TEST_REQUIRE_ROOT").is_some() {
        eprintln!(
            "error: the {} module cases mount overlays, chroot and boot containers: run them as root",
            cases.len()
        );
        return ExitCode::FAILURE;
    }
    for case in &cases {
        println!(
            "skipped (needs root): case {}",
            case.file_name().unwrap().to_string_lossy()
        );
    }
    println!(
        "\n{} cases, {} skipped (not root; `make module-test` runs them as root)",
        cases.len(),
        cases.len()
    );
    ExitCode::SUCCESS
}

/// Runs this binary again inside a private mount namespace.
fn reexec_in_namespace(args: &[String]) -> ExitCode {
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(args)
        .env(NS_ENV, "1")
        .status()
        .expect("run unshare");
    ExitCode::from(status.code().unwrap_or(1) as u8)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// ---- the Debian base ------------------------------------------------------

/// The unpacked base root: the fleet harness's cached bookworm image,
/// unpacked once per image into /var/cache/cfgm-test (not under the fleet's
/// cache, whose teardown unmounts every overlay over its bases).
fn base_root() -> Result<PathBuf, String> {
    let cache = std::env::var("FLEET_CACHE").unwrap_or_else(|_| "/var/cache/fleet".into());
    let find = || -> Option<PathBuf> {
        let mut tars: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&cache)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("bookworm-") && n.ends_with(".tar.zst")
            })
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        tars.sort();
        tars.pop().map(|(_, p)| p)
    };
    let tar = match find() {
        Some(t) => t,
        None => {
            let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testing/fleet");
            let t = Instant::now();
            let ok = Command::new(&fleet)
                .arg("base")
                .status()
                .map_err(|e| format!("{}: {e}", fleet.display()))?
                .success();
            if !ok {
                return Err("`testing/fleet base` failed".into());
            }
            println!("built the base image in {:.1} s", t.elapsed().as_secs_f64());
            find().ok_or("`testing/fleet base` made no image")?
        }
    };
    let meta = tar
        .metadata()
        .map_err(|e| format!("{}: {e}", tar.display()))?;
    let key = format!("{}-{}", meta.mtime(), meta.size());
    let dir = PathBuf::from("/var/cache/cfgm-test").join(format!("base-{key}"));
    if dir.join(".unpacked").exists() {
        return Ok(dir);
    }
    let t = Instant::now();
    let tmp =
        PathBuf::from("/var/cache/cfgm-test").join(format!(".base-{key}.{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let ok = Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(&tar)
        .arg("-C")
        .arg(&tmp)
        .arg("--numeric-owner")
        .status()
        .map_err(|e| format!("tar: {e}"))?
        .success();
    if !ok {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!("unpacking {} failed", tar.display()));
    }
    std::fs::write(tmp.join(".unpacked"), "").map_err(|e| e.to_string())?;
    // Another run may have won the race; its copy is as good as ours.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    println!(
        "unpacked {} in {:.1} s",
        tar.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(dir)
}

// ---- one root per case ----------------------------------------------------

/// A fresh overlay root over the base; unmounted (after killing whatever
/// still runs inside it) when dropped, also on panic.
struct Root {
    tmp: tempfile::TempDir,
    mounts: Vec<PathBuf>,
}

impl Root {
    fn new(base: &Path) -> Result<Root, String> {
        let tmp = tempfile::Builder::new()
            .prefix("cfgm-test-")
            .tempdir_in("/var/tmp")
            .map_err(|e| e.to_string())?;
        for d in ["upper", "work", "root", "state", "outside"] {
            std::fs::create_dir(tmp.path().join(d)).map_err(|e| e.to_string())?;
        }
        let mut root = Root {
            tmp,
            mounts: Vec::new(),
        };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            root.upper().display(),
            root.tmp.path().join("work").display()
        );
        sh(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(root.path()))?;
        root.mounts.push(root.path());
        // apt inside the root resolves the mirror like this machine does.
        std::fs::copy("/etc/resolv.conf", root.path().join("etc/resolv.conf"))
            .map_err(|e| format!("resolv.conf: {e}"))?;
        Ok(root)
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn upper(&self) -> PathBuf {
        self.tmp.path().join("upper")
    }

    fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// A directory beside the root that no run may touch.
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    fn mount_proc(&mut self) -> Result<(), String> {
        let p = self.path().join("proc");
        sh(Command::new("mount").args(["-t", "proc", "proc"]).arg(&p))?;
        self.mounts.push(p);
        Ok(())
    }

    /// Kills every process whose root directory is this root (daemons a
    /// case started), so the overlay can be unmounted.
    fn kill_inside(&self) {
        let root = self.path();
        for _ in 0..20 {
            let pids: Vec<String> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let pid = e.file_name().to_string_lossy().into_owned();
                    pid.parse::<u32>().ok()?;
                    let r = std::fs::read_link(e.path().join("root")).ok()?;
                    r.starts_with(&root).then_some(pid)
                })
                .collect();
            if pids.is_empty() {
                return;
            }
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        self.kill_inside();
        for m in self.mounts.iter().rev() {
            let ok = Command::new("umount")
                .arg(m)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
    }
}

fn sh(c: &mut Command) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{c:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Where a case's scripts look: `$ROOT`, `$OUTSIDE` and `$STATE` (the
/// agent state directory, with the backups).
struct Dirs<'a> {
    root: &'a Path,
    outside: &'a Path,
    state: &'a Path,
}

/// Runs a case's script (setup.sh, check.sh).
fn script(case: &Path, name: &str, dirs: &Dirs) -> Result<(), String> {
    let path = case.join(name);
    if !path.exists() {
        return Ok(());
    }
    // -x: on failure, the trace shows the assertion that failed.
    sh(Command::new("bash")
        .arg("-x")
        .arg(&path)
        .current_dir(case)
        .env("ROOT", dirs.root)
        .env("OUTSIDE", dirs.outside)
        .env("STATE", dirs.state))
    .map_err(|e| format!("{name}: {e}"))
}

/// Every file of a directory tree: type, size, mode, owner and mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            out.insert(
                p.strip_prefix(base).unwrap().to_path_buf(),
                format!(
                    "{:o} {}:{} {} bytes, mtime {}.{:09}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            );
            if m.is_dir() {
                walk(&p, base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---- the case -------------------------------------------------------------

/// A case whose kernel parameters must stay private: this binary again,
/// in a new network and mount namespace.
fn run_case_in_netns(base: &Path, name: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let outer_net = std::fs::read_link("/proc/self/ns/net").map_err(|e| format!("netns: {e}"))?;
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(["--case", name])
        .env("CFGM_TEST_BASE", base)
        .env_remove("CFGM_TEST_UPPER")
        .env("CFGM_TEST_OUTER_NET", outer_net)
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// A tree under the repository's examples/.
fn example_dir(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(tree)
}

fn compile(case: &Path) -> Result<Catalog, String> {
    // A case may converge one of the repository's example trees instead of
    // its own: `example` holds the tree's name under examples/ and a host.
    let (dir, host) = match std::fs::read_to_string(case.join("example")) {
        Ok(line) => {
            let mut w = line.split_whitespace();
            let (Some(tree), Some(host)) = (w.next(), w.next()) else {
                return Err(format!("{}: example: expected `TREE HOST`", case.display()));
            };
            // In a container the example comes copied in as the case's tree.
            let dir = if case.join("tree").is_dir() {
                case.join("tree")
            } else {
                example_dir(tree)
            };
            (dir, host.to_string())
        }
        Err(_) => (case.join("tree"), "test".to_string()),
    };
    let (tree, diags) = Tree::load(dir).map_err(|e| e.to_string())?;
    if !diags.is_empty() {
        return Err(render_diags(&tree, &diags));
    }
    let reg = cfgm_modules::registry();
    Compiler::new(&tree, &reg)
        .compile_host(&host, None)
        .map_err(|d| render_diags(&tree, &d))
}

fn render_diags(tree: &Tree, diags: &[cfgm_core::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render(&tree.sources, false))
        .collect()
}

/// The plan as lines: `kind[name] attr` per change, `kind[name] refresh`
/// per due refresh, `kind[name] (failed)` / `(skipped)`.
fn plan_lines(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for res in &r.resources {
        for c in &res.changes {
            out.push(format!("{} {}", res.id, c.attr));
        }
        if !res.refreshed_by.is_empty() {
            out.push(format!("{} refresh", res.id));
        }
        match res.outcome {
            Outcome::Failed => out.push(format!("{} (failed)", res.id)),
            Outcome::Skipped => out.push(format!("{} (skipped)", res.id)),
            _ => {}
        }
    }
    out.sort();
    out
}

/// `kind[name] text` lines of a case's `file` (`expect-failures`,
/// `expect-failures-again`): resources expected to fail (or be skipped),
/// with a piece of their error.
fn expected_failures(case: &Path, file: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(case.join(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((id, text)) => (id.to_string(), text.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn ids_with(r: &Report, f: impl Fn(Outcome) -> bool) -> BTreeSet<String> {
    r.resources
        .iter()
        .filter(|x| f(x.outcome))
        .map(|x| x.id.to_string())
        .collect()
}

/// Fails unless exactly the expected resources failed or were skipped, each
/// with its expected error text.
fn check_failures(
    r: &Report,
    expected: &BTreeMap<String, String>,
    what: &str,
) -> Result<(), String> {
    let bad = ids_with(r, |o| matches!(o, Outcome::Failed | Outcome::Skipped));
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    if bad != want {
        return Err(format!(
            "{what}: failed or skipped {bad:?}, expected {want:?}\n{}",
            r.to_text(false)
        ));
    }
    for res in &r.resources {
        if let Some(text) = expected.get(&res.id.to_string()) {
            let err = res.error.as_deref().unwrap_or("");
            if !err.contains(text.as_str()) {
                return Err(format!(
                    "{what}: {} failed with `{err}`, expected it to say `{text}`",
                    res.id
                ));
            }
        }
    }
    Ok(())
}

/// The dry run never promises what apply cannot do: a resource that fails
/// in the dry run ("would fail") fails in apply with the same message.
fn dry_run_saw_it(dry: &Report, apply: &Report) -> Result<(), String> {
    for d in dry
        .resources
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
    {
        let a = apply.resources.iter().find(|r| r.id == d.id);
        let same = a.is_some_and(|a| a.outcome == Outcome::Failed && a.error == d.error);
        if !same {
            return Err(format!(
                "{}: the dry run said it would fail with `{}`, apply: {:?}",
                d.id,
                d.error.as_deref().unwrap_or(""),
                a.map(|a| (a.outcome, a.error.as_deref()))
            ));
        }
    }
    Ok(())
}

/// No secret of the catalog appears in a report, as JSON or as text, nor
/// any line of the case's `secrets` file (e.g. a secret the host had before).
fn check_no_secrets(case: &Path, catalog: &Catalog, r: &Report, what: &str) -> Result<(), String> {
    let json = serde_json::to_string(r).map_err(|e| e.to_string())?;
    let text = r.to_text(false);
    let listed = std::fs::read_to_string(case.join("secrets")).unwrap_or_default();
    for secret in listed.lines().filter(|l| !l.trim().is_empty()) {
        if json.contains(secret) || text.contains(secret) {
            return Err(format!("{what}: the secret `{secret}` shows in the report"));
        }
    }
    for res in &catalog.resources {
        for attr in &res.hidden {
            let Some(serde_json::Value::String(secret)) = res.attrs.get(attr) else {
                continue;
            };
            for line in secret.lines().filter(|l| l.trim().len() >= 4) {
                if json.contains(line) || text.contains(line) {
                    return Err(format!(
                        "{what}: the secret {attr} of {} shows in the report",
                        res.id
                    ));
                }
            }
        }
    }
    Ok(())
}

fn run_engine(catalog: &Catalog, root: &Path, state_dir: &Path, mode: Mode) -> Report {
    let host = cfgm_modules::Host::new(root, state_dir).expect("open the host root");
    let providers = cfgm_modules::providers(&host);
    engine::run(
        catalog,
        &providers,
        &Options {
            mode,
            ..Options::default()
        },
    )
}

/// Where a case's host root is.
enum Place {
    /// A fresh overlay over the base (path), commands through chroot.
    Chroot(PathBuf),
    /// The same, in a private network namespace with /proc in the root.
    Netns(PathBuf),
    /// Inside a booted container: the root is "/"; its overlay's upper
    /// directory is bind-mounted at the path.
    Container(PathBuf),
}

/// Where the case directory is inside a container.
const CONTAINER_CASE: &str = "/var/lib/cfgm-test/case";
/// A file only the test container's root has, with a token the runner
/// also passes in the environment.
const CONTAINER_TOKEN: &str = "/var/lib/cfgm-test/token";

/// Kernel parameters only where a private network namespace owns them:
/// `net.*`, and only when this process is not in the machine's namespace.
fn private_kernel_parameters_only(catalog: &Catalog) -> Result<(), String> {
    let own = std::fs::read_link("/proc/self/ns/net").map_err(|e| format!("netns: {e}"))?;
    let outer = std::env::var("CFGM_TEST_OUTER_NET").unwrap_or_default();
    if outer.is_empty() || own.to_string_lossy() == outer {
        return Err("a netns case is not in a private network namespace".into());
    }
    match catalog
        .resources
        .iter()
        .find(|r| r.id.kind == "sysctl" && !r.id.name.starts_with("net."))
    {
        Some(r) => Err(format!(
            "{}: a test may only set net.* parameters (private to its namespace)",
            r.id
        )),
        None => Ok(()),
    }
}

/// Compares `text` with a golden file, or writes it with `CFGM_BLESS=1`.
fn golden(file: &Path, text: &str, dry: &Report) -> Result<(), String> {
    if std::env::var_os("CFGM_BLESS").is_some() {
        return std::fs::write(file, text).map_err(|e| e.to_string());
    }
    let want = std::fs::read_to_string(file).unwrap_or_default();
    if want == text {
        return Ok(());
    }
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    Err(format!(
        "the dry run differs from {name} (CFGM_BLESS=1 re-blesses)\n--- expected\n{want}--- got\n{text}\n{}",
        dry.to_text(false)
    ))
}

/// One case: setup → dry run → apply → check → apply again. Returns its log.
fn run_case(case: &Path, place: Place) -> Result<String, String> {
    if let Place::Container(_) = place {
        // The root is "/" here: make sure it is the container's.
        let token = std::fs::read_to_string(CONTAINER_TOKEN).unwrap_or_default();
        if token.is_empty() || std::env::var("CFGM_TEST_TOKEN").ok() != Some(token) {
            return Err("a container case runs only inside its test container".into());
        }
    }
    let mut log = String::new();
    let catalog = compile(case)?;
    match &place {
        Place::Netns(_) => private_kernel_parameters_only(&catalog)?,
        Place::Container(_) => {
            if let Some(r) = catalog.resources.iter().find(|r| r.id.kind == "sysctl") {
                return Err(format!(
                    "{}: no kernel parameters in a container case",
                    r.id
                ));
            }
        }
        Place::Chroot(_) => {}
    }
    // `_root` keeps the overlay mounted until the case ends.
    let (_root, root_dir, upper, state_dir, outside) = match &place {
        Place::Chroot(base) | Place::Netns(base) => {
            let mut root = Root::new(base)?;
            if matches!(place, Place::Netns(_)) {
                root.mount_proc()?;
            }
            let (r, u, s, o) = (root.path(), root.upper(), root.state_dir(), root.outside());
            (Some(root), r, u, s, o)
        }
        Place::Container(upper) => {
            let state = PathBuf::from("/run/cfgm-test-state");
            let outside = PathBuf::from("/run/cfgm-test-outside");
            for d in [&state, &outside] {
                std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            }
            (None, PathBuf::from("/"), upper.clone(), state, outside)
        }
    };
    let dirs = Dirs {
        root: &root_dir,
        outside: &outside,
        state: &state_dir,
    };
    script(case, "setup.sh", &dirs)?;
    // Nothing a run does may reach outside its root.
    let outside_before = snapshot(&outside);
    let outside_unchanged = |what: &str| -> Result<(), String> {
        let now = snapshot(&outside);
        if now == outside_before {
            return Ok(());
        }
        let changed: Vec<_> = outside_before
            .iter()
            .filter(|(k, v)| now.get(*k) != Some(v))
            .map(|(k, _)| k)
            .chain(now.keys().filter(|k| !outside_before.contains_key(*k)))
            .collect();
        Err(format!(
            "{what} changed files outside the root (in $OUTSIDE): {changed:?}"
        ))
    };
    let expected = expected_failures(case, "expect-failures");
    let expected_again = if case.join("expect-failures-again").exists() {
        expected_failures(case, "expect-failures-again")
    } else {
        expected.clone()
    };

    // The dry run: the plan, and nothing changed on disk.
    let before = snapshot(&upper);
    let t = Instant::now();
    let dry = run_engine(&catalog, &root_dir, &state_dir, Mode::DryRun);
    log.push_str(&format!("dry run {:.2} s\n", t.elapsed().as_secs_f64()));
    let after = snapshot(&upper);
    if before != after {
        // A directory the overlay copied up unchanged (`apt-cache` opens
        // an anonymous O_TMPFILE in /tmp, which copies /tmp up and leaves
        // nothing in it) is no change; anything else is.
        let lower = match &place {
            Place::Chroot(b) | Place::Netns(b) => Some(b.clone()),
            Place::Container(_) => None,
        };
        let copied_up = |k: &PathBuf| -> bool {
            let (Some(lower), Ok(u)) = (&lower, std::fs::symlink_metadata(upper.join(k))) else {
                return false;
            };
            let Ok(l) = std::fs::symlink_metadata(lower.join(k)) else {
                return false;
            };
            u.is_dir()
                && l.is_dir()
                && (u.mode(), u.uid(), u.gid(), u.mtime())
                    == (l.mode(), l.uid(), l.gid(), l.mtime())
                && std::fs::read_dir(upper.join(k)).is_ok_and(|mut d| d.next().is_none())
        };
        let changed: Vec<_> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, _)| k)
            .chain(
                after
                    .keys()
                    .filter(|k| !before.contains_key(*k) && !copied_up(k)),
            )
            .collect();
        if !changed.is_empty() {
            return Err(format!("the dry run changed files: {changed:?}"));
        }
    }
    outside_unchanged("the dry run")?;
    check_no_secrets(case, &catalog, &dry, "dry run")?;
    let plan: String = plan_lines(&dry).iter().map(|l| format!("{l}\n")).collect();
    golden(&case.join("expected-plan"), &plan, &dry)?;
    // Opt-in (an `expected-report` file): the report as people read it,
    // with unified diffs; the summary line (timing) left out, and the
    // catalog id, which changes with the core's canonical form.
    let report_file = case.join("expected-report");
    if report_file.exists() {
        let id = &dry.catalog_id[..12.min(dry.catalog_id.len())];
        let text: String = dry
            .to_text(false)
            .lines()
            .filter(|l| !l.contains(" unchanged") || !l.ends_with(" s"))
            .map(|l| format!("{}\n", l.replace(id, "…")))
            .collect();
        golden(&report_file, &text, &dry)?;
    }
    let predicted = ids_with(&dry, |o| o == Outcome::WouldChange);

    // The apply: the expected failures only, exactly the predicted changes.
    let t = Instant::now();
    let first = run_engine(&catalog, &root_dir, &state_dir, Mode::Apply);
    log.push_str(&format!("apply {:.2} s\n", t.elapsed().as_secs_f64()));
    log.push_str(&first.to_text(false));
    outside_unchanged("the apply")?;
    check_failures(&first, &expected, "apply")?;
    check_no_secrets(case, &catalog, &first, "apply")?;
    dry_run_saw_it(&dry, &first)?;
    let changed = ids_with(&first, |o| o == Outcome::Changed);
    let want: BTreeSet<String> = predicted
        .iter()
        .filter(|id| !expected.contains_key(*id))
        .cloned()
        .collect();
    if changed != want {
        return Err(format!(
            "apply changed {changed:?}, the dry run predicted {want:?}\n{}",
            first.to_text(false)
        ));
    }
    script(case, "check.sh", &dirs)?;

    // Idempotence: a second apply changes nothing.
    let second = run_engine(&catalog, &root_dir, &state_dir, Mode::Apply);
    outside_unchanged("the second apply")?;
    check_failures(&second, &expected_again, "second apply")?;
    if second.counts.changed != 0 {
        return Err(format!(
            "the second apply changed something\n{}",
            second.to_text(false)
        ));
    }
    Ok(log)
}
