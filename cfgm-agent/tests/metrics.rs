//! Metrics: the exposition passes `promtool check metrics`, the textfile is
//! replaced atomically, the endpoint answers GET /metrics.

use cfgm_agent::git::{PullVerdict, Refusal};
use cfgm_agent::metrics::{render, write_textfile, Counters, Server, Snapshot};
use cfgm_agent::signers::Verdict;
use cfgm_core::Report;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

fn report() -> Report {
    serde_json::from_value(serde_json::json!({
        "host": "web-1", "status": "failed", "catalog_id": "cafe01", "tree_id": "",
        "mode": "apply",
        "counts": {"unchanged": 290, "changed": 7, "would_change": 0, "failed": 2, "skipped": 1},
        "seconds": 1.25, "resources": []
    }))
    .unwrap()
}

fn sample() -> String {
    let r = report();
    let oid = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    let verdict = PullVerdict::Refused {
        commit: oid,
        refusal: Refusal::Signature(Verdict::Unsigned),
        last_good: Some(oid),
    };
    let pull = cfgm_core::report::PullInfo {
        verdict: verdict.code().into(),
        reason: verdict.reason(),
        ..Default::default()
    };
    let counters = Counters {
        runs: 12,
        verification_failures: 3,
        rollbacks_refused: 1,
        fetch_failures: 2,
    };
    render(&Snapshot {
        report: Some(&r),
        run_ended: Some(1_700_000_000.5),
        pull: Some(&pull),
        applied: Some(("0123456789abcdef0123456789abcdef01234567", "cafe\"01")),
        counters: &counters,
    })
}

/// `promtool check metrics` on the text: (exit code, output).
pub(crate) fn promtool(text: &str) -> Option<(i32, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!(
                "SKIPPED promtool check: promtool (Debian package prometheus) is not installed ({e}); scripts/deps.sh installs it"
            );
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn exposition_has_every_metric_and_passes_promtool() {
    let text = sample();
    println!("{text}");
    for line in [
        "cfgm_last_run_timestamp_seconds 1700000000.5",
        "cfgm_last_run_success 0",
        "cfgm_last_run_duration_seconds 1.25",
        "cfgm_last_run_resources{outcome=\"unchanged\"} 290",
        "cfgm_last_run_resources{outcome=\"changed\"} 7",
        "cfgm_last_run_resources{outcome=\"failed\"} 2",
        "cfgm_last_run_resources{outcome=\"skipped\"} 1",
        "cfgm_last_run_status{status=\"failed\"} 1",
        "cfgm_applied_commit_info{commit=\"0123456789abcdef0123456789abcdef01234567\",catalog=\"cafe\\\"01\"} 1",
        "cfgm_source_stale 0",
        "cfgm_source_refused 1",
        "cfgm_verification_failures_total 3",
        "cfgm_runs_total 12",
        "# TYPE cfgm_verification_failures_total counter",
        "# TYPE cfgm_applied_commit_info gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    // HELP and TYPE for every metric; no sample carries a timestamp.
    let names: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    for n in &names {
        assert!(text.contains(&format!("# HELP {n} ")), "{n}");
        assert!(text.contains(&format!("# TYPE {n} ")), "{n}");
    }
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let value_and_more = l.rsplit('}').next().unwrap();
        assert_eq!(
            value_and_more.split_whitespace().count(),
            if l.contains('}') { 1 } else { 2 },
            "{l}"
        );
    }
    if let Some((code, out)) = promtool(&text) {
        assert_eq!(code, 0, "promtool check metrics: {out}");
    }
    // With nothing yet (a fresh agent), still valid.
    let empty = render(&Snapshot {
        report: None,
        run_ended: None,
        pull: None,
        applied: None,
        counters: &Counters::default(),
    });
    if let Some((code, out)) = promtool(&empty) {
        assert_eq!(code, 0, "promtool check metrics: {out}");
    }
    // And promtool does catch a lint problem (the check is not vacuous).
    if let Some((code, _)) = promtool("# HELP x_count c\n# TYPE x_count counter\nx_count 1\n") {
        assert_ne!(code, 0);
    }
}

#[test]
fn textfile_is_replaced_atomically() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("cfgm.prom");
    write_textfile(&path, "old\n").unwrap();
    let text = sample();
    write_textfile(&path, &text).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["cfgm.prom"], "no temporary left behind");
    // A directory that does not exist yet is made (node exporter's
    // textfile directory may come later than the agent).
    write_textfile(&t.path().join("new/dir/cfgm.prom"), "x\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(t.path().join("new/dir/cfgm.prom")).unwrap(),
        "x\n"
    );
}

fn get(addr: std::net::SocketAddr, req: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn endpoint_serves_get_metrics_on_the_given_address_only() {
    let text = Arc::new(Mutex::new(String::from("first\n")));
    let server = Server::start("127.0.0.1:0".parse().unwrap(), text).unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
    assert!(r.ends_with("\r\n\r\nfirst\n"), "{r}");
    server.set(sample());
    let r = get(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(r.contains("cfgm_runs_total 12"), "{r}");
    assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    // Prometheus itself would parse what is served.
    let body = get(addr, "GET /metrics HTTP/1.1\r\n\r\n")
        .split_once("\r\n\r\n")
        .unwrap()
        .1
        .to_string();
    if let Some((code, out)) = promtool(&body) {
        assert_eq!(code, 0, "{out}");
    }
    server.stop();
    assert!(std::net::TcpStream::connect(addr).is_err(), "stopped");
}
