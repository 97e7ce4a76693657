//! `cfgm diff --from REV --to REV`: what a commit range changes in the
//! compiled catalogs of the fleet, without facts: per host, resources
//! added, removed and modified, hosts with identical changes grouped.

use super::fleet_out::{render, Format};
use crate::ui::Ui;
use cfgm_core::fleet::{catalog_delta, resources_delta, Builder, HostStatus, ResourceChange};
use cfgm_core::gitsource::GitSource;
use cfgm_core::{exit, Catalog, Compiler, Selector, Tree};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(clap::Args)]
pub struct Args {
    /// The older commit (anything `git rev-parse` takes).
    #[arg(long, value_name = "REV")]
    from: String,
    /// The newer commit.
    #[arg(long, value_name = "REV")]
    to: String,
    /// The git repository (default: the --tree directory).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Where the states tree is inside the repository (default: its root).
    #[arg(long, default_value = "", value_name = "DIR")]
    subdir: String,
    /// Only the hosts this selector picks (`role:edge&dc:ams01`).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// The output: text (for people), json (versioned schema), github (CI annotations).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Exit 2 when anything changes (0 nothing, 1 error).
    #[arg(long)]
    detailed_exitcode: bool,
}

pub fn run(ui: &Ui, dir: &std::path::Path, args: Args) -> anyhow::Result<u8> {
    let repo = args.repo.clone().unwrap_or_else(|| dir.to_path_buf());
    let load = |rev: &str| -> anyhow::Result<(Tree, Vec<cfgm_core::Diagnostic>)> {
        let src = GitSource::open(&repo, rev, &args.subdir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", repo.display()))?;
        Ok(Tree::load_from(Box::new(src)))
    };
    let (old, _) = load(&args.from)?;
    let (new, new_diags) = load(&args.to)?;
    let registry = cfgm_modules::registry();
    let sel = match &args.select {
        None => Selector::all(),
        Some(text) => match Selector::parse(text, &new.hosts) {
            Ok(s) => s,
            Err(errors) => {
                for e in errors {
                    ui.error(&format!("--select {text:?}: {e}"));
                }
                return Ok(exit::FAILED);
            }
        },
    };
    let hosts = sel.select(&new.hosts);
    if hosts.is_empty() {
        ui.error(&format!("--select {:?} matches no host", sel.text));
        return Ok(exit::FAILED);
    }
    let (co, cn) = (
        Compiler::new(&old, &registry),
        Compiler::new(&new, &registry),
    );
    let mut b = Builder::new("diff");
    b.compared("from", &old.tree_id());
    b.compared("to", &new.tree_id());
    for d in &new_diags {
        b.diagnostic(d.to_json(&new.sources));
    }
    // Each distinct pair of catalogs is diffed once.
    let deltas: Mutex<HashMap<DeltaKey, Vec<ResourceChange>>> = Mutex::default();
    let cached = |key: DeltaKey, make: &dyn Fn() -> Vec<ResourceChange>| -> Vec<ResourceChange> {
        if let Some(d) = deltas.lock().expect("deltas").get(&key) {
            return d.clone();
        }
        let d = make();
        let mut m = deltas.lock().expect("deltas");
        if m.len() > 4096 {
            m.clear(); // bounded: memory stays flat in the number of hosts
        }
        m.insert(key, d.clone());
        d
    };
    let delta = |a: Option<&Catalog>, b: &Catalog| -> Vec<ResourceChange> {
        let key = DeltaKey::Catalogs(
            a.map(|c| c.id.0.clone()).unwrap_or_default(),
            b.id.0.clone(),
        );
        cached(key, &|| catalog_delta(a, Some(b)))
    };
    // Hosts stream through in chunks: compiled in parallel, reduced to
    // their change sets, folded into the builder.
    for chunk in hosts.chunks(512) {
        let results: Vec<_> = chunk
            .par_iter()
            .map(|h| {
                let po = old.hosts.get(&h.name).map(|oh| co.parts(oh, None, None));
                let like = po.as_ref().and_then(|p| p.as_ref().ok());
                let pn = cn.parts(h, None, like);
                // The host's states are the same in both trees: one graph,
                // and only the resources whose file contents differ are
                // built and compared (the rest are equal by construction).
                if let (Some(Ok(po)), Ok(pn)) = (&po, &pn) {
                    if po.clean() && pn.clean() && pn.same_graph(po) {
                        let key = DeltaKey::Parts(po.key(), pn.key());
                        let d = cached(key, &|| {
                            let at = po.differing(pn);
                            if at.is_empty() {
                                return Vec::new();
                            }
                            resources_delta(
                                Some(&co.resources_at(po, &at)),
                                Some(&cn.resources_at(pn, &at)),
                            )
                        });
                        return (Ok(d), Vec::new());
                    }
                }
                let o = po.map(|p| p.map_or_else(|c| c, |p| co.catalog_of(p, true)));
                let n = pn.map_or_else(|c| c, |p| cn.catalog_of(p, true));
                let old_cat = o
                    .as_ref()
                    .and_then(|o| o.0.as_ref().filter(|_| o.1.is_empty()));
                match &*n {
                    (Some(c), d) if d.is_empty() => (Ok(delta(old_cat, c)), Vec::new()),
                    (_, d) => (Err(one_line(&new, d)), d.clone()),
                }
            })
            .collect();
        for (h, (r, diags)) in chunk.iter().zip(results) {
            match r {
                Ok(changes) => b.host(h, changes),
                Err(why) => {
                    for d in &diags {
                        b.diagnostic(d.to_json(&new.sources));
                    }
                    b.host_without(h, HostStatus::Failed, why)
                }
            }
        }
    }
    // Hosts gone from the inventory.
    for h in sel_old(&args.select, &old) {
        if !new.hosts.contains_key(&h.name) {
            let changes = co
                .compile_shared(h, None)
                .0
                .as_ref()
                .map(|c| catalog_delta(Some(c), None))
                .unwrap_or_default();
            b.host_without(
                h,
                HostStatus::Removed,
                format!("{} resources no longer managed", changes.len()),
            );
        }
    }
    let out = b.finish();
    render(ui, &out, args.format.or_json(args.json), &args.subdir);
    Ok(if out.summary.all.failed > 0 {
        exit::FAILED
    } else if args.detailed_exitcode && out.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// What a delta is cached under: two catalogs' ids, or two parts' keys
/// (each in its own tree).
#[derive(PartialEq, Eq, Hash)]
enum DeltaKey {
    Catalogs(String, String),
    Parts([u8; 32], [u8; 32]),
}

/// The older inventory's hosts a selector picks (a selector that names
/// something only the newer inventory has picks nothing there).
fn sel_old<'a>(select: &Option<String>, old: &'a Tree) -> Vec<&'a cfgm_core::tree::Host> {
    match select {
        None => old.hosts.values().collect(),
        Some(text) => Selector::parse(text, &old.hosts)
            .map(|s| s.select(&old.hosts))
            .unwrap_or_default(),
    }
}

/// A host's compile problems in one line: the first, located, and a count.
pub fn one_line(tree: &Tree, diags: &[cfgm_core::Diagnostic]) -> String {
    let Some(d) = diags.first() else {
        return "does not compile".into();
    };
    let at = d
        .first_span()
        .map(|s| format!(" ({})", tree.sources.location(s.file, s.range.start)))
        .unwrap_or_default();
    if diags.len() > 1 {
        format!("{}{at}, and {} more", d.message, diags.len() - 1)
    } else {
        format!("{}{at}", d.message)
    }
}
