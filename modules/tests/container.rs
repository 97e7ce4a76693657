//! Cases marked `systemd`: the overlay root booted as a container
//! (systemd-nspawn, systemd as its PID 1, a private network), and the case
//! run inside it by this binary (entered with nsenter) with the host root
//! "/", so that the `service` kind's systemd provider runs for real. Before
//! it boots, the case's `root.sh` (if any) prepares the root from this
//! machine, which has the network the container lacks. The
//! container lives in its own cgroup (`cfgm-modtest/…`) and dies with the
//! case: its PID 1 is killed, which ends its whole PID namespace.

use super::{Root, CONTAINER_CASE, CONTAINER_TOKEN};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the binary is copied inside the root.
const BIN: &str = "/usr/local/sbin/cfgm-module-tests";
/// Where the overlay's upper directory is bind-mounted inside the container.
const UPPER: &str = "/run/cfgm-upper";

struct Container {
    nspawn: Child,
    leader: u32,
    cgroups: Vec<PathBuf>,
}

/// The cgroup hierarchies a process must join: hybrid (name=systemd v1 +
/// unified v2) or pure v2, as the fleet harness does.
fn cgroup_roots() -> Vec<PathBuf> {
    let c = Path::new("/sys/fs/cgroup");
    if c.join("unified").is_dir() {
        vec![c.join("systemd"), c.join("unified")]
    } else if c.join("cgroup.controllers").exists() {
        vec![c.to_path_buf()]
    } else {
        vec![c.join("systemd")]
    }
}

impl Container {
    fn boot(root: &Root, name: &str) -> Result<Container, String> {
        let cgroups: Vec<PathBuf> = cgroup_roots()
            .into_iter()
            .map(|r| r.join("cfgm-modtest").join(name))
            .collect();
        for c in &cgroups {
            std::fs::create_dir_all(c).map_err(|e| format!("{}: {e}", c.display()))?;
        }
        let log = std::fs::File::create(root.tmp.path().join("console.log"))
            .map_err(|e| e.to_string())?;
        // The shell joins the cgroups, then becomes systemd-nspawn.
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(
                "for c in \"${@:4}\"; do echo $$ > \"$c/cgroup.procs\"; done; \
                 exec systemd-nspawn --quiet --register=no --keep-unit --boot \
                 --private-network --resolv-conf=off --timezone=off \
                 --link-journal=no --console=read-only \
                 --machine=\"$1\" --directory=\"$2\" --bind-ro=\"$3\"",
            )
            .arg("_")
            .arg(name)
            .arg(root.path())
            .arg(format!("{}:{UPPER}", root.upper().display()))
            .args(&cgroups)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let nspawn = cmd.spawn().map_err(|e| format!("systemd-nspawn: {e}"))?;
        let mut c = Container {
            leader: 0,
            nspawn,
            cgroups,
        };
        // The leader is nspawn's child once it is systemd (PID 1 inside).
        // nspawn forks an outer child that forks the inner one and exits:
        // taking any child could catch the short-lived one and leave every
        // later `nsenter` failing (seen once: "not booted after 60 s ()").
        let t0 = Instant::now();
        while c.leader == 0 {
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(c.failure(root, "no container leader after 30 s"));
            }
            if let Ok(Some(_)) = c.nspawn.try_wait() {
                return Err(c.failure(root, "systemd-nspawn exited"));
            }
            c.leader = child_of(c.nspawn.id(), "systemd").unwrap_or(0);
            std::thread::sleep(Duration::from_millis(50));
        }
        // Booted: `is-system-running` says running (or degraded: some unit
        // of the base failed, which does not matter here).
        loop {
            let out = c.enter(&["systemctl", "is-system-running"]).output();
            let state = out
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if state == "running" || state == "degraded" {
                return Ok(c);
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(c.failure(root, &format!("not booted after 60 s ({state})")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn failure(&self, root: &Root, what: &str) -> String {
        let log = std::fs::read_to_string(root.tmp.path().join("console.log")).unwrap_or_default();
        format!("container: {what}\n{log}")
    }

    /// A command inside every namespace of the container.
    fn enter(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.leader.to_string(), "-a", "--"])
            .args(argv)
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.leader != 0 {
            // PID 1 of the namespace: every process of the container dies with it.
            let _ = Command::new("kill")
                .args(["-KILL", &self.leader.to_string()])
                .status();
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        // The container's systemd made cgroups below ours: deepest first,
        // once their processes are gone.
        for c in &self.cgroups {
            for _ in 0..50 {
                if remove_cgroup(c) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Removes a cgroup and every cgroup below it; whether it is gone.
fn remove_cgroup(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
    !dir.exists()
}

/// A child process of `pid` running `comm` (its name in /proc/PID/stat).
fn child_of(pid: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let p: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        if stat.split_once(" (")?.1.rsplit_once(')')?.0 != comm {
            return None;
        }
        // "pid (comm) state ppid …": comm may hold spaces; split after ')'.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == pid).then_some(p)
    })
}

/// Runs a `systemd` case: boot, enter, run, and carry blessed files back.
pub fn run_case(base: &Path, case: &Path) -> Result<String, String> {
    let root = Root::new(base)?;
    // The container has no network: what the case needs from outside
    // (packages into apt's cache) its `root.sh` fetches now, from here.
    let dirs = super::Dirs {
        root: &root.path(),
        outside: &root.outside(),
        state: &root.state_dir(),
    };
    super::script(case, "root.sh", &dirs)?;
    let inside = root.path().join(CONTAINER_CASE.trim_start_matches('/'));
    std::fs::create_dir_all(inside.parent().unwrap()).map_err(|e| e.to_string())?;
    super::sh(Command::new("cp").arg("-a").arg(case).arg(&inside))?;
    if let Ok(line) = std::fs::read_to_string(case.join("example")) {
        // The container sees only the case: an example tree goes in as its tree.
        let tree = line.split_whitespace().next().unwrap_or_default();
        super::sh(
            Command::new("cp")
                .arg("-a")
                .arg(super::example_dir(tree))
                .arg(inside.join("tree")),
        )?;
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    std::fs::copy(&exe, root.path().join(BIN.trim_start_matches('/')))
        .map_err(|e| format!("copy the test binary: {e}"))?;
    let name = format!(
        "cfgm-t-{}",
        root.tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("cfgm-test-")
            .to_lowercase()
    );
    // A volatile journal: nothing but the case writes to the root.
    let conf = root.path().join("etc/systemd/journald.conf.d");
    std::fs::create_dir_all(&conf).map_err(|e| e.to_string())?;
    std::fs::write(conf.join("cfgm-test.conf"), "[Journal]\nStorage=volatile\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(
        root.path().join(CONTAINER_TOKEN.trim_start_matches('/')),
        &name,
    )
    .map_err(|e| e.to_string())?;
    let c = Container::boot(&root, &name)?;
    let case_name = case.file_name().unwrap().to_string_lossy().into_owned();
    let mut cmd = c.enter(&[BIN, "--case", &case_name]);
    cmd.env(super::NS_ENV, "1")
        .env("CFGM_TEST_UPPER", UPPER)
        .env("CFGM_TEST_TOKEN", &name);
    let out = cmd.output().map_err(|e| format!("nsenter: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("CFGM_BLESS").is_some() {
        for f in ["expected-plan", "expected-report"] {
            if inside.join(f).exists() {
                std::fs::copy(inside.join(f), case.join(f)).map_err(|e| e.to_string())?;
            }
        }
    }
    drop(c);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}
