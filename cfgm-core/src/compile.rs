//! Compiling hosts: from a loaded tree to one verified catalog per host.
//!
//! For a host, the compiler selects its states from top.toml, renders each
//! with the host's context (`host`, `data`, `facts`), parses it, follows
//! includes, merges resources across states, resolves requisites and
//! automatic edges into a petgraph DAG, rejects cycles, orders the DAG
//! deterministically and renders file templates. The result is a
//! [`Catalog`], or every [`Diagnostic`] found on the way.
//!
//! Work is shared between hosts that agree on what it reads: a state's
//! render+parse is keyed by the values of exactly the context paths the
//! template reads, the graph by the set of parsed states, a file template
//! by its own paths. So 10,000 hosts in 50 role/dc combinations compile
//! about 50 times. The caches are behind mutexes so hosts compile in
//! parallel with rayon.
//!
//! This module never touches the host: it reads only the loaded [`Tree`]
//! (and `files/`, through the tree's source).

use crate::catalog::{Catalog, Origin, Resource};
use crate::diag::{suggest, Diagnostic, SourceFile, Sources};
use crate::graph::{build_graph, GraphOutcome, Node as GraphNode};
use crate::parse::{parse_state, ParsedResource, ParsedState};
use crate::render::render_error;
use crate::render::{render_bounded, untag, RenderError};
use crate::schema::{AttrType, Registry};
use crate::source::{is_tree_path, SourceError};
use crate::tree::{missing_state, source_error, Data, Host, Tree};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Key = [u8; 32];

/// A host's compile outcome, shared by every host with the same inputs: the
/// catalog when its graph compiled (resources whose file template failed
/// carry the error), and every problem found.
pub type Compiled = Arc<(Option<Catalog>, Vec<Diagnostic>)>;

/// A host compiled up to its catalog: the states, the graph (apply
/// order and dependencies) and every file content. [`Compiler::catalog_of`]
/// makes the catalog; `cfgm diff` compares two trees' parts of a host and
/// builds only the resources whose content differs.
pub struct Parts {
    /// The graph's key across trees (see [`Compiler::parts`]).
    xkey: Option<Key>,
    /// The catalog's key in its tree: the graph and every content.
    ckey: Key,
    states: Vec<Arc<ParsedState>>,
    graph: Arc<GraphOutcome>,
    rendered: Rendered,
    /// Contents that failed (the catalog carries those resources failed).
    diags: Vec<Diagnostic>,
}

impl Parts {
    /// The same states in both trees (sources and values read), so the
    /// same resources in the same order with the same attributes and
    /// dependencies: the two catalogs can differ only in file contents.
    pub fn same_graph(&self, other: &Parts) -> bool {
        self.xkey.is_some() && self.xkey == other.xkey && Arc::ptr_eq(&self.graph, &other.graph)
    }

    /// Every content rendered and read without a problem.
    pub fn clean(&self) -> bool {
        self.diags.is_empty()
    }

    /// The catalog's key in its own tree (equal keys, equal catalogs).
    pub fn key(&self) -> [u8; 32] {
        self.ckey
    }

    /// The places in the apply order whose file contents differ between
    /// two parts of the same graph.
    pub fn differing(&self, other: &Parts) -> Vec<usize> {
        let same =
            |a: Option<&(bool, Arc<Result<String, Diagnostic>>)>,
             b: Option<&(bool, Arc<Result<String, Diagnostic>>)>| match (a, b) {
                (Some((ba, a)), Some((bb, b))) => {
                    ba == bb
                        && (Arc::ptr_eq(a, b)
                            || matches!((a.as_ref(), b.as_ref()), (Ok(x), Ok(y)) if x == y))
                }
                (None, None) => true,
                _ => false,
            };
        let mut at: Vec<usize> = self
            .rendered
            .keys()
            .chain(other.rendered.keys())
            .filter(|k| !same(self.rendered.get(k), other.rendered.get(k)))
            .map(|k| k.0)
            .collect();
        at.sort_unstable();
        at.dedup();
        at
    }
}

/// Per state, the hash of its source; and of the macro libraries.
struct Salts {
    states: HashMap<String, Key>,
    macros: Key,
}

/// File contents by (node, attribute): rendered, read, or why not.
/// Per (node, attribute): the content, and whether it is bytes from
/// `files/` that are not UTF-8 text, as base64 (see `AttrType::TreeFile`).
type Rendered = HashMap<(usize, &'static str), (bool, Arc<Result<String, Diagnostic>>)>;

/// A state to load, and the include (state and range) that named it.
type Pending = (String, Option<(Arc<ParsedState>, Range<usize>)>);

struct StateOutcome {
    parsed: Option<Arc<ParsedState>>,
    diags: Vec<Diagnostic>,
}

/// Compiles hosts of one tree, sharing work between them.
pub struct Compiler<'a> {
    pub tree: &'a Tree,
    pub registry: &'a Registry,
    states: Mutex<Bounded<Arc<StateOutcome>>>,
    graphs: Mutex<Bounded<Arc<GraphOutcome>>>,
    files: Mutex<Bounded<Arc<Result<String, Diagnostic>>>>,
    catalogs: Mutex<Bounded<Compiled>>,
    salts: std::sync::OnceLock<Salts>,
}

/// A cache that keeps at most `cap` entries, dropping the oldest first,
/// and that keeps a value only the second time its key comes: a key one
/// host alone has (its own name in a state or template) would only push
/// out what other hosts share, and cost an allocation kept and a drop
/// later. Hosts are compiled in inventory order and those that share work
/// tend to come together, so the cache keeps almost all of the sharing
/// while memory stays flat in the number of hosts (100,000 hosts whose
/// catalogs all differ must not keep 100,000 catalogs alive).
struct Bounded<V> {
    map: HashMap<Key, V>,
    order: std::collections::VecDeque<Key>,
    cap: usize,
    /// Keys met once and not kept (forgotten all at once when full).
    seen: std::collections::HashSet<Key>,
}

/// How many keys met once a cache remembers (32 bytes each).
const SEEN_KEPT: usize = 1 << 16;

impl<V: Clone> Bounded<V> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: std::collections::VecDeque::new(),
            cap,
            seen: Default::default(),
        }
    }

    fn get(&self, k: &Key) -> Option<V> {
        self.map.get(k).cloned()
    }

    /// Keeps `v` when `k` came before (or is already kept).
    fn offer(&mut self, k: Key, v: V) {
        if self.map.contains_key(&k) || self.seen.remove(&k) {
            self.insert(k, v);
        } else {
            if self.seen.len() >= SEEN_KEPT {
                self.seen.clear();
            }
            self.seen.insert(k);
        }
    }

    fn insert(&mut self, k: Key, v: V) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// How many entries each cache keeps (see [`Bounded`]): parsed states and
/// file contents are small and shared widely, graphs and catalogs large.
const STATES_KEPT: usize = 4096;
const GRAPHS_KEPT: usize = 512;
const FILES_KEPT: usize = 4096;
const CATALOGS_KEPT: usize = 256;

/// The outcome of `validate`: every host compiled.
#[derive(Debug)]
pub struct Validation {
    pub hosts: usize,
    pub failed_hosts: Vec<String>,
    /// Distinct catalog ids, with how many hosts have each.
    pub catalogs: BTreeMap<String, usize>,
    /// Each host's catalog id (hosts whose catalog compiled).
    pub host_catalogs: BTreeMap<String, String>,
    /// Resources over all hosts.
    pub resources: usize,
    pub diags: Vec<Diagnostic>,
    pub elapsed: Duration,
    /// Hosts compiled without facts of their own (with the tree's
    /// `[default_facts]`, or none), sorted.
    pub without_facts: Vec<String>,
}

/// What `validate` keeps of the hosts compiled so far.
#[derive(Default)]
struct Summary {
    failed_hosts: Vec<String>,
    catalogs: BTreeMap<String, usize>,
    host_catalogs: BTreeMap<String, String>,
    resources: usize,
    diags: Vec<Diagnostic>,
    /// The problems already kept, by what makes them the same problem.
    seen: std::collections::HashSet<DiagKey>,
}

type DiagKey = (String, Vec<(u32, usize, usize)>);

impl Summary {
    fn add(&mut self, host: &str, r: &Compiled) {
        match r.as_ref() {
            (Some(c), d) if d.is_empty() => {
                *self.catalogs.entry(c.id.0.clone()).or_default() += 1;
                self.host_catalogs.insert(host.to_string(), c.id.0.clone());
                self.resources += c.resources.len();
            }
            (_, d) => {
                self.failed_hosts.push(host.to_string());
                for diag in d {
                    // Hosts sharing a failed state fail the same way: keep it once.
                    if self.seen.insert(diag_key(diag)) {
                        self.diags.push(diag.clone());
                    }
                }
            }
        }
    }

    fn merge(mut self, other: Summary) -> Summary {
        self.failed_hosts.extend(other.failed_hosts);
        for (k, n) in other.catalogs {
            *self.catalogs.entry(k).or_default() += n;
        }
        self.host_catalogs.extend(other.host_catalogs);
        self.resources += other.resources;
        for d in other.diags {
            if self.seen.insert(diag_key(&d)) {
                self.diags.push(d);
            }
        }
        self
    }

    fn into_validation(mut self, hosts: usize) -> Validation {
        self.failed_hosts.sort();
        Validation {
            hosts,
            failed_hosts: self.failed_hosts,
            catalogs: self.catalogs,
            host_catalogs: self.host_catalogs,
            resources: self.resources,
            diags: self.diags,
            elapsed: Duration::ZERO,
            without_facts: Vec::new(),
        }
    }
}

fn diag_key(d: &Diagnostic) -> DiagKey {
    (
        d.message.clone(),
        d.labels
            .iter()
            .map(|l| (l.span.file.0, l.span.range.start, l.span.range.end))
            .collect(),
    )
}

impl<'a> Compiler<'a> {
    pub fn new(tree: &'a Tree, registry: &'a Registry) -> Self {
        Self {
            tree,
            registry,
            states: Mutex::new(Bounded::new(STATES_KEPT)),
            graphs: Mutex::new(Bounded::new(GRAPHS_KEPT)),
            files: Mutex::new(Bounded::new(FILES_KEPT)),
            catalogs: Mutex::new(Bounded::new(CATALOGS_KEPT)),
            salts: Default::default(),
        }
    }

    fn sources(&self) -> &Sources {
        &self.tree.sources
    }

    /// The template context of a host: `host`, `data` and `facts`.
    /// Without facts, the tree's `[default_facts]` (or none: `{}`).
    pub fn context(&self, host: &Host, facts: Option<&Value>) -> Context {
        let facts = facts
            .or(self.tree.config.default_facts.as_ref())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        Context {
            host: host.to_context(),
            data: self.tree.data_for(host, &facts),
            facts,
        }
    }

    /// Compiles one host's catalog; any problem is an error.
    pub fn compile_host(
        &self,
        name: &str,
        facts: Option<&Value>,
    ) -> Result<Catalog, Vec<Diagnostic>> {
        match self.compile_host_partial(name, facts) {
            (Some(c), d) if d.is_empty() => Ok(c),
            (_, d) => Err(d),
        }
    }

    /// Compiles one host's catalog, keeping it when only resources failed:
    /// a file whose template fails to render is a problem (reported here and
    /// by `validate`), but the catalog still holds that resource, marked with
    /// its error, so an agent converges everything else and fails only it
    /// and what depends on it. `None` when the catalog itself did not compile
    /// (syntax, types, requisites, cycles): then nothing may be applied.
    pub fn compile_host_partial(
        &self,
        name: &str,
        facts: Option<&Value>,
    ) -> (Option<Catalog>, Vec<Diagnostic>) {
        let host = match self.tree.host(name) {
            Ok(h) => h,
            Err(d) => return (None, vec![d]),
        };
        let out = self.compile(host, facts, false);
        // Not cached for one host: the Arc is unique and unwraps without a copy.
        let (mut catalog, diags) = Arc::try_unwrap(out).unwrap_or_else(|a| (*a).clone());
        if let Some(c) = &mut catalog {
            c.host = host.name.clone();
        }
        (catalog, diags)
    }

    /// Compiles every inventory host in parallel. Memory stays flat in the
    /// number of hosts: each host's result is reduced to the summary as it
    /// finishes (its catalog id and size, or its problems, kept once).
    pub fn validate(&self) -> Validation {
        self.validate_with(&|_| None)
    }

    /// [`validate`](Self::validate) with each host's last facts, where
    /// `facts` has them (as templates see them); the others compile with
    /// the tree's `[default_facts]` and are listed in `without_facts`.
    pub fn validate_with(&self, facts: &(dyn Fn(&Host) -> Option<Value> + Sync)) -> Validation {
        let t0 = Instant::now();
        let hosts: Vec<&Host> = self.tree.hosts.values().collect();
        let without = Mutex::new(Vec::new());
        let mut v = hosts
            .par_iter()
            .fold(Summary::default, |mut acc, h| {
                let f = facts(h);
                if f.is_none() {
                    without.lock().expect("list").push(h.name.clone());
                }
                let r = self.compile(h, f.as_ref(), true);
                acc.add(&h.name, &r);
                acc
            })
            .reduce(Summary::default, Summary::merge)
            .into_validation(hosts.len());
        v.without_facts = without.into_inner().expect("list");
        v.without_facts.sort();
        crate::diag::sort_dedup(self.sources(), &mut v.diags);
        v.elapsed = t0.elapsed();
        v
    }

    /// Compiles a host for a fleet-wide command (validate, plan, diff):
    /// the result is shared with other hosts that compile to the same
    /// inputs, while the bounded caches keep it.
    pub fn compile_shared(&self, host: &Host, facts: Option<&Value>) -> Compiled {
        self.compile(host, facts, true)
    }

    /// Compiles a host; `share` keeps the catalog for other hosts that
    /// compile to the same inputs.
    fn compile(&self, host: &Host, facts: Option<&Value>, share: bool) -> Compiled {
        match self.stage(host, facts, None) {
            Ok(parts) => self.catalog_of(parts, share),
            Err(c) => c,
        }
    }

    /// A host compiled as far as its graph and file contents, for
    /// comparing two trees (`cfgm diff`) without building catalogs:
    /// `Err` holds the outcome of a host whose catalog did not compile.
    /// With `like` (the same host's parts from the other tree) whose states
    /// are the same — same sources, same values read — its graph is taken
    /// instead of built again (see [`Parts::same_graph`]).
    pub fn parts(
        &self,
        host: &Host,
        facts: Option<&Value>,
        like: Option<&Parts>,
    ) -> Result<Parts, Compiled> {
        self.stage(host, facts, Some(like))
    }

    /// The states, graph and file contents of a host. `cross`: compute the
    /// key that compares across trees, and take the graph of `like` when it
    /// matches.
    fn stage(
        &self,
        host: &Host,
        facts: Option<&Value>,
        cross: Option<Option<&Parts>>,
    ) -> Result<Parts, Compiled> {
        let ctx = self.context(host, facts);
        let mut diags = Vec::new();
        let Some(mut parsed) = self.parsed_states(host, &ctx, &mut diags) else {
            return Err(Arc::new((None, diags)));
        };
        parsed.sort_by_key(|a| a.0);
        let mut h = blake3::Hasher::new();
        for (k, _) in &parsed {
            h.update(k);
        }
        let gkey: Key = h.finalize().into();
        // Across trees: the same keys and the same sources of those states.
        let xkey = cross.map(|_| {
            let salts = self.salts();
            let mut h = blake3::Hasher::new();
            h.update(&gkey);
            h.update(&salts.macros);
            for (_, p) in &parsed {
                h.update(salts.states.get(&p.name).unwrap_or(&[0; 32]));
            }
            Key::from(h.finalize())
        });
        let states: Vec<Arc<ParsedState>> = parsed.into_iter().map(|(_, p)| p).collect();
        let theirs = cross
            .flatten()
            .filter(|o| o.xkey.is_some() && o.xkey == xkey && o.states.len() == states.len());
        let graph = match theirs {
            // Their graph, built from states equal to ours: its nodes name
            // resources by (state, index), which hold for our states too.
            Some(o) => o.graph.clone(),
            None => self.graph(gkey, &states),
        };
        // Parse problems and graph problems are reported together, so one
        // run shows a typo in one file and a dangling requisite in another.
        let at = diags.len();
        diags.extend(graph.diags.iter().cloned());
        for (i, id) in &graph.missing {
            self.declared_elsewhere(host, id, &mut diags[at + i]);
        }
        if !diags.is_empty() {
            return Err(Arc::new((None, diags)));
        }
        let (ckey, rendered) = self.file_contents(&states, &graph.nodes, gkey, &ctx, &mut diags);
        Ok(Parts {
            xkey,
            ckey,
            states,
            graph,
            rendered,
            diags,
        })
    }

    /// The catalog of a host's parts (kept for other hosts with `share`).
    pub fn catalog_of(&self, parts: Parts, share: bool) -> Compiled {
        if let Some(c) = self.catalogs.lock().expect("cache").get(&parts.ckey) {
            return c;
        }
        let all: Vec<usize> = (0..parts.graph.nodes.len()).collect();
        let resources = self.resources(&parts, &all);
        let c = Arc::new((Some(Catalog::new(String::new(), resources)), parts.diags));
        if share {
            self.catalogs
                .lock()
                .expect("cache")
                .offer(parts.ckey, c.clone());
        }
        c
    }

    /// The catalog's resources at these places of the apply order (see
    /// [`Parts::differing`]), exactly as the whole catalog holds them.
    pub fn resources_at(&self, parts: &Parts, at: &[usize]) -> Vec<Resource> {
        self.resources(parts, at)
    }

    /// What makes a state's render the same in another tree: its source,
    /// and the macro libraries it may import.
    fn salts(&self) -> &Salts {
        self.salts.get_or_init(|| {
            let text = |f| blake3::hash(self.sources().text(f).as_bytes());
            let mut macros = blake3::Hasher::new();
            for (name, m) in &self.tree.macros {
                macros.update(name.as_bytes());
                macros.update(&[0]);
                macros.update(text(m.file).as_bytes());
            }
            for name in &self.tree.broken_macros {
                macros.update(name.as_bytes());
                macros.update(&[1]);
            }
            Salts {
                states: self
                    .tree
                    .states
                    .iter()
                    .map(|(n, sf)| (n.clone(), Key::from(text(sf.file))))
                    .collect(),
                macros: macros.finalize().into(),
            }
        })
    }

    /// A requisite names a resource this host does not have: when other
    /// hosts declare it (a `service:redis-server` of the db role required
    /// from a state every host gets), say so instead of a did-you-mean
    /// that points at some other resource. Looks at one host of each
    /// role and datacenter (at most 64), compiled from their states only
    /// as far as parsing.
    fn declared_elsewhere(&self, host: &Host, id: &crate::catalog::ResourceId, d: &mut Diagnostic) {
        let mut looked = BTreeSet::new();
        let mut roles = BTreeSet::new();
        for h in self.tree.hosts.values() {
            if h.name == host.name || !looked.insert((&h.role, &h.dc)) {
                continue;
            }
            if looked.len() > 64 {
                break;
            }
            let ctx = self.context(h, None);
            let mut ignored = Vec::new();
            let Some(states) = self.parsed_states(h, &ctx, &mut ignored) else {
                continue;
            };
            if states
                .iter()
                .any(|(_, p)| p.resources.iter().any(|r| &r.id == id))
            {
                roles.insert(h.role.as_str());
            }
        }
        if roles.is_empty() {
            return;
        }
        let roles: Vec<&str> = roles.into_iter().collect();
        let what = format!(
            "`{}` is declared for role {}, not for this host",
            id.as_ref_string(),
            roles.join(", ")
        );
        if let Some(l) = d.labels.iter_mut().find(|l| l.primary) {
            l.message = what;
        }
        d.notes.push(format!(
            "{} has role {}: declare {id} for it too, or require it only from states of the roles that have it",
            host.name, host.role
        ));
    }

    /// The host's states from top.toml, then their includes, each once;
    /// one level of includes at a time, the states of a level rendered in
    /// parallel. `None` when a state did not render or parse (then graph
    /// checks would only report its resources as missing).
    fn parsed_states(
        &self,
        host: &Host,
        ctx: &Context,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<(Key, Arc<ParsedState>)>> {
        let mut level: Vec<Pending> = self
            .tree
            .states_for(host)
            .into_iter()
            .map(|(s, _)| (s, None))
            .collect();
        let mut seen = BTreeSet::new();
        let mut parsed: Vec<(Key, Arc<ParsedState>)> = Vec::new();
        let mut complete = true;
        while !level.is_empty() {
            let mut todo: Vec<(String, Key)> = Vec::new();
            for (name, by) in level.drain(..) {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let Some(sf) = self.tree.states.get(&name) else {
                    if self.tree.broken_states.contains(&name) {
                        // Its template error was reported when the tree loaded.
                        complete = false;
                    } else if let Some((st, range)) = by {
                        let span = st.span(self.sources(), range);
                        let by = format!("states/{}.toml: include", st.name);
                        diags.push(missing_state(self.tree, &name, span, &by));
                    }
                    // A missing state named in top.toml was reported when the tree loaded.
                    continue;
                };
                let key = vars_key(&["state", &name], &sf.vars, ctx);
                todo.push((name, key));
            }
            let outcomes: Vec<Arc<StateOutcome>> = if todo.len() > 1 {
                todo.par_iter()
                    .map(|(n, k)| self.state(*k, n, ctx))
                    .collect()
            } else {
                todo.iter().map(|(n, k)| self.state(*k, n, ctx)).collect()
            };
            for ((_, key), outcome) in todo.into_iter().zip(outcomes) {
                diags.extend(outcome.diags.iter().cloned());
                match &outcome.parsed {
                    Some(p) => {
                        for (inc, range) in &p.includes {
                            level.push((inc.clone(), Some((p.clone(), range.clone()))));
                        }
                        parsed.push((key, p.clone()));
                    }
                    None => complete = false,
                }
            }
        }
        complete.then_some(parsed)
    }

    /// File contents from templates (keyed by the paths each reads) and
    /// from `files/`, per (node, attribute); and the catalog's cache key,
    /// which covers the graph and every content.
    fn file_contents(
        &self,
        states: &[Arc<ParsedState>],
        nodes: &[GraphNode],
        gkey: Key,
        ctx: &Context,
        diags: &mut Vec<Diagnostic>,
    ) -> (Key, Rendered) {
        let mut ckey = blake3::Hasher::new();
        ckey.update(&gkey);
        let mut rendered: Rendered = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let st = &states[node.state];
            let r = &st.resources[node.res];
            let Some(spec) = self.registry.get(&r.id.kind) else {
                continue;
            };
            for a in spec.attrs {
                if !matches!(
                    a.ty,
                    AttrType::Template { .. }
                        | AttrType::TreeFile { .. }
                        | AttrType::TreeBinary { .. }
                ) {
                    continue;
                }
                let (Some(value), Some(at)) = (r.attrs.get(a.name), r.spans.get(a.name)) else {
                    continue;
                };
                let Value::String(path) = value else {
                    continue;
                };
                let (binary, out) = match a.ty {
                    AttrType::Template { .. } => {
                        let vars = spec
                            .attrs
                            .iter()
                            .find(|v| v.ty == AttrType::TemplateVars)
                            .and_then(|v| r.attrs.get(v.name));
                        let (k, out) = self.template(st, r, path, at.val.clone(), ctx, vars);
                        ckey.update(&k);
                        (false, out)
                    }
                    AttrType::TreeFile { .. } | AttrType::TreeBinary { .. } => {
                        // TreeBinary: the bytes as hex into its attribute
                        // (e.g. a key); TreeFile: text, or base64 into
                        // `INTO_b64` when the bytes are not UTF-8.
                        let hex_wanted = matches!(a.ty, AttrType::TreeBinary { .. });
                        let (binary, out) = self.tree_file(st, r, path, at.val.clone(), hex_wanted);
                        if let Ok(s) = out.as_ref() {
                            ckey.update(&[binary as u8]);
                            ckey.update(blake3::hash(s.as_bytes()).as_bytes());
                        }
                        (binary, out)
                    }
                    _ => continue,
                };
                if let Err(d) = out.as_ref() {
                    // The resource fails, not the catalog (see compile_host_partial).
                    ckey.update(d.message.as_bytes());
                    diags.push(d.clone());
                }
                rendered.insert((i, a.name), (binary, out));
            }
        }
        (ckey.finalize().into(), rendered)
    }

    /// The catalog's resources, in graph order, with file contents in
    /// place, secrets marked and origins mapped back to the source.
    fn resources(&self, parts: &Parts, at: &[usize]) -> Vec<Resource> {
        let (states, rendered) = (&parts.states, &parts.rendered);
        // Each state's source file, fetched once: resources are built in
        // parallel and must not contend on the source database's lock.
        let files: Vec<Option<Arc<SourceFile>>> = states
            .iter()
            .map(|st| self.sources().get(st.rendered.map.file))
            .collect();
        at.par_iter()
            .map(|&i| {
                let node = &parts.graph.nodes[i];
                let st = &states[node.state];
                let r = &st.resources[node.res];
                let spec = self.registry.get(&r.id.kind);
                let mut attrs = r.attrs.clone();
                let mut error = None;
                if let Some(spec) = spec {
                    for a in spec.attrs {
                        let into = match a.ty {
                            AttrType::Template { into }
                            | AttrType::TreeFile { into }
                            | AttrType::TreeBinary { into } => into,
                            AttrType::TemplateVars => {
                                // Rendered into the content; a catalog
                                // carries what is applied, not its inputs.
                                attrs.remove(a.name);
                                continue;
                            }
                            _ => continue,
                        };
                        match rendered.get(&(i, a.name)).map(|(b, x)| (*b, x.as_ref())) {
                            Some((false, Ok(s))) => {
                                attrs.insert(into.to_string(), Value::String(s.clone()));
                            }
                            // Bytes that are not text: base64, into `INTO_b64`.
                            Some((true, Ok(s))) => {
                                attrs.insert(format!("{into}_b64"), Value::String(s.clone()));
                            }
                            Some((_, Err(d))) => error = Some(one_line(self.sources(), d)),
                            None => {}
                        }
                    }
                }
                // Secret as declared, or as what it shares a path with
                // (see `graph::Node::secret`): then marked so, for the
                // kind too (no content diffs).
                if node.secret {
                    attrs.insert("secret".into(), Value::Bool(true));
                }
                let hidden = match (node.secret, spec) {
                    (true, Some(s)) => s.secret_attrs.iter().map(|a| a.to_string()).collect(),
                    _ => Vec::new(),
                };
                // A resource a macro wrote comes from the macro's file.
                let map = &st.rendered.map;
                let foreign = map.file_at(r.range.start);
                let file = if foreign == map.file {
                    files[node.state].clone()
                } else {
                    self.sources().get(foreign)
                };
                let origin = match &file {
                    Some(f) => {
                        let span = st
                            .rendered
                            .map
                            .map_in(f, &st.rendered.text, r.range.clone())
                            .span;
                        let (line, column) = f.line_col(span.range.start);
                        Origin {
                            file: f.name.clone(),
                            line,
                            column,
                        }
                    }
                    None => Origin {
                        file: format!("states/{}.toml", st.name),
                        line: 0,
                        column: 0,
                    },
                };
                Resource {
                    id: r.id.clone(),
                    attrs,
                    deps: node.deps.clone(),
                    origin,
                    hidden,
                    error,
                }
            })
            .collect()
    }

    fn state(&self, key: Key, name: &str, ctx: &Context) -> Arc<StateOutcome> {
        if let Some(s) = self.states.lock().expect("cache").get(&key) {
            return s.clone();
        }
        let sf = &self.tree.states[name];
        let outcome = match self
            .tree
            .states_env
            .get_template(name)
            .map_err(RenderError::Template)
            .and_then(|t| render_bounded(&t, ctx))
        {
            Ok(out) => {
                let rendered = Arc::new(untag(sf.file, &out));
                let (p, diags) = parse_state(name, rendered, self.sources(), self.registry);
                StateOutcome {
                    parsed: Some(Arc::new(p)),
                    diags,
                }
            }
            Err(e) => {
                // An error inside an imported macro is that library's.
                let in_macro = match &e {
                    RenderError::Template(t) => t.name().and_then(|n| self.tree.macros.get(n)),
                    RenderError::Output { .. } => None,
                };
                let whole = ctx.to_json();
                let d = match in_macro {
                    Some(m) => render_error(self.sources(), m.file, &m.tagged, &e, Some(&whole))
                        .note(format!(
                            "in a macro of macros/{}, called by states/{name}.toml",
                            m.name
                        )),
                    None => render_error(self.sources(), sf.file, &sf.tagged, &e, Some(&whole)),
                };
                StateOutcome {
                    parsed: None,
                    diags: vec![d],
                }
            }
        };
        let outcome = Arc::new(outcome);
        self.states
            .lock()
            .expect("cache")
            .offer(key, outcome.clone());
        outcome
    }

    fn template(
        &self,
        st: &ParsedState,
        r: &ParsedResource,
        path: &str,
        at: Range<usize>,
        ctx: &Context,
        vars: Option<&Value>,
    ) -> (Key, Arc<Result<String, Diagnostic>>) {
        let broken = |b: &String| {
            path == b.as_str()
                || path
                    .strip_prefix(b.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        };
        if self.tree.broken_templates.iter().any(broken) {
            // Its problem was reported when the tree loaded; the resource
            // fails all the same, without a misleading "does not exist".
            let d = st.diag(
                self.sources(),
                "broken-template",
                format!("{}: template `{path}` could not be loaded", r.id),
                at,
                "see the error for templates/ above",
            );
            return ([0; 32], Arc::new(Err(d)));
        }
        let Some(tf) = self.tree.templates.get(path) else {
            let label = match suggest(path, self.tree.templates.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "no such template".into(),
            };
            let d = st
                .diag(
                    self.sources(),
                    "missing-template",
                    format!("{}: template `{path}` does not exist", r.id),
                    at,
                    label,
                )
                .note(format!("expected a file templates/{path}"));
            return ([0; 32], Arc::new(Err(d)));
        };
        let empty = Value::Object(Default::default());
        let fctx = FileContext {
            ctx,
            vars: vars.unwrap_or(&empty),
        };
        let key = vars_key(&["template", path], &tf.vars, &fctx);
        if let Some(s) = self.files.lock().expect("cache").get(&key) {
            return (key, s.clone());
        }
        let env = if tf.jinja_whitespace {
            &self.tree.files_jinja_env
        } else {
            &self.tree.files_env
        };
        let out = match env
            .get_template(path)
            .map_err(RenderError::Template)
            .and_then(|t| render_bounded(&t, &fctx))
        {
            Ok(s) => Ok(s),
            Err(e) => {
                let text = self.sources().text(tf.file);
                let mut whole = ctx.to_json();
                if let Value::Object(o) = &mut whole {
                    o.insert("vars".into(), fctx.vars.clone());
                }
                let mut d = render_error(self.sources(), tf.file, &text, &e, Some(&whole));
                let span = st.span(self.sources(), at);
                d = d.secondary(span, format!("rendered for {}", r.id));
                Err(d)
            }
        };
        let out = Arc::new(out);
        self.files.lock().expect("cache").offer(key, out.clone());
        (key, out)
    }

    fn tree_file(
        &self,
        st: &ParsedState,
        r: &ParsedResource,
        path: &str,
        at: Range<usize>,
        hex_wanted: bool,
    ) -> (bool, Arc<Result<String, Diagnostic>>) {
        // Text, bytes (as base64) and hex are cached under keys of their own.
        let key: Key = blake3::hash(format!("file\0{path}").as_bytes()).into();
        let bkey: Key = blake3::hash(format!("bytes\0{path}").as_bytes()).into();
        let hkey: Key = blake3::hash(format!("hex\0{path}").as_bytes()).into();
        {
            let files = self.files.lock().expect("cache");
            if hex_wanted {
                if let Some(s) = files.get(&hkey) {
                    return (false, s.clone());
                }
            } else {
                if let Some(s) = files.get(&key) {
                    return (false, s.clone());
                }
                if let Some(s) = files.get(&bkey) {
                    return (true, s.clone());
                }
            }
        }
        let mut binary = false;
        // Only files under files/: no absolute path, no `..`, and (the
        // source sees to it) no symlink out of the tree: a catalog must not
        // carry e.g. /etc/shadow of the machine that compiles it.
        let out = if !is_tree_path(path) {
            Err(st.diag(
                self.sources(),
                "source",
                format!("{}: `{path}` is not under files/", r.id),
                at,
                "expected a relative path under files/ (no `/…`, no `.` or `..`, no `//`)",
            ))
        } else {
            let rel = format!("files/{path}");
            let fail = |msg: String, label: &str| {
                st.diag(self.sources(), "source", msg, at.clone(), label)
            };
            match self.tree.read_bytes(&rel) {
                Ok(Some(b)) if hex_wanted => Ok(hex(&b)),
                Ok(Some(b)) => Ok(String::from_utf8(b).unwrap_or_else(|e| {
                    binary = true;
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(e.as_bytes())
                })),
                Ok(None) => Err(fail(
                    format!("{}: files/{path} does not exist", r.id),
                    "expected a file under files/",
                )),
                Err(e) => {
                    // The source's own words (a link out names the link and
                    // its target, never what lies behind it), at the place
                    // that asked for the file.
                    let label = match e {
                        SourceError::Escape { .. } => "a link out of the tree",
                        _ => "cannot be read",
                    };
                    let mut d = fail(format!("{}: {e}", r.id), label);
                    d.code = e.code();
                    d.notes.extend(source_error(&e).notes);
                    Err(d)
                }
            }
        };
        let out = Arc::new(out);
        self.files.lock().expect("cache").insert(
            if hex_wanted {
                hkey
            } else if binary {
                bkey
            } else {
                key
            },
            out.clone(),
        );
        (binary, out)
    }

    fn graph(&self, key: Key, states: &[Arc<ParsedState>]) -> Arc<GraphOutcome> {
        if let Some(g) = self.graphs.lock().expect("cache").get(&key) {
            return g.clone();
        }
        let g = Arc::new(build_graph(self.sources(), self.registry, states));
        self.graphs.lock().expect("cache").offer(key, g.clone());
        g
    }
}

/// Bytes as lower-case hex (a binary file in a catalog, which is JSON).
fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// A diagnostic as one line for a catalog: message (file:line:column).
fn one_line(sources: &Sources, d: &Diagnostic) -> String {
    match d.first_span() {
        Some(s) => format!(
            "{} ({})",
            d.message,
            sources.location(s.file, s.range.start)
        ),
        None => d.message.clone(),
    }
}

/// What a host's templates see: `host`, `data` and `facts`. Data keeps
/// its tables in source order (see [`Data`]), so it is not JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Context {
    pub host: Value,
    pub data: Data,
    pub facts: Value,
}

impl Context {
    /// The context as JSON (keys sorted), for messages about it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a file template sees: the host's context and the resource's
/// `vars` (an empty table when it gives none), without copying the context.
#[derive(serde::Serialize)]
struct FileContext<'a> {
    #[serde(flatten)]
    ctx: &'a Context,
    vars: &'a Value,
}

/// A value in a render context: JSON (host, facts, vars) or data.
#[derive(Clone, Copy)]
enum Node<'a> {
    Json(&'a Value),
    Data(&'a Data),
}

impl<'a> Node<'a> {
    fn get(self, key: &str) -> Option<Node<'a>> {
        match self {
            Node::Json(v) => v.get(key).map(Node::Json),
            Node::Data(v) => v.get(key).map(Node::Data),
        }
    }
}

impl serde::Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Json(v) => v.serialize(s),
            Node::Data(v) => v.serialize(s),
        }
    }
}

/// A render context whose values a cache key can read by name.
trait Lookup {
    fn top(&self, name: &str) -> Option<Node<'_>>;
}

impl Lookup for Context {
    fn top(&self, name: &str) -> Option<Node<'_>> {
        match name {
            "host" => Some(Node::Json(&self.host)),
            "data" => Some(Node::Data(&self.data)),
            "facts" => Some(Node::Json(&self.facts)),
            _ => None,
        }
    }
}

impl Lookup for FileContext<'_> {
    fn top(&self, name: &str) -> Option<Node<'_>> {
        match name {
            "vars" => Some(Node::Json(self.vars)),
            _ => self.ctx.top(name),
        }
    }
}

/// Hashes a tag and the values of the context paths a template reads.
fn vars_key(tag: &[&str], vars: &[String], ctx: &impl Lookup) -> Key {
    let mut h = blake3::Hasher::new();
    for t in tag {
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    for v in vars {
        h.update(v.as_bytes());
        h.update(&[0]);
        let mut parts = v.split('.');
        let mut cur = parts.next().and_then(|p| ctx.top(p));
        for part in parts {
            cur = cur.and_then(|c| c.get(part));
        }
        let _ = serde_json::to_writer(&mut h, &cur);
        h.update(&[0]);
    }
    h.finalize().into()
}
