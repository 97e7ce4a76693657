//! The fleet in a box, proven on the real thing: one fleet (from states/inventory.toml) is brought
//! up by the first test, shared by all, and torn down when this process exits.
//! Needs root; run by `testing/fleet-test` (`make fleet-test`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use cfgm_testing::{shared, Fleet, Host, Inventory};
use serde_json::Value;

fn fleet() -> &'static Fleet {
    shared()
}

/// The first host of each datacenter.
fn one_per_dc(f: &Fleet) -> Vec<&Host> {
    f.datacenters()
        .iter()
        .map(|dc| f.in_dc(dc)[0])
        .collect::<Vec<_>>()
}

fn sh(f: &Fleet, host: &str, cmd: &str) -> String {
    match ssh_riding_restarts(host, || f.ssh(host, cmd)).and_then(|o| o.ok()) {
        Ok(o) => o.stdout,
        Err(e) => panic!("{e:#}"),
    }
}

/// Runs `ssh` again while the host refuses the connection, for up to 15 s: a host's agent
/// restarts sshd when it converges the ssh state (e.g. a refresh owed by a run a restart of
/// the agent cut short), and a test polling that host must not take the restart for a failure.
fn ssh_riding_restarts(
    host: &str,
    ssh: impl Fn() -> anyhow::Result<cfgm_testing::Output>,
) -> anyhow::Result<cfgm_testing::Output> {
    let t0 = Instant::now();
    loop {
        let out = ssh()?;
        let refused = out.code == Some(255) && out.stderr.contains("Connection refused");
        if !refused || t0.elapsed() > Duration::from_secs(15) {
            return Ok(out);
        }
        eprintln!("{host}: sshd refused the connection (restarting?); trying again");
        std::thread::sleep(Duration::from_millis(500));
    }
}

// Tests run in parallel threads on one fleet. The agent-daemon tests move the served `main`:
// every commit holds SERVED_HEAD for writing (a test that compares what the controller serves
// with what a host clones holds it for reading); an untrusted tip is served only while
// SERVED_TREE is held for writing (the `apply` tests, which clone `main` and converge its tree by
// hand, hold it for reading). Lock order: UP, DAEMON, SERVED_TREE, SERVED_HEAD.
static SERVED_HEAD: RwLock<()> = RwLock::new(());
static SERVED_TREE: RwLock<()> = RwLock::new(());
/// The agent-daemon tests run one at a time: each changes what the agents see or do.
static DAEMON: Mutex<()> = Mutex::new(());
/// Every host answers: each test holds this for reading from its start (many dial every host); a
/// reboot holds it for writing. Taken before any other lock.
static UP: RwLock<()> = RwLock::new(());

fn read<T>(l: &'static RwLock<T>) -> RwLockReadGuard<'static, T> {
    l.read().unwrap_or_else(|e| e.into_inner()) // a failed test must not fail the others
}

fn write<T>(l: &'static RwLock<T>) -> RwLockWriteGuard<'static, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn daemon_lock() -> MutexGuard<'static, ()> {
    DAEMON.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_fleet_is_the_states_inventory_in_three_datacenters() {
    let _up = read(&UP);
    let f = fleet();
    let inv = Inventory::load(&f.spec().inventory).unwrap();
    match f.spec().select.as_deref() {
        // by default the fleet is exactly the inventory: at least 6 hosts in 3 datacenters
        None => {
            let names: BTreeSet<_> = f.hosts().iter().map(|h| h.name.clone()).collect();
            assert_eq!(names, inv.hosts.keys().cloned().collect::<BTreeSet<_>>());
            assert!(f.hosts().len() >= 6, "at least 6 hosts: {:?}", f.hosts());
            assert!(
                f.datacenters().len() >= 3,
                "3 datacenters: {:?}",
                f.datacenters()
            );
        }
        // FLEET_HOSTS=N: N hosts, round-robin across the datacenters
        Some(n) if n.parse::<usize>().is_ok() => {
            let n: usize = n.parse().unwrap();
            assert_eq!(f.hosts().len(), n);
            let dcs: BTreeSet<_> = inv.hosts.values().map(|h| h.dc.clone()).collect();
            assert_eq!(f.datacenters().len(), n.min(dcs.len()));
        }
        Some(_) => {}
    }
    for h in f.hosts() {
        assert_eq!(
            h.address.octets()[2],
            h.dc_net,
            "{}: DC N = third octet",
            h.name
        );
        match inv.hosts.get(&h.name) {
            Some(want) => assert_eq!((&h.dc, h.address), (&want.dc, want.address), "{}", h.name),
            // FLEET_HOSTS=N larger than the inventory adds made-up hosts to its datacenters
            None => assert!(
                h.role.as_deref() == Some("extra")
                    && inv
                        .hosts
                        .values()
                        .any(|i| i.dc == h.dc && i.address.octets()[2] == h.dc_net),
                "{} is neither in the inventory nor an extra host: {h:?}",
                h.name
            ),
        }
    }
    // the client files tests and tools need
    let inv_out = Inventory::load(&f.inventory_path()).unwrap();
    assert_eq!(inv_out.hosts.len(), f.hosts().len());
    assert!(f.key().exists() && f.known_hosts().exists() && f.ssh_config().exists());
}

#[test]
fn every_host_answers_ssh_with_its_own_hostname() {
    let _up = read(&UP);
    let f = fleet();
    for h in f.hosts() {
        assert_eq!(sh(f, &h.name, "hostname").trim(), h.name);
        // by address too: the known_hosts holds both
        assert_eq!(
            sh(f, &h.address.to_string(), "cat /etc/hostname").trim(),
            h.name
        );
    }
}

#[test]
fn strict_host_key_checking_uses_the_real_host_keys() {
    let _up = read(&UP);
    let f = fleet();
    let config = std::fs::read_to_string(f.ssh_config()).unwrap();
    assert!(config.contains("StrictHostKeyChecking yes"));
    let known = std::fs::read_to_string(f.known_hosts()).unwrap();
    let h = &f.hosts()[0];
    // the key in known_hosts is the key the host serves
    let served = sh(
        f,
        &h.name,
        "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub",
    );
    let line = format!("{},{} {}", h.name, h.address, served.trim());
    assert!(
        known.lines().any(|l| l == line),
        "{line} not in known_hosts"
    );
    // and an unknown key is refused: the same connection with an empty known_hosts fails
    let empty = tempfile::NamedTempFile::new().unwrap();
    let mut c = f.ssh_command(&h.name);
    c.arg("true");
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let mut c = Command::new("ssh");
    c.arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.path().display()))
        .args(args);
    let o = cfgm_testing::run(c, Duration::from_secs(30)).unwrap();
    assert!(!o.success(), "connected without a known host key");
    assert!(
        o.stderr.contains("Host key verification failed") || o.stderr.contains("No ED25519"),
        "{}",
        o.stderr
    );
}

#[test]
fn each_host_has_its_own_machine_id_and_host_key() {
    let _up = read(&UP);
    let f = fleet();
    let mut ids = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for h in f.hosts() {
        let out = sh(
            f,
            &h.name,
            "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub",
        );
        let mut lines = out.lines();
        let id = lines.next().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{}: machine-id {id:?}", h.name);
        assert!(ids.insert(id), "{}: machine-id shared", h.name);
        assert!(
            keys.insert(lines.next().unwrap().to_owned()),
            "{}: host key shared",
            h.name
        );
    }
}

#[test]
fn hosts_in_different_datacenters_reach_each_other_through_the_router() {
    let _up = read(&UP);
    let f = fleet();
    let hosts = one_per_dc(f);
    assert!(hosts.len() >= 3);
    for (i, from) in hosts.iter().enumerate() {
        let to = hosts[(i + 1) % hosts.len()];
        assert_ne!(from.dc, to.dc);
        // the route leaves through the router ...
        let route = sh(f, &from.name, &format!("ip route get {}", to.address));
        assert!(
            route.contains(&format!("via {} ", from.gateway())),
            "{} -> {}: {route}",
            from.name,
            to.name
        );
        // ... and arrives: the other host's sshd answers, by name (from /etc/hosts) and address
        for target in [to.name.clone(), to.address.to_string()] {
            let banner = sh(
                f,
                &from.name,
                &format!("timeout 10 bash -c 'exec 3<>/dev/tcp/{target}/22; head -c 8 <&3'"),
            );
            assert_eq!(banner, "SSH-2.0-", "{} -> {target}", from.name);
        }
        let ping = sh(f, &from.name, &format!("ping -c1 -W5 {}", to.name));
        assert!(ping.contains("1 received"), "{ping}");
    }
}

#[test]
fn a_host_cannot_reach_anything_outside_the_box() {
    let _up = read(&UP);
    let f = fleet();
    let h = &f.hosts()[0];
    // Hosts route through the router, which has no uplink; a local rule makes anything outside
    // 10.77.0.0/16 fail at once. (10.99.0.1 is outside the fleet; 198.51.100.1 is a documentation
    // address: nothing would answer anyway.)
    let default = sh(f, &h.name, "ip route show default");
    assert_eq!(
        default.trim(),
        format!("default via {} dev eth0", h.gateway())
    );
    for target in ["10.99.0.1", "198.51.100.1"] {
        let o = f
            .ssh(
                &h.name,
                &format!(
                    "t=$(date +%s%N); timeout 10 bash -c 'exec 3<>/dev/tcp/{target}/80'; rc=$?; \
                     echo rc=$rc ms=$(( ($(date +%s%N) - t) / 1000000 ))"
                ),
            )
            .unwrap();
        assert!(o.stdout.contains("rc=1 "), "{target}: {o:?}"); // not 0, not 124 (timeout)
        let err = o.stderr.to_lowercase();
        assert!(
            err.contains("no route to host") || err.contains("unreachable"),
            "{target}: {o:?}"
        );
        let ms: u64 = o
            .stdout
            .trim()
            .rsplit("ms=")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            ms < 2000,
            "{target}: took {ms} ms, not an immediate failure"
        );
    }
    // the controller's own routes: nothing but the box; fleet addresses are guarded
    let guard = Command::new("ip")
        .args(["route", "show", "10.77.0.0/16"])
        .output()
        .unwrap();
    let guard = String::from_utf8_lossy(&guard.stdout);
    assert!(
        guard.contains("unreachable 10.77.0.0/16"),
        "guard route missing: {guard}"
    );
    let router = Command::new("ip")
        .args(["-n", "fl-router", "route", "show", "default"])
        .output()
        .unwrap();
    assert!(router.status.success());
    assert_eq!(
        String::from_utf8_lossy(&router.stdout).trim(),
        "",
        "router has an uplink"
    );
    // and its only interfaces are loopback and one leg per datacenter bridge
    let links = Command::new("ip")
        .args(["-n", "fl-router", "-o", "link", "show"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    let names: BTreeSet<String> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_owned())
        .collect();
    let mut want: BTreeSet<String> = f
        .hosts()
        .iter()
        .map(|h| format!("dc{}", h.dc_net))
        .collect();
    want.insert("lo".into());
    assert_eq!(names, want, "router interfaces");
}

#[test]
fn systemd_is_pid_1_and_starts_units() {
    let _up = read(&UP);
    let f = fleet();
    let h = &f.hosts()[1];
    assert_eq!(sh(f, &h.name, "cat /proc/1/comm").trim(), "systemd");
    let state = f
        .ssh(&h.name, "timeout 120 systemctl is-system-running --wait")
        .unwrap();
    let state = state.stdout.trim();
    assert!(
        state == "running" || state == "degraded",
        "system state {state:?}"
    );
    assert_eq!(sh(f, &h.name, "systemctl is-active ssh").trim(), "active");
    // a unit file written over ssh, started, stopped: what a service resource will do
    let unit = b"[Unit]\nDescription=fleet probe\n[Service]\nExecStart=/bin/sleep 600\n";
    f.ssh_with_input(
        &h.name,
        "cat > /etc/systemd/system/fleet-probe.service",
        unit,
    )
    .and_then(|o| o.ok())
    .unwrap();
    let out = sh(
        f,
        &h.name,
        "systemctl daemon-reload && systemctl start fleet-probe && systemctl is-active fleet-probe; \
         systemctl stop fleet-probe; systemctl is-active fleet-probe || true; \
         rm /etc/systemd/system/fleet-probe.service; systemctl daemon-reload",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["active", "inactive"]
    );
}

#[test]
fn a_package_installs_through_the_controller_proxy() {
    let _up = read(&UP);
    let f = fleet();
    let h = f.hosts().last().unwrap();
    let proxy = sh(f, &h.name, "apt-config dump Acquire::http::Proxy");
    assert!(proxy.contains("http://controller:"), "{proxy}");
    let t0 = Instant::now();
    let out = sh(
        f,
        &h.name,
        "export DEBIAN_FRONTEND=noninteractive; \
         for i in 1 2 3; do apt-get update -q >/dev/null && break; sleep 3; done && \
         apt-get install -y -q --no-install-recommends hello >/dev/null && hello",
    );
    assert_eq!(out.trim(), "Hello, world!");
    eprintln!(
        "apt-get update + install hello on {}: {:.1?}",
        h.name,
        t0.elapsed()
    );
    // the proxy served it to this host (its access log: time|kind|size|client|path)
    let log = std::fs::read_to_string(f.proxy_log()).unwrap();
    let client = format!("|{}|", h.address);
    assert!(
        log.lines()
            .any(|l| l.contains(&client) && l.contains("/hello_")),
        "no hello download by {} in {}:\n{log}",
        h.address,
        f.proxy_log().display()
    );
}

#[test]
fn the_agent_runs_inside_every_host() {
    let _up = read(&UP);
    let f = fleet();
    let bin = f.spec().agent_bin.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/cfgm-agent")
    });
    let want = Command::new(&bin).arg("--version").output().unwrap();
    let want = String::from_utf8_lossy(&want.stdout).trim().to_owned();
    assert!(want.starts_with("cfgm-agent "), "{want}");
    for h in f.hosts() {
        assert_eq!(
            sh(f, &h.name, "cfgm-agent --version").trim(),
            want,
            "{}",
            h.name
        );
    }
}

#[test]
fn the_states_repository_clones_over_git_from_inside_hosts() {
    let _up = read(&UP);
    let f = fleet();
    let _head = read(&SERVED_HEAD);
    assert_eq!(f.git_url(), "git://controller/states");
    // what the controller serves
    let head = Command::new("git")
        .args([
            "ls-remote",
            &format!("git://{}/states", f.hosts()[0].controller()),
            "HEAD",
        ])
        .output()
        .unwrap();
    assert!(head.status.success(), "{head:?}");
    let head = String::from_utf8_lossy(&head.stdout);
    let head = head.split_whitespace().next().unwrap().to_owned();
    for h in one_per_dc(f) {
        let out = sh(
            f,
            &h.name,
            &format!(
                "rm -rf /tmp/states && git clone -q {} /tmp/states && git -C /tmp/states rev-parse HEAD \
                 && test -f /tmp/states/inventory.toml && test -f /tmp/states/cfgm.toml && echo files-ok",
                f.git_url()
            ),
        );
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            [head.as_str(), "files-ok"],
            "{}",
            h.name
        );
    }
}

/// Hosts are light: the median host (idle: systemd, journald, logind, dbus, sshd) needs less
/// than 48 MiB; a host busy in another test (an apt run peaks near 100 MiB; the agent service
/// with nginx or redis and node exporter ~60 MiB) less than 256 MiB. The median is taken over
/// the hosts that the converging tests leave alone.
#[test]
fn hosts_are_light_median_under_48_mib_each_under_256_mib() {
    let _up = read(&UP);
    let f = fleet();
    let busy: BTreeSet<String> = apply_hosts(f)
        .into_iter()
        .cloned()
        .chain(agent_hosts(f))
        .map(|h| h.name)
        .collect();
    let mut mibs = Vec::new();
    for h in f.hosts() {
        let bytes = f.host_memory(&h.name).unwrap();
        assert!(
            bytes > 1024 * 1024,
            "{}: {bytes} bytes: no processes found",
            h.name
        );
        let mib = bytes as f64 / 1048576.0;
        assert!(mib < 256.0, "{}: {mib:.1} MiB", h.name);
        if !busy.contains(&h.name) || busy.len() >= f.hosts().len() {
            mibs.push(mib);
        }
    }
    mibs.sort_by(|a, b| a.total_cmp(b));
    let median = mibs[(mibs.len() - 1) / 2]; // lower median: one busy host of two is not typical
    eprintln!(
        "memory: {} hosts, PSS per host: median {median:.1} MiB, min {:.1}, max {:.1}",
        mibs.len(),
        mibs[0],
        mibs[mibs.len() - 1]
    );
    assert!(median < 48.0, "median {median:.1} MiB: {mibs:?}");
}

/// Runs `cfgm-agent apply` inside a host against the example states (cloned
/// from the controller's git daemon) and returns the parsed JSON report.
fn agent_apply(f: &Fleet, host: &str, extra: &str) -> (Option<i32>, serde_json::Value) {
    let cmd = format!(
        "set -e; if [ -d /var/lib/cfgm/tree/.git ]; then git -C /var/lib/cfgm/tree pull -q --ff-only; \
         else mkdir -p /var/lib/cfgm && git clone -q {} /var/lib/cfgm/tree; fi; \
         cfgm-agent apply --tree /var/lib/cfgm/tree --json {extra}",
        f.git_url()
    );
    let out = f
        .ssh_timeout(host, &cmd, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{host}: {e:#}"));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{host}: no JSON report ({e}):\n{}\n{}",
            out.stdout, out.stderr
        )
    });
    (out.code, report)
}

/// The ids of the resources a report lists with `outcome`.
fn with_outcome(report: &serde_json::Value, outcome: &str) -> BTreeSet<String> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == outcome)
        .map(|r| {
            format!(
                "{}[{}]",
                r["id"]["kind"].as_str().unwrap(),
                r["id"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn problems(report: &serde_json::Value) -> Vec<String> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "failed" || r["outcome"] == "skipped")
        .map(|r| format!("{}[{}]: {}", r["id"]["kind"], r["id"]["name"], r["error"]))
        .collect()
}

/// Dry run on a fresh host, apply, check from outside, apply again: the
/// dry run predicts exactly what apply changes, and the second apply
/// changes nothing.
fn converge_and_check(f: &Fleet, host: &Host) {
    let _tree = read(&SERVED_TREE);
    let name = host.name.as_str();
    let t0 = Instant::now();
    let (code, dry) = agent_apply(f, name, "--dry-run");
    assert_eq!(
        code,
        Some(0),
        "{name}: dry run failed: {:?}",
        problems(&dry)
    );
    let predicted = with_outcome(&dry, "would-change");
    assert!(
        predicted.len() > 10,
        "{name}: a fresh host should need work: {predicted:?}"
    );

    let (code, first) = agent_apply(f, name, "");
    assert_eq!(
        code,
        Some(0),
        "{name}: apply failed: {:?}",
        problems(&first)
    );
    let changed = with_outcome(&first, "changed");
    assert_eq!(
        changed, predicted,
        "{name}: the dry run and the apply disagree"
    );

    let (code, second) = agent_apply(f, name, "");
    assert_eq!(
        code,
        Some(0),
        "{name}: second apply failed: {:?}",
        problems(&second)
    );
    assert_eq!(
        second["counts"]["changed"],
        0,
        "{name}: second apply changed {:?}",
        with_outcome(&second, "changed")
    );
    eprintln!(
        "{name}: dry run {} would change, apply changed {}, second apply 0 changes; {:.1} s in all",
        predicted.len(),
        changed.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn the_agent_converges_an_edge_host_to_the_example_states() {
    let up = read(&UP);
    let f = fleet();
    let host = f
        .hosts()
        .iter()
        .find(|h| h.role.as_deref() == Some("edge"))
        .expect("an edge host");
    converge_and_check(f, host);
    let name = host.name.as_str();
    // Checked from outside, over ssh.
    assert_eq!(
        sh(f, name, "dpkg-query -W -f '${Status}' nginx"),
        "install ok installed"
    );
    assert_eq!(sh(f, name, "systemctl is-active nginx").trim(), "active");
    assert_eq!(sh(f, name, "systemctl is-enabled nginx").trim(), "enabled");
    let site = sh(f, name, "cat /etc/nginx/conf.d/edge.conf");
    assert!(site.contains(&format!("server_name {name};")), "{site}");
    let page = sh(f, name, "curl -s http://localhost/");
    assert!(page.contains(&format!("<h1>{name}</h1>")), "{page}");
    assert_eq!(
        sh(f, name, "systemctl is-active prometheus-node-exporter").trim(),
        "active"
    );
    let metrics = sh(
        f,
        name,
        &format!(
            "curl -s http://{}:9100/metrics | grep -c '^node_' || true",
            host.address
        ),
    );
    assert!(
        metrics.trim().parse::<u32>().unwrap_or(0) > 10,
        "node exporter: {metrics}"
    );
    assert_eq!(sh(f, name, "id -gn alice").trim(), "ops");
    assert!(
        sh(f, name, "getent group ops").contains("alice"),
        "alice in ops"
    );
    assert_eq!(sh(f, name, "stat -c %a /etc/sudoers.d/ops").trim(), "440");
    assert!(sh(f, name, "cat /etc/motd").starts_with(&format!("{name} — edge in {}", host.dc)));

    // A reboot keeps what the agent converged: services, sysctls, users, files.
    let probe = "systemctl is-active nginx prometheus-node-exporter ssh; \
                 systemctl is-enabled nginx prometheus-node-exporter; \
                 sysctl -n net.core.somaxconn net.ipv4.tcp_fin_timeout; id alice; id bob; \
                 stat -c '%a %U' /etc/sudoers.d/ops; head -n 1 /etc/motd";
    survives_a_reboot(f, name, probe, up);
    let page = sh(f, name, "curl -s http://localhost/");
    assert!(
        page.contains(&format!("<h1>{name}</h1>")),
        "after a reboot: {page}"
    );
}

/// Reboots `host` (its disk stays: `testing/fleet` boots it again) and checks that `probe` prints
/// the same before and after, and that the agent then finds nothing to change. Holds [`UP`] for
/// writing while the host is away (the caller's read guard is given up first).
fn survives_a_reboot(f: &Fleet, host: &str, probe: &str, up: RwLockReadGuard<'static, ()>) {
    let before = sh(f, host, probe);
    drop(up);
    let _down = write(&UP);
    let away = f
        .reboot(host, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    // systemd may still be starting units when sshd answers
    let mut after = String::new();
    for _ in 0..60 {
        after = sh(
            f,
            host,
            &format!("timeout 60 systemctl is-system-running --wait >/dev/null 2>&1; {probe}"),
        );
        if after == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(after, before, "{host}: not the same after a reboot");
    let _tree = read(&SERVED_TREE);
    let (code, report) = agent_apply(f, host, "");
    assert_eq!(
        code,
        Some(0),
        "{host}: apply after a reboot: {:?}",
        problems(&report)
    );
    assert_eq!(
        report["counts"]["changed"],
        0,
        "{host}: after a reboot the agent changed {:?}",
        with_outcome(&report, "changed")
    );
    eprintln!(
        "{host}: rebooted, back in {:.1} s with services, sysctls, users and files as they were; apply: 0 changes",
        away.as_secs_f64()
    );
}

/// The redis password of the example states (a secret data value).
fn redis_password() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../states/data/role/db.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    v["redis"]["password"].as_str().unwrap().to_string()
}

/// A host that neither the `apply` tests nor the agent service use, to act as a client.
fn client_host(f: &Fleet) -> Option<Host> {
    let busy: Vec<String> = apply_hosts(f)
        .iter()
        .map(|h| h.name.clone())
        .chain(agent_hosts(f).iter().map(|h| h.name.clone()))
        .collect();
    f.hosts().iter().find(|h| !busy.contains(&h.name)).cloned()
}

/// `redis-cli -h ADDR [-a PASSWORD] ping` from `client`.
fn redis_ping(f: &Fleet, client: &str, server: &Host, password: Option<&str>) -> String {
    let auth = password
        .map(|p| format!("-a '{p}' --no-auth-warning"))
        .unwrap_or_default();
    sh(
        f,
        client,
        &format!("redis-cli -h {} {auth} ping 2>&1 || true", server.address),
    )
    .trim()
    .to_string()
}

#[test]
fn the_agent_converges_a_db_host_to_the_example_states() {
    let up = read(&UP);
    let f = fleet();
    let host = f
        .hosts()
        .iter()
        .find(|h| h.role.as_deref() == Some("db"))
        .expect("a db host");
    converge_and_check(f, host);
    let name = host.name.as_str();
    assert_eq!(
        sh(f, name, "systemctl is-active redis-server").trim(),
        "active"
    );
    let conf = sh(
        f,
        name,
        "grep -E '^(bind|maxmemory) ' /etc/redis/redis.conf",
    );
    assert!(
        conf.contains(&format!("bind {} 127.0.0.1", host.address)),
        "{conf}"
    );
    assert!(conf.contains("maxmemory 64mb"), "{conf}");
    assert_eq!(sh(f, name, "sysctl -n net.core.somaxconn").trim(), "1024");
    assert!(sh(f, name, "cat /etc/sysctl.d/*cfgm*").contains("net.core.somaxconn"));
    assert_eq!(
        sh(f, name, "grep '^protected-mode ' /etc/redis/redis.conf").trim(),
        "protected-mode yes"
    );
    // The password is in its own file that redis.conf includes, and in no report the agent kept.
    let password = redis_password();
    assert_eq!(
        sh(f, name, "stat -c '%a %U:%G' /etc/redis/auth.conf; grep -c '^requirepass ' /etc/redis/auth.conf; tail -n 1 /etc/redis/redis.conf"),
        "640 root:redis\n1\ninclude /etc/redis/auth.conf\n"
    );
    assert_eq!(
        sh(
            f,
            name,
            &format!("grep -rlF '{password}' /var/lib/cfgm/reports || true")
        )
        .trim(),
        "",
        "a report shows the redis password"
    );

    // Bound to the fleet address, protected mode on, a password: another host's client is
    // answered once it authenticates, and refused without.
    let client = client_host(f);
    if let Some(c) = &client {
        let install = "apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive \
                       apt-get install -y -q --no-install-recommends redis-tools >/dev/null";
        f.ssh_timeout(&c.name, install, Duration::from_secs(300))
            .and_then(|o| o.ok())
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(redis_ping(f, &c.name, host, Some(&password)), "PONG");
        let refused = redis_ping(f, &c.name, host, None);
        assert!(
            refused.contains("NOAUTH"),
            "without the password: {refused}"
        );
        eprintln!(
            "{name}: redis answers PONG to redis-cli -a … from {}",
            c.name
        );
    } else {
        eprintln!("{name}: no free host for a redis client (FLEET_HOSTS too small)");
    }

    let probe = "systemctl is-active redis-server prometheus-node-exporter ssh; \
                 systemctl is-enabled redis-server; sysctl -n net.core.somaxconn; id alice; \
                 grep -E '^(bind|port|protected-mode|maxmemory) ' /etc/redis/redis.conf";
    survives_a_reboot(f, name, probe, up);
    if let Some(c) = &client {
        assert_eq!(
            redis_ping(f, &c.name, host, Some(&password)),
            "PONG",
            "after a reboot"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The agent as a service: `cfgm-agent install` on hosts, then they converge on their own.

/// The hosts the `apply` tests converge by hand (the first edge and the first db host): the
/// daemon is never installed on them.
fn apply_hosts(f: &Fleet) -> Vec<&Host> {
    ["edge", "db"]
        .iter()
        .filter_map(|r| f.hosts().iter().find(|h| h.role.as_deref() == Some(*r)))
        .collect()
}

/// Hosts that run the agent service: one per datacenter, none of the `apply` tests' hosts,
/// varying the role where a datacenter allows.
fn agent_hosts(f: &Fleet) -> Vec<Host> {
    let taken: Vec<&str> = apply_hosts(f).iter().map(|h| h.name.as_str()).collect();
    let mut picked: Vec<Host> = Vec::new();
    for dc in f.datacenters() {
        let free: Vec<&Host> = f
            .in_dc(&dc)
            .into_iter()
            .filter(|h| !taken.contains(&h.name.as_str()))
            .collect();
        let fresh_role = free
            .iter()
            .find(|h| !picked.iter().any(|p| p.role == h.role))
            .or(free.first());
        if let Some(h) = fresh_role {
            picked.push((*h).clone());
        }
    }
    assert!(!picked.is_empty(), "no host left for the agent service");
    picked
}

/// The agent service on [`agent_hosts`], each converged on its own to a signed commit.
struct Agents {
    hosts: Vec<Host>,
    /// The commit the agents were installed to follow.
    first: String,
    /// The newest trusted commit on `main` (tests that push move it).
    good: Mutex<String>,
    /// Each host's newest report name when the service was installed.
    since: Vec<String>,
}

impl Agents {
    fn good(&self) -> String {
        self.good.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

static AGENTS: OnceLock<Agents> = OnceLock::new();

const HISTORY: &str = "/var/lib/cfgm/reports/history";

/// The name of a host's newest kept report ("" when there is none). Names sort by time.
fn newest_report(f: &Fleet, host: &str) -> String {
    sh(
        f,
        host,
        &format!("ls {HISTORY} 2>/dev/null | grep '\\.json$' | tail -n 1 || true"),
    )
    .trim()
    .to_string()
}

/// The reports a host's agent kept after the one named `since`, oldest first, as (name, report).
fn reports_since(f: &Fleet, host: &str, since: &str) -> Vec<(String, Value)> {
    let py = format!(
        "import json, os, sys\n\
         d = {HISTORY:?}\n\
         names = sorted(n for n in os.listdir(d) if n.endswith('.json') and n > sys.argv[1]) if os.path.isdir(d) else []\n\
         print(json.dumps([[n, json.load(open(os.path.join(d, n)))] for n in names]))\n"
    );
    let out = ssh_riding_restarts(host, || {
        f.ssh_with_input(host, &format!("python3 - '{since}'"), py.as_bytes())
    })
    .and_then(|o| o.ok())
    .unwrap_or_else(|e| panic!("{host}: {e:#}"));
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{host}: reports: {e}: {}", out.stdout))
}

/// Waits for the first report after `since` that `want` accepts; panics with the agent's log
/// after `timeout`.
fn wait_report(
    f: &Fleet,
    host: &str,
    since: &str,
    timeout: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> (String, Value) {
    let t0 = Instant::now();
    loop {
        let reports = reports_since(f, host, since);
        if let Some(r) = reports.iter().find(|(_, r)| want(r)) {
            return r.clone();
        }
        if t0.elapsed() > timeout {
            let log = f
                .ssh(host, "journalctl -u cfgm-agent --no-pager | tail -n 20")
                .map(|o| o.stdout)
                .unwrap_or_default();
            let last = reports.last().map(|(_, r)| {
                serde_json::json!({"status": r["status"], "pull": r["pull"], "counts": r["counts"]})
            });
            panic!("{host}: no report {what} within {timeout:?}; newest: {last:#?}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn pull<'a>(r: &'a Value, key: &str) -> &'a str {
    r["pull"][key].as_str().unwrap_or("")
}

/// A run that was not cut short by a stop (`systemctl restart` during a run).
fn whole(r: &Value) -> bool {
    r["status"] != "stopped"
}

/// Installs the agent service on [`agent_hosts`] after a new signed commit, and waits until
/// each host has converged to it on its own (its first run starts when the service starts).
fn agents() -> &'static Agents {
    AGENTS.get_or_init(|| {
        let f = fleet();
        let hosts = agent_hosts(f);
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let since: Vec<String> = names.iter().map(|h| newest_report(f, h)).collect();
        let first = {
            let _head = write(&SERVED_HEAD);
            f.commit("fleet test: the states tree, signed").unwrap()
        };
        let t0 = Instant::now();
        f.install_agents(&names).unwrap();
        for (h, s) in names.iter().zip(&since) {
            wait_report(
                f,
                h,
                s,
                Duration::from_secs(600),
                &format!("converged to {first}"),
                |r| whole(r) && pull(r, "converged_to") == first && pull(r, "fetched") == first,
            );
        }
        eprintln!(
            "agent service on {names:?}: every host converged to {first} on its own {:.1} s after install",
            t0.elapsed().as_secs_f64()
        );
        Agents {
            hosts,
            good: Mutex::new(first.clone()),
            first,
            since,
        }
    })
}

/// Waits until each agent host has applied `commit` (after `since`, per host).
fn wait_applied(f: &Fleet, a: &Agents, since: &[String], commit: &str) -> Vec<Value> {
    a.hosts
        .iter()
        .zip(since)
        .map(|(h, s)| {
            wait_report(
                f,
                &h.name,
                s,
                Duration::from_secs(300),
                &format!("converged to {commit}"),
                |r| whole(r) && pull(r, "fetched") == commit && pull(r, "converged_to") == commit,
            )
            .1
        })
        .collect()
}

fn resource_ids(r: &Value, outcome: &str) -> BTreeSet<String> {
    with_outcome(r, outcome)
}

/// Every agent host runs `cfgm-agent` as an enabled systemd service that brought it to the
/// signed commit by itself: the service's own report says the commit was fresh, signed by the
/// release key, and converged with no failure; `applied-commit` names it.
#[test]
fn the_agent_service_brings_each_host_to_the_signed_commit_on_its_own() {
    let _up = read(&UP);
    let f = fleet();
    let a = agents();
    let _d = daemon_lock();
    let good = a.good();
    for (h, since) in a.hosts.iter().zip(&a.since) {
        let name = h.name.as_str();
        assert_eq!(
            sh(
                f,
                name,
                "systemctl is-active cfgm-agent; systemctl is-enabled cfgm-agent"
            )
            .split_whitespace()
            .collect::<Vec<_>>(),
            ["active", "enabled"],
            "{name}"
        );
        assert_eq!(
            sh(f, name, "cat /var/lib/cfgm/applied-commit").trim(),
            good,
            "{name}"
        );
        let reports = reports_since(f, name, since);
        // the pull that found the commit trusted it for its signature
        let (_, found) = reports
            .iter()
            .find(|(_, r)| pull(r, "fetched") == a.first)
            .unwrap_or_else(|| panic!("{name}: no report of {}", a.first));
        assert_eq!(pull(found, "verdict"), "fresh", "{name}: {found:#}");
        assert!(
            pull(found, "reason").contains("signed by release@cfgm-fleet"),
            "{name}: {}",
            pull(found, "reason")
        );
        // the first whole run on it converged the host
        let (_, first) = reports
            .iter()
            .find(|(_, r)| whole(r) && pull(r, "fetched") == a.first)
            .unwrap();
        assert_eq!(
            first["status"],
            "converged",
            "{name}: {:?}",
            problems(first)
        );
        assert_eq!(first["tree_id"], a.first.as_str(), "{name}");
        assert_eq!(first["counts"]["failed"], 0, "{name}");
        assert_eq!(first["counts"]["skipped"], 0, "{name}");
        // the service's own log says so (nobody ran the agent by hand); the
        // line is logged after the report is kept, and journald takes it in
        // a moment later: looked for until a deadline
        let said = format!("{}: signed by release@cfgm-fleet", a.first);
        let t0 = Instant::now();
        loop {
            let log = sh(f, name, "journalctl -u cfgm-agent --no-pager -o cat");
            if log.contains(&said) {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{name}: {log}");
            std::thread::sleep(Duration::from_millis(250));
        }
        // and the host is what the states say
        assert!(
            sh(f, name, "cat /etc/motd").starts_with(&format!("{name} — ")),
            "{name}"
        );
        assert_eq!(
            sh(f, name, "systemctl is-active prometheus-node-exporter").trim(),
            "active",
            "{name}"
        );
        eprintln!(
            "{name}: service active; first run on {}: {} changed in {:.1} s",
            &a.first[..12],
            first["counts"]["changed"],
            first["seconds"].as_f64().unwrap_or(0.0)
        );
    }
}

/// A commit signed by a key that is not in allowed_signers is refused by every agent: the
/// report names the unknown key, the host stays converged to the good commit, nothing of the
/// untrusted tree reaches it. A signed commit on top is then accepted, with nothing to change.
#[test]
fn a_commit_signed_by_an_untrusted_key_is_refused_and_hosts_stay_on_the_good_commit() {
    let _up = read(&UP);
    let f = fleet();
    let a = agents();
    let _d = daemon_lock();
    let good = a.good();
    let since: Vec<String> = a.hosts.iter().map(|h| newest_report(f, &h.name)).collect();
    // the untrusted tree: the example states with a banner no host may show
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("states");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&f.spec().tree)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(cp.success());
    let common = tree.join("data/common.toml");
    let text = std::fs::read_to_string(&common).unwrap();
    let banner = "UNTRUSTED: this line must never reach a host.";
    let changed = text.replace(
        "motd_banner = \"Managed by cfgm. Local changes are overwritten.\"",
        &format!("motd_banner = \"{banner}\""),
    );
    assert_ne!(changed, text, "the banner in data/common.toml moved");
    std::fs::write(&common, changed).unwrap();
    let fingerprint = {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(f.untrusted_key().with_extension("pub"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().nth(1).unwrap_or("").to_string()
    };

    let tree_lock = write(&SERVED_TREE);
    let bad = {
        let _head = write(&SERVED_HEAD);
        f.commit_untrusted(&tree, "fleet test: signed by a stranger")
            .unwrap()
    };
    for h in &a.hosts {
        sh(f, &h.name, "systemctl reload cfgm-agent");
    }
    for (h, s) in a.hosts.iter().zip(&since) {
        let name = h.name.as_str();
        let (_, r) = wait_report(
            f,
            name,
            s,
            Duration::from_secs(120),
            &format!("that fetched {bad}"),
            |r| pull(r, "fetched") == bad,
        );
        assert_eq!(pull(&r, "verdict"), "refused", "{name}: {r:#}");
        let reason = pull(&r, "reason");
        assert!(
            reason.contains("not in allowed_signers") && reason.contains(&fingerprint),
            "{name}: the reason names the unknown key {fingerprint}: {reason}"
        );
        assert_eq!(pull(&r, "converged_to"), good, "{name}");
        assert_eq!(r["status"], "converged", "{name}: {:?}", problems(&r));
        assert_eq!(r["counts"]["changed"], 0, "{name}");
        assert_eq!(
            sh(f, name, "cat /var/lib/cfgm/applied-commit").trim(),
            good,
            "{name}"
        );
        let motd = sh(f, name, "cat /etc/motd");
        assert!(!motd.contains("UNTRUSTED"), "{name}: {motd}");
        let metrics = sh(f, name, "cat /var/lib/prometheus/node-exporter/cfgm.prom");
        assert!(
            metrics.contains("cfgm_source_refused 1"),
            "{name}: {metrics}"
        );
        assert!(
            !metrics.contains("cfgm_verification_failures_total 0"),
            "{name}: {metrics}"
        );
        eprintln!("{name}: refused {}: {reason}", &bad[..12]);
    }

    // A signed commit on top of the stranger's: accepted, the same tree as before, no change.
    let since: Vec<String> = a.hosts.iter().map(|h| newest_report(f, &h.name)).collect();
    let fixed = {
        let _head = write(&SERVED_HEAD);
        f.commit("fleet test: the states tree, signed again")
            .unwrap()
    };
    drop(tree_lock);
    for h in &a.hosts {
        sh(f, &h.name, "systemctl reload cfgm-agent");
    }
    for (h, r) in a.hosts.iter().zip(wait_applied(f, a, &since, &fixed)) {
        assert_eq!(pull(&r, "verdict"), "fresh", "{}: {r:#}", h.name);
        assert_eq!(r["counts"]["changed"], 0, "{}", h.name);
    }
    *a.good.lock().unwrap_or_else(|e| e.into_inner()) = fixed;
}

/// Drift: a managed file changed and a managed package removed by hand are both restored by the
/// next cycle, whose report lists exactly those two changes.
#[test]
fn drift_is_repaired_by_the_next_cycle_and_reported_exactly() {
    let _up = read(&UP);
    let f = fleet();
    let a = agents();
    let _d = daemon_lock();
    let h = &a.hosts[0];
    let name = h.name.as_str();
    assert_eq!(
        sh(f, name, "dpkg-query -W -f '${Status}' curl"),
        "install ok installed"
    );
    // Under the agent's own run lock, so that no cycle sees half of the drift: the newest
    // report's name, then the hand-made changes.
    let out = sh(
        f,
        name,
        "flock /var/lib/cfgm/lock sh -c \
         'ls /var/lib/cfgm/reports/history | grep \"\\.json$\" | tail -n 1; \
          echo \"changed by hand\" > /etc/motd; \
          DEBIAN_FRONTEND=noninteractive apt-get remove -y -q curl >/dev/null 2>&1'; \
         dpkg-query -W -f '${Status}' curl 2>/dev/null; echo",
    );
    let mut lines = out.lines();
    let since = lines.next().unwrap_or("").trim().to_string();
    let status = lines.next().unwrap_or("").trim().to_string();
    assert!(
        !status.starts_with("install ok installed"),
        "curl still installed: {status}"
    );
    let t0 = Instant::now();
    sh(f, name, "systemctl reload cfgm-agent");
    let (_, r) = wait_report(
        f,
        name,
        &since,
        Duration::from_secs(180),
        "after the drift",
        |_| true,
    );
    assert_eq!(r["status"], "converged", "{name}: {:?}", problems(&r));
    assert_eq!(
        resource_ids(&r, "changed"),
        BTreeSet::from(["file[/etc/motd]".to_string(), "pkg[curl]".to_string()]),
        "{name}: the report lists exactly the drift"
    );
    assert_eq!(r["counts"]["changed"], 2, "{name}");
    assert_eq!(r["counts"]["failed"], 0, "{name}");
    assert_eq!(pull(&r, "converged_to"), a.good(), "{name}");
    assert!(sh(f, name, "cat /etc/motd").starts_with(&format!("{name} — ")));
    assert_eq!(
        sh(f, name, "dpkg-query -W -f '${Status}' curl"),
        "install ok installed"
    );
    eprintln!(
        "{name}: drift (file + package) repaired and reported by the next cycle in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// The metrics of the agent host's last run, as node exporter on that host serves them: the
/// lines of the `cfgm_*` families (HELP, TYPE and samples).
fn cfgm_metrics_via_node_exporter(f: &Fleet, h: &Host) -> (String, String) {
    let all = f
        .http_get(&h.name, 9100, "/metrics")
        .unwrap_or_else(|e| panic!("{}: node exporter: {e:#}", h.name));
    let cfgm: String = all
        .lines()
        .filter(|l| {
            l.starts_with("cfgm_") || l.starts_with("# HELP cfgm_") || l.starts_with("# TYPE cfgm_")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    (all, cfgm)
}

/// Node exporter on an agent host (its textfile collector reads the agent's metrics file)
/// serves the last run's success and the commit the host is converged to.
#[test]
fn node_exporter_serves_the_agents_metrics() {
    let _up = read(&UP);
    let f = fleet();
    let a = agents();
    let _d = daemon_lock();
    let good = a.good();
    for h in &a.hosts {
        let (all, cfgm) = cfgm_metrics_via_node_exporter(f, h);
        let name = h.name.as_str();
        assert!(
            all.lines().any(|l| l == "node_textfile_scrape_error 0"),
            "{name}: the textfile collector failed"
        );
        assert!(
            cfgm.lines().any(|l| l == "cfgm_last_run_success 1"),
            "{name}: {cfgm}"
        );
        let info = cfgm
            .lines()
            .find(|l| l.starts_with("cfgm_applied_commit_info{"))
            .unwrap_or_else(|| panic!("{name}: no cfgm_applied_commit_info: {cfgm}"));
        assert!(
            info.contains(&format!("commit=\"{good}\"")) && info.ends_with(" 1"),
            "{name}: {info}"
        );
        eprintln!("{name}: node exporter serves {info}");
    }
}

/// promtool accepts the agent's metrics file and the `cfgm_*` families node exporter serves.
#[test]
fn the_agents_metrics_pass_promtool_check_metrics() {
    let _up = read(&UP);
    let f = fleet();
    let a = agents();
    let _d = daemon_lock();
    let h = &a.hosts[0];
    let file = sh(
        f,
        &h.name,
        "cat /var/lib/prometheus/node-exporter/cfgm.prom",
    );
    let (_, served) = cfgm_metrics_via_node_exporter(f, h);
    for (what, text) in [("textfile", file), ("node exporter", served)] {
        assert!(text.contains("cfgm_last_run_success"), "{what}: {text}");
        let mut c = Command::new("promtool");
        c.args(["check", "metrics"]);
        let out = cfgm_testing::run_with_input(c, Some(text.as_bytes()), Duration::from_secs(30))
            .expect("promtool (Debian package prometheus; scripts/deps.sh installs it)");
        assert_eq!(
            out.code,
            Some(0),
            "promtool check metrics ({what}): {}{}\n{text}",
            out.stdout,
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rollouts: `cfgm apply --commit` from the controller, over SSH, in waves, on the hosts neither
// the `apply` tests nor the agent-service tests use. Their trees are small (node exporter, whose
// textfile collector serves the agents' metrics to the controller's Prometheus, and a marker
// file holding the release name), committed on a branch of the served repository that `main`
// never follows: each host's agent finds the commit there, verifies and converges it.

/// The rollout tests run one at a time: each rolls a release over the same hosts.
static ROLLOUT: Mutex<()> = Mutex::new(());
const ROLLOUT_BRANCH: &str = "rollout-test";
const MARKER: &str = "/etc/cfgm-rollout";

struct Rollouts {
    hosts: Vec<Host>,
    /// Commits made so far (a counter for unique release names).
    n: Mutex<usize>,
    journals: tempfile::TempDir,
}

static ROLLOUTS: OnceLock<Rollouts> = OnceLock::new();

fn cfgm_bin() -> PathBuf {
    let p = std::env::var_os("CFGM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/cfgm"));
    assert!(
        p.exists(),
        "no cfgm binary at {} (cargo build -p cfgm-cli)",
        p.display()
    );
    p
}

/// The fleet's hosts that no other test converges: the rollout tests' own.
fn rollout_hosts(f: &Fleet) -> Vec<Host> {
    let mut taken: Vec<String> = apply_hosts(f).iter().map(|h| h.name.clone()).collect();
    taken.extend(agent_hosts(f).into_iter().map(|h| h.name));
    taken.push(example_host(f).name);
    let hosts: Vec<Host> = f
        .hosts()
        .iter()
        .filter(|h| !taken.contains(&h.name))
        .cloned()
        .collect();
    assert!(
        hosts.len() >= 3,
        "the rollout tests need 3 hosts of their own, the fleet leaves {hosts:?}"
    );
    hosts
}

/// A release tree for the rollout hosts: `release` written to the marker file; hosts in
/// `fail_on` also get a command that fails; `rollout` is its rollout.toml.
fn rollout_tree(
    f: &Fleet,
    hosts: &[Host],
    release: &str,
    fail_on: &[&str],
    rollout: &str,
) -> tempfile::TempDir {
    rollout_tree_with(f, hosts, release, fail_on, rollout, "")
}

/// [`rollout_tree`] with `extra` appended to the marker state.
fn rollout_tree_with(
    f: &Fleet,
    hosts: &[Host],
    release: &str,
    fail_on: &[&str],
    rollout: &str,
    extra: &str,
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for sub in ["states", "data", "templates/node_exporter"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let src = &f.spec().tree;
    std::fs::copy(
        src.join("states/node_exporter.toml"),
        d.join("states/node_exporter.toml"),
    )
    .unwrap();
    std::fs::copy(
        src.join("templates/node_exporter/defaults.j2"),
        d.join("templates/node_exporter/defaults.j2"),
    )
    .unwrap();
    let common = std::fs::read_to_string(src.join("data/common.toml")).unwrap();
    let ne = &common[common
        .find("[node_exporter]")
        .expect("data/common.toml has [node_exporter]")..];
    let ne = &ne[..ne[1..].find("\n[").map(|i| i + 1).unwrap_or(ne.len())];
    std::fs::write(
        d.join("data/common.toml"),
        format!("release = {release:?}\nfail_on = {fail_on:?}\n\n{ne}\n"),
    )
    .unwrap();
    std::fs::write(d.join("cfgm.toml"), "name = \"rollout-test\"\n").unwrap();
    let mut inv = String::new();
    for (i, h) in hosts.iter().enumerate() {
        inv.push_str(&format!(
            "[hosts.{}]\ndc = {:?}\nrole = {:?}\naddress = \"{}\"\n{}\n",
            h.name,
            h.dc,
            h.role.as_deref().unwrap_or("edge"),
            h.address,
            if i == 0 { "tags = [\"canary\"]\n" } else { "" }
        ));
    }
    std::fs::write(d.join("inventory.toml"), inv).unwrap();
    std::fs::write(
        d.join("top.toml"),
        "\"*\" = [\"node_exporter\", \"marker\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("states/marker.toml"),
        format!(
            "[file.\"{MARKER}\"]\ncontent = \"{{{{ data.release }}}}\\n\"\nmode = \"0644\"\n\
             {{% if host.name in data.fail_on %}}\n\
             [cmd.this-release-fails-here]\n\
             run = \"echo this release fails on {{{{ host.name }}}} >&2; exit 1\"\n\
             creates = \"/nonexistent-so-it-runs\"\n\
             require = [\"file:{MARKER}\"]\n\
             {{% endif %}}\n{extra}"
        ),
    )
    .unwrap();
    let prom = f.prometheus_url().unwrap();
    std::fs::write(
        d.join("rollout.toml"),
        format!("prometheus_url = \"{prom}\"\n{rollout}"),
    )
    .unwrap();
    tmp
}

/// What one `cfgm apply` printed and exited with.
struct Applied {
    code: Option<i32>,
    /// Its `--json` events.
    events: Vec<Value>,
    stderr: String,
}

impl Applied {
    fn finished(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "finished")
            .unwrap_or_else(|| panic!("no `finished` event: {:#?}\n{}", self.events, self.stderr))
    }

    /// Each host's final state and reason, from the `host` events.
    fn hosts(&self) -> BTreeMap<String, (String, String)> {
        self.events
            .iter()
            .filter(|e| e["event"] == "host-done")
            .map(|e| {
                (
                    e["host"].as_str().unwrap_or("").to_string(),
                    (
                        e["state"].as_str().unwrap_or("").to_string(),
                        e["reason"].as_str().unwrap_or("").to_string(),
                    ),
                )
            })
            .collect()
    }
}

/// `cfgm --tree TREE apply ARGS … --yes --json` against the fleet, trusting `known_hosts`.
fn apply_command(
    f: &Fleet,
    r: &Rollouts,
    tree: &std::path::Path,
    args: &[&str],
    known_hosts: &std::path::Path,
) -> Command {
    let mut c = Command::new(cfgm_bin());
    c.arg("--tree")
        .arg(tree)
        .arg("apply")
        .args(args)
        .arg("--repo")
        .arg(f.repo())
        .arg("--journal-dir")
        .arg(r.journals.path())
        .arg("--identity")
        .arg(f.key())
        .arg("--known-hosts")
        .arg(known_hosts)
        .args(["--yes", "--json"]);
    c
}

fn cfgm_apply(f: &Fleet, r: &Rollouts, tree: &std::path::Path, args: &[&str]) -> Applied {
    let c = apply_command(f, r, tree, args, &f.known_hosts());
    let out = cfgm_testing::run(c, Duration::from_secs(600)).unwrap();
    let events = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    Applied {
        code: out.code,
        events,
        stderr: out.stderr,
    }
}

fn marker(f: &Fleet, host: &str) -> String {
    f.ssh(host, &format!("cat {MARKER} 2>/dev/null || true"))
        .and_then(|o| o.ok())
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_default()
}

impl Rollouts {
    fn release(&self) -> String {
        let mut n = self.n.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        format!("r{}", *n)
    }

    /// Commits a release tree on the rollout branch.
    fn commit(&self, f: &Fleet, tree: &std::path::Path, untrusted: bool) -> String {
        f.commit_branch(tree, ROLLOUT_BRANCH, untrusted, "fleet test: a rollout")
            .unwrap()
    }

    /// A good release everywhere, all at once: the hosts' state every test starts from.
    fn heal(&self, f: &Fleet) -> String {
        let rel = self.release();
        let tree = rollout_tree(f, &self.hosts, &rel, &[], "");
        let c = self.commit(f, tree.path(), false);
        let a = cfgm_apply(f, self, tree.path(), &["--commit", &c, "--all-at-once"]);
        assert_eq!(a.code, Some(0), "{:#?}\n{}", a.events, a.stderr);
        for h in &self.hosts {
            assert_eq!(marker(f, &h.name), rel, "{}", h.name);
        }
        rel
    }
}

/// The rollout hosts get the agent (not started) with `cfgm bootstrap`, then a first release.
fn rollouts() -> (&'static Rollouts, MutexGuard<'static, ()>) {
    let guard = ROLLOUT.lock().unwrap_or_else(|e| e.into_inner());
    let r = ROLLOUTS.get_or_init(|| {
        let f = fleet();
        let hosts = rollout_hosts(f);
        let tree = rollout_tree(f, &hosts, "r0", &[], "");
        let mut c = Command::new(cfgm_bin());
        c.arg("--tree")
            .arg(tree.path())
            .args(["bootstrap", "--no-start", "--repo", f.git_url()])
            .arg("--allowed-signers")
            .arg(f.allowed_signers())
            .arg("--agent-binary")
            .arg(f.state_dir().join("bin/cfgm-agent"))
            .arg("--identity")
            .arg(f.key())
            .arg("--known-hosts")
            .arg(f.known_hosts());
        let out = cfgm_testing::run(c, Duration::from_secs(300)).unwrap();
        assert_eq!(out.code, Some(0), "bootstrap: {}{}", out.stdout, out.stderr);
        for h in &hosts {
            assert_eq!(
                sh(
                    f,
                    &h.name,
                    "systemctl is-enabled cfgm-agent; systemctl is-active cfgm-agent || true"
                )
                .split_whitespace()
                .collect::<Vec<_>>(),
                ["enabled", "inactive"],
                "{}: bootstrap --no-start enables the agent and leaves it stopped",
                h.name
            );
        }
        let r = Rollouts {
            hosts,
            n: Mutex::new(0),
            journals: tempfile::tempdir().unwrap(),
        };
        r.heal(f);
        r
    });
    (r, guard)
}

const CANARY_THEN_REST: &str = r#"
[[wave]]
name = "canary"
select = "tag:canary"
count = 1
concurrency = 1
max_failures = 0
bake = 0

[[wave]]
name = "rest"
rest = true
concurrency = 5
max_failures = 0
bake = 0
"#;

/// A release that fails on the canary halts the rollout after wave 1: the canary ran it (its
/// marker moved, its failed resource is named), no host of the later wave was touched.
#[test]
fn a_release_failing_on_the_canary_halts_after_wave_1_and_later_hosts_are_untouched() {
    let f = fleet();
    let (r, _g) = rollouts();
    let before = r.heal(f);
    let canary = r.hosts[0].name.clone();
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[&canary], CANARY_THEN_REST);
    let c = r.commit(f, tree.path(), false);
    let a = cfgm_apply(f, r, tree.path(), &["--commit", &c]);
    assert_eq!(a.code, Some(1), "a halted rollout exits 1: {}", a.stderr);
    let fin = a.finished();
    assert_eq!(fin["outcome"], "halted", "{fin:#}");
    assert_eq!(fin["wave"], 0, "{fin:#}");
    let hosts = a.hosts();
    assert_eq!(hosts.len(), 1, "only the canary was reached: {hosts:?}");
    assert_eq!(hosts[&canary].0, "failed", "{hosts:?}");
    assert_eq!(
        marker(f, &canary),
        rel,
        "the canary ran the release: {hosts:?}"
    );
    for h in &r.hosts[1..] {
        assert_eq!(
            marker(f, &h.name),
            before,
            "{}: a later wave's host changed",
            h.name
        );
    }
    let show = Command::new(cfgm_bin())
        .arg("--tree")
        .arg(tree.path())
        .args(["rollout", "show"])
        .arg(fin["id"].as_str().unwrap())
        .arg("--journal-dir")
        .arg(r.journals.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("this-release-fails-here"),
        "`cfgm rollout show` names the failed resource: {text}"
    );
    r.heal(f);
}

/// Health gates: a failing command gate and a failing HTTP gate each count the host as failed
/// (within budget the rollout goes on, over it, it halts); a PromQL gate that returns series
/// during the bake — here the canary's failed run, as Prometheus scraped it from the canary's
/// node exporter — halts the wave.
#[test]
fn failing_command_http_and_promql_gates_count_as_failed() {
    let f = fleet();
    let (r, _g) = rollouts();
    r.heal(f);
    let (canary, second, third) = (&r.hosts[0].name, &r.hosts[1].name, &r.hosts[2].name);
    let gates = format!(
        r#"
[[wave]]
name = "command-gate"
select = "{second}"
concurrency = 1
max_failures = 1
bake = 0
health.command = ["test", "-e", "/nonexistent-health-file"]

[[wave]]
name = "http-gate"
select = "{third}"
concurrency = 1
max_failures = 0
bake = 0
health.http = "http://{{address}}:9/"

[[wave]]
name = "rest"
rest = true
concurrency = 5
max_failures = 0
bake = 0
"#
    );
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], &gates);
    let c = r.commit(f, tree.path(), false);
    let a = cfgm_apply(f, r, tree.path(), &["--commit", &c]);
    assert_eq!(a.code, Some(1), "{}", a.stderr);
    let hosts = a.hosts();
    assert!(
        hosts.contains_key(second.as_str()) && hosts.contains_key(third.as_str()),
        "{:#?}\n{}",
        a.events,
        a.stderr
    );
    // the command gate failed the second host, within wave 1's budget: the rollout went on
    assert_eq!(hosts[second.as_str()].0, "failed", "{hosts:?}");
    assert!(
        hosts[second.as_str()].1.contains("health command"),
        "{hosts:?}"
    );
    // the HTTP gate failed the third, over wave 2's budget: halted there
    assert_eq!(hosts[third.as_str()].0, "failed", "{hosts:?}");
    assert!(hosts[third.as_str()].1.contains("health http"), "{hosts:?}");
    let fin = a.finished();
    assert_eq!(fin["outcome"], "halted", "{fin:#}");
    assert_eq!(fin["wave"], 1, "{fin:#}");

    // The canary fails a release; Prometheus sees `cfgm_last_run_success 0` through its node
    // exporter; a wave on another host with a PromQL gate over the fleet halts.
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[canary], "");
    let c = r.commit(f, tree.path(), false);
    let a = cfgm_apply(
        f,
        r,
        tree.path(),
        &["--commit", &c, "--select", canary, "--all-at-once"],
    );
    assert_eq!(a.code, Some(1), "{}", a.stderr);
    let prom = f.prometheus_url().unwrap();
    let t0 = Instant::now();
    loop {
        let mut c = Command::new("curl");
        c.args(["-fsS", "--get", "--data-urlencode"])
            .arg(format!(
                "query=cfgm_last_run_success{{host=\"{canary}\"}} == 0"
            ))
            .arg(format!("{prom}/api/v1/query"));
        let out = cfgm_testing::run(c, Duration::from_secs(10)).unwrap();
        if out.stdout.contains(&format!("\"host\":\"{canary}\"")) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Prometheus never saw the canary's failed run: {}",
            out.stdout
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let promql = format!(
        r#"
[[wave]]
name = "promql-gate"
select = "{second}"
concurrency = 1
max_failures = 0
bake = 4
health.promql = "cfgm_last_run_success == 0"

[[wave]]
name = "rest"
rest = true
concurrency = 5
max_failures = 0
bake = 0
"#
    );
    let before_third = marker(f, third);
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], &promql);
    let c = r.commit(f, tree.path(), false);
    let a = cfgm_apply(f, r, tree.path(), &["--commit", &c]);
    assert_eq!(a.code, Some(1), "{}", a.stderr);
    let fin = a.finished();
    assert_eq!(fin["outcome"], "halted", "{fin:#}");
    assert!(
        fin["reason"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("promql"),
        "{fin:#}"
    );
    assert_eq!(
        marker(f, third),
        before_third,
        "the next wave was not touched"
    );
    r.heal(f);
}

/// A host that cannot be reached counts as failed: within the wave's budget the rollout goes
/// on and completes with that host failed; the others converge.
#[test]
fn an_unreachable_host_counts_as_failed_and_the_budget_decides() {
    let f = fleet();
    let (r, _g) = rollouts();
    r.heal(f);
    let lost = &r.hosts[1];
    let waves = r#"
[[wave]]
name = "all"
rest = true
concurrency = 5
max_failures = 1
bake = 0
"#;
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], waves);
    let c = r.commit(f, tree.path(), false);
    // The controller loses its route to the host (the host itself keeps running).
    let route = format!("{}/32", lost.address);
    let add = Command::new("ip")
        .args(["route", "add", "unreachable", &route])
        .status()
        .unwrap();
    assert!(add.success());
    let a = cfgm_apply(f, r, tree.path(), &["--commit", &c]);
    let del = Command::new("ip")
        .args(["route", "del", "unreachable", &route])
        .status()
        .unwrap();
    assert!(del.success());
    let hosts = a.hosts();
    assert_eq!(hosts[&lost.name].0, "failed", "{hosts:?}");
    assert!(hosts[&lost.name].1.contains("unreachable"), "{hosts:?}");
    assert_eq!(
        a.finished()["outcome"],
        "completed",
        "within budget: {:#?}",
        a.events
    );
    for h in r.hosts.iter().filter(|h| h.name != lost.name) {
        assert_eq!(hosts[&h.name].0, "converged", "{hosts:?}");
        assert_eq!(marker(f, &h.name), rel, "{}", h.name);
    }
    assert_ne!(marker(f, &lost.name), rel);
    r.heal(f);
}

/// `cfgm apply` SIGKILLed mid-rollout: `--resume ID` finishes it and does not run the agent
/// again on hosts the journal says converged.
#[test]
fn a_killed_rollout_resumes_without_reapplying_converged_hosts() {
    let f = fleet();
    let (r, _g) = rollouts();
    r.heal(f);
    let waves = r#"
[[wave]]
name = "one-at-a-time"
rest = true
concurrency = 1
max_failures = 0
bake = 0
"#;
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], waves);
    let c = r.commit(f, tree.path(), false);
    let since: Vec<String> = r.hosts.iter().map(|h| newest_report(f, &h.name)).collect();
    let mut cmd = apply_command(f, r, tree.path(), &["--commit", &c], &f.known_hosts());
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Killed once the journal holds one converged host.
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut id = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "cfgm apply ended before a host converged");
        let e: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if e["event"] == "started" {
            id = e["id"].as_str().unwrap_or("").to_string();
        }
        if e["event"] == "host-done" {
            assert_eq!(e["state"], "converged", "{e}");
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!id.is_empty());
    let journal = std::fs::read_to_string(r.journals.path().join(format!("{id}.jsonl"))).unwrap();
    let done_before: Vec<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["record"] == "host" && v["state"] == "converged")
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    assert!(!done_before.is_empty() && done_before.len() < r.hosts.len());
    let a = cfgm_apply(f, r, tree.path(), &["--resume", &id]);
    assert_eq!(a.code, Some(0), "{:#?}\n{}", a.events, a.stderr);
    for (h, s) in r.hosts.iter().zip(&since) {
        assert_eq!(marker(f, &h.name), rel, "{}", h.name);
        let runs = reports_since(f, &h.name, s)
            .into_iter()
            .filter(|(_, rep)| pull(rep, "fetched") == c)
            .count();
        if done_before.contains(&h.name) {
            assert_eq!(
                runs, 1,
                "{}: converged before the kill, not run again by the resume",
                h.name
            );
        } else {
            // (a host in flight when cfgm was killed may have finished its run: the resume
            // runs it again, with nothing to change)
            assert!(runs >= 1, "{}: the resume ran it", h.name);
        }
    }
}

/// A host whose SSH host key is not the one in known_hosts is refused (nothing runs there); a
/// commit signed by a key no host trusts is refused by the canary's own agent and the rollout
/// halts with nothing changed.
#[test]
fn a_changed_host_key_and_an_untrusted_commit_are_refused() {
    let f = fleet();
    let (r, _g) = rollouts();
    let before = r.heal(f);
    let (a_host, b_host) = (&r.hosts[0], &r.hosts[1]);
    // known_hosts that gives the first host the second host's key
    let kh = std::fs::read_to_string(f.known_hosts()).unwrap();
    let key_of = |h: &Host| {
        kh.lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .any(|n| n == h.name)
            })
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap()
    };
    let swapped: String = kh
        .lines()
        .map(|l| {
            if l.split_whitespace()
                .next()
                .unwrap_or("")
                .split(',')
                .any(|n| n == a_host.name)
            {
                format!("{},{} {}\n", a_host.name, a_host.address, key_of(b_host))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let bad_kh = tmp.path().join("known_hosts");
    std::fs::write(&bad_kh, swapped).unwrap();
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], CANARY_THEN_REST);
    let c = r.commit(f, tree.path(), false);
    let cmd = apply_command(f, r, tree.path(), &["--commit", &c], &bad_kh);
    let out = cfgm_testing::run(cmd, Duration::from_secs(300)).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let refused = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "host-done" && e["host"] == a_host.name.as_str())
        .unwrap_or_else(|| panic!("no result for {}: {}", a_host.name, out.stdout));
    assert_eq!(refused["state"], "failed");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("host key changed"),
        "{refused}"
    );
    for h in &r.hosts {
        assert_eq!(marker(f, &h.name), before, "{}: nothing ran", h.name);
    }

    // Untrusted: the canary's agent refuses the commit; the rollout halts after wave 1.
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], CANARY_THEN_REST);
    let bad = r.commit(f, tree.path(), true);
    let a = cfgm_apply(f, r, tree.path(), &["--commit", &bad]);
    assert_eq!(a.code, Some(1), "{}", a.stderr);
    let hosts = a.hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    let (state, reason) = &hosts[&a_host.name];
    assert_eq!(state, "failed");
    assert!(
        reason.contains("refused") && reason.contains("allowed_signers"),
        "{reason}"
    );
    for h in &r.hosts {
        assert_eq!(
            marker(f, &h.name),
            before,
            "{}: the untrusted release reached it",
            h.name
        );
    }
    // A good release on top still rolls out; a second one of the same tree changes nothing.
    r.heal(f);
    let rel = r.release();
    let tree = rollout_tree(f, &r.hosts, &rel, &[], CANARY_THEN_REST);
    let c = r.commit(f, tree.path(), false);
    let _ = cfgm_apply(f, r, tree.path(), &["--commit", &c]);
    let c2 = r.commit(f, tree.path(), false);
    let again = cfgm_apply(f, r, tree.path(), &["--commit", &c2]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    for e in again.events.iter().filter(|e| e["event"] == "host-done") {
        assert_eq!(
            e["changed"], 0,
            "a rollout of the same tree changes nothing: {e}"
        );
    }
}

/// Change sets as comparable strings: "kind[name] attr: from -> to".
fn change_lines(changes: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in changes.as_array().into_iter().flatten() {
        for a in c["changes"].as_array().into_iter().flatten() {
            out.insert(format!(
                "{}[{}] {}: {} -> {}",
                c["id"]["kind"].as_str().unwrap_or(""),
                c["id"]["name"].as_str().unwrap_or(""),
                a["attr"].as_str().unwrap_or(""),
                a["from"],
                a["to"]
            ));
        }
    }
    out
}

/// After a converge, `cfgm facts fetch` then `cfgm plan` of a changed tree reports for each
/// host exactly the changes `cfgm-agent apply --dry-run` of that tree's commit reports on the
/// host itself — a changed file's content, a new package — and calls `unknown` the new paths
/// the facts cannot know.
#[test]
fn a_plan_from_fetched_facts_matches_each_hosts_own_dry_run() {
    let f = fleet();
    let (r, _g) = rollouts();
    r.heal(f);
    let rel = r.release();
    let extra = "\n[pkg.tree]\n\n[file.\"/etc/cfgm-rollout.d/notes\"]\ncontent = \"planned\\n\"\nmode = \"0640\"\n\n[directory.\"/etc/cfgm-rollout.d\"]\n";
    let tree = rollout_tree_with(f, &r.hosts, &rel, &[], "", extra);
    let c = r.commit(f, tree.path(), false);
    let facts = tempfile::tempdir().unwrap();
    let mut fetch = Command::new(cfgm_bin());
    fetch
        .arg("--tree")
        .arg(tree.path())
        .args(["facts", "fetch", "--out"])
        .arg(facts.path())
        .arg("--identity")
        .arg(f.key())
        .arg("--known-hosts")
        .arg(f.known_hosts());
    let out = cfgm_testing::run(fetch, Duration::from_secs(120)).unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "facts fetch: {}{}",
        out.stdout,
        out.stderr
    );
    let mut plan = Command::new(cfgm_bin());
    plan.arg("--tree")
        .arg(tree.path())
        .args(["plan", "--json", "--facts"])
        .arg(facts.path());
    let out = cfgm_testing::run(plan, Duration::from_secs(120)).unwrap();
    assert_eq!(out.code, Some(0), "plan: {}", out.stderr);
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    for h in &r.hosts {
        let entry = plan["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == h.name.as_str())
            .unwrap_or_else(|| panic!("{}: not in the plan", h.name));
        assert_eq!(entry["status"], "changed", "{}: {entry}", h.name);
        let group = entry["group"].as_u64().unwrap() as usize;
        let planned = change_lines(&plan["groups"][group]["changes"]);
        let dry = f
            .ssh(
                &h.name,
                &format!("cfgm-agent apply --commit {c} --dry-run --json"),
            )
            .unwrap();
        let report: Value = serde_json::from_str(&dry.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {}{}", h.name, dry.stdout, dry.stderr));
        let resources: Vec<Value> = report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["outcome"] == "would-change")
            .cloned()
            .collect();
        // Resources the facts say nothing about (new paths: facts hold what earlier runs
        // observed, packages, users and services) are planned as `unknown`, not guessed.
        let unknown: BTreeSet<String> = plan["groups"][group]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == "unknown")
            .map(|c| {
                format!(
                    "{}[{}]",
                    c["id"]["kind"].as_str().unwrap_or(""),
                    c["id"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            unknown,
            BTreeSet::from([
                "directory[/etc/cfgm-rollout.d]".to_string(),
                "file[/etc/cfgm-rollout.d/notes]".to_string()
            ]),
            "{}: the new paths are unknown to the plan",
            h.name
        );
        let (known, new): (Vec<Value>, Vec<Value>) = resources.into_iter().partition(|x| {
            !unknown.contains(&format!(
                "{}[{}]",
                x["id"]["kind"].as_str().unwrap_or(""),
                x["id"]["name"].as_str().unwrap_or("")
            ))
        });
        assert_eq!(new.len(), unknown.len(), "{}: {new:?}", h.name);
        let seen = change_lines(&Value::Array(known));
        assert!(!seen.is_empty(), "{}: the dry run found nothing", h.name);
        assert_eq!(
            planned, seen,
            "{}: the plan from facts and the host's own dry run differ",
            h.name
        );
        eprintln!(
            "{}: plan == dry run: {} changes, {} resources unknown to the facts",
            h.name,
            seen.len(),
            unknown.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The example trees of examples/ on a host of their own.

/// The host the example trees converge on: the last one the `apply` and agent tests leave (the
/// rollout tests take the others).
fn example_host(f: &Fleet) -> Host {
    let mut taken: Vec<String> = apply_hosts(f).iter().map(|h| h.name.clone()).collect();
    taken.extend(agent_hosts(f).into_iter().map(|h| h.name));
    f.hosts()
        .iter()
        .rev()
        .find(|h| !taken.contains(&h.name))
        .cloned()
        .expect("a host for the examples")
}

/// Copies `examples/TREE` (plus `extra` files, path and text) into the host as
/// /var/tmp/cfgm-examples/TREE, through ssh.
fn ship_example(f: &Fleet, host: &str, tree: &str, extra: &[(&str, &str)]) -> String {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(tree);
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join(tree);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(ok.success(), "cp {}", src.display());
    for (path, text) in extra {
        let p = copy.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(work.path())
        .args(["-cf", "-", tree])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let dir = "/var/tmp/cfgm-examples".to_string();
    let out = f
        .ssh_with_input(
            host,
            &format!("rm -rf {dir}/{tree} && mkdir -p {dir} && tar -C {dir} -xf -"),
            &tar.stdout,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.success(), "{host}: unpack {tree}: {}", out.stderr);
    format!("{dir}/{tree}")
}

/// `cfgm-agent apply` of a shipped example tree as one of its inventory's hosts: the exit code
/// and the report.
fn example_apply(f: &Fleet, host: &str, tree: &str, as_host: &str) -> (Option<i32>, Value) {
    let cmd = format!(
        "cfgm-agent apply --tree {tree} --host {as_host} --state-dir /var/lib/cfgm-example/{as_host} --json"
    );
    let out = ssh_riding_restarts(host, || f.ssh_timeout(host, &cmd, Duration::from_secs(600)))
        .unwrap_or_else(|e| panic!("{host}: {e:#}"));
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{host}: no JSON report ({e}):\n{}\n{}",
            out.stdout, out.stderr
        )
    });
    (out.code, report)
}

/// Applies an example tree twice: the first converges without a failure, the second changes
/// nothing.
fn converge_example(f: &Fleet, host: &str, tree: &str, as_host: &str) {
    let (code, first) = example_apply(f, host, tree, as_host);
    assert_eq!(code, Some(0), "{host}: {tree}: {:?}", problems(&first));
    let (code, second) = example_apply(f, host, tree, as_host);
    assert_eq!(
        code,
        Some(0),
        "{host}: {tree} again: {:?}",
        problems(&second)
    );
    assert_eq!(
        second["counts"]["changed"],
        0,
        "{host}: {tree}: the second apply changed {:?}",
        with_outcome(&second, "changed")
    );
    eprintln!(
        "{host}: {tree} as {as_host}: {} changed, then 0",
        first["counts"]["changed"]
    );
}

/// The two ported configurations (dev-sec's ssh hardening, the nginx formula) converge on a real
/// host of the fleet, and real clients agree: `sshd -t`, the hardened settings in `sshd -T`, a key
/// login as a member of the allowed group (and none as a user outside it), `nginx -t`, an HTTP 200
/// with the site's page from the controller.
#[test]
fn the_example_trees_converge_on_a_fleet_host_and_real_clients_agree() {
    let h = example_host(fleet());
    let name = h.name.as_str();
    {
        // sshd restarts: no other test dials a host meanwhile.
        let _all = write(&UP);
        let f = fleet();
        // A host layer of the example's own hierarchy keeps the harness's root key login
        // (the example refuses root, and allows only ssh-users).
        let tree = ship_example(
            f,
            name,
            "ssh-hardening",
            &[(
                "data/host/app1.toml",
                "[ssh.server]\nPermitRootLogin = \"prohibit-password\"\n\n[ssh]\nallow_groups = [\"ssh-users\", \"root\"]\n",
            )],
        );
        converge_example(f, name, &tree, "app1");
        sh(f, name, "/usr/sbin/sshd -t");
        let t = sh(f, name, "/usr/sbin/sshd -T");
        for want in [
            "maxauthtries 2",
            "allowgroups ssh-users",
            "allowgroups root",
            "permitrootlogin without-password",
            "x11forwarding no",
        ] {
            assert!(
                t.lines().any(|l| l == want),
                "{name}: sshd -T lacks {want:?}:\n{t}"
            );
        }
        // A key login as a member of ssh-users works; the same key for a user outside it does not.
        let login = sh(
            f,
            name,
            "set -e; for u in alice mallory; do id $u >/dev/null 2>&1 || useradd -m -s /bin/sh $u; done; \
             usermod -a -G ssh-users alice; rm -f /tmp/ex-key /tmp/ex-key.pub; ssh-keygen -q -t ed25519 -N '' -f /tmp/ex-key; \
             for u in alice mallory; do install -d -m 700 -o $u -g $u /home/$u/.ssh; \
             install -m 600 -o $u -g $u /tmp/ex-key.pub /home/$u/.ssh/authorized_keys; done; \
             o='-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'; \
             echo alice: $(ssh -i /tmp/ex-key $o alice@127.0.0.1 echo in 2>/dev/null || echo refused); \
             echo mallory: $(ssh -i /tmp/ex-key $o mallory@127.0.0.1 echo in 2>/dev/null || echo refused)",
        );
        assert!(login.contains("alice: in"), "{name}: {login}");
        assert!(login.contains("mallory: refused"), "{name}: {login}");
    }
    let _up = read(&UP);
    let f = fleet();
    let tree = ship_example(f, name, "nginx", &[]);
    converge_example(f, name, &tree, "web1");
    sh(f, name, "nginx -t -q");
    // From the controller, over the datacenter network: a reload swaps workers in the
    // background, so ask again for a few seconds.
    let mut page = String::new();
    for _ in 0..50 {
        match f.http_get(name, 80, "/") {
            Ok(body) if body.contains("www on web1") => {
                page = body;
                break;
            }
            Ok(body) => page = body,
            Err(e) => page = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(page.contains("<p>www on web1</p>"), "{name}: {page}");
}
