//! The fleet in a box, for tests: real Debian bookworm hosts (systemd as PID 1, sshd, the
//! `cfgm-agent` binary, apt through a proxy, the states repository over git) in several
//! datacenters on this machine.
//!
//! The machinery lives in the `testing/fleet` script; this crate drives it and gives tests a
//! typed view of the result:
//!
//! ```no_run
//! use cfgm_testing::{Fleet, FleetSpec};
//! let fleet = Fleet::up(FleetSpec::from_env())?; // hosts from states/inventory.toml
//! for host in fleet.hosts() {
//!     let out = fleet.ssh(&host.name, "hostname")?;
//!     assert_eq!(out.stdout.trim(), host.name);
//! }
//! // dropping `fleet` tears it down, also when the test panics
//! # anyhow::Ok(())
//! ```
//!
//! Tests in one binary should share one fleet: [`shared`] brings it up on first use and tears it
//! down when the process exits. Only one fleet can run on a machine at a time (bridges, namespaces
//! and addresses are machine-wide); the script serialises `up`/`down` with a lock.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Default timeout of [`Fleet::ssh`].
pub const SSH_TIMEOUT: Duration = Duration::from_secs(180);

/// One host of a states-tree inventory (`[hosts.NAME]`); unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InventoryHost {
    pub dc: String,
    pub address: Ipv4Addr,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A states-tree inventory: only what the fleet needs.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Inventory {
    #[serde(default)]
    pub hosts: BTreeMap<String, InventoryHost>,
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Inventory> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Inventory> {
        let inv: Inventory = toml::from_str(text)?;
        for (name, h) in &inv.hosts {
            check_host(name, h.address)?;
        }
        Ok(inv)
    }
}

/// The rules the box imposes on a host: a name that fits an interface name, an address in
/// 10.77.N.H (the only range the fleet ever creates or dials).
fn check_host(name: &str, address: Ipv4Addr) -> Result<()> {
    let ok_name = !name.is_empty()
        && name.len() <= 12
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !ok_name {
        bail!("host name {name:?}: 1-12 characters of [a-z0-9-] expected");
    }
    let [a, b, n, h] = address.octets();
    if (a, b) != (10, 77) || !(1..=250).contains(&n) || !(2..=250).contains(&h) {
        bail!("host {name}: address {address} is not 10.77.N.H (N 1..250, H 2..250)");
    }
    Ok(())
}

/// What to bring up. Every field has a default taken from the environment the same way
/// `testing/fleet` does (`FLEET_TREE`, `FLEET_INVENTORY`, `FLEET_HOSTS`, `FLEET_STATE`,
/// `CFGM_AGENT_BIN`).
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// The states tree: served to the hosts as `git://controller/states`.
    pub tree: PathBuf,
    /// The inventory the hosts come from (default `<tree>/inventory.toml`).
    pub inventory: PathBuf,
    /// Host selection: `None` = all; `Some("6")` = 6 hosts round-robin across datacenters
    /// (more than the inventory has are made up); `Some("a,b")` = those hosts.
    pub select: Option<String>,
    /// Where the fleet keeps its state and writes ssh_config, known_hosts, inventory.toml.
    pub state_dir: PathBuf,
    /// The agent binary installed in every host.
    pub agent_bin: Option<PathBuf>,
    /// The harness script (default: `testing/fleet` next to this crate).
    pub script: PathBuf,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl FleetSpec {
    /// The repository's `states/` tree, overridable by the `FLEET_*` environment variables.
    pub fn from_env() -> FleetSpec {
        let tree = env_path("FLEET_TREE").unwrap_or_else(|| crate_dir().join("../states"));
        let mut spec = FleetSpec::from_tree(tree);
        if let Some(inv) = env_path("FLEET_INVENTORY") {
            spec.inventory = inv;
        }
        spec.select = std::env::var("FLEET_HOSTS").ok().filter(|s| !s.is_empty());
        spec
    }

    /// All hosts of `tree/inventory.toml`, default state dir and agent.
    pub fn from_tree(tree: impl Into<PathBuf>) -> FleetSpec {
        let tree = tree.into();
        FleetSpec {
            inventory: tree.join("inventory.toml"),
            tree,
            select: None,
            state_dir: env_path("FLEET_STATE").unwrap_or_else(|| PathBuf::from("/run/cfgm-fleet")),
            agent_bin: env_path("CFGM_AGENT_BIN"),
            script: env_path("FLEET_SCRIPT").unwrap_or_else(|| crate_dir().join("fleet")),
        }
    }

    /// Limit to `n` hosts (round-robin across datacenters; more than the inventory has are made up).
    pub fn count(mut self, n: usize) -> FleetSpec {
        self.select = Some(n.to_string());
        self
    }

    /// Only these hosts of the inventory.
    pub fn names<S: AsRef<str>>(mut self, names: &[S]) -> FleetSpec {
        let v: Vec<&str> = names.iter().map(|s| s.as_ref()).collect();
        self.select = Some(v.join(","));
        self
    }

    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> FleetSpec {
        self.state_dir = dir.into();
        self
    }

    /// Check the inventory before anything is started (the script checks it again).
    pub fn inventory(&self) -> Result<Inventory> {
        Inventory::load(&self.inventory)
    }

    fn command(&self, verb: &str) -> Command {
        let mut c = Command::new(&self.script);
        c.arg(verb)
            .env("FLEET_STATE", &self.state_dir)
            .env("FLEET_TREE", &self.tree)
            .env("FLEET_INVENTORY", &self.inventory)
            .env("FLEET_HOSTS", self.select.as_deref().unwrap_or(""));
        if let Some(bin) = &self.agent_bin {
            c.env("CFGM_AGENT_BIN", bin);
        }
        c
    }
}

/// A running host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// Datacenter name from the inventory (e.g. `ams01`).
    pub dc: String,
    /// Datacenter network number N: the host lives in 10.77.N.0/24.
    pub dc_net: u8,
    pub address: Ipv4Addr,
    pub role: Option<String>,
    pub tags: Vec<String>,
}

impl Host {
    /// The controller (this machine) as the host sees it: 10.77.N.1, named `controller` inside.
    pub fn controller(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.dc_net, 1)
    }

    /// The router between datacenters, the host's default gateway: 10.77.N.254.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.dc_net, 254)
    }
}

#[derive(Deserialize)]
struct StateInventory {
    #[serde(default)]
    fleet: BTreeMap<String, String>,
    #[serde(default)]
    hosts: BTreeMap<String, StateHost>,
}

#[derive(Deserialize)]
struct StateHost {
    dc: String,
    address: Ipv4Addr,
    dc_net: u8,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// The result of a command run on a host.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Fail with everything the command printed unless it exited 0.
    pub fn ok(self) -> Result<Output> {
        if !self.success() {
            bail!(
                "exit {:?}\n--- stdout\n{}--- stderr\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// A fleet that is up. Dropping an owned fleet (from [`Fleet::up`]) tears it down.
#[derive(Debug)]
pub struct Fleet {
    spec: FleetSpec,
    hosts: Vec<Host>,
    git_url: String,
    owned: bool,
    down: AtomicBool,
    up_time: Duration,
}

impl Fleet {
    /// Bring the fleet up (`testing/fleet up`): hosts from the spec's inventory, each with systemd,
    /// sshd and the agent; returns once every host accepts ssh. A fleet already up with the same
    /// hosts is reused; any other leftover (an unclean stop) is cleaned up first.
    pub fn up(spec: FleetSpec) -> Result<Fleet> {
        spec.inventory()?;
        let t0 = Instant::now();
        let status = spec
            .command("up")
            .stdin(Stdio::null())
            .stdout(Stdio::null()) // the script's summary; its log goes to stderr
            .status()
            .with_context(|| format!("running {} up", spec.script.display()))?;
        let up_time = t0.elapsed();
        // From here on the fleet (or what a failed `up` left) is ours to tear down.
        let mut fleet = Fleet {
            spec,
            hosts: Vec::new(),
            git_url: String::new(),
            owned: true,
            down: AtomicBool::new(false),
            up_time,
        };
        if !status.success() {
            bail!("`fleet up` failed ({status})");
        }
        fleet.load_state()?;
        Ok(fleet)
    }

    /// Use a fleet that `testing/fleet up` brought up in `state_dir`; it is not torn down on drop.
    pub fn attach(state_dir: impl Into<PathBuf>) -> Result<Fleet> {
        let spec = FleetSpec::from_env().state_dir(state_dir);
        let st = spec.command("guard").status()?; // safety route before any dial
        if !st.success() {
            bail!("`fleet guard` failed ({st})");
        }
        if !spec.state_dir.join("up").exists() {
            bail!("no fleet is up in {}", spec.state_dir.display());
        }
        let mut fleet = Fleet {
            spec,
            hosts: Vec::new(),
            git_url: String::new(),
            owned: false,
            down: AtomicBool::new(false),
            up_time: Duration::ZERO,
        };
        fleet.load_state()?;
        Ok(fleet)
    }

    fn load_state(&mut self) -> Result<()> {
        let path = self.inventory_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let inv: StateInventory =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut hosts = Vec::new();
        for (name, h) in inv.hosts {
            check_host(&name, h.address)?;
            hosts.push(Host {
                name,
                dc: h.dc,
                dc_net: h.dc_net,
                address: h.address,
                role: h.role,
                tags: h.tags,
            });
        }
        if hosts.is_empty() {
            bail!("{} lists no hosts", path.display());
        }
        hosts.sort_by_key(|h| h.address);
        self.hosts = hosts;
        self.git_url = inv
            .fleet
            .get("git_url")
            .cloned()
            .unwrap_or_else(|| "git://controller/states".into());
        Ok(())
    }

    /// The hosts, ordered by address (so grouped by datacenter).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Datacenter names, ordered by their network number.
    pub fn datacenters(&self) -> Vec<String> {
        let mut v: Vec<(u8, String)> = self
            .hosts
            .iter()
            .map(|h| (h.dc_net, h.dc.clone()))
            .collect();
        v.sort();
        v.dedup();
        v.into_iter().map(|(_, d)| d).collect()
    }

    /// The hosts of one datacenter.
    pub fn in_dc(&self, dc: &str) -> Vec<&Host> {
        self.hosts.iter().filter(|h| h.dc == dc).collect()
    }

    pub fn spec(&self) -> &FleetSpec {
        &self.spec
    }

    pub fn state_dir(&self) -> &Path {
        &self.spec.state_dir
    }

    /// The fleet's inventory: every host with its inventory fields, plus a `[fleet]` table with
    /// the paths below.
    pub fn inventory_path(&self) -> PathBuf {
        self.spec.state_dir.join("inventory.toml")
    }

    /// An ssh_config with an entry per host name and address (root, the fleet key, strict
    /// host-key checking against [`Fleet::known_hosts`], batch mode).
    pub fn ssh_config(&self) -> PathBuf {
        self.spec.state_dir.join("ssh_config")
    }

    /// The ssh client private key (root on every host accepts it).
    pub fn key(&self) -> PathBuf {
        self.spec.state_dir.join("keys/id_ed25519")
    }

    /// known_hosts with every host's real ed25519 host key, under its name and its address.
    pub fn known_hosts(&self) -> PathBuf {
        self.spec.state_dir.join("known_hosts")
    }

    /// The apt proxy's access log on the controller.
    pub fn proxy_log(&self) -> PathBuf {
        self.spec.state_dir.join("log/apt-cacher.log")
    }

    /// The states repository as seen from inside a host (`git://controller/states`).
    pub fn git_url(&self) -> &str {
        &self.git_url
    }

    /// How long `up` took (zero for an attached fleet).
    pub fn up_time(&self) -> Duration {
        self.up_time
    }

    /// An `ssh` command for `host` using the fleet's ssh_config; add the remote command.
    ///
    /// Panics if `host` is neither the name nor the address of a host of this fleet: nothing
    /// else is ever dialled (a typo must not turn into a DNS lookup and a connection out).
    pub fn ssh_command(&self, host: &str) -> Command {
        assert!(
            self.hosts
                .iter()
                .any(|h| h.name == host || h.address.to_string() == host),
            "{host} is not a host of this fleet"
        );
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.ssh_config()).arg(host).arg("--");
        c
    }

    /// Run a shell command on a host as root ([`SSH_TIMEOUT`]).
    pub fn ssh(&self, host: &str, cmd: &str) -> Result<Output> {
        self.ssh_timeout(host, cmd, SSH_TIMEOUT)
    }

    /// Run a shell command on a host as root; killed (an error) after `timeout`.
    pub fn ssh_timeout(&self, host: &str, cmd: &str, timeout: Duration) -> Result<Output> {
        let mut c = self.ssh_command(host);
        c.arg(cmd);
        run(c, timeout).with_context(|| format!("ssh {host} {cmd:?}"))
    }

    /// Memory of a host: the proportional set size (PSS) of every process in its cgroup (its
    /// systemd and everything below it; not nspawn and its supervisor on the controller), in bytes.
    pub fn host_memory(&self, host: &str) -> Result<u64> {
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(|r| Path::new(r).join("fleet").join(host))
            .find(|p| p.is_dir())
            .with_context(|| format!("no cgroup for host {host}"))?;
        // Not the host's supervisor (`pid`: it boots the host again after a reboot) nor
        // systemd-nspawn (`nspawn.pid`): they run on the controller, not in the host.
        let dir = self.spec.state_dir.join("hosts").join(host);
        let outside: Vec<String> = ["pid", "nspawn.pid"]
            .iter()
            .map(|f| {
                std::fs::read_to_string(dir.join(f))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        let mut pids = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d)?.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    dirs.push(e.path());
                }
            }
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            pids.extend(
                procs
                    .lines()
                    .filter(|p| !outside.iter().any(|o| o == p))
                    .map(str::to_owned),
            );
        }
        let mut kib = 0u64;
        for p in pids {
            let rollup =
                std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
            for l in rollup.lines() {
                if let Some(v) = l.strip_prefix("Pss:") {
                    kib += v
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap_or(0);
                }
            }
        }
        Ok(kib * 1024)
    }

    /// Reboot a host (`systemctl reboot` inside) and wait until it answers ssh again from a new
    /// boot, on its own disk (`testing/fleet` boots it again when its systemd asks for a reboot).
    /// Returns how long it was away.
    pub fn reboot(&self, host: &str, timeout: Duration) -> Result<Duration> {
        let boot_id = || -> Result<String> {
            let o = self
                .ssh_timeout(
                    host,
                    "cat /proc/sys/kernel/random/boot_id",
                    Duration::from_secs(10),
                )?
                .ok()?;
            Ok(o.stdout.trim().to_string())
        };
        let before = boot_id()?;
        let t0 = Instant::now();
        // The connection dies with the host: its exit status says nothing.
        let _ = self.ssh_timeout(host, "systemctl reboot", Duration::from_secs(10));
        while t0.elapsed() < timeout {
            match boot_id() {
                Ok(now) if !now.is_empty() && now != before => return Ok(t0.elapsed()),
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        bail!("{host} did not come back within {timeout:?} of a reboot")
    }

    /// Run a shell command on a host with `input` on its stdin, e.g. `cat > /etc/x` to write a
    /// file ([`SSH_TIMEOUT`]).
    pub fn ssh_with_input(&self, host: &str, cmd: &str, input: &[u8]) -> Result<Output> {
        let mut c = self.ssh_command(host);
        c.arg(cmd);
        run_with_input(c, Some(input), SSH_TIMEOUT).with_context(|| format!("ssh {host} {cmd:?}"))
    }

    /// Re-commit the states tree into the served repository and refresh the agent binary in
    /// every host (`testing/fleet sync`).
    pub fn sync(&self) -> Result<()> {
        let st = self.spec.command("sync").stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("`fleet sync` failed ({st})");
        }
        Ok(())
    }

    /// The allowed_signers file the hosts' agents are installed with: the fleet's release key,
    /// which signs every commit `up`, `sync` and [`Fleet::commit`] put on the served `main`.
    pub fn allowed_signers(&self) -> PathBuf {
        self.spec.state_dir.join("signing/allowed_signers")
    }

    /// The release key (private; `.pub` next to it).
    pub fn signing_key(&self) -> PathBuf {
        self.spec.state_dir.join("signing/release_ed25519")
    }

    /// A key no host trusts (private; `.pub` next to it), for [`Fleet::commit_untrusted`].
    pub fn untrusted_key(&self) -> PathBuf {
        self.spec.state_dir.join("signing/untrusted_ed25519")
    }

    fn script_stdout(&self, mut c: Command, what: &str) -> Result<String> {
        c.stdin(Stdio::null());
        let out = run(c, Duration::from_secs(600)).with_context(|| what.to_string())?;
        let out = out.ok().with_context(|| what.to_string())?;
        Ok(out.stdout.trim().to_string())
    }

    /// A new commit of the states tree (as it is now) on the served `main`, SSH-signed by the
    /// release key (`testing/fleet commit`); returns its id. Always a new commit, also when the
    /// tree did not change.
    pub fn commit(&self, message: &str) -> Result<String> {
        let mut c = self.spec.command("commit");
        c.args(["-m", message]);
        self.script_stdout(c, "fleet commit")
    }

    /// A new commit of the files in `tree` on the served `main`, signed by a key that is not in
    /// the hosts' allowed_signers (`testing/fleet commit --untrusted --tree DIR`); returns its id.
    pub fn commit_untrusted(&self, tree: &Path, message: &str) -> Result<String> {
        let mut c = self.spec.command("commit");
        c.arg("--untrusted")
            .arg("--tree")
            .arg(tree)
            .args(["-m", message]);
        self.script_stdout(c, "fleet commit --untrusted")
    }

    /// A new commit of the files in `tree` on branch `branch` of the served repository (a
    /// release a rollout takes to hosts), signed by the release key — or, `untrusted`, by a key
    /// no host trusts (`testing/fleet commit --branch B --tree DIR`); returns its id.
    pub fn commit_branch(
        &self,
        tree: &Path,
        branch: &str,
        untrusted: bool,
        message: &str,
    ) -> Result<String> {
        let mut c = self.spec.command("commit");
        if untrusted {
            c.arg("--untrusted");
        }
        c.arg("--tree")
            .arg(tree)
            .args(["--branch", branch, "-m", message]);
        self.script_stdout(c, "fleet commit --branch")
    }

    /// The served states repository (bare) on the controller.
    pub fn repo(&self) -> PathBuf {
        self.spec.state_dir.join("git/states")
    }

    /// The Prometheus server on the controller (`http://ADDRESS:PORT`), scraping every host's
    /// node exporter.
    pub fn prometheus_url(&self) -> Result<String> {
        let p = self.spec.state_dir.join("prometheus_url");
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("{}", p.display()))?
            .trim()
            .to_string())
    }

    /// Installs `cfgm-agent` as a systemd service on these hosts (`testing/fleet install-agent`):
    /// it follows `git://controller/states`, trusts [`Fleet::allowed_signers`], runs every
    /// `FLEET_AGENT_INTERVAL` seconds (default 30) and starts its first run at once.
    pub fn install_agents<S: AsRef<str>>(&self, hosts: &[S]) -> Result<()> {
        let mut c = self.spec.command("install-agent");
        for h in hosts {
            assert!(
                self.host(h.as_ref()).is_some(),
                "{} is not a host of this fleet",
                h.as_ref()
            );
            c.arg(h.as_ref());
        }
        self.script_stdout(c, "fleet install-agent").map(|_| ())
    }

    /// `GET http://ADDRESS:PORT/PATH` of a host of the fleet, from the controller; the body of a
    /// 200 answer. Panics if `host` is not a host of this fleet (nothing else is dialled).
    pub fn http_get(&self, host: &str, port: u16, path: &str) -> Result<String> {
        use std::io::Write;
        let h = self
            .hosts
            .iter()
            .find(|h| h.name == host || h.address.to_string() == host)
            .unwrap_or_else(|| panic!("{host} is not a host of this fleet"));
        let addr = std::net::SocketAddr::from((h.address, port));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect to {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)
            .with_context(|| format!("read from {addr}"))?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("no HTTP answer from {addr}: {text:?}"))?;
        let status = head.lines().next().unwrap_or("");
        if status.split_whitespace().nth(1) != Some("200") {
            bail!("GET http://{addr}{path}: {status}");
        }
        Ok(body.to_string())
    }

    /// Tear the fleet down now (idempotent; also done on drop for a fleet from [`Fleet::up`]).
    pub fn down(&self) -> Result<()> {
        if self.down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let st = self
            .spec
            .command("down")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("running fleet down")?;
        if !st.success() {
            bail!("`fleet down` failed ({st})");
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = self.down() {
                eprintln!("cfgm-testing: tearing the fleet down failed: {e:#}");
            }
        }
    }
}

/// Run a command with piped output; kill it after `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> Result<Output> {
    run_with_input(cmd, None, timeout)
}

/// Run a command with `input` on its stdin (none: /dev/null) and piped output; kill it after
/// `timeout`.
pub fn run_with_input(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let data = data.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data); // dropped afterwards: EOF
        });
    }
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let status: ExitStatus = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Ok(Output {
        code: status.code(),
        stdout,
        stderr,
        elapsed: t0.elapsed(),
    })
}

static SHARED: OnceLock<std::result::Result<Fleet, String>> = OnceLock::new();

extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn teardown_shared() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(Ok(fleet)) = SHARED.get() {
            if fleet.owned {
                if let Err(e) = fleet.down() {
                    eprintln!("cfgm-testing: tearing the shared fleet down failed: {e:#}");
                }
            }
        }
    });
}

/// The one fleet of this test process: brought up by the first caller (from
/// [`FleetSpec::from_env`]), shared by every test thread, torn down when the process exits
/// (also when tests failed). With `CFGM_FLEET_ATTACH=<state dir>` an already running fleet is
/// used instead and left running.
///
/// Panics (failing the calling test) if the fleet cannot be brought up.
pub fn shared() -> &'static Fleet {
    let r = SHARED.get_or_init(|| {
        let fleet = match env_path("CFGM_FLEET_ATTACH") {
            Some(dir) => Fleet::attach(dir),
            None => {
                // SAFETY: registering a plain extern "C" fn with libc's atexit.
                unsafe {
                    atexit(teardown_shared);
                }
                Fleet::up(FleetSpec::from_env())
            }
        };
        fleet.map_err(|e| format!("{e:#}"))
    });
    match r {
        Ok(f) => f,
        Err(e) => panic!("the fleet did not come up: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_parses_the_states_tree_and_ignores_unknown_fields() {
        let inv = Inventory::load(&crate_dir().join("../states/inventory.toml")).unwrap();
        assert!(inv.hosts.len() >= 6, "at least 6 hosts");
        let dcs: std::collections::BTreeSet<_> = inv.hosts.values().map(|h| &h.dc).collect();
        assert!(dcs.len() >= 3, "3 datacenters: {dcs:?}");
        let inv = Inventory::parse(
            "[hosts.a1]\ndc = \"x\"\naddress = \"10.77.4.9\"\nrole = \"r\"\nvars = { k = 1 }\nfoo = 2\n",
        )
        .unwrap();
        assert_eq!(inv.hosts["a1"].address, Ipv4Addr::new(10, 77, 4, 9));
    }

    #[test]
    fn inventory_rejects_addresses_outside_the_box_and_long_names() {
        let outside = Inventory::parse("[hosts.a]\ndc = \"x\"\naddress = \"10.99.0.1\"\n");
        assert!(outside.unwrap_err().to_string().contains("10.77.N.H"));
        let router = Inventory::parse("[hosts.a]\ndc = \"x\"\naddress = \"10.77.1.254\"\n");
        assert!(router.is_err());
        let long = Inventory::parse("[hosts.abcdefghijklm]\ndc = \"x\"\naddress = \"10.77.1.5\"\n");
        assert!(long.unwrap_err().to_string().contains("1-12"));
    }

    /// A stand-in for `testing/fleet` that records the verbs it is called
    /// with (`testing/fixtures/fake-fleet`, committed: see its comment).
    fn fake_fleet(dir: &Path) -> FleetSpec {
        let script = crate_dir().join("fixtures/fake-fleet");
        let mut spec = FleetSpec::from_tree(crate_dir().join("../states")).state_dir(dir);
        spec.script = script;
        spec
    }

    fn calls(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
    }

    #[test]
    fn fleet_up_reads_hosts_and_drop_tears_down() {
        let dir = tempfile::tempdir().unwrap();
        {
            let fleet = Fleet::up(fake_fleet(dir.path())).unwrap();
            let names: Vec<_> = fleet.hosts().iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["a1", "b1"], "ordered by address");
            assert_eq!(fleet.hosts()[1].controller(), Ipv4Addr::new(10, 77, 2, 1));
            assert_eq!(fleet.hosts()[1].gateway(), Ipv4Addr::new(10, 77, 2, 254));
            assert_eq!(fleet.datacenters(), ["ams01", "lis01"]);
            assert_eq!(calls(dir.path()), "up\n");
        }
        assert_eq!(calls(dir.path()), "up\ndown\n");
    }

    #[test]
    fn a_panicking_test_still_tears_the_fleet_down() {
        let dir = tempfile::tempdir().unwrap();
        let spec = fake_fleet(dir.path());
        let r = std::panic::catch_unwind(move || {
            let _fleet = Fleet::up(spec).unwrap();
            panic!("test failure while the fleet is up");
        });
        assert!(r.is_err());
        assert_eq!(calls(dir.path()), "up\ndown\n");
    }

    #[test]
    fn explicit_down_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::up(fake_fleet(dir.path())).unwrap();
        fleet.down().unwrap();
        fleet.down().unwrap();
        drop(fleet);
        assert_eq!(calls(dir.path()), "up\ndown\n");
    }

    #[test]
    fn commits_and_agent_installs_go_through_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::up(fake_fleet(dir.path())).unwrap();
        assert_eq!(fleet.commit("a message").unwrap(), "0123abcd");
        let tree = dir.path().join("tree");
        assert_eq!(fleet.commit_untrusted(&tree, "evil").unwrap(), "0123abcd");
        fleet.install_agents(&["a1", "b1"]).unwrap();
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args,
            format!(
                "commit -m a message\ncommit --untrusted --tree {} -m evil\ninstall-agent a1 b1\n",
                tree.display()
            )
        );
        assert_eq!(
            fleet.allowed_signers(),
            dir.path().join("signing/allowed_signers")
        );
    }

    #[test]
    fn http_get_dials_only_hosts_of_the_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::up(fake_fleet(dir.path())).unwrap();
        let dialled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fleet.http_get("10.77.9.9", 80, "/")
        }));
        let refusal = dialled.expect_err("an address outside the fleet was dialled");
        let said = refusal
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| refusal.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(said.contains("is not a host of this fleet"), "{said}");
    }

    #[test]
    fn run_kills_a_command_after_its_timeout() {
        let mut c = Command::new("sleep");
        c.arg("30");
        let t0 = Instant::now();
        let r = run(c, Duration::from_millis(200));
        assert!(r.unwrap_err().to_string().contains("timed out"));
        assert!(t0.elapsed() < Duration::from_secs(10));
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let o = run(c, Duration::from_secs(30)).unwrap();
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        let c = Command::new("cat");
        let o = run_with_input(c, Some(b"to stdin"), Duration::from_secs(30)).unwrap();
        assert_eq!(o.stdout, "to stdin");
    }
}
