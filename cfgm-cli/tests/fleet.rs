//! Fleet commands over real git repositories made by the test: `cfgm diff`
//! (two commits) and the JSON shape plans and diffs share.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=cfgm test",
            "-c",
            "user.email=test@cfgm.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const INVENTORY: &str = r#"
[hosts.edge1]
dc = "ams01"
role = "edge"
[hosts.edge2]
dc = "lhr01"
role = "edge"
[hosts.db1]
dc = "ams01"
role = "db"
"#;

const TOP: &str = "\"*\" = [\"base\"]\n\"role:edge\" = [\"web\"]\n\"role:db\" = [\"db\"]\n";

/// A repository with the tree under `states/`, two commits: the first and
/// one that changes a data value only edge hosts read, adds a package on
/// db hosts, and drops a file from every host.
fn repo(dir: &Path) -> (String, String) {
    let t = dir.join("states");
    write(&t.join("inventory.toml"), INVENTORY);
    write(&t.join("top.toml"), TOP);
    write(&t.join("data/common.toml"), "[web]\nworkers = 4\n");
    write(
        &t.join("states/base.toml"),
        "[file.\"/etc/motd\"]\ncontent = \"welcome\\n\"\n\n[file.\"/etc/old\"]\ncontent = \"old\\n\"\n",
    );
    write(
        &t.join("states/web.toml"),
        "[file.\"/etc/web.conf\"]\ncontent = \"workers = {{ data.web.workers }}\\nport = 80\\n\"\n",
    );
    write(&t.join("states/db.toml"), "[pkg.postgresql]\n");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "one"]);
    let one = git(dir, &["rev-parse", "HEAD"]);
    write(&t.join("data/common.toml"), "[web]\nworkers = 8\n");
    write(
        &t.join("states/base.toml"),
        "[file.\"/etc/motd\"]\ncontent = \"welcome\\n\"\n",
    );
    write(
        &t.join("states/db.toml"),
        "[pkg.postgresql]\n\n[pkg.pgbouncer]\n",
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "two"]);
    let two = git(dir, &["rev-parse", "HEAD"]);
    (one, two)
}

fn cfgm(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cfgm"))
        .arg("--tree")
        .arg(dir)
        .args(["--color", "never"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn changes_of(group: &Value) -> Vec<String> {
    group["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let attrs: Vec<&str> = c["changes"]
                .as_array()
                .map(|a| a.iter().map(|x| x["attr"].as_str().unwrap()).collect())
                .unwrap_or_default();
            format!(
                "{} {}[{}] {}",
                c["action"].as_str().unwrap(),
                c["id"]["kind"].as_str().unwrap(),
                c["id"]["name"].as_str().unwrap(),
                attrs.join(",")
            )
        })
        .collect()
}

/// `cfgm diff` over two commits reports exactly the resources that changed,
/// hosts with the same changes in one group, straight from git objects.
#[test]
fn diff_reports_exactly_what_a_commit_range_changes_grouped() {
    let d = tempfile::tempdir().unwrap();
    let (one, two) = repo(d.path());
    let (code, out, err) = cfgm(
        d.path(),
        &[
            "diff",
            "--subdir",
            "states",
            "--from",
            &one,
            "--to",
            &two,
            "--json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(code, Some(2), "changes pending: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    check_schema(&v);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["kind"], "diff");
    assert_eq!(v["compared"]["from"], one);
    assert_eq!(v["summary"]["hosts"], 3);
    assert_eq!(v["summary"]["changed"], 3);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v:#}");
    // Largest group first: both edge hosts, in two datacenters.
    assert_eq!(groups[0]["hosts"], serde_json::json!(["edge1", "edge2"]));
    assert_eq!(
        changes_of(&groups[0]),
        [
            "modify file[/etc/web.conf] content",
            "remove file[/etc/old] content"
        ]
    );
    let diff = groups[0]["changes"][0]["changes"][0]["diff"]
        .as_str()
        .unwrap();
    assert!(diff.contains("-workers = 4\n+workers = 8\n"), "{diff}");
    assert_eq!(groups[1]["hosts"], serde_json::json!(["db1"]));
    assert_eq!(
        changes_of(&groups[1]),
        ["add pkg[pgbouncer] ", "remove file[/etc/old] content"]
    );
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["name"], "db1");
    assert_eq!(hosts[0]["group"], 1);
    assert_eq!(v["summary"]["by_dc"]["ams01"]["hosts"], 2);

    // The same range for one selector; nothing changes from a commit to itself.
    let (code, out, _) = cfgm(
        d.path(),
        &[
            "diff", "--subdir", "states", "--from", &one, "--to", &two, "--select", "role:db",
            "--json",
        ],
    );
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["hosts"], 1);
    let (code, out, _) = cfgm(
        d.path(),
        &[
            "diff",
            "--subdir",
            "states",
            "--from",
            &two,
            "--to",
            &two,
            "--detailed-exitcode",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 changed, 3 unchanged"), "{out}");

    // For people: the group once, with its hosts and a unified diff.
    let (_, text, _) = cfgm(
        d.path(),
        &["diff", "--subdir", "states", "--from", &one, "--to", &two],
    );
    assert!(text.contains("── group 1 · 2 hosts: edge[1-2]"), "{text}");
    assert!(text.contains("+workers = 8"), "{text}");
    // For CI: annotations at the line that declares each resource.
    let (_, gh, _) = cfgm(
        d.path(),
        &[
            "diff", "--subdir", "states", "--from", &one, "--to", &two, "--format", "github",
        ],
    );
    assert!(
        gh.contains(
            "::notice file=states/states/web.toml,line=1,col=7,title=file[/etc/web.conf]::"
        ),
        "{gh}"
    );
}

/// Bad revisions and selectors are clear errors, exit 1.
#[test]
fn diff_bad_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let (one, _) = repo(d.path());
    let (code, _, err) = cfgm(
        d.path(),
        &["diff", "--subdir", "states", "--from", &one, "--to", "nope"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("revision `nope`"), "{err}");
    let (code, _, err) = cfgm(
        d.path(),
        &[
            "diff",
            "--subdir",
            "states",
            "--from",
            &one,
            "--to",
            &one,
            "--select",
            "dc:amst01",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("did you mean `ams01`?"), "{err}");
}

/// Checks a document against the repository's JSON Schema of plans and
/// diffs; panics with every violation.
pub fn check_schema(doc: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cfgm-core/schema/fleet-changes.schema.json")
        .canonicalize()
        .unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let url = format!("file://{}", path.display());
    compiler.add_resource(&url, schema).unwrap();
    let idx = compiler.compile(&url, &mut schemas).unwrap();
    if let Err(e) = schemas.validate(doc, idx) {
        panic!("does not follow the schema: {e:#}\n{doc:#}");
    }
}

#[test]
fn the_schema_rejects_what_it_should() {
    let d = tempfile::tempdir().unwrap();
    let (one, two) = repo(d.path());
    let (_, out, _) = cfgm(
        d.path(),
        &[
            "diff", "--subdir", "states", "--from", &one, "--to", &two, "--json",
        ],
    );
    let mut v: Value = serde_json::from_str(&out).unwrap();
    check_schema(&v);
    v["groups"][0]["changes"][0]["action"] = "explode".into();
    let bad = std::panic::catch_unwind(|| check_schema(&v));
    assert!(bad.is_err(), "an unknown action passed the schema");
}

// ---- cfgm plan ---------------------------------------------------------

const DPKG_STATUS: &str = "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n";

fn plan_tree(dir: &Path, hosts: &[&str], state: &str) {
    let inv: String = hosts
        .iter()
        .map(|h| format!("[hosts.{h}]\ndc = \"dc1\"\nrole = \"web\"\n"))
        .collect();
    write(&dir.join("inventory.toml"), &inv);
    write(&dir.join("top.toml"), "\"*\" = [\"s\"]\n");
    write(&dir.join("states/s.toml"), state);
}

const SECRET: &str = "hunter2-S3CRET";

/// Converges a temp root to `state` with the agent's library, then gathers
/// its facts as `cfgm-agent facts --json` would: a real facts document.
fn real_facts(t: &Path, state: &str) -> Value {
    let (tree, root, st) = (t.join("t1"), t.join("root"), t.join("state"));
    plan_tree(&tree, &["h"], state);
    write(&root.join("var/lib/dpkg/status"), DPKG_STATUS);
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    );
    write(&root.join("etc/group"), "root:x:0:\n");
    let cfg = cfgm_agent::Config {
        tree: cfgm_agent::converge::TreeInput::Dir(tree),
        host: Some("h".into()),
        root: root.clone(),
        state_dir: st.clone(),
        facts: None,
        mode: cfgm_core::Mode::Apply,
        parallel: 2,
        locked: false,
        keep_report: true,
    };
    let out = cfgm_agent::converge_once(&cfg, None, None).unwrap();
    assert!(out.report.ok(), "{:?}", out.report);
    serde_json::to_value(cfgm_agent::facts::gather(&root, &st)).unwrap()
}

/// Plans over facts from a real agent run plus variations: unchanged,
/// drifted file, removed package, new package, new file, no facts; a
/// secret never shows.
#[test]
fn plan_from_facts_answers_exactly_or_says_unknown() {
    let t = tempfile::tempdir().unwrap();
    let applied = format!(
        "[file.\"/etc/motd\"]\ncontent = \"hello\\n\"\n\n[file.\"/etc/app.key\"]\ncontent = \"{SECRET}\\n\"\nsecret = true\n"
    );
    let facts = real_facts(t.path(), &applied);
    let dir = t.path().join("facts");
    let save = |host: &str, v: &Value| write(&dir.join(format!("{host}.json")), &v.to_string());
    save("same", &facts);
    // Drift: the file changed on the host after the run.
    let mut drift = facts.clone();
    for r in drift["resources"].as_array_mut().unwrap() {
        if r["id"]["name"] == "/etc/motd" {
            r["observed"]["content"] = "hello, edited\n".into();
            r["observed"]["hash"] = "0000".into();
        }
    }
    save("drift", &drift);
    // A package removed by hand.
    let mut gone = facts.clone();
    gone["packages"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["name"] != "curl");
    save("gone", &gone);
    // "nofacts" has none.

    let tree = t.path().join("t2");
    plan_tree(
        &tree,
        &["same", "drift", "gone", "nofacts"],
        &format!(
            "{applied}\n[pkg.curl]\n\n[pkg.jq]\n\n[file.\"/etc/new\"]\ncontent = \"new\\n\"\n"
        ),
    );
    let args = [
        "plan",
        "--facts",
        dir.to_str().unwrap(),
        "--json",
        "--detailed-exitcode",
    ];
    let (code, out, err) = cfgm(&tree, &args);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "a secret in the plan"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    check_schema(&v);
    let host = |n: &str| {
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == n)
            .unwrap()
            .clone()
    };
    let changes = |n: &str| -> Vec<String> {
        let g = host(n)["group"].as_u64().unwrap() as usize;
        changes_of(&v["groups"][g])
    };
    let base = [
        "unknown file[/etc/new] ".to_string(),
        "change pkg[jq] ensure".to_string(),
    ];
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(changes("same")), sorted(base.to_vec()));
    let mut want = base.to_vec();
    want.push("change file[/etc/motd] content".into());
    assert_eq!(sorted(changes("drift")), sorted(want));
    let mut want = base.to_vec();
    want.push("change pkg[curl] ensure".into());
    assert_eq!(sorted(changes("gone")), sorted(want));
    assert_eq!(host("nofacts")["status"], "no-facts");
    // The drifted file's plan is a unified diff of the host's content.
    let g = host("drift")["group"].as_u64().unwrap() as usize;
    let motd = v["groups"][g]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"]["name"] == "/etc/motd")
        .unwrap()
        .clone();
    let d = motd["changes"][0]["diff"].as_str().unwrap();
    assert!(d.contains("-hello, edited\n+hello\n"), "{d}");
    // For people, too, no secret.
    let (_, text, _) = cfgm(&tree, &["plan", "--facts", dir.to_str().unwrap()]);
    assert!(!text.contains(SECRET));
    assert!(text.contains("1 without facts"), "{text}");

    // Bad facts: corrupt, and from a newer schema; clear errors, exit 1.
    write(&dir.join("nofacts.json"), "{ not json");
    let (code, out, _) = cfgm(&tree, &["plan", "--facts", dir.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.contains("nofacts.json: not a facts document"), "{out}");
    let mut newer = facts.clone();
    newer["schema_version"] = 99.into();
    save("nofacts", &newer);
    let (code, out, _) = cfgm(&tree, &["plan", "--facts", dir.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("schema_version 99; this cfgm reads up to 1"),
        "{out}"
    );
    // An unknown selector key, a selector that matches nothing.
    let (code, _, err) = cfgm(
        &tree,
        &[
            "plan",
            "--facts",
            dir.to_str().unwrap(),
            "--select",
            "rack:r1",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown selector kind `rack`"), "{err}");
    let (code, _, err) = cfgm(
        &tree,
        &[
            "plan",
            "--facts",
            dir.to_str().unwrap(),
            "--select",
            "name:zz*",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("matches no host"), "{err}");
}
