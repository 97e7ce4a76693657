//! cfgm-core integration tests: compile real trees written to temporary
//! directories, with a small registry of test kinds.

use cfgm_core::schema::{
    no_auto_deps, no_check, parent_dirs, AttrSpec, AttrType, Attrs, AutoDep, KindSpec,
};
use cfgm_core::{Compiler, Registry, ResourceId, Tree};
use proptest::prelude::*;
use std::path::Path;

static PKG: KindSpec = KindSpec {
    kind: "pkg",
    doc: "test package",
    attrs: &[AttrSpec::opt("version", AttrType::Str, "version")],
    name_is_path: false,
    secret_attrs: &[],
    check: no_check,
    auto_deps: no_auto_deps,
    claims: cfgm_core::schema::no_claims,
};

fn file_deps(name: &str, _: &Attrs) -> Vec<AutoDep> {
    vec![AutoDep {
        candidates: parent_dirs(name)
            .into_iter()
            .map(|p| ResourceId::new("directory", p))
            .collect(),
    }]
}

static FILE: KindSpec = KindSpec {
    kind: "file",
    doc: "test file",
    attrs: &[
        AttrSpec::opt("content", AttrType::Str, "content"),
        AttrSpec::opt(
            "template",
            AttrType::Template { into: "content" },
            "template",
        ),
        AttrSpec::opt("mode", AttrType::Mode, "mode"),
        AttrSpec::opt("owner", AttrType::Str, "owner"),
    ],
    name_is_path: true,
    secret_attrs: &["content"],
    check: no_check,
    auto_deps: file_deps,
    claims: cfgm_core::schema::no_claims,
};

static DIRECTORY: KindSpec = KindSpec {
    kind: "directory",
    doc: "test directory",
    attrs: &[AttrSpec::opt("mode", AttrType::Mode, "mode")],
    name_is_path: true,
    secret_attrs: &[],
    check: no_check,
    auto_deps: file_deps,
    claims: cfgm_core::schema::no_claims,
};

fn registry() -> Registry {
    Registry::new().with(&PKG).with(&FILE).with(&DIRECTORY)
}

fn write_tree(dir: &Path, states: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("states")).unwrap();
    std::fs::write(
        dir.join("inventory.toml"),
        "[hosts.a]\ndc = \"x\"\nrole = \"r\"\n\n[hosts.b]\ndc = \"y\"\nrole = \"r\"\n",
    )
    .unwrap();
    let names: Vec<String> = states.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    std::fs::write(
        dir.join("top.toml"),
        format!("\"*\" = [{}]\n", names.join(", ")),
    )
    .unwrap();
    for (n, text) in states {
        std::fs::write(dir.join("states").join(format!("{n}.toml")), text).unwrap();
    }
}

fn compile(dir: &Path, host: &str) -> cfgm_core::Catalog {
    let (tree, diags) = Tree::load(dir).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let reg = registry();
    let c = Compiler::new(&tree, &reg);
    c.compile_host(host, None)
        .unwrap_or_else(|d| panic!("{:?}", d))
}

#[test]
fn compiling_twice_gives_byte_identical_catalogs() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[(
            "s",
            "[pkg.b]\nversion = \"1\"\n[pkg.a]\n[file.\"/etc/x/y\"]\ncontent = \"{{ host.dc }}\"\nrequire = [\"pkg:b\"]\n[directory.\"/etc/x\"]\n",
        )],
    );
    let c1 = compile(d.path(), "a");
    let c2 = compile(d.path(), "a");
    assert_eq!(c1.canonical(), c2.canonical());
    assert_eq!(c1.to_json().to_string(), c2.to_json().to_string());
    assert_eq!(c1.id, c2.id);
    // Host b renders a different dc: a different catalog.
    assert_ne!(compile(d.path(), "b").id, c1.id);
    // Apply order respects dependencies: the directory before the file in it,
    // the package before the file that requires it.
    let pos = |k: &str, n: &str| {
        c1.resources
            .iter()
            .position(|r| r.id == ResourceId::new(k, n))
            .unwrap()
    };
    assert!(pos("directory", "/etc/x") < pos("file", "/etc/x/y"));
    assert!(pos("pkg", "b") < pos("file", "/etc/x/y"));
}

#[test]
fn hosts_with_equal_catalogs_share_an_id() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[("s", "[pkg.a]\nversion = \"{{ host.role }}\"\n")],
    );
    assert_eq!(compile(d.path(), "a").id, compile(d.path(), "b").id);
}

/// Regression: hosts shared a render when a file template read a host
/// variable only through `{% include %}` (the includer's own variables did
/// not show it).
#[test]
fn a_template_that_includes_another_is_not_shared_between_hosts() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[("s", "[file.\"/etc/motd\"]\ntemplate = \"motd.j2\"\n")],
    );
    std::fs::create_dir_all(d.path().join("templates")).unwrap();
    std::fs::write(
        d.path().join("templates/motd.j2"),
        "Welcome.\n{% include \"who.j2\" %}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("templates/who.j2"),
        "You are on {{ host.name }}.",
    )
    .unwrap();
    let (tree, diags) = Tree::load(d.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let reg = registry();
    let c = Compiler::new(&tree, &reg);
    let v = c.validate();
    assert_eq!(v.catalogs.len(), 2, "both hosts got the same rendered file");
    let a = c.compile_host("a", None).unwrap();
    assert_eq!(a.resources[0].attrs["content"], "Welcome.\nYou are on a.");
}

/// Regression: `{% set data = data.app %}` hid which data the state reads,
/// so hosts in different datacenters shared one render.
#[test]
fn rebinding_a_context_name_does_not_share_renders_between_hosts() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[(
            "s",
            "{% set data = data.app %}\n[pkg.app]\nversion = \"{{ data.version }}\"\n",
        )],
    );
    std::fs::create_dir_all(d.path().join("data/dc")).unwrap();
    std::fs::write(d.path().join("data/dc/x.toml"), "[app]\nversion = \"1\"\n").unwrap();
    std::fs::write(d.path().join("data/dc/y.toml"), "[app]\nversion = \"2\"\n").unwrap();
    let (tree, diags) = Tree::load(d.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let reg = registry();
    let c = Compiler::new(&tree, &reg);
    assert_eq!(c.validate().catalogs.len(), 2);
    assert_eq!(
        c.compile_host("b", None).unwrap().resources[0].attrs["version"],
        "2"
    );
}

/// A state that imports a macro library reads what the library reads:
/// hosts that differ only there must not share the state's render, while
/// hosts that agree still do.
#[test]
fn a_state_is_keyed_by_what_its_imported_macros_read() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[("s", "{% from \"m.jinja\" import p %}\n{{ p(host.role) }}\n")],
    );
    std::fs::create_dir_all(d.path().join("macros")).unwrap();
    std::fs::write(
        d.path().join("macros/m.jinja"),
        "{% macro p(role) %}\n[pkg.\"{{ role }}-{{ host.dc }}\"]\n{% endmacro %}\n",
    )
    .unwrap();
    let (tree, diags) = Tree::load(d.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(tree.states["s"].vars, vec!["host.dc", "host.role"]);
    let reg = registry();
    let c = Compiler::new(&tree, &reg);
    assert_eq!(
        c.validate().catalogs.len(),
        2,
        "hosts a and b shared a render"
    );
    let b = c.compile_host("b", None).unwrap();
    assert_eq!(b.resources[0].id, ResourceId::new("pkg", "r-y"));
    assert_eq!(b.resources[0].origin.file, "macros/m.jinja");
    assert_eq!(b.resources[0].origin.line, 2);
}

/// Data tables keep their source order through the layers and into
/// templates (an override keeps its place, a new key comes last), and the
/// catalog is still the same on every compile.
#[test]
fn data_keeps_source_order_through_merging_and_templates() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[(
            "s",
            "[file.\"/etc/o\"]\ncontent = \"{% for k, v in data.o | items %}{{ k }}={{ v }} {% endfor %}\"\n",
        )],
    );
    std::fs::create_dir_all(d.path().join("data/dc")).unwrap();
    std::fs::write(
        d.path().join("data/common.toml"),
        "[o]\nz = 1\nb = 2\na = 3\n",
    )
    .unwrap();
    std::fs::write(d.path().join("data/dc/x.toml"), "[o]\nc = 4\nb = 5\n").unwrap();
    let c = compile(d.path(), "a");
    assert_eq!(c.resources[0].attrs["content"], "z=1 b=5 a=3 c=4 ");
    assert_eq!(compile(d.path(), "a").id, c.id);
}

/// Regression: an escaped non-ASCII character in a template string made
/// loading the tree panic.
#[test]
fn an_escaped_multibyte_character_in_a_template_string_loads() {
    let d = tempfile::tempdir().unwrap();
    write_tree(
        d.path(),
        &[("s", "[pkg.a]\nversion = \"{{ 'caf\\é' | length }}\"\n")],
    );
    let (_tree, diags) = Tree::load(d.path()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
}

/// A tree held in memory: what a source from a git commit will look like
/// to the loader. Loading and compiling take the same path as a directory.
struct MemSource(std::collections::BTreeMap<&'static str, &'static str>);

impl cfgm_core::TreeSource for MemSource {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, cfgm_core::source::SourceError> {
        Ok(self.0.get(rel).map(|t| t.as_bytes().to_vec()))
    }

    fn list(&self, dir: &str) -> cfgm_core::source::Listing {
        let prefix = format!("{dir}/");
        cfgm_core::source::Listing {
            files: self
                .0
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .map(|k| k.to_string())
                .collect(),
            problems: Vec::new(),
        }
    }

    fn id(&self) -> Option<String> {
        Some("0123456789abcdef0123456789abcdef01234567".into())
    }
}

#[test]
fn a_tree_loads_from_any_source() {
    let src = MemSource(
        [
            ("inventory.toml", "[hosts.a]\ndc = \"x\"\nrole = \"r\"\n"),
            ("top.toml", "\"*\" = [\"s\"]\n"),
            ("data/dc/x.toml", "v = \"7\"\n"),
            (
                "states/s.toml",
                "[file.\"/etc/x\"]\ntemplate = \"x.j2\"\n[pkg.p]\nversion = \"{{ data.v }}\"\n",
            ),
            ("templates/x.j2", "dc={{ host.dc }}\n"),
        ]
        .into(),
    );
    let (tree, diags) = Tree::load_from(Box::new(src));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(tree.tree_id(), "0123456789abcdef0123456789abcdef01234567");
    let reg = registry();
    let c = Compiler::new(&tree, &reg)
        .compile_host("a", None)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let get = |k: &str, n: &str| c.get(&ResourceId::new(k, n)).unwrap().attrs.clone();
    assert_eq!(get("file", "/etc/x")["content"], "dc=x\n");
    assert_eq!(get("pkg", "p")["version"], "7");
}

/// Data keys nothing reads (`cfgm validate`'s warnings): a table of trees
/// (one state, one file template, common and dc data) and the keys warned
/// about, with their did-you-mean.
#[test]
fn unused_data_keys_are_those_no_state_or_template_reads() {
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        // state, template, data/common.toml, data/dc/x.toml, expected warnings
        (
            "[pkg.p]\nversion = \"{{ data.nginx.version }}\"\n",
            "t={{ data.nginx.keepalive_timeout }}\n",
            "[nginx]\nversion = \"1\"\nkeepalive_timeout = 30\n",
            "[nginx]\nkeepalive_timout = 15\n",
            &["data key `nginx.keepalive_timout` … did you mean `nginx.keepalive_timeout`?"],
        ),
        // A table read whole (a loop over it) reads every key under it.
        (
            "{% for k, v in data.sysctl | items %}[sysctl.\"{{ k }}\"]\nvalue = \"{{ v }}\"\n{% endfor %}",
            "",
            "[sysctl]\n\"net.core.somaxconn\" = 1024\n",
            "[sysctl]\n\"vm.swappiness\" = 10\n",
            &[],
        ),
        // A method on a table (`items()`) reads the table.
        (
            "{% for k, v in data.users.items() %}[user.{{ k }}]\nuid = {{ v }}\n{% endfor %}",
            "",
            "[users]\nalice = 2001\n",
            "unrelated = 1\n",
            &["data key `unrelated` … remove it"],
        ),
        // A template that includes another may read anything: no warnings.
        (
            "[pkg.p]\n",
            "{% include \"other.j2\" %}\n",
            "[a]\nb = 1\n",
            "c = 2\n",
            &[],
        ),
    ];
    for (state, template, common, dc, expected) in cases {
        let src = MemSource(
            [
                ("inventory.toml", "[hosts.a]\ndc = \"x\"\nrole = \"r\"\n"),
                ("top.toml", "\"*\" = [\"s\"]\n"),
                ("states/s.toml", *state),
                ("templates/t.j2", *template),
                ("templates/other.j2", "x\n"),
                ("data/common.toml", *common),
                ("data/dc/x.toml", *dc),
            ]
            .into(),
        );
        let (tree, diags) = Tree::load_from(Box::new(src));
        assert!(diags.is_empty(), "{state}: {diags:?}");
        let got: Vec<String> = cfgm_core::unused::unused_data_keys(&tree)
            .iter()
            .map(|d| format!("{} … {}", d.message, d.notes.join(" ")))
            .collect();
        assert_eq!(got.len(), expected.len(), "{state}: {got:?}");
        for (g, e) in got.iter().zip(expected.iter()) {
            let (head, tail) = e.split_once(" … ").unwrap();
            assert!(
                g.starts_with(head) && g.contains(tail),
                "{state}: {g} vs {e}"
            );
        }
    }
}

/// A symlink inside the tree is fine, to a file or a directory, and what
/// it names is read as if it were there.
#[test]
fn symlinks_inside_the_tree_are_followed() {
    let d = tempfile::tempdir().unwrap();
    write_tree(d.path(), &[("real", "[pkg.a]\nversion = \"1\"\n")]);
    std::fs::write(
        d.path().join("top.toml"),
        "\"*\" = [\"alias\", \"more/b\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("shared")).unwrap();
    std::fs::write(d.path().join("shared/b.toml"), "[pkg.b]\n").unwrap();
    std::os::unix::fs::symlink("real.toml", d.path().join("states/alias.toml")).unwrap();
    std::os::unix::fs::symlink("../shared", d.path().join("states/more")).unwrap();
    let c = compile(d.path(), "a");
    assert!(c.get(&ResourceId::new("pkg", "a")).is_some());
    assert!(c.get(&ResourceId::new("pkg", "b")).is_some());
}

/// One generated resource: kind, name, attributes, requisites on earlier ones.
#[derive(Clone, Debug)]
struct Gen {
    kind: &'static str,
    name: String,
    attrs: Vec<(String, String)>,
    requires: Vec<usize>,
}

fn gen_resources() -> impl Strategy<Value = Vec<Gen>> {
    prop::collection::vec(
        (
            0..3usize,
            "[a-z]{1,6}",
            prop::collection::vec(0..3usize, 0..3),
            any::<u8>(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        ),
        1..12,
    )
    .prop_map(|raw| {
        let mut out: Vec<Gen> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (k, name, attrs, v, reqs) in raw {
            let (kind, name) = match k {
                0 => ("pkg", name),
                1 => ("file", format!("/srv/{name}")),
                _ => ("directory", format!("/srv/{name}")),
            };
            if !seen.insert(name.clone()) {
                continue; // one resource per path/name keeps kinds from colliding
            }
            let mut a = Vec::new();
            for which in attrs {
                let (key, val) = match (kind, which) {
                    ("pkg", _) => ("version", format!("\"{v}\"")),
                    ("file", 0) => ("content", format!("\"c{v}\"")),
                    ("file", 1) => ("owner", format!("\"u{v}\"")),
                    (_, _) => ("mode", format!("\"0{}\"", 600 + (v % 8) as u32 * 10)),
                };
                if !a.iter().any(|(k, _): &(String, String)| k == key) {
                    a.push((key.to_string(), val));
                }
            }
            let requires = if out.is_empty() {
                Vec::new()
            } else {
                let mut r: Vec<usize> = reqs.iter().map(|i| i.index(out.len())).collect();
                r.sort();
                r.dedup();
                r
            };
            out.push(Gen {
                kind,
                name,
                attrs: a,
                requires,
            });
        }
        out
    })
}

fn render(res: &[Gen], order: &[usize], reverse_keys: bool) -> String {
    let mut s = String::new();
    for &i in order {
        let r = &res[i];
        s.push_str(&format!("[{}.\"{}\"]\n", r.kind, r.name));
        let mut lines: Vec<String> = r.attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        if !r.requires.is_empty() {
            let reqs: Vec<String> = r
                .requires
                .iter()
                .map(|&j| format!("\"{}:{}\"", res[j].kind, res[j].name))
                .collect();
            lines.push(format!("require = [{}]", reqs.join(", ")));
        }
        if reverse_keys {
            lines.reverse();
        }
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Reordering resources, or keys inside a resource, does not change the
    /// catalog: same id, same canonical bytes.
    #[test]
    fn order_in_the_file_does_not_change_the_catalog_id(
        res in gen_resources(),
        perm in any::<prop::sample::Index>(),
    ) {
        let mut order: Vec<usize> = (0..res.len()).collect();
        let a = render(&res, &order, false);
        // A rotation plus a reversal gives a different declaration order.
        let k = perm.index(order.len());
        order.rotate_left(k);
        order.reverse();
        let b = render(&res, &order, true);
        let da = tempfile::tempdir().unwrap();
        let db = tempfile::tempdir().unwrap();
        write_tree(da.path(), &[("s", &a)]);
        write_tree(db.path(), &[("s", &b)]);
        let ca = compile(da.path(), "a");
        let cb = compile(db.path(), "a");
        prop_assert_eq!(&ca.id, &cb.id);
        prop_assert_eq!(ca.canonical(), cb.canonical());
        prop_assert_eq!(ca.resources.len(), res.len());
    }
}

// ---- the engine ------------------------------------------------------------
//
// These tests drive the engine with a recording provider over an in-memory
// "host". That is a test double on purpose: they pin the engine's own rules
// (ordering, skips, refresh once, batching, dry run never applies, a panic
// fails one resource) including a fault that cannot be caused for real (a
// provider that panics). Real providers on real hosts are tested in
// cfgm-modules, cfgm-agent and the fleet tests.

mod engine {
    use cfgm_core::catalog::{Catalog, DepKind, Origin, Resource, ResourceId};
    use cfgm_core::engine::{run, Options};
    use cfgm_core::provider::{Planned, RunCtx};
    use cfgm_core::schema::{no_auto_deps, no_check, KindSpec};
    use cfgm_core::{Change, Mode, ModuleError, Outcome, Provider, Providers};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// The "host": resource name → value; plus a log of calls.
    #[derive(Default)]
    struct World {
        state: BTreeMap<String, String>,
        log: Vec<String>,
    }

    struct Fake {
        world: Arc<Mutex<World>>,
        batched: bool,
        spec: &'static KindSpec,
    }

    /// The fakes' kinds: nothing to check; only `thing` names are paths.
    static V: KindSpec = KindSpec {
        kind: "v",
        doc: "a value",
        attrs: &[],
        name_is_path: false,
        secret_attrs: &[],
        check: no_check,
        auto_deps: no_auto_deps,
        claims: cfgm_core::schema::no_claims,
    };
    static THING: KindSpec = KindSpec {
        kind: "thing",
        doc: "a value at a path",
        attrs: &[],
        name_is_path: true,
        secret_attrs: &[],
        check: no_check,
        auto_deps: no_auto_deps,
        claims: cfgm_core::schema::no_claims,
    };

    impl Provider for Fake {
        fn spec(&self) -> &'static KindSpec {
            self.spec
        }
        fn observe(&self, r: &Resource, ctx: &RunCtx) -> Result<Value, ModuleError> {
            if r.attrs.get("panic") == Some(&json!("observe")) {
                panic!("boom");
            }
            if let Some(Value::String(why)) = r.attrs.get("blocked") {
                // A precondition that observing sees (a kind's "would fail").
                return Err(ModuleError::Invalid(why.clone()));
            }
            if r.attrs.get("show_managed") == Some(&json!(true)) {
                let paths: Vec<&str> = ctx.managed_paths().iter().map(String::as_str).collect();
                let line = format!("managed {}", paths.join(","));
                self.world.lock().unwrap().log.push(line);
            }
            Ok(json!(self.world.lock().unwrap().state.get(&r.id.name)))
        }
        fn diff(&self, r: &Resource, o: &Value) -> Result<Planned, ModuleError> {
            let want = r.attrs.get("value").cloned().unwrap_or(Value::Null);
            Ok(Planned::untyped(if *o == want {
                vec![]
            } else {
                vec![Change::new("value", o.clone(), want)]
            }))
        }
        fn apply(&self, r: &Resource, _: &Planned, _: &RunCtx) -> Result<(), ModuleError> {
            let mut w = self.world.lock().unwrap();
            w.log.push(format!("apply {}", r.id.name));
            if r.attrs.get("fail") == Some(&json!(true)) {
                return Err(ModuleError::Other("it broke".into()));
            }
            if r.attrs.get("stuck") == Some(&json!(true)) {
                return Ok(()); // claims success, changes nothing
            }
            let v = r.attrs["value"].as_str().unwrap().to_string();
            w.state.insert(r.id.name.clone(), v);
            Ok(())
        }
        fn refresh(&self, r: &Resource, _: &RunCtx) -> Result<bool, ModuleError> {
            self.world
                .lock()
                .unwrap()
                .log
                .push(format!("refresh {}", r.id.name));
            Ok(r.attrs.get("refresh_noop") != Some(&json!(true)))
        }
        fn batched(&self) -> bool {
            self.batched
        }
        fn apply_batch(
            &self,
            items: &[(&Resource, &Planned)],
            ctx: &RunCtx,
        ) -> Vec<Result<(), ModuleError>> {
            let names: Vec<&str> = items.iter().map(|(r, _)| r.id.name.as_str()).collect();
            self.world
                .lock()
                .unwrap()
                .log
                .push(format!("batch {}", names.join(",")));
            items.iter().map(|(r, c)| self.apply(r, c, ctx)).collect()
        }
    }

    fn res(kind: &str, name: &str, attrs: Value, deps: &[(&str, &str, DepKind)]) -> Resource {
        Resource {
            id: ResourceId::new(kind, name),
            attrs: serde_json::from_value(attrs).unwrap(),
            deps: deps
                .iter()
                .map(|(k, n, d)| (ResourceId::new(*k, *n), *d))
                .collect(),
            origin: Origin {
                file: "t".into(),
                line: 1,
                column: 1,
            },
            hidden: vec![],
            error: None,
        }
    }

    fn setup() -> (Arc<Mutex<World>>, Providers) {
        let world = Arc::new(Mutex::new(World::default()));
        let mut p: Providers = Providers::new();
        p.insert(
            "v",
            Box::new(Fake {
                world: world.clone(),
                batched: false,
                spec: &V,
            }),
        );
        p.insert(
            "thing",
            Box::new(Fake {
                world: world.clone(),
                batched: false,
                spec: &THING,
            }),
        );
        p.insert(
            "pkg",
            Box::new(Fake {
                world: world.clone(),
                batched: true,
                spec: &V,
            }),
        );
        (world, p)
    }

    fn outcome(r: &cfgm_core::Report, name: &str) -> Outcome {
        r.resources
            .iter()
            .find(|x| x.id.name == name)
            .unwrap()
            .outcome
    }

    fn opts(mode: Mode) -> Options {
        Options {
            mode,
            parallel: 2,
            ..Options::default()
        }
    }

    /// What observing finds apply would hit, a dry run reports as "would
    /// fail" with apply's own message, and the run is not ok (non-zero
    /// exit); apply fails with the same words and never acts.
    #[test]
    fn a_dry_run_says_would_fail_with_applys_message() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res(
                    "v",
                    "a",
                    json!({"value": "1", "blocked": "/a is a directory"}),
                    &[],
                ),
                res("v", "b", json!({"value": "1"}), &[]),
            ],
        );
        let dry = run(&c, &p, &opts(Mode::DryRun));
        assert_eq!(outcome(&dry, "a"), Outcome::Failed);
        assert!(!dry.ok());
        assert_ne!(dry.status.exit_code(), 0);
        let text = dry.to_text(false);
        assert!(
            text.contains("v[a]  would fail: /a is a directory"),
            "{text}"
        );
        assert!(
            text.contains("1 would change, 0 unchanged, 1 would fail"),
            "{text}"
        );
        // What depends on it would be skipped, and says why in the dry run's words.
        let c2 = Catalog::new(
            "h",
            vec![
                res(
                    "v",
                    "a",
                    json!({"value": "1", "blocked": "/a is a directory"}),
                    &[],
                ),
                res(
                    "v",
                    "b",
                    json!({"value": "1"}),
                    &[("v", "a", DepKind::Require)],
                ),
            ],
        );
        let dry2 = run(&c2, &p, &opts(Mode::DryRun));
        let b = dry2.resources.iter().find(|x| x.id.name == "b").unwrap();
        assert_eq!(b.error.as_deref(), Some("requires v[a], which would fail"));
        let applied = run(&c, &p, &opts(Mode::Apply));
        let err = |r: &cfgm_core::Report| {
            r.resources
                .iter()
                .find(|x| x.id.name == "a")
                .and_then(|x| x.error.clone())
        };
        assert_eq!(err(&applied), err(&dry));
        assert!(!w.lock().unwrap().log.iter().any(|l| l == "apply a"));
    }

    #[test]
    fn a_failure_skips_dependents_transitively_and_nothing_else() {
        let (_, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "a", json!({"value": "1", "fail": true}), &[]),
                res(
                    "v",
                    "b",
                    json!({"value": "1"}),
                    &[("v", "a", DepKind::Require)],
                ),
                res(
                    "v",
                    "c",
                    json!({"value": "1"}),
                    &[("v", "b", DepKind::Auto)],
                ),
                res("v", "d", json!({"value": "1"}), &[]),
            ],
        );
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(outcome(&r, "a"), Outcome::Failed);
        assert_eq!(outcome(&r, "b"), Outcome::Skipped);
        assert_eq!(outcome(&r, "c"), Outcome::Skipped);
        assert_eq!(outcome(&r, "d"), Outcome::Changed);
        let c_rep = r.resources.iter().find(|x| x.id.name == "c").unwrap();
        assert_eq!(
            c_rep.error.as_deref(),
            Some("requires v[b], which was skipped")
        );
        assert!(!r.ok());
    }

    /// What a purging directory keeps comes from the kinds' specs: the
    /// names of every kind whose names are paths, whatever it is called,
    /// and nothing of the others. (The engine names no kind.)
    #[test]
    fn managed_paths_come_from_the_kinds_specs_not_their_names() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("thing", "/srv/a", json!({"value": "1"}), &[]),
                res(
                    "v",
                    "/srv/b",
                    json!({"value": "1", "show_managed": true}),
                    &[],
                ),
                res("thing", "/srv/c", json!({"value": "1"}), &[]),
            ],
        );
        run(&c, &p, &opts(Mode::DryRun));
        assert_eq!(w.lock().unwrap().log, ["managed /srv/a,/srv/c"]);
    }

    #[test]
    fn watch_refreshes_once_per_run_when_several_watched_resources_changed() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "f1", json!({"value": "1"}), &[]),
                res("v", "f2", json!({"value": "1"}), &[]),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "f1", DepKind::Watch), ("v", "f2", DepKind::Watch)],
                ),
            ],
        );
        w.lock().unwrap().state.insert("svc".into(), "on".into());
        let r = run(&c, &p, &opts(Mode::Apply));
        let log = w.lock().unwrap().log.clone();
        assert_eq!(
            log.iter().filter(|l| *l == "refresh svc").count(),
            1,
            "{log:?}"
        );
        assert_eq!(outcome(&r, "svc"), Outcome::Changed);
        // Nothing changed on the second run: no refresh.
        let r2 = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(r2.counts.changed, 0);
        assert_eq!(
            w.lock()
                .unwrap()
                .log
                .iter()
                .filter(|l| *l == "refresh svc")
                .count(),
            1
        );
    }

    /// Regression: a refresh that did nothing (a guarded command whose
    /// guard said no) counted as a change and restarted its own watchers.
    #[test]
    fn a_refresh_that_did_nothing_is_no_change_and_is_not_passed_on() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "f", json!({"value": "1"}), &[]),
                res(
                    "v",
                    "cmd",
                    json!({"value": "x", "refresh_noop": true}),
                    &[("v", "f", DepKind::Watch)],
                ),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "cmd", DepKind::Watch)],
                ),
            ],
        );
        w.lock().unwrap().state.insert("cmd".into(), "x".into());
        w.lock().unwrap().state.insert("svc".into(), "on".into());
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(outcome(&r, "f"), Outcome::Changed);
        assert_eq!(outcome(&r, "cmd"), Outcome::Unchanged);
        assert_eq!(outcome(&r, "svc"), Outcome::Unchanged);
        let log = w.lock().unwrap().log.clone();
        assert!(log.contains(&"refresh cmd".to_string()), "{log:?}");
        assert!(!log.contains(&"refresh svc".to_string()), "{log:?}");
    }

    /// Records events as lines; stops the run after `stop_after` finished resources.
    struct Recorder {
        lines: Mutex<Vec<String>>,
        cancel: Arc<std::sync::atomic::AtomicBool>,
        stop_after: usize,
    }
    impl cfgm_core::engine::EventSink for Recorder {
        fn event(&self, e: &cfgm_core::engine::Event<'_>) {
            use cfgm_core::engine::Event;
            let mut l = self.lines.lock().unwrap();
            l.push(match e {
                Event::RunStarted { catalog, .. } => format!("run {}", catalog.resources.len()),
                Event::ResourceStarted { id } => format!("start {}", id.name),
                Event::ResourceFinished { report } => {
                    format!("finish {} {:?}", report.id.name, report.outcome)
                }
                Event::RunFinished { report } => format!("done stopped={}", report.stopped),
            });
            if l.iter().filter(|x| x.starts_with("finish")).count() >= self.stop_after {
                self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    fn chain(n: usize) -> Catalog {
        Catalog::new(
            "h",
            (0..n)
                .map(|i| {
                    let prev = format!("r{}", i.wrapping_sub(1));
                    let deps: Vec<(&str, &str, DepKind)> = if i == 0 {
                        vec![]
                    } else {
                        vec![("v", prev.as_str(), DepKind::Require)]
                    };
                    res("v", &format!("r{i}"), json!({"value": "1"}), &deps)
                })
                .collect(),
        )
    }

    /// Every resource is announced before it is observed and when it is
    /// done; the run is announced at both ends; observed states are in the
    /// report.
    #[test]
    fn events_announce_the_run_and_each_resource_in_order() {
        let (_, p) = setup();
        let rec = Arc::new(Recorder {
            lines: Mutex::default(),
            cancel: Arc::default(),
            stop_after: usize::MAX,
        });
        let mut o = opts(Mode::Apply);
        o.sink = Some(rec.clone());
        let r = run(&chain(3), &p, &o);
        let lines = rec.lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "run 3",
                "start r0",
                "finish r0 Changed",
                "start r1",
                "finish r1 Changed",
                "start r2",
                "finish r2 Changed",
                "done stopped=false"
            ]
        );
        assert_eq!(
            r.resources[0].observed,
            Some(json!("1")),
            "observed after apply"
        );
    }

    /// A stop request lets the running resource finish, starts nothing
    /// more, and reports the rest as not started.
    #[test]
    fn a_cancelled_run_finishes_the_running_resource_and_starts_no_other() {
        let (w, p) = setup();
        let rec = Arc::new(Recorder {
            lines: Mutex::default(),
            cancel: Arc::default(),
            stop_after: 1,
        });
        let mut o = opts(Mode::Apply);
        o.sink = Some(rec.clone());
        o.cancel = Some(rec.cancel.clone());
        let r = run(&chain(3), &p, &o);
        assert!(r.stopped);
        assert_eq!(r.status, cfgm_core::RunStatus::Stopped);
        assert_eq!(outcome(&r, "r0"), Outcome::Changed);
        for n in ["r1", "r2"] {
            assert_eq!(outcome(&r, n), Outcome::Skipped);
            let rep = r.resources.iter().find(|x| x.id.name == n).unwrap();
            assert_eq!(
                rep.error.as_deref(),
                Some("not started: the run was stopped")
            );
        }
        assert_eq!(w.lock().unwrap().log, ["apply r0"]);
        assert!(r.to_text(false).contains("stopped by a signal"));
    }

    /// Planning from observed states needs no host: changes per resource,
    /// predicted refreshes, unknowns for what was never observed, and
    /// refreshes that depend on an unknown.
    #[test]
    fn a_catalog_plans_from_observed_states_without_a_host() {
        use cfgm_core::plan::{plan_catalog, Verdict};
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "same", json!({"value": "1"}), &[]),
                res("v", "drift", json!({"value": "2"}), &[]),
                res("v", "new", json!({"value": "3"}), &[]),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "drift", DepKind::Watch)],
                ),
                res(
                    "v",
                    "svc2",
                    json!({"value": "on"}),
                    &[("v", "new", DepKind::Watch)],
                ),
                res("v", "owed", json!({"value": "on"}), &[]),
            ],
        );
        let observed: BTreeMap<ResourceId, Value> = [
            ("same", "1"),
            ("drift", "1"),
            ("svc", "on"),
            ("svc2", "on"),
            ("owed", "on"),
        ]
        .into_iter()
        .map(|(n, v)| (ResourceId::new("v", n), json!(v)))
        .collect();
        let owed = [ResourceId::new("v", "owed")].into_iter().collect();
        let plan = plan_catalog(&c, &p, |id| observed.get(id), &owed);
        let by = |n: &str| plan.iter().find(|x| x.id.name == n).unwrap();
        assert_eq!(by("same").verdict, Verdict::Unchanged);
        assert!(
            matches!(&by("drift").verdict, Verdict::Changes { changes } if changes[0].to == json!("2"))
        );
        assert!(matches!(by("new").verdict, Verdict::Unknown { .. }));
        assert_eq!(by("svc").refresh, vec![ResourceId::new("v", "drift")]);
        assert!(by("svc").changes());
        assert!(by("svc2").refresh.is_empty());
        assert_eq!(by("svc2").refresh_if, vec![ResourceId::new("v", "new")]);
        assert_eq!(by("owed").refresh, vec![cfgm_core::plan::earlier_run()]);
        // No provider call touched the "host".
        assert!(w.lock().unwrap().log.is_empty());
    }

    /// A ledger that writes into the world's log, to see the order of calls.
    struct Ledger(Arc<Mutex<World>>);
    impl cfgm_core::engine::DebtLedger for Ledger {
        fn owe(&self, ids: &[ResourceId]) -> Result<(), String> {
            let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
            let mut w = self.0.lock().unwrap();
            if w.state.contains_key("ledger-broken") {
                return Err("disk full".into());
            }
            w.log.push(format!("owe {}", names.join(",")));
            Ok(())
        }
        fn paid(&self, id: &ResourceId) {
            self.0.lock().unwrap().log.push(format!("paid {}", id.name));
        }
    }

    /// The debt a change makes due is recorded before the change and
    /// cleared after the refresh, for single and batched resources; a
    /// ledger that cannot record stops the change.
    #[test]
    fn refresh_debts_are_recorded_before_the_change_and_paid_after_the_refresh() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "f", json!({"value": "1"}), &[]),
                res("pkg", "p", json!({"value": "1"}), &[]),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "f", DepKind::Watch), ("pkg", "p", DepKind::Watch)],
                ),
            ],
        );
        w.lock().unwrap().state.insert("svc".into(), "on".into());
        let mut o = opts(Mode::Apply);
        o.ledger = Some(Arc::new(Ledger(w.clone())));
        let r = run(&c, &p, &o);
        assert!(r.owed_refresh.is_empty());
        let log = w.lock().unwrap().log.clone();
        let at = |s: &str| {
            log.iter()
                .position(|l| l == s)
                .unwrap_or_else(|| panic!("{s}: {log:?}"))
        };
        // Each change is preceded by its own record of the debt.
        let owed_before =
            |change: &str| log[..at(change)].iter().filter(|l| *l == "owe svc").count();
        assert_eq!(log.iter().filter(|l| *l == "owe svc").count(), 2, "{log:?}");
        assert!(
            owed_before("batch p") >= 1 && owed_before("apply f") >= 1,
            "{log:?}"
        );
        assert_eq!(
            owed_before("batch p") + owed_before("apply f"),
            3,
            "{log:?}"
        );
        assert!(at("refresh svc") < at("paid svc"), "{log:?}");

        // A dry run records nothing.
        let (w2, p2) = setup();
        let mut o = opts(Mode::DryRun);
        o.ledger = Some(Arc::new(Ledger(w2.clone())));
        run(&c, &p2, &o);
        assert!(!w2.lock().unwrap().log.iter().any(|l| l.starts_with("owe")));

        // A ledger that cannot record: the change does not happen.
        let (w3, p3) = setup();
        w3.lock()
            .unwrap()
            .state
            .insert("ledger-broken".into(), "1".into());
        let mut o = opts(Mode::Apply);
        o.ledger = Some(Arc::new(Ledger(w3.clone())));
        let r = run(&c, &p3, &o);
        assert_eq!(outcome(&r, "f"), Outcome::Failed);
        assert!(!w3.lock().unwrap().log.contains(&"apply f".to_string()));
    }

    /// A watched resource whose apply failed half-way may have changed: its
    /// watchers stay owed until they refresh.
    #[test]
    fn a_failed_change_leaves_its_watchers_owed() {
        let (_, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "f", json!({"value": "1", "fail": true}), &[]),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "f", DepKind::Watch)],
                ),
            ],
        );
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(outcome(&r, "svc"), Outcome::Skipped);
        assert_eq!(r.owed_refresh, vec![ResourceId::new("v", "svc")]);
    }

    /// A refresh that could not happen (its watcher was skipped) is owed to
    /// the next run, which performs it even though nothing changes then.
    #[test]
    fn a_refresh_that_did_not_happen_is_owed_to_the_next_run() {
        let (w, p) = setup();
        let catalog = |fail: bool| {
            Catalog::new(
                "h",
                vec![
                    res("v", "a", json!({"value": "1", "fail": fail}), &[]),
                    res("v", "f", json!({"value": "1"}), &[]),
                    res(
                        "v",
                        "svc",
                        json!({"value": "on"}),
                        &[("v", "f", DepKind::Watch), ("v", "a", DepKind::Require)],
                    ),
                ],
            )
        };
        w.lock().unwrap().state.insert("svc".into(), "on".into());
        let first = run(&catalog(true), &p, &opts(Mode::Apply));
        assert_eq!(outcome(&first, "svc"), Outcome::Skipped);
        assert_eq!(first.owed_refresh, vec![ResourceId::new("v", "svc")]);
        let mut o = opts(Mode::Apply);
        o.owed_refresh = first.owed_refresh.iter().cloned().collect();
        let second = run(&catalog(false), &p, &o);
        assert_eq!(outcome(&second, "f"), Outcome::Unchanged);
        assert_eq!(outcome(&second, "svc"), Outcome::Changed);
        assert!(w.lock().unwrap().log.contains(&"refresh svc".to_string()));
        assert!(second.owed_refresh.is_empty());
        assert!(
            second.to_text(false).contains("refreshed: an earlier run"),
            "{}",
            second.to_text(false)
        );
    }

    #[test]
    fn a_dry_run_never_applies_nor_refreshes_and_predicts_the_apply() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "f", json!({"value": "1"}), &[]),
                res(
                    "v",
                    "svc",
                    json!({"value": "on"}),
                    &[("v", "f", DepKind::Watch)],
                ),
                res("pkg", "p", json!({"value": "i"}), &[]),
            ],
        );
        w.lock().unwrap().state.insert("svc".into(), "on".into());
        let dry = run(&c, &p, &opts(Mode::DryRun));
        assert!(
            w.lock().unwrap().log.is_empty(),
            "a dry run called the host: {:?}",
            w.lock().unwrap().log
        );
        assert!(!w.lock().unwrap().state.contains_key("f"));
        let real = run(&c, &p, &opts(Mode::Apply));
        let d: Vec<_> = dry.changed_ids().into_iter().cloned().collect();
        let a: Vec<_> = real.changed_ids().into_iter().cloned().collect();
        assert_eq!(d, a);
        assert_eq!(
            outcome(&dry, "svc"),
            Outcome::WouldChange,
            "the refresh is predicted"
        );
    }

    #[test]
    fn batched_kinds_are_applied_in_one_call() {
        let (w, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("pkg", "a", json!({"value": "i"}), &[]),
                res("pkg", "b", json!({"value": "i"}), &[]),
                res("pkg", "c", json!({"value": "i"}), &[]),
                res("v", "x", json!({"value": "1"}), &[]),
            ],
        );
        let r = run(&c, &p, &opts(Mode::Apply));
        assert!(r.ok());
        let log = w.lock().unwrap().log.clone();
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("batch"))
                .collect::<Vec<_>>(),
            ["batch a,b,c"]
        );
    }

    #[test]
    fn a_panic_fails_that_resource_only() {
        let (_, p) = setup();
        let c = Catalog::new(
            "h",
            vec![
                res("v", "bad", json!({"value": "1", "panic": "observe"}), &[]),
                res("v", "good", json!({"value": "1"}), &[]),
            ],
        );
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(outcome(&r, "bad"), Outcome::Failed);
        assert!(
            r.resources[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("panicked: boom")
                || r.resources[1]
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .contains("panicked: boom")
        );
        assert_eq!(outcome(&r, "good"), Outcome::Changed);
    }

    #[test]
    fn a_resource_that_still_differs_after_apply_did_not_converge() {
        let (_, p) = setup();
        let c = Catalog::new(
            "h",
            vec![res("v", "s", json!({"value": "1", "stuck": true}), &[])],
        );
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(outcome(&r, "s"), Outcome::Failed);
        assert_eq!(
            r.resources[0].error.as_deref(),
            Some("did not converge: still differs in value")
        );
    }

    #[test]
    fn unknown_kinds_fail_clearly() {
        let (_, p) = setup();
        let c = Catalog::new("h", vec![res("nope", "x", json!({}), &[])]);
        let r = run(&c, &p, &opts(Mode::Apply));
        assert_eq!(
            r.resources[0].error.as_deref(),
            Some("no provider for kind `nope`")
        );
    }
}

/// `cfgm diff`'s shortcut: a host whose states are the same in two trees
/// shares one graph, and the resources whose contents differ, compared,
/// give exactly the delta of the two whole catalogs. A state whose source
/// changed, even where no value it reads did, never shares.
#[test]
fn parts_of_equal_states_share_a_graph_and_give_the_whole_delta() {
    use cfgm_core::fleet::{catalog_delta, resources_delta};
    let state = "[directory.\"/etc/x\"]\n[file.\"/etc/x/a\"]\ntemplate = \"t.j2\"\n[file.\"/etc/x/b\"]\ncontent = \"{{ host.dc }}\"\nmode = \"0600\"\n[pkg.p]\n";
    let tree = |dir: &Path, state: &str, template: &str| {
        write_tree(dir, &[("s", state)]);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("templates/t.j2"), template).unwrap();
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tree(a.path(), state, "one {{ host.name }}\n");
    tree(b.path(), state, "two {{ host.name }}\n");
    // The same resources, the same values read, another source.
    tree(
        c.path(),
        &format!("# a comment\n{state}"),
        "two {{ host.name }}\n",
    );
    let load = |d: &Path| Tree::load(d).unwrap().0;
    let (ta, tb, tc) = (load(a.path()), load(b.path()), load(c.path()));
    let reg = registry();
    let (ca, cb, cc) = (
        Compiler::new(&ta, &reg),
        Compiler::new(&tb, &reg),
        Compiler::new(&tc, &reg),
    );
    let host = |t: &Tree| t.hosts.get("a").unwrap().clone();
    let pa = ca.parts(&host(&ta), None, None).ok().unwrap();
    let pb = cb.parts(&host(&tb), None, Some(&pa)).ok().unwrap();
    assert!(pb.same_graph(&pa), "equal states share the graph");
    let at = pa.differing(&pb);
    let short = resources_delta(
        Some(&ca.resources_at(&pa, &at)),
        Some(&cb.resources_at(&pb, &at)),
    );
    let whole = catalog_delta(
        ca.catalog_of(ca.parts(&host(&ta), None, None).ok().unwrap(), false)
            .0
            .as_ref(),
        cb.catalog_of(cb.parts(&host(&tb), None, None).ok().unwrap(), false)
            .0
            .as_ref(),
    );
    assert_eq!(at.len(), 1, "only the templated file differs");
    assert_eq!(
        serde_json::to_value(&short).unwrap(),
        serde_json::to_value(&whole).unwrap()
    );
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].id, ResourceId::new("file", "/etc/x/a"));
    // Another source: its own graph, even though every key it reads agrees.
    let pc = cc.parts(&host(&tc), None, Some(&pa)).ok().unwrap();
    assert!(!pc.same_graph(&pa));
}
