//! agent.toml: defaults, every key, and located errors.

use cfgm_agent::config::{AgentConfig, ConfigError};
use std::path::PathBuf;
use std::time::Duration;

fn errors(text: &str) -> Vec<String> {
    match AgentConfig::parse("agent.toml", text) {
        Err(e @ ConfigError::Invalid { .. }) => e.lines(),
        other => panic!("expected errors, got {other:?}"),
    }
}

#[test]
fn minimal_config_takes_the_defaults() {
    let c = AgentConfig::parse(
        "agent.toml",
        "repo = \"git://git.example.net/states.git\"\nallowed_signers = \"/etc/cfgm/allowed_signers\"\n",
    )
    .unwrap();
    assert_eq!(
        c,
        AgentConfig {
            repo: "git://git.example.net/states.git".into(),
            refname: "refs/heads/main".into(),
            allowed_signers: PathBuf::from("/etc/cfgm/allowed_signers"),
            interval: Duration::from_secs(1800),
            splay: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(60),
            state_dir: PathBuf::from("/var/lib/cfgm"),
            metrics_textfile: None,
            allow_rollback: false,
            host: None,
        }
    );
}

#[test]
fn every_key_is_read() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("agent.toml");
    std::fs::write(
        &path,
        r#"
repo = "/srv/git/states.git"
ref = "refs/heads/production"
allowed_signers = "/etc/cfgm/allowed_signers"
interval = 600
splay = 0
fetch_timeout = 20
state_dir = "/var/lib/cfgm-test"
metrics_textfile = "/var/lib/node_exporter/cfgm.prom"
allow_rollback = true
host = "web-1"
"#,
    )
    .unwrap();
    let c = AgentConfig::load(&path).unwrap();
    assert_eq!(c.repo, "/srv/git/states.git");
    assert_eq!(c.refname, "refs/heads/production");
    assert_eq!(c.interval, Duration::from_secs(600));
    assert_eq!(c.splay, Duration::ZERO);
    assert_eq!(c.fetch_timeout, Duration::from_secs(20));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/cfgm-test"));
    assert_eq!(
        c.metrics_textfile,
        Some(PathBuf::from("/var/lib/node_exporter/cfgm.prom"))
    );
    assert!(c.allow_rollback);
    assert_eq!(c.host.as_deref(), Some("web-1"));
    for url in [
        "ssh://git@git.example.net/states.git",
        "https://git.example.net/states.git",
        "file:///srv/git/states.git",
    ] {
        let text = format!("repo = \"{url}\"\nallowed_signers = \"/a\"\n");
        assert_eq!(AgentConfig::parse("a", &text).unwrap().repo, url);
    }
}

#[test]
fn an_unknown_key_is_an_error_at_its_line_and_column() {
    let e = errors("repo = \"git://h/s.git\"\nallowed_signers = \"/a\"\n  intervall = 60\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "agent.toml:3:3: unknown field `intervall`, expected one of `repo`, `ref`"
        ),
        "{e:?}"
    );
}

#[test]
fn bad_values_are_errors_at_their_place_all_of_them() {
    let text = r#"repo = "http://h/s.git"
ref = "main"
allowed_signers = "etc/allowed_signers"
interval = 0
splay = -5
state_dir = "relative/state"
host = "web 1"
"#;
    let e = errors(text);
    for l in &e {
        println!("{l}");
    }
    assert_eq!(
        e,
        vec![
            "agent.toml:1:8: repo: the scheme \"http://\" is not supported; expected a git://, ssh://, https:// or file:// URL, or an absolute path",
            "agent.toml:2:7: ref: \"main\" is not a full ref name (for a branch write \"refs/heads/main\"); expected a full ref name such as \"refs/heads/main\"",
            "agent.toml:3:19: allowed_signers: \"etc/allowed_signers\" is not an absolute path; expected an absolute path",
            "agent.toml:4:12: interval: 0 is out of range; expected a number of seconds greater than 0",
            "agent.toml:5:9: splay: -5 is out of range; expected a number of seconds, 0 or more",
            "agent.toml:6:13: state_dir: \"relative/state\" is not an absolute path; expected an absolute path",
            "agent.toml:7:8: host: \"web 1\" is not a host name; expected letters, digits, '-', '_' and '.'",
        ]
    );
    // The rendering for people shows the line and a caret.
    let err = AgentConfig::parse("agent.toml", text).unwrap_err();
    let shown = err.render(false);
    assert!(shown.contains("┌─ agent.toml:4:12"), "{shown}");
    assert!(shown.contains("interval = 0"), "{shown}");
}

#[test]
fn wrong_types_and_missing_keys_say_what_was_expected() {
    let e = errors("repo = \"git://h/s.git\"\nallowed_signers = \"/a\"\ninterval = \"10m\"\n");
    assert!(
        e[0].starts_with("agent.toml:3:12: invalid type: string \"10m\", expected i64"),
        "{e:?}"
    );
    let e = errors("allowed_signers = \"/a\"\n");
    assert!(e[0].contains("missing field `repo`"), "{e:?}");
    let e = errors("repo = \"git@h:s.git\"\nallowed_signers = \"/a\"\n");
    assert!(
        e[0].contains("looks like scp syntax; write it as ssh://user@host/path"),
        "{e:?}"
    );
    match AgentConfig::load(std::path::Path::new("/nonexistent/agent.toml")) {
        Err(e @ ConfigError::Read { .. }) => {
            assert!(
                e.to_string().starts_with("read /nonexistent/agent.toml: "),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}
