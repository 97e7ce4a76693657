//! The agent's Prometheus metrics: rendering, the textfile, the endpoint.
//!
//! This module owns the text exposition of the agent's state (format
//! 0.0.4: `# HELP` and `# TYPE` on every metric, counters ending in
//! `_total`, no timestamps — node exporter's textfile collector drops a file
//! that has them), writing it atomically for the textfile collector (a
//! temporary name that does not end in `.prom`, fsync, rename), and a small
//! HTTP endpoint answering `GET /metrics` on the one address it is given.
//!
//! It renders what it is handed ([`Snapshot`]) and keeps no state of its
//! own: counting runs and failures is the agent loop's job. The applied
//! commit is an info metric (`cfgm_applied_commit_info{commit,catalog} 1`),
//! so a new commit replaces one series instead of labelling every metric.

use cfgm_core::report::PullInfo;
use cfgm_core::{Outcome, Report, RunStatus};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters the agent keeps for the life of its process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Runs started.
    pub runs: u64,
    /// Fetched tips refused for their signature (or an unusable
    /// allowed_signers).
    pub verification_failures: u64,
    /// Tips refused as a rollback.
    pub rollbacks_refused: u64,
    /// Fetches that failed (a stale pull).
    pub fetch_failures: u64,
}

/// What the metrics show: the last run, the last pull, the counters.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The last run's report, if a run happened.
    pub report: Option<&'a Report>,
    /// When the last run ended (Unix seconds).
    pub run_ended: Option<f64>,
    /// The last pull, if the agent pulls.
    pub pull: Option<&'a PullInfo>,
    /// The commit and catalog the host is converged to.
    pub applied: Option<(&'a str, &'a str)>,
    pub counters: &'a Counters,
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the text exposition format.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    if let Some(r) = s.report {
        if let Some(t) = s.run_ended {
            head(
                &mut out,
                "cfgm_last_run_timestamp_seconds",
                "gauge",
                "Unix time the last converge run ended.",
            );
            let _ = writeln!(out, "cfgm_last_run_timestamp_seconds {t}");
        }
        head(
            &mut out,
            "cfgm_last_run_success",
            "gauge",
            "Whether the last converge run converged every resource (1) or not (0).",
        );
        let ok = u8::from(r.status == RunStatus::Converged);
        let _ = writeln!(out, "cfgm_last_run_success {ok}");
        head(
            &mut out,
            "cfgm_last_run_duration_seconds",
            "gauge",
            "How long the last converge run took.",
        );
        let _ = writeln!(out, "cfgm_last_run_duration_seconds {}", r.seconds);
        head(
            &mut out,
            "cfgm_last_run_resources",
            "gauge",
            "Resources of the last converge run by outcome.",
        );
        let c = &r.counts;
        for (outcome, n) in [
            (Outcome::Unchanged, c.unchanged),
            (Outcome::Changed, c.changed),
            (Outcome::WouldChange, c.would_change),
            (Outcome::Failed, c.failed),
            (Outcome::Skipped, c.skipped),
        ] {
            let name = serde_json::to_value(outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "cfgm_last_run_resources{{outcome=\"{}\"}} {n}",
                label(&name)
            );
        }
        head(
            &mut out,
            "cfgm_last_run_status",
            "gauge",
            "How the last converge run ended (1 for the status it had).",
        );
        for (status, name) in [
            (RunStatus::Converged, "converged"),
            (RunStatus::Failed, "failed"),
            (RunStatus::NotCompiled, "not-compiled"),
            (RunStatus::Refused, "refused"),
            (RunStatus::Stopped, "stopped"),
        ] {
            let _ = writeln!(
                out,
                "cfgm_last_run_status{{status=\"{name}\"}} {}",
                u8::from(r.status == status)
            );
        }
    }
    if let Some((commit, catalog)) = s.applied {
        head(
            &mut out,
            "cfgm_applied_commit_info",
            "gauge",
            "The commit and catalog this host is converged to (always 1).",
        );
        let _ = writeln!(
            out,
            "cfgm_applied_commit_info{{commit=\"{}\",catalog=\"{}\"}} 1",
            label(commit),
            label(catalog)
        );
    }
    if let Some(p) = s.pull {
        head(
            &mut out,
            "cfgm_source_stale",
            "gauge",
            "Whether the last fetch of the states repository failed (1), so the host keeps its last good commit.",
        );
        let _ = writeln!(out, "cfgm_source_stale {}", u8::from(p.verdict == "stale"));
        head(
            &mut out,
            "cfgm_source_refused",
            "gauge",
            "Whether the last fetched tip was refused (1): untrusted signature, rollback, or a tree that does not compile.",
        );
        let _ = writeln!(
            out,
            "cfgm_source_refused {}",
            u8::from(p.verdict == "refused")
        );
    }
    let c = s.counters;
    for (name, help, v) in [
        ("cfgm_runs_total", "Converge runs started.", c.runs),
        (
            "cfgm_verification_failures_total",
            "Fetched commits refused for their signature.",
            c.verification_failures,
        ),
        (
            "cfgm_rollbacks_refused_total",
            "Fetched commits refused as a rollback.",
            c.rollbacks_refused,
        ),
        (
            "cfgm_fetch_failures_total",
            "Fetches of the states repository that failed.",
            c.fetch_failures,
        ),
    ] {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    out
}

/// Writes the metrics for node exporter's textfile collector: to a
/// temporary name that the collector ignores (it reads only `*.prom`),
/// fsync, then rename over `path`, so a scrape sees the old or the new file.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The metrics endpoint: `GET /metrics` answers the current text, which the
/// agent replaces after each run.
pub struct Server {
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds exactly `addr` (e.g. `127.0.0.1:9464`; port 0 picks one) and
    /// serves from a thread, one connection at a time, each bounded by a
    /// 5 s timeout and an 8 KiB request.
    pub fn start(addr: SocketAddr, text: Arc<Mutex<String>>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st) = (text.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("cfgm-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = conn {
                        let body = t.lock().map(|s| s.clone()).unwrap_or_default();
                        let _ = answer(c, &body);
                    }
                }
            })?;
        Ok(Server {
            addr,
            text,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound (with the port picked, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the text served.
    pub fn set(&self, text: String) {
        if let Ok(mut t) = self.text.lock() {
            *t = text;
        }
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn answer(mut c: TcpStream, body: &str) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = c.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let mut parts = line.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; try /metrics\n",
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n",
        ),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        resp.push_str(body);
    }
    c.write_all(resp.as_bytes())?;
    c.flush()
}
