//! Golden tests: each directory under `tests/cases/` is a states tree
//! (`tree/`), the command to run on it (`cmd`, default `validate`) and the
//! expected exit code, stdout and stderr (`expected`). The binary under
//! test is the real `cfgm`.
//!
//! Re-bless after an intended change: `CFGM_BLESS=1 cargo test -p cfgm-cli`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cfgm() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cfgm"))
}

fn run_case(dir: &Path) -> Result<(), String> {
    let cmd = std::fs::read_to_string(dir.join("cmd")).unwrap_or_else(|_| "validate".into());
    let args: Vec<&str> = cmd.split_whitespace().collect();
    let tree = dir.join("tree");
    let out = Command::new(cfgm())
        .arg("--tree")
        .arg(&tree)
        .arg("--color")
        .arg("never")
        .args(&args)
        .output()
        .expect("run cfgm");
    let actual = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        let located = expected.lines().any(|l| {
            l.trim_start().starts_with("┌─")
                || l.trim_start().starts_with("--> ")
                || l.contains(".toml:")
        });
        assert!(located, "{name}: no file:line:column in\n{expected}");
    }
}

#[test]
fn help_documents_exit_codes() {
    for sub in [&[][..], &["validate"], &["catalog"], &["graph"]] {
        let out = Command::new(cfgm())
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub:?} --help failed");
        assert!(
            text.contains("Exit codes: 0 success; 1 error"),
            "{sub:?} --help: {text}"
        );
    }
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
