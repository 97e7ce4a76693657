//! Golden tests: each directory under `tests/cases/` is a states tree
//! (`tree/`), the command to run on it (`cmd`, default `validate`) and the
//! expected exit code, stdout and stderr (`expected`). The binary under
//! test is the real `cfgm`.
//!
//! Trees that need what a repository should not hold (a symlink to
//! `/etc/shadow`, symlink loops, a FIFO) describe it in `links`, one entry
//! a line: `PATH -> TARGET` (a symlink, TARGET as its text) or `PATH fifo`.
//! Such a case runs on a copy of `tree/` in a temporary directory, next to
//! a copy of the case's `outside/` (so `../outside/x` from the tree root
//! leads out of the tree). A case may list in `secrets` strings that must
//! appear in no output, text or `--json` (the run is repeated with
//! `--json` for that). Every run has a time limit: a hang is a failure.
//!
//! Re-bless after an intended change: `CFGM_BLESS=1 cargo test -p cfgm-cli`.

mod fleet;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cfgm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cfgm"))
}

/// How long one run may take before it counts as a hang.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Runs cfgm with a time limit: (exit code, stdout, stderr).
fn run_limited(args: &[&str], tree: &Path) -> Result<(i32, String, String), String> {
    let mut child = Command::new(cfgm())
        .arg("--tree")
        .arg(tree)
        .arg("--color")
        .arg("never")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cfgm");
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "cfgm {args:?} ran for more than {TIME_LIMIT:?} (a hang)"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok((
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    ))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The tree to run on: the case's own, or a prepared copy (see the top).
fn prepare(dir: &Path) -> (Option<tempfile::TempDir>, PathBuf) {
    let links = std::fs::read_to_string(dir.join("links")).ok();
    if links.is_none() && !dir.join("outside").exists() {
        return (None, dir.join("tree"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    copy_dir(&dir.join("tree"), &tree);
    if dir.join("outside").exists() {
        copy_dir(&dir.join("outside"), &tmp.path().join("outside"));
    }
    for line in links
        .iter()
        .flat_map(|l| l.lines())
        .filter(|l| !l.trim().is_empty())
    {
        let at = |p: &str| {
            let p = tree.join(p.trim());
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            p
        };
        if let Some((path, target)) = line.split_once(" -> ") {
            std::os::unix::fs::symlink(target.trim(), at(path)).unwrap();
        } else if let Some(path) = line.strip_suffix(" fifo") {
            let status = Command::new("mkfifo").arg(at(path)).status().unwrap();
            assert!(status.success(), "mkfifo {path}");
        } else {
            panic!("{}: links: cannot read `{line}`", dir.display());
        }
    }
    (Some(tmp), tree)
}

fn run_case(dir: &Path) -> Result<(), String> {
    let cmd = std::fs::read_to_string(dir.join("cmd")).unwrap_or_else(|_| "validate".into());
    let args: Vec<&str> = cmd.split_whitespace().collect();
    let (_tmp, tree) = prepare(dir);
    let (code, stdout, stderr) = run_limited(&args, &tree)?;
    let actual = format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    let actual = without_timings(&actual);
    if let Ok(secrets) = std::fs::read_to_string(dir.join("secrets")) {
        let json_args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let (_, json_out, json_err) = run_limited(&json_args, &tree)?;
        for secret in secrets.lines().filter(|l| !l.is_empty()) {
            for (what, text) in [
                ("text", &actual),
                ("--json", &format!("{json_out}{json_err}")),
            ] {
                if text.contains(secret) {
                    return Err(format!(
                        "{}: the {what} output shows `{secret}`:\n{text}",
                        dir.display()
                    ));
                }
            }
        }
    }
    let expected_path = dir.join("expected");
    if std::env::var_os("CFGM_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).map_err(|_| {
        format!(
            "{}: no `expected` file; run with CFGM_BLESS=1",
            dir.display()
        )
    })?;
    if expected != actual {
        return Err(format!(
            "{}: output differs\n--- expected\n{expected}\n--- actual\n{actual}",
            dir.display()
        ));
    }
    Ok(())
}

/// `compiled in 0.9 ms` and `"elapsed_ms":0.9` differ from run to run:
/// the golden files hold `compiled in N ms` and `"elapsed_ms":N`.
fn without_timings(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("compiled in ") {
        let (head, tail) = rest.split_at(at + "compiled in ".len());
        out.push_str(head);
        match tail.find(" ms") {
            Some(end) if tail[..end].bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                out.push('N');
                rest = &tail[end..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    // `"elapsed_ms":12.3` likewise holds `"elapsed_ms":N`.
    let key = "\"elapsed_ms\":";
    let mut text = out;
    let mut from = 0;
    while let Some(at) = text[from..].find(key).map(|i| i + from + key.len()) {
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(text.len(), |i| i + at);
        text.replace_range(at..end, "N");
        from = at;
    }
    text
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 14,
        "expected the golden cases, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

/// Every error case must exit 1 and name a file:line:column.
#[test]
fn error_cases_exit_1_with_a_location() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `--host` names no file: that error has no source location.
        if !name.starts_with("err-") || name == "err-host-flag-unknown" {
            continue;
        }
        let expected = std::fs::read_to_string(e.path().join("expected")).unwrap_or_default();
        assert!(expected.starts_with("exit: 1\n"), "{name}: must exit 1");
        // A problem of the tree itself (a link out, a loop) names the path
        // at fault in its message: it has no content to point into.
        let located = expected.lines().any(|l| {
            l.trim_start().starts_with("┌─")
                || l.trim_start().starts_with("--> ")
                || l.contains(".toml:")
                || l.starts_with("error[tree-")
        });
        assert!(located, "{name}: no file:line:column in\n{expected}");
    }
}

#[test]
fn help_documents_exit_codes() {
    for sub in [&[][..], &["validate"], &["catalog"], &["graph"], &["hosts"]] {
        let out = Command::new(cfgm())
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(out.status.success(), "{sub:?} --help failed");
        assert!(
            text.contains(cfgm_core::exit::HELP),
            "{sub:?} --help: {text}"
        );
    }
}

/// The exit-code table (cfgm_core::exit) as `cfgm` uses it: 0 success,
/// 1 an error of a command that changes nothing, 64 bad arguments.
#[test]
fn exit_codes_follow_the_table() {
    let states = Path::new(env!("CARGO_MANIFEST_DIR")).join("../states");
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/err-toml-syntax/tree");
    let code = |args: &[&str]| {
        Command::new(cfgm())
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    let s = states.to_str().unwrap();
    assert_eq!(code(&["--tree", s, "validate"]), Some(0));
    assert_eq!(
        code(&["--tree", bad.to_str().unwrap(), "validate"]),
        Some(1)
    );
    assert_eq!(code(&["--tree", "/nonexistent", "validate"]), Some(1));
    assert_eq!(
        code(&["--tree", s, "hosts", "--select", "role:egde"]),
        Some(1)
    );
    assert_eq!(code(&["--tree", s, "catalog", "--host", "nope"]), Some(1));
    assert_eq!(code(&["--tree", s, "no-such-command"]), Some(64));
    assert_eq!(code(&["--tree", s, "validate", "--no-such-flag"]), Some(64));
    assert_eq!(code(&["--help"]), Some(0));
}

/// `--tree /nonexistent` says what and why once (the cause was printed a
/// second time by the error chain).
#[test]
fn a_missing_tree_says_why_once() {
    let out = Command::new(cfgm())
        .args(["--color", "never", "--tree", "/nonexistent", "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "error: /nonexistent: not a states tree: No such file or directory (os error 2)\n"
    );
}

/// Diagnostics are separated by one blank line, not two.
#[test]
fn diagnostics_are_separated_by_one_blank_line() {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/err-many/tree");
    let out = Command::new(cfgm())
        .args(["--color", "never", "validate", "--tree"])
        .arg(&tree)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.matches("error[").count() >= 2, "{err}");
    assert!(!err.contains("\n\n\n"), "{err}");
    assert!(err.contains("\n\nerror["), "{err}");
}

#[test]
fn the_example_tree_validates() {
    let states = Path::new(env!("CARGO_MANIFEST_DIR")).join("../states");
    let out = Command::new(cfgm())
        .args(["--color", "never", "validate", "--json", "--tree"])
        .arg(&states)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["hosts"], 10);
    assert!(v["resources"].as_u64().unwrap() > 200);
    assert!(out.status.success());
}

/// The ported formulas in examples/ compile for every host, and their
/// new-feature outputs are what the ports need: sshd's algorithms chosen by
/// the OpenSSH version (post-quantum key exchange on Debian 12's 1:9.2),
/// nginx.conf's directives in data order with Jinja's whitespace.
#[test]
fn the_ported_example_trees_validate() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (tree, hosts) in [("ssh-hardening", 3), ("nginx", 3)] {
        let out = Command::new(cfgm())
            .args(["--color", "never", "validate", "--json", "--tree"])
            .arg(examples.join(tree))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["ok"], true, "{tree}: {v:#}");
        assert_eq!(v["hosts"], hosts, "{tree}");
        assert!(out.status.success(), "{tree}");
    }
    let content = |tree: &str, host: &str, path: &str| -> String {
        let out = Command::new(cfgm())
            .args([
                "--color", "never", "catalog", "--json", "--host", host, "--tree",
            ])
            .arg(examples.join(tree))
            .output()
            .unwrap();
        assert!(out.status.success(), "{tree} {host}");
        let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let r = c["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == path)
            .unwrap_or_else(|| panic!("{tree} {host}: no {path}"));
        r["attrs"]["content"].as_str().unwrap().to_string()
    };
    let sshd = content("ssh-hardening", "bastion1", "/etc/ssh/sshd_config");
    assert!(
        sshd.contains("KexAlgorithms sntrup761x25519-sha512@openssh.com,"),
        "{sshd}"
    );
    assert!(sshd.contains("AllowTcpForwarding yes"), "{sshd}");
    let conf = content("nginx", "web1", "/etc/nginx/nginx.conf");
    let user = conf.find("user www-data;").unwrap();
    let workers = conf.find("worker_processes auto;").unwrap();
    assert!(user < workers, "{conf}");
    assert!(
        conf.contains("\nevents {\n    worker_connections 768;\n}\n"),
        "{conf}"
    );
}

#[test]
fn json_diagnostics_carry_file_line_column() {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/err-unknown-attribute/tree");
    let out = Command::new(cfgm())
        .args(["validate", "--json", "--tree"])
        .arg(&tree)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let label = &v["diagnostics"][0]["labels"][0];
    assert_eq!(label["file"], "states/web.toml");
    assert_eq!(label["line"], 5);
    assert_eq!(label["column"], 1);
    assert_eq!(v["diagnostics"][0]["code"], "unknown-attribute");
}

#[test]
fn broken_pipe_exits_zero() {
    let states = Path::new(env!("CARGO_MANIFEST_DIR")).join("../states");
    let mut child = Command::new(cfgm())
        .args(["catalog", "--host", "ams-edge1", "--full", "--tree"])
        .arg(&states)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
