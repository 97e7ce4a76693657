//! The graph step of compiling: from a host's parsed states to its
//! resources in apply order.
//!
//! [`build_graph`] merges resources across states (an equal re-declaration
//! merges, a different one is a duplicate), resolves requisites (`require`,
//! `watch`, `before`) and the kinds' automatic edges into a petgraph DAG,
//! reports a requisite to nothing (with a did-you-mean) and every cycle
//! (naming each resource on it), and orders the DAG deterministically
//! (Kahn's algorithm with ties broken by `kind[name]`). It reads only the
//! parsed states it is handed and the kinds' specs.

use crate::catalog::{DepKind, ResourceId};
use crate::diag::{suggest, Diagnostic, Sources};
use crate::parse::{ParsedResource, ParsedState};
use crate::schema::Registry;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::ops::Range;
use std::sync::Arc;

/// A resource in the graph, in apply order.
pub(crate) struct Node {
    pub(crate) state: usize,
    pub(crate) res: usize,
    pub(crate) deps: BTreeMap<ResourceId, DepKind>,
    /// Secret: declared so, or it sets or edits a path whose content a
    /// secret resource sets or edits (a `line` beside a secret `line` sees
    /// and shows the whole file).
    pub(crate) secret: bool,
}

/// The graph of a set of states (the states themselves stay with the
/// caller: nodes name resources by their place in them).
pub(crate) struct GraphOutcome {
    pub(crate) nodes: Vec<Node>,
    pub(crate) diags: Vec<Diagnostic>,
    /// Requisites that name no resource of these states: the index of
    /// their diagnostic in `diags`, and the resource they name (the
    /// compiler looks for it in other hosts' catalogs).
    pub(crate) missing: Vec<(usize, ResourceId)>,
}

/// Where an edge comes from, for cycle messages.
#[derive(Clone)]
struct Why {
    kind: DepKind,
    state: usize,
    range: Range<usize>,
}

fn precedence(k: DepKind) -> u8 {
    match k {
        DepKind::Watch => 3,
        DepKind::Require => 2,
        DepKind::Before => 1,
        DepKind::Auto => 0,
    }
}

pub(crate) fn build_graph(
    sources: &Sources,
    registry: &Registry,
    states: &[Arc<ParsedState>],
) -> GraphOutcome {
    let mut diags = Vec::new();
    let mut missing = Vec::new();
    let (ids, at) = merge(sources, states, &mut diags);
    let deps = edges(
        sources,
        registry,
        states,
        &ids,
        &at,
        &mut diags,
        &mut missing,
    );
    let secret = claims(sources, registry, states, &ids, &at, &mut diags);
    if diags.is_empty() {
        cycles(sources, states, &ids, &deps, &mut diags);
    }
    if !diags.is_empty() {
        return GraphOutcome {
            nodes: Vec::new(),
            diags,
            missing,
        };
    }
    let nodes = order(&deps)
        .into_iter()
        .map(|i| {
            let (state, res) = at[i];
            Node {
                state,
                res,
                deps: deps[i]
                    .iter()
                    .map(|(&k, w)| ((*ids[k]).clone(), w.kind))
                    .collect(),
                secret: secret[i],
            }
        })
        .collect();
    GraphOutcome {
        nodes,
        diags,
        missing,
    }
}

/// Resource ids in order, each once, with the (state, resource) of its
/// first declaration; a re-declaration with other attributes is reported.
/// Borrowed, not cloned: a catalog can hold 10,000 resources.
fn merge<'s>(
    sources: &Sources,
    states: &'s [Arc<ParsedState>],
    diags: &mut Vec<Diagnostic>,
) -> (Vec<&'s ResourceId>, Vec<(usize, usize)>) {
    // Sorted by id, stably: the first declaration wins, equal
    // re-declarations merge.
    let mut all: Vec<(&ResourceId, usize, usize)> = states
        .iter()
        .enumerate()
        .flat_map(|(si, st)| {
            st.resources
                .iter()
                .enumerate()
                .map(move |(ri, r)| (&r.id, si, ri))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut ids: Vec<&ResourceId> = Vec::with_capacity(all.len());
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(all.len());
    for &(id, si, ri) in &all {
        if ids.last() != Some(&id) {
            ids.push(id);
            at.push((si, ri));
            continue;
        }
        let (fs, fr) = *at.last().expect("pushed with its id");
        let st = &states[si];
        let r = &st.resources[ri];
        let first = &states[fs].resources[fr];
        if let Some(diff) = conflict(first, r) {
            diags.push(
                Diagnostic::error(
                    "duplicate",
                    format!("{} is declared twice with different attributes", r.id),
                )
                .primary(st.span(sources, r.range.clone()), "declared again here")
                .secondary(
                    states[fs].span(sources, first.range.clone()),
                    "first declared here",
                )
                .note(format!("they differ in: {diff}"))
                .note("declare a resource once, or give both declarations the same attributes"),
            );
        }
    }
    (ids, at)
}

/// Per resource: what it comes after (by index into `ids`), and why —
/// declared requisites and the kinds' automatic edges. A requisite to
/// nothing is reported with a did-you-mean.
fn edges(
    sources: &Sources,
    registry: &Registry,
    states: &[Arc<ParsedState>],
    ids: &[&ResourceId],
    at: &[(usize, usize)],
    diags: &mut Vec<Diagnostic>,
    missing: &mut Vec<(usize, ResourceId)>,
) -> Vec<BTreeMap<usize, Why>> {
    let pos: FxHashMap<&ResourceId, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    // Every resource of a kind, for automatic dependencies on all of them
    // (`EVERY`): indexed once, not searched per resource.
    let mut by_kind: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
    for (i, id) in ids.iter().enumerate() {
        by_kind.entry(id.kind.as_str()).or_default().push(i);
    }
    let mut deps: Vec<BTreeMap<usize, Why>> = vec![BTreeMap::new(); ids.len()];
    let add = |deps: &mut Vec<BTreeMap<usize, Why>>, at: usize, on: usize, why: Why| {
        let e = deps[at].entry(on).or_insert_with(|| why.clone());
        if precedence(why.kind) > precedence(e.kind) {
            *e = why;
        }
    };
    for (i, &id) in ids.iter().enumerate() {
        let (si, ri) = at[i];
        let st = &states[si];
        let r = &st.resources[ri];
        for req in &r.requisites {
            let Some(&t) = pos.get(&req.target) else {
                missing.push((diags.len(), req.target.clone()));
                diags.push(missing_requisite(sources, st, r, req, ids));
                continue;
            };
            let why = |kind| Why {
                kind,
                state: si,
                range: req.range.clone(),
            };
            match req.kind {
                "require" => add(&mut deps, i, t, why(DepKind::Require)),
                "watch" => add(&mut deps, i, t, why(DepKind::Watch)),
                _ => add(&mut deps, t, i, why(DepKind::Before)),
            }
        }
        if let Some(spec) = registry.get(&id.kind) {
            for auto in (spec.auto_deps)(&id.name, &r.attrs) {
                let every: Vec<usize> = auto
                    .candidates
                    .iter()
                    .filter(|c| c.name == crate::schema::EVERY)
                    .flat_map(|c| {
                        by_kind
                            .get(c.kind.as_str())
                            .into_iter()
                            .flatten()
                            .copied()
                            .filter(|&p| ids[p] != id)
                    })
                    .collect();
                for c in every {
                    add(
                        &mut deps,
                        i,
                        c,
                        Why {
                            kind: DepKind::Auto,
                            state: si,
                            range: r.range.clone(),
                        },
                    );
                }
                if let Some(&c) = auto
                    .candidates
                    .iter()
                    .filter(|c| *c != id)
                    .find_map(|c| pos.get(c))
                {
                    add(
                        &mut deps,
                        i,
                        c,
                        Why {
                            kind: DepKind::Auto,
                            state: si,
                            range: r.range.clone(),
                        },
                    );
                }
            }
        }
    }
    deps
}

/// Two resources that would undo each other on every apply: one sets a
/// path's whole content and another edits part of it (see
/// [`crate::schema::KindSpec::claims`]). Returns, per resource, whether it
/// is secret: declared so, or claiming a path a secret resource claims.
fn claims(
    sources: &Sources,
    registry: &Registry,
    states: &[Arc<ParsedState>],
    ids: &[&ResourceId],
    at: &[(usize, usize)],
    diags: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let declared = |i: usize| {
        let (si, ri) = at[i];
        states[si].resources[ri].attrs.get("secret") == Some(&serde_json::Value::Bool(true))
    };
    let mut secret: Vec<bool> = (0..ids.len()).map(declared).collect();
    let any_secret = secret.iter().any(|&s| s);
    use crate::schema::Claim;
    // Per path: the resources (by index) that set it, and that edit it.
    let mut by_path: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    // What shares a path with a secret resource is secret too, when its
    // kind can be (has a `secret` attribute): the paths a resource sets
    // or edits, and its name when names are paths (a secret `file` that
    // sets only a mode still marks the `line` editing that file). Only
    // gathered when the catalog has a secret resource at all.
    let mut touching: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let (si, ri) = at[i];
        let Some(spec) = registry.get(&id.kind) else {
            continue;
        };
        let mut paths: Vec<&str> = Vec::new();
        let claimed = (spec.claims)(&id.name, &states[si].resources[ri].attrs);
        for c in &claimed {
            let e = by_path.entry(c.path().to_string()).or_default();
            match c {
                Claim::Sets(_) => e.0.push(i),
                Claim::Edits(_) => e.1.push(i),
            }
            paths.push(c.path());
        }
        if !any_secret {
            continue;
        }
        if spec.name_is_path {
            paths.push(&id.name);
        }
        paths.sort();
        paths.dedup();
        for p in paths {
            touching.entry(p.to_string()).or_default().push(i);
        }
    }
    let can_be_secret = |i: usize| {
        registry
            .get(&ids[i].kind)
            .is_some_and(|s| s.attrs.iter().any(|a| a.name == "secret"))
    };
    let declared_secret = secret.clone();
    for group in touching.values() {
        if group.iter().any(|&i| declared_secret[i]) {
            for &i in group {
                if can_be_secret(i) {
                    secret[i] = true;
                }
            }
        }
    }
    for (path, (sets, edits)) in by_path {
        let Some(&s) = sets.first() else {
            continue;
        };
        let (ss, sr) = at[s];
        let setter = &states[ss].resources[sr];
        for &e in &edits {
            let (es, er) = at[e];
            let editor = &states[es].resources[er];
            diags.push(
                Diagnostic::error(
                    "conflicting-content",
                    format!(
                        "{} edits {path}, whose whole content {} sets: each apply would undo the other",
                        editor.id, setter.id
                    ),
                )
                .primary(states[es].span(sources, editor.range.clone()), "edits it here")
                .secondary(
                    states[ss].span(sources, setter.range.clone()),
                    "sets its content here",
                )
                .note(format!(
                    "make the edit part of {}'s content, or let that resource set no content (then edits compose with it)",
                    setter.id
                )),
            );
        }
    }
    secret
}

/// A requisite that names no resource of this host's catalog.
fn missing_requisite(
    sources: &Sources,
    st: &ParsedState,
    r: &ParsedResource,
    req: &crate::parse::Requisite,
    ids: &[&ResourceId],
) -> Diagnostic {
    let same_kind = ids
        .iter()
        .filter(|x| x.kind == req.target.kind)
        .map(|x| x.as_ref_string())
        .collect::<Vec<_>>();
    let all = ids.iter().map(|x| x.as_ref_string()).collect::<Vec<_>>();
    let want = req.target.as_ref_string();
    let hint = suggest(&want, same_kind.iter().map(String::as_str))
        .or_else(|| suggest(&want, all.iter().map(String::as_str)));
    let label = match hint {
        Some(s) => format!("did you mean `{s}`?"),
        None => "no such resource".into(),
    };
    st.diag(
        sources,
        "missing-requisite",
        format!(
            "{}: `{}` names {}, which this host's catalog does not declare",
            r.id, req.kind, req.target
        ),
        req.range.clone(),
        label,
    )
    .note("a requisite must name a resource of the same host, as \"kind:name\"")
}

/// Every cycle of the graph, each reported once with every resource on it.
fn cycles(
    sources: &Sources,
    states: &[Arc<ParsedState>],
    ids: &[&ResourceId],
    deps: &[BTreeMap<usize, Why>],
    diags: &mut Vec<Diagnostic>,
) {
    // The DAG: an edge from a dependency to its dependent.
    let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(ids.len(), ids.len() * 2);
    let nodes: Vec<NodeIndex> = (0..ids.len()).map(|i| g.add_node(i)).collect();
    for (i, d) in deps.iter().enumerate() {
        for &on in d.keys() {
            g.add_edge(nodes[on], nodes[i], ());
        }
    }
    // A quick depth-first check first; the components only when there is one.
    if petgraph::algo::is_cyclic_directed(&g) {
        for scc in petgraph::algo::tarjan_scc(&g) {
            let cyclic = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
            if cyclic {
                diags.push(cycle_diag(sources, states, ids, deps, &scc));
            }
        }
    }
}

/// Kahn's algorithm, always taking the smallest ready id: deterministic
/// and independent of declaration order. `deps` must be acyclic.
fn order(deps: &[BTreeMap<usize, Why>]) -> Vec<usize> {
    let n = deps.len();
    let mut indeg: Vec<usize> = deps.iter().map(|d| d.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &on in d.keys() {
            dependents[on].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &dependents[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    order
}

fn conflict(a: &ParsedResource, b: &ParsedResource) -> Option<String> {
    let mut diff = Vec::new();
    let keys: BTreeSet<&String> = a.attrs.keys().chain(b.attrs.keys()).collect();
    for k in keys {
        if a.attrs.get(k) != b.attrs.get(k) {
            diff.push(format!("`{k}`"));
        }
    }
    let reqs = |r: &ParsedResource| {
        r.requisites
            .iter()
            .map(|q| (q.kind, q.target.clone()))
            .collect::<BTreeSet<_>>()
    };
    if reqs(a) != reqs(b) {
        diff.push("requisites".into());
    }
    (!diff.is_empty()).then(|| diff.join(", "))
}

fn cycle_diag(
    sources: &Sources,
    states: &[Arc<ParsedState>],
    ids: &[&ResourceId],
    deps: &[BTreeMap<usize, Why>],
    scc: &[NodeIndex],
) -> Diagnostic {
    // Walk the cycle from its smallest member, following "must come after"
    // edges inside the component (breadth-first, so the cycle is shortest).
    let members: BTreeSet<usize> = scc.iter().map(|n| n.index()).collect();
    let start = *members.iter().next().expect("non-empty component");
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut found = false;
    'bfs: while let Some(u) = queue.pop_front() {
        // Successors of u: resources that depend on u.
        for (v, d) in deps.iter().enumerate() {
            if !members.contains(&v) || !d.contains_key(&u) {
                continue;
            }
            if v == start {
                prev.insert(start, u);
                found = true;
                break 'bfs;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(v) {
                e.insert(u);
                queue.push_back(v);
            }
        }
    }
    let mut cycle = vec![start];
    if found {
        let mut cur = prev[&start];
        while cur != start {
            cycle.push(cur);
            cur = prev[&cur];
        }
        cycle[1..].reverse();
    }
    let path = cycle
        .iter()
        .chain(std::iter::once(&start))
        .map(|&i| ids[i].to_string())
        .collect::<Vec<_>>()
        .join(" → ");
    let mut d = Diagnostic::error("cycle", format!("dependency cycle: {path}"));
    for (k, &i) in cycle.iter().enumerate() {
        let next = cycle[(k + 1) % cycle.len()];
        let why = &deps[next][&i];
        let st = &states[why.state];
        let span = st.span(sources, why.range.clone());
        let msg = match why.kind {
            DepKind::Require => format!("{} requires {}", ids[next], ids[i]),
            DepKind::Watch => format!("{} watches {}", ids[next], ids[i]),
            DepKind::Before => format!("{} must come before {}", ids[i], ids[next]),
            DepKind::Auto => format!("{} comes after {} (automatic)", ids[next], ids[i]),
        };
        d = if k == 0 {
            d.primary(span, msg)
        } else {
            d.secondary(span, msg)
        };
    }
    let on = match cycle.len() {
        1 => "1 resource is on the cycle (it depends on itself)".to_string(),
        n => format!("{n} resources are on the cycle"),
    };
    d.note(format!(
        "{on}; `a → b` means a must be applied before b — remove one of these requisites"
    ))
}
