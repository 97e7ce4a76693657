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
        AttrSpec::opt("mode", AttrType::Mode, "mode"),
        AttrSpec::opt("owner", AttrType::Str, "owner"),
    ],
    name_is_path: true,
    secret_attrs: &["content"],
    check: no_check,
    auto_deps: file_deps,
};

static DIRECTORY: KindSpec = KindSpec {
    kind: "directory",
    doc: "test directory",
    attrs: &[AttrSpec::opt("mode", AttrType::Mode, "mode")],
    name_is_path: true,
    secret_attrs: &[],
    check: no_check,
    auto_deps: file_deps,
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
