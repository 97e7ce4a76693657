//! What a host is: its facts, gathered in-process for templates, plans and
//! the fleet's view of the host.
//!
//! This module owns [`gather`]: system facts (hostname, fqdn, OS, kernel,
//! arch, CPUs, memory, interfaces with addresses, boot time), inventories
//! (installed packages from the dpkg status database, service units with
//! their enabled state, users, groups) and the observed state of every
//! resource of the last run, as the modules' `observe` returned it (from
//! `STATE_DIR/reports/last.json`; what the report left out as the
//! catalog's is put back from the catalog kept of that run), with the last
//! applied commit and catalog id. The result is data ([`Facts`], `schema_version` 1).
//!
//! It must not change anything and must stay cheap (budget: < 50 ms for a
//! host with 300 resources): every fact is read from a file under the root
//! (`/proc`, `/sys`, `/etc`, `/usr/lib`, `/var/lib/dpkg`), through a
//! descriptor opened with `openat2(RESOLVE_IN_ROOT)`, so no symlink in the
//! root leads a read outside it. It spawns no process per item. Two facts
//! are not files:
//! - interface addresses come from one netlink dump (`RTM_GETADDR`) of the
//!   agent's network namespace, only when the root is `/` (another root has
//!   no network of its own: its interfaces are listed without addresses);
//! - the *active* state of services comes from at most one
//!   `systemctl list-units --type=service --all --output=json` call, only
//!   when the root is `/` and systemd is PID 1 (`/run/systemd/system`
//!   exists); otherwise `active` is absent.
//!
//! What could not be read is listed in `problems`, not an error: facts are
//! best effort, and an absent fact is `null`, never a guess.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

pub use cfgm_core::facts::*;

struct Root {
    fd: Option<OwnedFd>,
    is_slash: bool,
    problems: Vec<String>,
}

impl Root {
    fn open(root: &Path) -> Root {
        let is_slash = root == Path::new("/");
        let fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty());
        let mut problems = Vec::new();
        let fd = match fd {
            Ok(fd) => Some(fd),
            Err(e) => {
                problems.push(format!("{}: {e}", root.display()));
                None
            }
        };
        Root {
            fd,
            is_slash,
            problems,
        }
    }

    fn open_in(&self, rel: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| std::io::Error::other("root not open"))?;
        Ok(cfgm_core::source::openat2_confined(
            fd,
            rel,
            flags | OFlags::CLOEXEC,
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    /// A file's text; a missing file is `None` (and a problem when `noted`).
    fn text(&mut self, rel: &str, noted: bool) -> Option<String> {
        let r = self.open_in(rel, OFlags::RDONLY).and_then(|fd| {
            let mut s = String::new();
            std::fs::File::from(fd).read_to_string(&mut s).map(|_| s)
        });
        match r {
            Ok(s) => Some(s),
            Err(e) => {
                if noted || e.kind() != std::io::ErrorKind::NotFound {
                    self.problems.push(format!("/{rel}: {e}"));
                }
                None
            }
        }
    }

    /// A one-line file, trimmed.
    fn line(&mut self, rel: &str) -> Option<String> {
        self.text(rel, false)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Entries of a directory: (name, is a symlink, symlink target).
    fn dir(&mut self, rel: &str) -> Vec<(String, bool, Option<String>)> {
        let Ok(fd) = self.open_in(rel, OFlags::RDONLY | OFlags::DIRECTORY) else {
            return Vec::new();
        };
        let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let link = e.file_type() == rustix::fs::FileType::Symlink;
            let target = if link {
                rustix::fs::readlinkat(&fd, name.as_str(), Vec::new())
                    .ok()
                    .map(|c| c.to_string_lossy().into_owned())
            } else {
                None
            };
            out.push((name, link, target));
        }
        out.sort();
        out
    }
}

/// Gathers the facts of the host whose root filesystem is `root` ("/" for
/// this machine), with the agent state in `state_dir` (the last report and
/// applied commit).
pub fn gather(root: &Path, state_dir: &Path) -> Facts {
    gather_with(root, true, |problems| last_run(state_dir, problems))
}

/// What templates see (`template_facts`: the system facts and the
/// installed packages), gathered alone: the daemon's run before it
/// compiles needs nothing of the last run.
pub fn gather_for_templates(root: &Path) -> Facts {
    gather_with(root, false, |_| {
        (Applied::default(), Vec::new(), Vec::new())
    })
}

/// [`gather`] right after a run, from its report and the catalog it ran
/// (what the run kept in `state_dir`, without reading it back).
pub fn gather_after(
    root: &Path,
    state_dir: &Path,
    report: &cfgm_core::Report,
    catalog: Option<&cfgm_core::Catalog>,
) -> Facts {
    gather_with(root, true, |problems| {
        let mut report = report.clone();
        match catalog {
            Some(c) if c.id.0 == report.catalog_id => restore_with(Some(c), &mut report, problems),
            _ => restore_converged(state_dir, &mut report, problems),
        }
        from_report(state_dir, report)
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn short_host(system: &System) -> String {
    system
        .hostname
        .as_deref()
        .map(|h| h.split('.').next().unwrap_or(h).to_string())
        .unwrap_or_default()
}

/// The facts, with the inventories of services, users and groups when
/// `inventories`, and the last run as `last` says.
fn gather_with(
    root: &Path,
    inventories: bool,
    last: impl FnOnce(&mut Vec<String>) -> LastRun,
) -> Facts {
    let mut r = Root::open(root);
    let system = system(&mut r);
    let packages = packages(&mut r);
    let (services, users, groups) = if inventories {
        (services(&mut r), users(&mut r), groups(&mut r))
    } else {
        Default::default()
    };
    let (applied, resources, owed_refresh) = last(&mut r.problems);
    let now = now();
    Facts {
        schema_version: SCHEMA_VERSION,
        host: short_host(&system),
        time: now,
        time_utc: crate::signers::format_utc(now),
        applied,
        system,
        packages,
        services,
        users,
        groups,
        resources,
        owed_refresh,
        problems: r.problems,
    }
}

fn system(r: &mut Root) -> System {
    let hostname = r
        .line("etc/hostname")
        .or_else(|| r.line("proc/sys/kernel/hostname"));
    let fqdn = hostname.as_deref().map(|h| fqdn(r, h));
    let os_text = r
        .text("etc/os-release", false)
        .or_else(|| r.text("usr/lib/os-release", true))
        .unwrap_or_default();
    let osr = parse_os_release(&os_text);
    let os = Os {
        id: osr.get("ID").cloned(),
        version_id: osr.get("VERSION_ID").cloned(),
        codename: osr.get("VERSION_CODENAME").cloned(),
        pretty_name: osr.get("PRETTY_NAME").cloned(),
    };
    let kernel = r.line("proc/sys/kernel/osrelease");
    let arch = r
        .line("proc/sys/kernel/arch")
        .or_else(|| r.is_slash.then(|| std::env::consts::ARCH.to_string()));
    let cpu_count = r
        .line("sys/devices/system/cpu/online")
        .and_then(|s| count_cpu_list(&s))
        .or_else(|| {
            r.text("proc/cpuinfo", false).map(|t| {
                t.lines()
                    .filter(|l| l.starts_with("processor") && l.contains(':'))
                    .count() as u32
            })
        })
        .filter(|n| *n > 0);
    let memory_bytes = r.text("proc/meminfo", false).and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    let boot_time = r.text("proc/stat", false).and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    });
    let interfaces = interfaces(r);
    System {
        hostname,
        fqdn,
        os,
        kernel,
        arch,
        cpu_count,
        memory_bytes,
        interfaces,
        boot_time,
    }
}

/// The fully qualified name: the hostname if it has a domain, else the
/// first name with a domain on the /etc/hosts line that names the host,
/// else the hostname.
fn fqdn(r: &mut Root, hostname: &str) -> String {
    if hostname.contains('.') {
        return hostname.to_string();
    }
    let hosts = r.text("etc/hosts", false).unwrap_or_default();
    let prefix = format!("{hostname}.");
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if names
            .iter()
            .any(|n| *n == hostname || n.starts_with(&prefix))
        {
            if let Some(f) = names.iter().find(|n| n.starts_with(&prefix)) {
                return f.to_string();
            }
        }
    }
    hostname.to_string()
}

/// `KEY=value` lines with optional quotes.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v[1..v.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\\\", "\\")
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    out
}

/// `0-3,8,10-11` → 7.
fn count_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

fn interfaces(r: &mut Root) -> Vec<Interface> {
    let addrs = if r.is_slash {
        match netlink::addresses() {
            Ok(a) => a,
            Err(e) => {
                r.problems.push(format!("netlink RTM_GETADDR: {e}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for (name, _, _) in r.dir("sys/class/net") {
        let base = format!("sys/class/net/{name}");
        let index: Option<u32> = r
            .line(&format!("{base}/ifindex"))
            .and_then(|s| s.parse().ok());
        let mut addresses: Vec<(u8, String)> = addrs
            .iter()
            .filter(|a| Some(a.index) == index)
            .map(|a| (a.family, a.cidr.clone()))
            .collect();
        addresses.sort();
        out.push(Interface {
            mac: r
                .line(&format!("{base}/address"))
                .filter(|m| m != "00:00:00:00:00:00"),
            mtu: r.line(&format!("{base}/mtu")).and_then(|s| s.parse().ok()),
            state: r.line(&format!("{base}/operstate")),
            addresses: addresses.into_iter().map(|(_, a)| a).collect(),
            name,
        });
    }
    out
}

/// Installed packages from `var/lib/dpkg/status`: paragraphs whose Status
/// ends in `installed`.
fn packages(r: &mut Root) -> Vec<Package> {
    let Some(text) = r.text("var/lib/dpkg/status", true) else {
        return Vec::new();
    };
    parse_dpkg_status(&text)
}

/// Parses a dpkg status database (or an `available` file).
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let (mut name, mut version, mut arch, mut installed) = ("", "", "", false);
    let mut flush = |name: &mut &str, version: &mut &str, arch: &mut &str, installed: &mut bool| {
        if *installed && !name.is_empty() {
            out.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                arch: arch.to_string(),
            });
        }
        (*name, *version, *arch, *installed) = ("", "", "", false);
    };
    for line in text.lines() {
        if line.is_empty() {
            flush(&mut name, &mut version, &mut arch, &mut installed);
            continue;
        }
        let b = line.as_bytes()[0];
        if b == b' ' || b == b'\t' {
            continue; // a continuation line (descriptions, conffiles)
        }
        if let Some(v) = line.strip_prefix("Package:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = v.trim();
        } else if let Some(v) = line.strip_prefix("Architecture:") {
            arch = v.trim();
        } else if let Some(v) = line.strip_prefix("Status:") {
            installed = v.split_whitespace().nth(2) == Some("installed");
        }
    }
    flush(&mut name, &mut version, &mut arch, &mut installed);
    out.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    out
}

/// Service units and their enabled state, the way `systemctl is-enabled`
/// derives it from files: masked (a link to /dev/null in /etc), enabled (a
/// link in a `*.wants`/`*.requires` directory of /etc), else static (no
/// [Install] section), indirect (only `Also=`) or disabled.
fn services(r: &mut Root) -> Vec<Service> {
    // Unit files by name, first directory wins (systemd's precedence).
    let dirs = [
        "etc/systemd/system",
        "run/systemd/system",
        "usr/lib/systemd/system",
        "lib/systemd/system",
    ];
    let mut units: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut masked = BTreeSet::new();
    let mut wants_dirs = Vec::new();
    for dir in dirs {
        for (name, link, target) in r.dir(dir) {
            if name.ends_with(".wants") || name.ends_with(".requires") {
                if dir == "etc/systemd/system" {
                    wants_dirs.push(format!("{dir}/{name}"));
                }
                continue;
            }
            if !name.ends_with(".service") || units.contains_key(&name) {
                continue;
            }
            if link && target.as_deref() == Some("/dev/null") {
                masked.insert(name.clone());
                units.insert(name, (dir.to_string(), None));
                continue;
            }
            if let Some(t) = target.as_deref().filter(|_| link) {
                let base = t.rsplit('/').next().unwrap_or(t);
                if base != name {
                    // An alias (`sshd.service -> ssh.service`): not a unit of its own.
                    continue;
                }
            }
            units.insert(name, (dir.to_string(), target));
        }
    }
    let mut enabled = BTreeSet::new();
    for w in &wants_dirs {
        for (name, _, target) in r.dir(w) {
            if !name.ends_with(".service") {
                continue;
            }
            // Enabled through an alias name: count the unit it points to.
            let base = target
                .as_deref()
                .and_then(|t| t.rsplit('/').next())
                .unwrap_or(&name)
                .to_string();
            enabled.insert(base);
            enabled.insert(name);
        }
    }
    let active = if r.is_slash { active_units(r) } else { None };
    let mut out = Vec::new();
    for (name, (dir, target)) in &units {
        if name.contains("@.") {
            continue; // templates: their enabled instances are listed below
        }
        let state = if masked.contains(name) {
            "masked"
        } else if enabled.contains(name) {
            "enabled"
        } else {
            // Read the unit file (where the /etc link points, inside the root).
            let rel = match target {
                Some(t) if t.starts_with('/') => t.trim_start_matches('/').to_string(),
                Some(t) => format!("{dir}/{t}"),
                None => format!("{dir}/{name}"),
            };
            install_state(&r.text(&rel, false).unwrap_or_default())
        };
        out.push((name.clone(), state.to_string()));
    }
    for name in &enabled {
        if name.contains('@') && !name.contains("@.") && !units.contains_key(name) {
            out.push((name.clone(), "enabled".into()));
        }
    }
    out.sort();
    out.dedup();
    out.into_iter()
        .map(|(name, enabled)| {
            let (active, sub) = match active.as_ref().and_then(|a| a.get(&name)) {
                Some((a, s)) => (Some(a.clone()), Some(s.clone())),
                None if active.is_some() => (Some("inactive".into()), Some("dead".into())),
                None => (None, None),
            };
            Service {
                name,
                enabled,
                active,
                sub,
            }
        })
        .collect()
}

fn install_state(unit: &str) -> &'static str {
    let mut in_install = false;
    let (mut wanted, mut also) = (false, false);
    for line in unit.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        match key {
            "WantedBy" | "RequiredBy" | "UpheldBy" | "Alias" => wanted = true,
            "Also" => also = true,
            _ => {}
        }
    }
    match (wanted, also) {
        (true, _) => "disabled",
        (false, true) => "indirect",
        (false, false) => "static",
    }
}

/// ActiveState and SubState of every loaded service, from one systemctl
/// call; `None` unless systemd is PID 1 here.
fn active_units(r: &mut Root) -> Option<BTreeMap<String, (String, String)>> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    let out = std::process::Command::new("systemctl")
        .args([
            "list-units",
            "--type=service",
            "--all",
            "--output=json",
            "--no-pager",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            r.problems
                .push(format!("systemctl list-units: exit {}", o.status));
            return None;
        }
        Err(e) => {
            r.problems.push(format!("systemctl list-units: {e}"));
            return None;
        }
    };
    #[derive(Deserialize)]
    struct Unit {
        unit: String,
        active: String,
        sub: String,
    }
    match serde_json::from_slice::<Vec<Unit>>(&out.stdout) {
        Ok(list) => Some(
            list.into_iter()
                .map(|u| (u.unit, (u.active, u.sub)))
                .collect(),
        ),
        Err(e) => {
            r.problems.push(format!("systemctl list-units: {e}"));
            None
        }
    }
}

fn users(r: &mut Root) -> Vec<User> {
    let text = r.text("etc/passwd", true).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].starts_with('#') {
                return None;
            }
            Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
                comment: f[4].to_string(),
            })
        })
        .collect()
}

fn groups(r: &mut Root) -> Vec<Group> {
    let text = r.text("etc/group", true).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0].starts_with('#') {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The last report's resources and what the host last applied.
type LastRun = (Applied, Vec<ObservedResource>, Vec<cfgm_core::ResourceId>);

/// What the host last applied, as far as `STATE_DIR/applied-commit` says.
fn applied_commit(state_dir: &Path) -> Applied {
    Applied {
        commit: crate::git::read_applied(state_dir).map(|c| c.to_string()),
        ..Applied::default()
    }
}

fn last_run(state_dir: &Path, problems: &mut Vec<String>) -> LastRun {
    let applied = || applied_commit(state_dir);
    let path = state_dir.join("reports/last.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (applied(), Vec::new(), Vec::new())
        }
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            return (applied(), Vec::new(), Vec::new());
        }
    };
    let mut report: cfgm_core::Report = match serde_json::from_slice(&text) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            return (applied(), Vec::new(), Vec::new());
        }
    };
    restore_converged(state_dir, &mut report, problems);
    from_report(state_dir, report)
}

/// The last run's part of the facts, from its report (texts put back).
fn from_report(state_dir: &Path, report: cfgm_core::Report) -> LastRun {
    let mut applied = applied_commit(state_dir);
    let owed = report.owed_refresh.clone();
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    applied.catalog_id = nonempty(report.catalog_id);
    applied.tree_id = nonempty(report.tree_id);
    applied.status = serde_json::to_value(report.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    let resources = report
        .resources
        .into_iter()
        .map(|r| ObservedResource {
            id: r.id,
            outcome: r.outcome,
            observed: r.observed,
        })
        .collect();
    (applied, resources, owed)
}

/// Puts back into the report's observed states what it left out because
/// its catalog says it (`cfgm_core::schema::AS_CATALOG_KEY`: a converged
/// file's text), from the catalog the agent keeps of its last apply. When
/// that is not the report's catalog any more (removed, or replaced by
/// hand), those observations are dropped, never left short: a plan then
/// says "unknown" for them instead of seeing a file without its text.
fn restore_converged(state_dir: &Path, report: &mut cfgm_core::Report, problems: &mut Vec<String>) {
    if !report.resources.iter().any(|r| marked(&r.observed)) {
        return;
    }
    let catalog = crate::cache::last_applied(state_dir, &report.host, &report.catalog_id);
    restore_with(catalog.as_ref(), report, problems);
}

/// Whether an observed state left out what its catalog says.
fn marked(o: &Option<serde_json::Value>) -> bool {
    o.as_ref()
        .and_then(|o| o.get(cfgm_core::schema::AS_CATALOG_KEY))
        == Some(&serde_json::Value::Bool(true))
}

fn restore_with(
    catalog: Option<&cfgm_core::Catalog>,
    report: &mut cfgm_core::Report,
    problems: &mut Vec<String>,
) {
    let by_id: std::collections::HashMap<&cfgm_core::ResourceId, &cfgm_core::Resource> = catalog
        .iter()
        .flat_map(|c| c.resources.iter().map(|r| (&r.id, r)))
        .collect();
    let mut lost = 0;
    for rr in report.resources.iter_mut().filter(|r| marked(&r.observed)) {
        let restored = match (by_id.get(&rr.id), rr.observed.as_mut()) {
            (Some(r), Some(o)) => cfgm_modules::restore_converged(r, o).unwrap_or(false),
            _ => false,
        };
        if !restored {
            rr.observed = None;
            lost += 1;
        }
    }
    if lost > 0 {
        problems.push(format!(
            "the last run's observations of {lost} resource{} left out what catalog {} says, \
             and that catalog is no longer kept: they are not in these facts",
            if lost == 1 { "" } else { "s" },
            &report.catalog_id[..12.min(report.catalog_id.len())]
        ));
    }
}

/// Interface addresses over rtnetlink: one `RTM_GETADDR` dump, parsed by
/// hand (the message layout is the kernel's stable ABI).
mod netlink {
    use rustix::net::{
        netlink::SocketAddrNetlink, recv, sendto, socket, AddressFamily, RecvFlags, SendFlags,
        SocketType,
    };
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub struct Addr {
        pub index: u32,
        /// 4 or 6, to sort IPv4 first.
        pub family: u8,
        pub cidr: String,
    }

    const RTM_NEWADDR: u16 = 20;
    const RTM_GETADDR: u16 = 22;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_DUMP: u16 = 0x300;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_ne_bytes([b[i], b[i + 1]])
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    pub fn addresses() -> std::io::Result<Vec<Addr>> {
        let fd = socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
        // nlmsghdr (16 bytes) + ifaddrmsg (8 bytes, all zero: any family).
        let mut req = Vec::with_capacity(24);
        req.extend_from_slice(&24u32.to_ne_bytes());
        req.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        req.extend_from_slice(&[0u8; 8]);
        // A signal to this process (a child ending) interrupts a call:
        // asked again, not taken for a failure.
        loop {
            match sendto(&fd, &req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0)) {
                Err(rustix::io::Errno::INTR) => continue,
                r => {
                    r?;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        // A dump ends with NLMSG_DONE; bound the reads all the same.
        for _ in 0..1024 {
            let (n, _) = match recv(&fd, &mut buf[..], RecvFlags::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                r => r?,
            };
            let b = &buf[..n];
            let mut off = 0;
            while off + 16 <= b.len() {
                let len = u32_at(b, off) as usize;
                let typ = u16_at(b, off + 4);
                if len < 16 || off + len > b.len() {
                    break;
                }
                match typ {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let errno = if len >= 20 {
                            -(u32_at(b, off + 16) as i32)
                        } else {
                            0
                        };
                        return Err(std::io::Error::from_raw_os_error(errno));
                    }
                    RTM_NEWADDR if len >= 24 => {
                        if let Some(a) = parse_addr(&b[off + 16..off + len]) {
                            out.push(a);
                        }
                    }
                    _ => {}
                }
                off += (len + 3) & !3;
            }
        }
        Ok(out)
    }

    /// One ifaddrmsg with its attributes.
    fn parse_addr(m: &[u8]) -> Option<Addr> {
        let (family, prefix, index) = (m[0], m[1], u32_at(m, 4));
        let (mut address, mut local) = (None, None);
        let mut off = 8;
        while off + 4 <= m.len() {
            let len = u16_at(m, off) as usize;
            let typ = u16_at(m, off + 2);
            if len < 4 || off + len > m.len() {
                break;
            }
            let data = &m[off + 4..off + len];
            match typ {
                IFA_ADDRESS => address = Some(data),
                IFA_LOCAL => local = Some(data),
                _ => {}
            }
            off += (len + 3) & !3;
        }
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer
        // on point-to-point links); IPv6 has only IFA_ADDRESS.
        let data = local.or(address)?;
        let (fam, ip) = match (family, data.len()) {
            (AF_INET, 4) => (
                4,
                Ipv4Addr::new(data[0], data[1], data[2], data[3]).to_string(),
            ),
            (AF_INET6, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(data);
                (6, Ipv6Addr::from(a).to_string())
            }
            _ => return None,
        };
        Some(Addr {
            index,
            family: fam,
            cidr: format!("{ip}/{prefix}"),
        })
    }
}
