//! Executing a rollout: waves of hosts, each converged by its own agent to
//! a commit, health gates, failure budgets, bakes, a journal that survives
//! the operator, and events for whoever watches.
//!
//! The plan of a rollout (waves, budgets, the journal's records) is
//! `cfgm_core::rollout`; this module runs it. It does not know how a host
//! is reached: a [`Transport`] converges one host and runs its health
//! command (SSH is one, [`SshTransport`]; agents pulling a per-host ref
//! would be another), and [`Gates`] answers HTTP and PromQL checks. What
//! happens is told to an [`Observer`] (the live view, `--json` lines) and
//! written to the [`Journal`] before the next host starts.

use crate::ssh::{Session, SshOptions};
use cfgm_core::rollout::{Budget, HostState, Record, ResolvedWave};
use cfgm_core::tree::Host;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one host's agent said.
#[derive(Clone, Debug)]
pub struct HostRun {
    /// The agent's exit code (cfgm_core::exit).
    pub exit: i32,
    /// Its JSON report.
    pub report: Value,
}

/// How hosts are reached.
pub trait Transport: Sync {
    /// Has the host's agent converge to `commit` (a dry run: plan it) and
    /// returns its report; `Err` when the host could not be asked.
    fn converge(&self, host: &Host, commit: &str, dry_run: bool) -> Result<HostRun, String>;
    /// Runs a health command on the host: `Ok` when it exits 0.
    fn check(&self, host: &Host, argv: &[String]) -> Result<(), String>;
}

/// Health checks that are not run on a host.
pub trait Gates: Sync {
    /// GET `url`: the HTTP status.
    fn http(&self, url: &str) -> Result<u16, String>;
    /// How many series `query` returns from the Prometheus at `base`.
    fn promql(&self, base: &str, query: &str) -> Result<usize, String>;
}

/// What a rollout tells its watchers.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Started {
        id: String,
        commit: String,
        dry_run: bool,
        journal: String,
    },
    WaveStarted {
        wave: usize,
        name: String,
        hosts: usize,
        concurrency: usize,
        max_failures: String,
    },
    HostStarted {
        wave: usize,
        host: String,
        dc: String,
    },
    HostDone {
        wave: usize,
        host: String,
        dc: String,
        state: HostState,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        changed: u64,
        failed_resources: Vec<String>,
        /// From dispatch to verdict, gates included.
        seconds: f64,
        /// What the host's agent reported as its own run time.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_seconds: Option<f64>,
    },
    Gate {
        wave: usize,
        what: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Baking {
        wave: usize,
        left_seconds: u64,
    },
    WaveDone {
        wave: usize,
        ok: usize,
        failed: usize,
        halted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Finished {
        id: String,
        outcome: String,
        /// The wave that halted it.
        #[serde(skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Hears a rollout's events (from several threads).
pub trait Observer: Sync {
    fn event(&self, e: &Event);
}

/// The rollout's journal: JSON lines, each fsynced before the rollout goes
/// on, so a killed `cfgm apply` resumes where it stopped.
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Journal {
    /// Creates (or, to resume, appends to) `DIR/ID.jsonl`.
    pub fn open(dir: &Path, id: &str) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{id}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and makes it durable.
    pub fn write(&self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().expect("journal");
        f.write_all(&line)?;
        f.sync_data()
    }
}

/// The rollouts in a journal directory, newest first: (id, path).
pub fn journals(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let p = e.path();
                    let id = p.file_name()?.to_str()?.strip_suffix(".jsonl")?.to_string();
                    Some((id, p))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every wave within its budget.
    Completed,
    /// A wave exceeded its budget (or a gate failed): later waves untouched.
    Halted { wave: usize, reason: String },
    /// Stopped by the operator; resumable.
    Interrupted,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Halted { .. } => "halted",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// A rollout to run (or resume).
pub struct Runner<'a> {
    pub id: String,
    pub commit: String,
    pub dry_run: bool,
    pub waves: Vec<ResolvedWave>,
    pub hosts: &'a BTreeMap<String, Host>,
    pub prometheus_url: Option<String>,
    pub transport: &'a dyn Transport,
    pub gates: &'a dyn Gates,
    pub observer: &'a dyn Observer,
    pub journal: &'a Journal,
    /// Set (Ctrl-C) to start no new host; the running ones finish.
    pub stop: Arc<AtomicBool>,
    /// Hosts already converged at this commit (a resume): not run again.
    pub done: BTreeMap<String, HostState>,
    /// Waves finished before a resume.
    pub waves_done: Vec<usize>,
    /// How often gates are checked during a bake.
    pub gate_every: Duration,
}

/// A host's address for gates: its inventory address, else its name.
fn address(h: &Host) -> String {
    h.address.clone().unwrap_or_else(|| h.name.clone())
}

/// Failed resources of an agent report, as `kind[name]: error` lines.
fn failed_resources(report: &Value) -> Vec<String> {
    report["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| matches!(r["outcome"].as_str(), Some("failed") | Some("would-fail")))
                .map(|r| {
                    format!(
                        "{}[{}]: {}",
                        r["id"]["kind"].as_str().unwrap_or("?"),
                        r["id"]["name"].as_str().unwrap_or("?"),
                        r["error"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Runner<'_> {
    fn log(&self, r: &Record) {
        if let Err(e) = self.journal.write(r) {
            // A journal that cannot be written cannot promise a resume.
            eprintln!("cfgm: journal {}: {e}", self.journal.path().display());
        }
    }

    /// One host: converge, then its gates. (state, reason, changed, failed resources)
    fn host(
        &self,
        wave: &ResolvedWave,
        h: &Host,
        run: Result<HostRun, String>,
    ) -> (HostState, Option<String>, u64, Vec<String>, Option<String>) {
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                return (
                    HostState::Failed,
                    Some(format!("unreachable: {e}")),
                    0,
                    vec![],
                    None,
                )
            }
        };
        let digest =
            Some(blake3::hash(run.report.to_string().as_bytes()).to_hex()[..16].to_string());
        let changed = run.report["counts"]["changed"].as_u64().unwrap_or(0)
            + run.report["counts"]["would_change"].as_u64().unwrap_or(0);
        let failed = failed_resources(&run.report);
        let pull = &run.report["pull"];
        let accepted = matches!(pull["verdict"].as_str(), Some("fresh") | Some("unchanged"));
        if !accepted {
            let why = pull["reason"]
                .as_str()
                .or(run.report["reason"].as_str())
                .unwrap_or("the agent refused the commit");
            return (
                HostState::Failed,
                Some(format!("refused: {why}")),
                changed,
                failed,
                digest,
            );
        }
        let status = run.report["status"].as_str().unwrap_or("");
        if run.exit != 0 || status != "converged" {
            let why = if failed.is_empty() {
                run.report["reason"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("agent exited {} ({status})", run.exit))
            } else {
                format!(
                    "{} resource{} failed",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" }
                )
            };
            return (HostState::Failed, Some(why), changed, failed, digest);
        }
        if self.dry_run {
            return (HostState::Planned, None, changed, failed, digest);
        }
        let health = &wave.wave.health;
        if !health.command.is_empty() {
            if let Err(e) = self.transport.check(h, &health.command) {
                return (
                    HostState::Failed,
                    Some(format!("health command: {e}")),
                    changed,
                    failed,
                    digest,
                );
            }
        }
        if let Some(url) = &health.http {
            if let Err(e) = self.http_gate(url, h) {
                return (HostState::Failed, Some(e), changed, failed, digest);
            }
        }
        (HostState::Converged, None, changed, failed, digest)
    }

    fn http_gate(&self, url: &str, h: &Host) -> Result<(), String> {
        let url = url
            .replace("{address}", &address(h))
            .replace("{name}", &h.name);
        match self.gates.http(&url) {
            Ok(code) if (200..300).contains(&code) => Ok(()),
            Ok(code) => Err(format!("health http: GET {url} answered {code}")),
            Err(e) => Err(format!("health http: GET {url}: {e}")),
        }
    }

    /// Runs the waves; the outcome, also written to the journal.
    pub fn run(&self) -> Outcome {
        self.observer.event(&Event::Started {
            id: self.id.clone(),
            commit: self.commit.clone(),
            dry_run: self.dry_run,
            journal: self.journal.path().display().to_string(),
        });
        let mut outcome = Outcome::Completed;
        for (wi, wave) in self.waves.iter().enumerate() {
            if self.waves_done.contains(&wi) {
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                outcome = Outcome::Interrupted;
                break;
            }
            match self.wave(wi, wave) {
                Ok(()) => {}
                Err(o) => {
                    outcome = o;
                    break;
                }
            }
        }
        let rec = match &outcome {
            Outcome::Interrupted => Record::Interrupted { time: now() },
            o => Record::Finished {
                outcome: o.name().into(),
                time: now(),
            },
        };
        self.log(&rec);
        let (wave, reason) = match &outcome {
            Outcome::Halted { wave, reason } => (Some(*wave), Some(reason.clone())),
            _ => (None, None),
        };
        self.observer.event(&Event::Finished {
            id: self.id.clone(),
            outcome: outcome.name().into(),
            wave,
            reason,
        });
        outcome
    }

    fn wave(&self, wi: usize, wave: &ResolvedWave) -> Result<(), Outcome> {
        let w = &wave.wave;
        self.log(&Record::WaveStarted {
            wave: wi,
            time: now(),
        });
        self.observer.event(&Event::WaveStarted {
            wave: wi,
            name: w.name.clone(),
            hosts: wave.hosts.len(),
            concurrency: w.concurrency,
            max_failures: w.max_failures.to_string(),
        });
        let todo: Vec<&Host> = wave
            .hosts
            .iter()
            .filter_map(|n| self.hosts.get(n))
            .filter(|h| {
                !matches!(
                    self.done.get(&h.name),
                    Some(HostState::Converged | HostState::Planned)
                )
            })
            .collect();
        let already = wave.hosts.len() - todo.len();
        let allowed = w.max_failures.allowed(wave.hosts.len());
        let failed = AtomicUsize::new(0);
        let ok = AtomicUsize::new(already);
        let over = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..w.concurrency.max(1).min(todo.len().max(1)) {
                s.spawn(|| loop {
                    // Nothing new starts once the budget is spent or the
                    // operator stopped the rollout.
                    if over.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(h) = todo.get(i) else { break };
                    self.observer.event(&Event::HostStarted {
                        wave: wi,
                        host: h.name.clone(),
                        dc: h.dc.clone(),
                    });
                    let t0 = Instant::now();
                    let run = self.transport.converge(h, &self.commit, self.dry_run);
                    // The agent's own converge time, to tell it from the
                    // rollout's (SSH, dispatch, gates).
                    let agent_seconds =
                        run.as_ref().ok().and_then(|r| r.report["seconds"].as_f64());
                    let (state, reason, changed, failed_res, report) = self.host(wave, h, run);
                    self.log(&Record::Host {
                        wave: wi,
                        host: h.name.clone(),
                        state,
                        reason: reason.clone(),
                        report,
                        failed_resources: failed_res.clone(),
                        changed,
                        time: now(),
                    });
                    if state == HostState::Failed {
                        let n = failed.fetch_add(1, Ordering::SeqCst) + 1;
                        if n > allowed {
                            over.store(true, Ordering::SeqCst);
                        }
                    } else {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    self.observer.event(&Event::HostDone {
                        wave: wi,
                        host: h.name.clone(),
                        dc: h.dc.clone(),
                        state,
                        reason,
                        changed,
                        failed_resources: failed_res,
                        seconds: t0.elapsed().as_secs_f64(),
                        agent_seconds,
                    });
                });
            }
        });
        let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
        let mut halt: Option<String> = None;
        if failed > allowed {
            halt = Some(format!(
                "{failed} host{} failed, more than the wave's budget of {} ({})",
                if failed == 1 { "" } else { "s" },
                allowed,
                w.max_failures
            ));
        } else if self.stop.load(Ordering::SeqCst) {
            self.log(&Record::WaveDone {
                wave: wi,
                ok,
                failed,
                halted: false,
                reason: Some("interrupted".into()),
                time: now(),
            });
            return Err(Outcome::Interrupted);
        } else if !self.dry_run {
            halt = self.bake(wi, wave);
        }
        self.log(&Record::WaveDone {
            wave: wi,
            ok,
            failed,
            halted: halt.is_some(),
            reason: halt.clone(),
            time: now(),
        });
        self.observer.event(&Event::WaveDone {
            wave: wi,
            ok,
            failed,
            halted: halt.is_some(),
            reason: halt.clone(),
        });
        match halt {
            Some(reason) => Err(Outcome::Halted { wave: wi, reason }),
            None => Ok(()),
        }
    }

    /// Waits the wave's bake time, checking the PromQL gate (and the HTTP
    /// gate of the wave's hosts) as it goes; a failing gate halts.
    fn bake(&self, wi: usize, wave: &ResolvedWave) -> Option<String> {
        let w = &wave.wave;
        let until = Instant::now() + w.bake();
        loop {
            if let (Some(q), Some(base)) = (&w.health.promql, &self.prometheus_url) {
                let r = self.gates.promql(base, q);
                let (ok, detail) = match &r {
                    Ok(0) => (true, None),
                    Ok(n) => (false, Some(format!("`{q}` returned {n} series"))),
                    Err(e) => (false, Some(format!("`{q}`: {e}"))),
                };
                self.observer.event(&Event::Gate {
                    wave: wi,
                    what: "promql".into(),
                    ok,
                    detail: detail.clone(),
                });
                if !ok {
                    return Some(format!("PromQL gate: {}", detail.unwrap_or_default()));
                }
            }
            if let Some(url) = &w.health.http {
                for h in wave.hosts.iter().filter_map(|n| self.hosts.get(n)) {
                    if let Err(e) = self.http_gate(url, h) {
                        return Some(format!("{}: {e}", h.name));
                    }
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stop.load(Ordering::SeqCst) {
                return None;
            }
            self.observer.event(&Event::Baking {
                wave: wi,
                left_seconds: left.as_secs(),
            });
            std::thread::sleep(left.min(self.gate_every));
        }
    }
}

// ---- the SSH transport -----------------------------------------------------

/// How long to wait before asking a busy agent again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Reaches hosts over SSH and runs their agent there: the agent fetches and
/// verifies the commit itself (the operator's machine is not trusted to
/// ship content).
pub struct SshTransport {
    pub ssh: SshOptions,
    /// The agent on the hosts.
    pub agent: String,
    /// The longest one host's converge may take.
    pub converge_timeout: Duration,
}

impl SshTransport {
    fn session(&self, h: &Host) -> Result<Session, String> {
        Session::connect(&address(h), &self.ssh).map_err(|e| e.to_string())
    }
}

impl Transport for SshTransport {
    fn converge(&self, h: &Host, commit: &str, dry_run: bool) -> Result<HostRun, String> {
        let s = self.session(h)?;
        let mut argv = vec![self.agent.as_str(), "apply", "--commit", commit, "--json"];
        if dry_run {
            argv.push("--dry-run");
        }
        // The host's own agent may be in a cycle (it holds the run lock):
        // "busy, retry later" is asked again until the converge timeout.
        let deadline = Instant::now() + self.converge_timeout;
        let out = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let out = s.exec(&argv, left).map_err(|e| e.to_string())?;
            if out.status != i32::from(cfgm_core::exit::BUSY) || Instant::now() >= deadline {
                break out;
            }
            std::thread::sleep(BUSY_RETRY.min(deadline.saturating_duration_since(Instant::now())));
        };
        match serde_json::from_slice::<Value>(&out.stdout) {
            Ok(report) if report.is_object() => Ok(HostRun {
                exit: out.status,
                report,
            }),
            _ => {
                let err = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
                Err(format!(
                    "agent exited {} without a report: {}",
                    out.status,
                    tail[tail.len().saturating_sub(2)..].join(" | ")
                ))
            }
        }
    }

    fn check(&self, h: &Host, argv: &[String]) -> Result<(), String> {
        let s = self.session(h)?;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = s
            .exec(&args, Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        if out.status == 0 {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(if out.stderr.is_empty() {
                &out.stdout
            } else {
                &out.stderr
            });
            Err(format!(
                "`{}` exited {}: {}",
                argv.join(" "),
                out.status,
                text.lines().last().unwrap_or("").trim()
            ))
        }
    }
}

// ---- gates over plain HTTP ---------------------------------------------------

/// HTTP and PromQL gates over plain HTTP/1.1 (the fleet's own network).
pub struct HttpGates {
    pub timeout: Duration,
}

/// Percent-encodes a query parameter.
pub fn urlencode(s: &str) -> String {
    let mut o = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

impl HttpGates {
    /// GET `url` (http:// only): (status, body).
    pub fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        use std::io::Read;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// is supported"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        let mut c = std::net::TcpStream::connect_timeout(&sock, self.timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        c.set_read_timeout(Some(self.timeout)).ok();
        c.set_write_timeout(Some(self.timeout)).ok();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nUser-Agent: cfgm\r\n\r\n"
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::new();
        c.take(16 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&buf);
        let code = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| "not an HTTP answer".to_string())?;
        let body = match buf.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => buf[i + 4..].to_vec(),
            None => Vec::new(),
        };
        Ok((code, body))
    }
}

impl Gates for HttpGates {
    fn http(&self, url: &str) -> Result<u16, String> {
        self.get(url).map(|(c, _)| c)
    }

    fn promql(&self, base: &str, query: &str) -> Result<usize, String> {
        let url = format!(
            "{}/api/v1/query?query={}",
            base.trim_end_matches('/'),
            urlencode(query)
        );
        let (code, body) = self.get(&url)?;
        // Prometheus answers chunked; the JSON is the part between the
        // first `{` and the last `}`.
        let text = String::from_utf8_lossy(&body);
        let json = match (text.find('{'), text.rfind('}')) {
            (Some(a), Some(b)) if a < b => &text[a..=b],
            _ => return Err(format!("{code}: not a Prometheus answer")),
        };
        let v: Value = serde_json::from_str(json).map_err(|e| format!("{code}: {e}"))?;
        if v["status"] != "success" {
            return Err(format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("error"),
                v["error"].as_str().unwrap_or("query failed")
            ));
        }
        Ok(v["data"]["result"].as_array().map(Vec::len).unwrap_or(0))
    }
}

/// A budget for people: "0", "2", "10%".
pub fn budget_text(b: &Budget) -> String {
    b.to_string()
}

#[cfg(test)]
mod tests {
    //! The orchestration against a stand-in transport: the real one is SSH
    //! to real hosts (the fleet tests in testing/ drive it end to end);
    //! here the budgets, halting, stopping and resuming are checked alone,
    //! with hosts that fail on purpose.
    use super::*;
    use cfgm_core::rollout::{Health, Slice, Wave};

    struct Stand {
        failing: Vec<&'static str>,
        ran: Mutex<Vec<String>>,
        stop_after: Option<(usize, Arc<AtomicBool>)>,
    }

    impl Transport for Stand {
        fn converge(&self, h: &Host, _: &str, _: bool) -> Result<HostRun, String> {
            let mut ran = self.ran.lock().unwrap();
            ran.push(h.name.clone());
            if let Some((n, stop)) = &self.stop_after {
                if ran.len() >= *n {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            if self.failing.contains(&h.name.as_str()) {
                return Err("connection refused".into());
            }
            Ok(HostRun {
                exit: 0,
                report: serde_json::json!({"status": "converged", "counts": {"changed": 1}, "pull": {"verdict": "fresh"}, "resources": []}),
            })
        }
        fn check(&self, _: &Host, _: &[String]) -> Result<(), String> {
            Ok(())
        }
    }

    struct NoGates;
    impl Gates for NoGates {
        fn http(&self, _: &str) -> Result<u16, String> {
            Ok(200)
        }
        fn promql(&self, _: &str, _: &str) -> Result<usize, String> {
            Ok(0)
        }
    }

    struct Quiet;
    impl Observer for Quiet {
        fn event(&self, _: &Event) {}
    }

    fn host(n: &str) -> Host {
        Host {
            name: n.into(),
            dc: "dc1".into(),
            role: "r".into(),
            address: None,
            tags: vec![],
            vars: serde_json::json!({}),
            span: cfgm_core::Span::new(cfgm_core::diag::FileId(0), 0..0),
        }
    }

    fn wave(name: &str, hosts: &[&str], budget: Budget) -> ResolvedWave {
        ResolvedWave {
            wave: Wave {
                name: name.into(),
                select: None,
                slice: Slice::All,
                concurrency: 1,
                max_failures: budget,
                bake: 0,
                health: Health::default(),
            },
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn run(
        stand: &Stand,
        waves: Vec<ResolvedWave>,
        dir: &Path,
        done: BTreeMap<String, HostState>,
        stop: Arc<AtomicBool>,
    ) -> Outcome {
        let hosts: BTreeMap<String, Host> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| (n.to_string(), host(n)))
            .collect();
        let journal = Journal::open(dir, "r1").unwrap();
        Runner {
            id: "r1".into(),
            commit: "c0ffee".into(),
            dry_run: false,
            waves,
            hosts: &hosts,
            prometheus_url: None,
            transport: stand,
            gates: &NoGates,
            observer: &Quiet,
            journal: &journal,
            stop,
            done,
            waves_done: vec![],
            gate_every: Duration::from_millis(10),
        }
        .run()
    }

    #[test]
    fn a_wave_over_its_budget_halts_and_later_waves_are_untouched() {
        let d = tempfile::tempdir().unwrap();
        let stand = Stand {
            failing: vec!["a"],
            ran: Mutex::default(),
            stop_after: None,
        };
        let out = run(
            &stand,
            vec![
                wave("canary", &["a"], Budget::Count(0)),
                wave("rest", &["b", "c"], Budget::Count(0)),
            ],
            d.path(),
            BTreeMap::new(),
            Arc::default(),
        );
        assert!(matches!(out, Outcome::Halted { wave: 0, .. }), "{out:?}");
        assert_eq!(*stand.ran.lock().unwrap(), ["a"]);
        let j = std::fs::read_to_string(d.path().join("r1.jsonl")).unwrap();
        let r = cfgm_core::rollout::Replayed::from_lines(&format!(
            "{}\n{j}",
            serde_json::to_string(&Record::Start {
                id: "r1".into(),
                commit: "c0ffee".into(),
                select: None,
                dry_run: false,
                time: 0,
                waves: vec![],
                prometheus_url: None
            })
            .unwrap()
        ))
        .unwrap();
        assert_eq!(r.hosts["a"].0, HostState::Failed);
        assert_eq!(r.finished.as_deref(), Some("halted"));
    }

    #[test]
    fn failures_within_the_budget_go_on() {
        let d = tempfile::tempdir().unwrap();
        let stand = Stand {
            failing: vec!["b"],
            ran: Mutex::default(),
            stop_after: None,
        };
        let out = run(
            &stand,
            vec![wave("all", &["a", "b", "c", "d"], Budget::Percent(25.0))],
            d.path(),
            BTreeMap::new(),
            Arc::default(),
        );
        assert_eq!(out, Outcome::Completed);
        assert_eq!(stand.ran.lock().unwrap().len(), 4);
    }

    #[test]
    fn a_stop_starts_no_new_host_and_a_resume_skips_converged_ones() {
        let d = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stand = Stand {
            failing: vec![],
            ran: Mutex::default(),
            stop_after: Some((2, stop.clone())),
        };
        let waves = vec![wave("all", &["a", "b", "c", "d", "e"], Budget::Count(0))];
        let out = run(&stand, waves.clone(), d.path(), BTreeMap::new(), stop);
        assert_eq!(out, Outcome::Interrupted);
        assert_eq!(*stand.ran.lock().unwrap(), ["a", "b"]);
        // Resume: what the journal says converged is not run again.
        let done: BTreeMap<String, HostState> = [
            ("a".to_string(), HostState::Converged),
            ("b".to_string(), HostState::Converged),
        ]
        .into_iter()
        .collect();
        let again = Stand {
            failing: vec![],
            ran: Mutex::default(),
            stop_after: None,
        };
        let out = run(&again, waves, d.path(), done, Arc::default());
        assert_eq!(out, Outcome::Completed);
        assert_eq!(*again.ran.lock().unwrap(), ["c", "d", "e"]);
    }

    #[test]
    fn query_parameters_are_percent_encoded() {
        assert_eq!(
            urlencode("cfgm_last_run_success == 0"),
            "cfgm_last_run_success%20%3D%3D%200"
        );
    }
}
