//! The catalog: one host's compiled resources in apply order, their
//! dependencies, and the content address (catalog id) of the whole.
//!
//! A catalog is plain data. Its canonical form is JSON with sorted keys, the
//! resources in their deterministic topological order and nothing that
//! depends on where or for whom it was compiled (no host name, no source
//! locations); the catalog id is the blake3 hash of that form, so two hosts
//! with equal catalogs have equal ids, and plans and rollouts group hosts by
//! it. This module renders catalogs for people, as JSON and as Graphviz; it
//! does not compile them (that is `compile`) and never touches a host.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A resource's address: `kind[name]` for people, `kind:name` in requisites.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId {
    pub kind: String,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// Parses a requisite reference `kind:name`.
    pub fn parse_ref(s: &str) -> Option<Self> {
        let (k, n) = s.split_once(':')?;
        if k.is_empty() || n.is_empty() {
            return None;
        }
        Some(Self::new(k, n))
    }

    /// The requisite form `kind:name`.
    pub fn as_ref_string(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.kind, self.name)
    }
}

/// Why one resource comes after another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    /// Declared `require`: order, and skip when the dependency failed.
    Require,
    /// Declared `watch`: require, and refresh when the dependency changed.
    Watch,
    /// The dependency declared `before` this resource.
    Before,
    /// Implied: a file after its parent directory, a service after its package.
    Auto,
}

impl DepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DepKind::Require => "require",
            DepKind::Watch => "watch",
            DepKind::Before => "before",
            DepKind::Auto => "auto",
        }
    }
}

/// Where a resource was declared (not part of the catalog id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One compiled resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    /// Attributes after rendering, with requisites removed and templates
    /// resolved into content.
    pub attrs: BTreeMap<String, Value>,
    /// What this resource comes after, and why (as JSON a list of
    /// `[id, kind]` pairs: JSON keys are strings).
    #[serde(with = "dep_pairs")]
    pub deps: BTreeMap<ResourceId, DepKind>,
    pub origin: Origin,
    /// Attributes to hide when shown (the resource is `secret = true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<String>,
    /// Why this resource cannot be applied (its file template failed to
    /// render); the engine fails it and skips what depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A resource's dependencies as `[id, kind]` pairs.
mod dep_pairs {
    use super::{DepKind, ResourceId};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        deps: &BTreeMap<ResourceId, DepKind>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(deps.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ResourceId, DepKind>, D::Error> {
        let pairs = Vec::<(ResourceId, DepKind)>::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

impl Resource {
    /// The resources whose change refreshes this one (`watch`).
    pub fn watches(&self) -> impl Iterator<Item = &ResourceId> {
        self.deps
            .iter()
            .filter(|(_, k)| **k == DepKind::Watch)
            .map(|(id, _)| id)
    }

    /// An attribute's value for display: secrets as a hash, long text as a summary.
    pub fn display_value(&self, attr: &str, full: bool) -> String {
        let Some(v) = self.attrs.get(attr) else {
            return String::new();
        };
        if self.hidden.iter().any(|h| h == attr) {
            return secret_text(v);
        }
        match v {
            Value::String(s) if !full && (s.contains('\n') || s.len() > 80) => {
                let n = s.lines().count();
                format!(
                    "({n} line{}, {} bytes, blake3 {})",
                    if n == 1 { "" } else { "s" },
                    s.len(),
                    short_hash(s)
                )
            }
            other => other.to_string(),
        }
    }

    /// The attributes as shown to people and machines: secrets replaced by a hash.
    pub fn redacted_attrs(&self) -> BTreeMap<String, Value> {
        self.attrs
            .iter()
            .map(|(k, v)| {
                let v = if self.hidden.iter().any(|h| h == k) {
                    Value::String(secret_text(v))
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

impl Resource {
    /// An observed state as shown and kept (reports, facts): values under
    /// the names of this resource's hidden attributes become a hash.
    pub fn redact_observed(&self, mut observed: Value) -> Value {
        if let Value::Object(m) = &mut observed {
            // An observed `content` is the bytes of what the resource
            // manages or edits (a file's, the file a line is in): a secret
            // resource's is hidden whatever its attributes are called.
            let secret = self.attrs.get("secret") == Some(&Value::Bool(true));
            let content = secret.then(|| "content".to_string());
            for h in self.hidden.iter().chain(&content) {
                if let Some(v) = m.get_mut(h) {
                    if !v.is_null() {
                        *v = Value::String(secret_text(v));
                    }
                }
            }
        }
        observed
    }
}

/// How a secret value is shown: a short hash, never the value.
pub fn secret_text(v: &Value) -> String {
    format!("(secret, blake3 {})", short_hash(&canonical_value(v)))
}

fn canonical_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The first 12 hex digits of a blake3 hash, for display.
pub fn short_hash(s: &str) -> String {
    blake3::hash(s.as_bytes()).to_hex()[..12].to_string()
}

/// A catalog's content address: blake3 of its canonical form, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CatalogId(pub String);

impl CatalogId {
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Display for CatalogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One host's compiled catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub id: CatalogId,
    /// The host it was compiled for (not part of the id).
    pub host: String,
    /// Resources in apply order: every resource after all its dependencies;
    /// ties broken by `kind[name]`, so the order is deterministic.
    pub resources: Vec<Resource>,
}

/// The version of the canonical form; bump it when the form changes.
pub const CANONICAL_VERSION: u32 = 1;

impl Catalog {
    /// Builds a catalog from resources already in apply order, and computes its id.
    pub fn new(host: impl Into<String>, resources: Vec<Resource>) -> Self {
        let mut hasher = blake3::Hasher::new();
        write_canonical(&resources, &mut hasher);
        Catalog {
            id: CatalogId(hasher.finalize().to_hex().to_string()),
            host: host.into(),
            resources,
        }
    }

    /// The canonical serialisation the id is the hash of: JSON, resources
    /// in apply order, fields in a fixed order, attributes sorted by name.
    pub fn canonical(&self) -> String {
        let mut out = Vec::new();
        write_canonical(&self.resources, &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|r| &r.id == id)
    }

    /// The catalog for machines: id, host and each resource with its
    /// (redacted) attributes, dependencies and origin, in apply order.
    pub fn to_json(&self) -> Value {
        json!({
            "catalog_id": self.id,
            "host": self.host,
            "resources": self.resources.iter().map(|r| json!({
                "id": r.id.to_string(),
                "kind": r.id.kind,
                "name": r.id.name,
                "attrs": r.redacted_attrs(),
                "deps": r.deps.iter().map(|(id, k)| json!({"on": id.to_string(), "kind": k.as_str()})).collect::<Vec<_>>(),
                "origin": r.origin,
                "error": r.error,
            })).collect::<Vec<_>>(),
        })
    }

    /// The catalog for people, in apply order.
    pub fn to_text(&self, full: bool) -> String {
        let mut out = format!(
            "catalog {} for {} ({}, in apply order)\n",
            self.id,
            self.host,
            crate::diag::plural(self.resources.len(), "resource")
        );
        for (i, r) in self.resources.iter().enumerate() {
            out.push_str(&format!("\n{:>3}. {}  ({})\n", i + 1, r.id, r.origin));
            for k in r.attrs.keys() {
                let v = r.display_value(k, full);
                if full && !r.hidden.contains(k) {
                    if let Some(Value::String(s)) = r.attrs.get(k) {
                        if s.contains('\n') {
                            out.push_str(&format!("       {k} =\n"));
                            for l in s.lines() {
                                out.push_str(&format!("         | {l}\n"));
                            }
                            continue;
                        }
                    }
                }
                out.push_str(&format!("       {k} = {v}\n"));
            }
            for (dep, kind) in &r.deps {
                out.push_str(&format!("       after {dep} ({})\n", kind.as_str()));
            }
            if let Some(e) = &r.error {
                out.push_str(&format!("       error: {e}\n"));
            }
        }
        out
    }

    /// The dependency graph in Graphviz dot: an edge points from a resource
    /// to what comes after it.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph catalog {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        out.push_str(&format!(
            "  label=\"{} {}\";\n",
            dot_escape(&self.host),
            self.id.short()
        ));
        for r in &self.resources {
            out.push_str(&format!("  \"{}\";\n", dot_escape(&r.id.to_string())));
        }
        for r in &self.resources {
            for (dep, kind) in &r.deps {
                let style = match kind {
                    DepKind::Require => "",
                    DepKind::Watch => ", color=\"blue\", style=bold",
                    DepKind::Before => ", color=\"darkgreen\"",
                    DepKind::Auto => ", style=dashed",
                };
                out.push_str(&format!(
                    "  \"{}\" -> \"{}\" [label=\"{}\"{}];\n",
                    dot_escape(&dep.to_string()),
                    dot_escape(&r.id.to_string()),
                    kind.as_str(),
                    style
                ));
            }
        }
        out.push_str("}\n");
        out
    }

    /// The dependency graph for machines: nodes and edges (from → to = apply order).
    pub fn graph_json(&self) -> Value {
        let nodes: Vec<_> = self
            .resources
            .iter()
            .map(|r| json!({"id": r.id.to_string(), "kind": r.id.kind, "name": r.id.name, "origin": r.origin}))
            .collect();
        let edges: Vec<_> = self
            .resources
            .iter()
            .flat_map(|r| {
                r.deps.iter().map(move |(d, k)| json!({"from": d.to_string(), "to": r.id.to_string(), "kind": k.as_str()}))
            })
            .collect();
        json!({"catalog_id": self.id, "host": self.host, "nodes": nodes, "edges": edges})
    }
}

#[derive(Serialize)]
struct CanonicalCatalog<'a> {
    version: u32,
    resources: Vec<CanonicalResource<'a>>,
}

#[derive(Serialize)]
struct CanonicalResource<'a> {
    kind: &'a str,
    name: &'a str,
    attrs: &'a BTreeMap<String, Value>,
    deps: Vec<(&'a str, &'a str, &'static str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Streams the canonical form (no intermediate JSON tree: catalogs of
/// 10,000 resources are hashed on every compile).
fn write_canonical(resources: &[Resource], w: impl std::io::Write) {
    let c = CanonicalCatalog {
        version: CANONICAL_VERSION,
        resources: resources
            .iter()
            .map(|r| CanonicalResource {
                kind: &r.id.kind,
                name: &r.id.name,
                attrs: &r.attrs,
                deps: r
                    .deps
                    .iter()
                    .map(|(id, k)| (id.kind.as_str(), id.name.as_str(), k.as_str()))
                    .collect(),
                error: r.error.as_deref(),
            })
            .collect(),
    };
    // Buffered: the hasher is fastest fed in large blocks.
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, w);
    serde_json::to_writer(&mut w, &c).expect("serialising a catalog cannot fail");
    std::io::Write::flush(&mut w).expect("flushing a catalog cannot fail");
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(kind: &str, name: &str, attrs: Value) -> Resource {
        Resource {
            id: ResourceId::new(kind, name),
            attrs: serde_json::from_value(attrs).unwrap(),
            deps: BTreeMap::new(),
            origin: Origin {
                file: "x".into(),
                line: 1,
                column: 1,
            },
            hidden: vec![],
            error: None,
        }
    }

    #[test]
    fn id_ignores_host_and_origin() {
        let a = Catalog::new("a", vec![res("pkg", "nginx", json!({"version": "1"}))]);
        let mut r = res("pkg", "nginx", json!({"version": "1"}));
        r.origin.line = 99;
        let b = Catalog::new("b", vec![r]);
        assert_eq!(a.id, b.id);
        let c = Catalog::new("a", vec![res("pkg", "nginx", json!({"version": "2"}))]);
        assert_ne!(a.id, c.id);
    }

    /// What the agent keeps between runs: a catalog whose resources have
    /// dependencies goes to JSON and back unchanged (a map keyed by ids
    /// cannot be JSON, so they go as pairs).
    #[test]
    fn a_catalog_with_dependencies_round_trips_through_json() {
        let mut f = res("file", "/etc/x/a", json!({"content": "1"}));
        f.deps
            .insert(ResourceId::new("directory", "/etc/x"), DepKind::Auto);
        f.deps.insert(ResourceId::new("pkg", "p"), DepKind::Watch);
        let c = Catalog::new("h", vec![res("directory", "/etc/x", json!({})), f]);
        let text = serde_json::to_string(&c).expect("serializes");
        let back: Catalog = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, c);
    }

    #[test]
    fn secrets_are_hashed_when_shown() {
        let mut r = res(
            "file",
            "/etc/k",
            json!({"content": "hunter2", "secret": true}),
        );
        r.hidden = vec!["content".into()];
        let c = Catalog::new("a", vec![r]);
        let text = c.to_text(true);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!c.to_json().to_string().contains("hunter2"));
        assert!(text.contains("(secret, blake3 "));
    }

    #[test]
    fn refs_parse() {
        assert_eq!(
            ResourceId::parse_ref("file:/etc/a:b"),
            Some(ResourceId::new("file", "/etc/a:b"))
        );
        assert_eq!(ResourceId::parse_ref("nginx"), None);
        assert_eq!(ResourceId::new("pkg", "nginx").to_string(), "pkg[nginx]");
    }
}
