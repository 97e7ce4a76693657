//! Data keys that nothing reads: the silent typo of layered data.
//!
//! A key misspelt in an overriding layer (`keepalive_timout = 15` in
//! `data/dc/lhr01.toml`) compiles cleanly, and those hosts silently get
//! the common value. This module compares every key of every file under
//! `data/` with the context paths the tree's states and file templates
//! read (`StateFile::vars`, `TemplateFile::vars`: minijinja's undeclared
//! variables, `data.nginx.keepalive_timeout`) and returns a warning, at the
//! key, for each key that none of them reads, with a did-you-mean among
//! the paths that are read.
//!
//! It errs on the side of silence: reading a table (`data.nginx`, a loop
//! over it, `data.nginx | tojson`) reads every key under it; a template
//! whose reads cannot be told (it includes another, or rebinds `data`)
//! reads all data; a read path that goes past the data's keys (a method
//! such as `data.users.items()`) reads the table it starts from; and a
//! tree with a state or template that did not load is not checked at all.
//! The check is static — what *any* state or template of the tree reads —
//! so a key read only by a state that no host is given is still "read".

use crate::diag::{suggest, Diagnostic, Span};
use crate::tree::Tree;
use std::collections::BTreeSet;
use toml::de::{DeTable, DeValue};

/// A key path under `data`, one segment per table level.
type Path = Vec<String>;

/// Warnings (code `unused-data-key`) for the data keys nothing reads, in
/// file order.
pub fn unused_data_keys(tree: &Tree) -> Vec<Diagnostic> {
    if !tree.broken_states.is_empty() || !tree.broken_templates.is_empty() {
        return Vec::new();
    }
    let vars = tree
        .states
        .values()
        .flat_map(|s| s.vars.iter())
        .chain(tree.templates.values().flat_map(|t| t.vars.iter()));
    let mut reads: BTreeSet<Path> = BTreeSet::new();
    for v in vars {
        let mut parts = v.split('.');
        if parts.next() != Some("data") {
            continue;
        }
        let path: Path = parts.map(str::to_string).collect();
        if path.is_empty() {
            // The whole of `data` is read (or cannot be told apart).
            return Vec::new();
        }
        reads.insert(path);
    }
    let files: Vec<_> = tree
        .sources
        .all()
        .into_iter()
        .filter(|f| f.name.starts_with("data/") && f.name.ends_with(".toml"))
        .collect();
    let docs: Vec<_> = files
        .iter()
        .filter_map(|f| DeTable::parse(&f.text).ok().map(|d| (f, d)))
        .collect();
    // Read paths that go past the keys any layer has are cut where they
    // leave the data: `users.items` reads all of `users`.
    let reads: BTreeSet<Path> = reads
        .into_iter()
        .map(|r| {
            let mut n = 0;
            while n < r.len()
                && docs
                    .iter()
                    .any(|(_, d)| has_table_path(d.get_ref(), &r[..=n]))
            {
                n += 1;
            }
            r[..n.max(1)].to_vec()
        })
        .collect();
    let mut out = Vec::new();
    for (f, doc) in &docs {
        walk(doc.get_ref(), &mut Vec::new(), &reads, f.id, &mut out);
    }
    out
}

/// Whether `path` names a key in `table` (every segment but the last a table).
fn has_table_path(table: &DeTable<'_>, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    match table.get(first.as_str()).map(|v| v.get_ref()) {
        None => false,
        Some(_) if rest.is_empty() => true,
        Some(DeValue::Table(t)) => has_table_path(t, rest),
        Some(_) => false,
    }
}

fn walk(
    table: &DeTable<'_>,
    prefix: &mut Path,
    reads: &BTreeSet<Path>,
    file: crate::diag::FileId,
    out: &mut Vec<Diagnostic>,
) {
    for (key, value) in table.iter() {
        prefix.push(key.get_ref().to_string());
        // Read itself, or inside a table that is read.
        let covered = reads.iter().any(|r| prefix.starts_with(r));
        // A table some of whose keys are read: look at each of them.
        let inside = reads
            .iter()
            .any(|r| r.len() > prefix.len() && r.starts_with(prefix));
        if !covered {
            match value.get_ref() {
                DeValue::Table(t) if inside => walk(t, prefix, reads, file, out),
                // A value read as if it were a table: a template error,
                // reported where it is read.
                _ if inside => {}
                _ => {
                    let name = prefix.join(".");
                    let mut d = Diagnostic::warning(
                        "unused-data-key",
                        format!("data key `{name}` is read by no state or template"),
                    )
                    .primary(Span::new(file, key.span()), "nothing reads this key");
                    // Among the keys read next to it: `keepalive_timout`
                    // is compared with `keepalive_timeout`, not with every
                    // path that shares its table's name.
                    let key = &prefix[prefix.len() - 1];
                    let parent = &prefix[..prefix.len() - 1];
                    let siblings = reads
                        .iter()
                        .filter(|r| r.len() == prefix.len() && r.starts_with(parent))
                        .map(|r| r[r.len() - 1].as_str())
                        // A slip of a few letters, not a shared prefix
                        // (`worker_connections` is no typo of `workers`).
                        .filter(|c| strsim::levenshtein(key, c) <= 2.max(key.len() / 4));
                    if let Some(s) = suggest(key, siblings) {
                        let mut p = parent.to_vec();
                        p.push(s.to_string());
                        d = d.note(format!("did you mean `{}`?", p.join(".")));
                    } else {
                        d = d.note(format!(
                            "a state or template would read it as `data.{name}`; if none should, remove it"
                        ));
                    }
                    out.push(d);
                }
            }
        }
        prefix.pop();
    }
}
