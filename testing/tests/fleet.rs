//! The fleet in a box, proven on the real thing: one fleet (from states/inventory.toml) is brought
//! up by the first test, shared by all, and torn down when this process exits.
//! Needs root; run by `testing/fleet-test` (`make fleet-test`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cfgm_testing::{shared, Fleet, Host, Inventory};

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
    match f.ssh(host, cmd).and_then(|o| o.ok()) {
        Ok(o) => o.stdout,
        Err(e) => panic!("{e:#}"),
    }
}

#[test]
fn the_fleet_is_the_states_inventory_in_three_datacenters() {
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
    let f = fleet();
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
/// than 48 MiB; a host busy in another test (an apt run peaks near 100 MiB) less than 256 MiB.
#[test]
fn hosts_are_light_median_under_48_mib_each_under_256_mib() {
    let f = fleet();
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
        mibs.push(mib);
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
}

#[test]
fn the_agent_converges_a_db_host_to_the_example_states() {
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
}
