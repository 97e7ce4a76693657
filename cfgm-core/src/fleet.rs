//! What a change does to a fleet: per host, per resource, grouped.
//!
//! `cfgm diff` (two commits, no facts) and `cfgm plan` (a tree against the
//! facts hosts reported) both end in a [`FleetChanges`]: each host's status
//! and resource changes, hosts with identical change sets folded into one
//! [`Group`] (a change to 5,000 hosts reads as one block), and a summary per
//! datacenter and role. The shape is versioned ([`SCHEMA_VERSION`], with a
//! JSON Schema in `cfgm-core/schema/fleet-changes.schema.json`) so CI can read it.
//!
//! Building a [`FleetChanges`] is streaming: hosts are added as they
//! finish, and only one copy of each distinct change set is kept, so memory
//! is flat in the number of hosts. This module is data and pure functions;
//! it compiles nothing and reads nothing.

use crate::catalog::{Catalog, Origin, Resource, ResourceId};
use crate::plan::{Change, ResourcePlan, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The version of the JSON shape; bumped when it changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// New in the catalog (diff).
    Add,
    /// Gone from the catalog (diff).
    Remove,
    /// Its desired attributes changed (diff).
    Modify,
    /// The host differs from the catalog and apply will change it (plan).
    Change,
    /// Nothing observed to plan against: apply will check it (plan).
    Unknown,
    /// Planning it failed (an observed state the kind cannot read, a file
    /// template that did not render).
    Fail,
}

/// One resource's change on a host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub id: ResourceId,
    pub action: Action,
    /// Attribute by attribute (secrets as a hash, content as a unified diff).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Watched resources whose change would refresh this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refresh: Vec<ResourceId>,
    /// Why the action is `unknown` or `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the resource is declared (the newer side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// How a host comes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    /// Something would change (plan) or changed in the catalog (diff).
    Changed,
    Unchanged,
    /// Only resources whose state is unknown (plan): apply will tell.
    Unknown,
    /// No facts for this host (plan).
    NoFacts,
    /// Facts older than `--max-age` (plan).
    StaleFacts,
    /// Its catalog does not compile.
    Failed,
    /// In the inventory of the older side only (diff).
    Removed,
}

/// One host's line in the output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostEntry {
    pub name: String,
    pub dc: String,
    pub role: String,
    pub status: HostStatus,
    /// Its change set (index into `groups`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// Why it failed, has no facts or stale facts, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Hosts with the same change set, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub hosts: Vec<String>,
    pub changes: Vec<ResourceChange>,
}

/// Host counts by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub hosts: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub unknown: usize,
    pub no_facts: usize,
    pub stale_facts: usize,
    pub failed: usize,
    pub removed: usize,
}

impl Counts {
    fn add(&mut self, s: HostStatus) {
        self.hosts += 1;
        match s {
            HostStatus::Changed => self.changed += 1,
            HostStatus::Unchanged => self.unchanged += 1,
            HostStatus::Unknown => self.unknown += 1,
            HostStatus::NoFacts => self.no_facts += 1,
            HostStatus::StaleFacts => self.stale_facts += 1,
            HostStatus::Failed => self.failed += 1,
            HostStatus::Removed => self.removed += 1,
        }
    }
}

/// The summary: all hosts, and per datacenter and role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub all: Counts,
    /// Resource changes over all hosts (a resource on 1,000 hosts is 1,000).
    pub resource_changes: usize,
    pub by_dc: BTreeMap<String, Counts>,
    pub by_role: BTreeMap<String, Counts>,
}

/// A plan or a diff of a fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetChanges {
    pub schema_version: u32,
    /// `plan` or `diff`.
    pub kind: String,
    /// What was compared: for a diff the two commits, for a plan the tree.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compared: BTreeMap<String, String>,
    pub summary: Summary,
    pub groups: Vec<Group>,
    /// Every selected host, by name.
    pub hosts: Vec<HostEntry>,
    /// Compile problems (diagnostics as JSON, each once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Value>,
}

/// Collects hosts as they finish; identical change sets are kept once.
pub struct Builder {
    out: FleetChanges,
    by_key: HashMap<blake3::Hash, usize>,
}

impl Builder {
    pub fn new(kind: &str) -> Builder {
        Builder {
            out: FleetChanges {
                schema_version: SCHEMA_VERSION,
                kind: kind.into(),
                compared: BTreeMap::new(),
                summary: Summary::default(),
                groups: Vec::new(),
                hosts: Vec::new(),
                diagnostics: Vec::new(),
            },
            by_key: HashMap::new(),
        }
    }

    pub fn compared(&mut self, what: &str, value: &str) {
        self.out.compared.insert(what.into(), value.into());
    }

    /// Adds a host with its change set (its status follows from the set).
    pub fn host(&mut self, h: &crate::tree::Host, changes: Vec<ResourceChange>) {
        let status = if changes.is_empty() {
            HostStatus::Unchanged
        } else if changes
            .iter()
            .all(|c| matches!(c.action, Action::Unknown) && c.refresh.is_empty())
        {
            HostStatus::Unknown
        } else {
            HostStatus::Changed
        };
        let group = (!changes.is_empty()).then(|| self.group_of(&h.name, changes));
        self.entry(h, status, group, None);
    }

    /// Adds a host that has no change set: failed, without facts, removed.
    pub fn host_without(&mut self, h: &crate::tree::Host, status: HostStatus, reason: String) {
        self.entry(h, status, None, Some(reason));
    }

    /// A compile problem (kept once).
    pub fn diagnostic(&mut self, d: Value) {
        if !self.out.diagnostics.contains(&d) {
            self.out.diagnostics.push(d);
        }
    }

    fn group_of(&mut self, host: &str, changes: Vec<ResourceChange>) -> usize {
        self.out.summary.resource_changes += changes
            .iter()
            .filter(|c| c.action != Action::Unknown)
            .count();
        let key = blake3::hash(&serde_json::to_vec(&changes).unwrap_or_default());
        let i = *self.by_key.entry(key).or_insert_with(|| {
            self.out.groups.push(Group {
                hosts: Vec::new(),
                changes,
            });
            self.out.groups.len() - 1
        });
        self.out.groups[i].hosts.push(host.to_string());
        i
    }

    fn entry(
        &mut self,
        h: &crate::tree::Host,
        status: HostStatus,
        group: Option<usize>,
        reason: Option<String>,
    ) {
        let s = &mut self.out.summary;
        s.all.add(status);
        s.by_dc.entry(h.dc.clone()).or_default().add(status);
        s.by_role.entry(h.role.clone()).or_default().add(status);
        self.out.hosts.push(HostEntry {
            name: h.name.clone(),
            dc: h.dc.clone(),
            role: h.role.clone(),
            status,
            group,
            reason,
        });
    }

    /// The result: hosts by name, groups largest first (host lists sorted).
    pub fn finish(mut self) -> FleetChanges {
        let mut order: Vec<usize> = (0..self.out.groups.len()).collect();
        order.sort_by(|&a, &b| {
            let (ga, gb) = (&self.out.groups[a], &self.out.groups[b]);
            gb.hosts
                .len()
                .cmp(&ga.hosts.len())
                .then_with(|| ga.hosts.iter().min().cmp(&gb.hosts.iter().min()))
        });
        let mut renumber = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old] = new;
        }
        let mut groups: Vec<Option<Group>> = self.out.groups.drain(..).map(Some).collect();
        self.out.groups = order
            .iter()
            .map(|&i| {
                let mut g = groups[i].take().expect("each group once");
                g.hosts.sort();
                g
            })
            .collect();
        for h in &mut self.out.hosts {
            h.group = h.group.map(|g| renumber[g]);
        }
        self.out.hosts.sort_by(|a, b| a.name.cmp(&b.name));
        self.out
    }
}

/// A resource's attributes as changes from nothing (added) or to nothing
/// (removed); secrets as a hash, content as a unified diff.
fn attr_changes(old: Option<&Resource>, new: Option<&Resource>) -> Vec<Change> {
    let empty = BTreeMap::new();
    let (oa, na) = (
        old.map(|r| r.redacted_attrs())
            .unwrap_or_else(|| empty.clone()),
        new.map(|r| r.redacted_attrs()).unwrap_or(empty),
    );
    let hidden = |k: &str| {
        old.is_some_and(|r| r.hidden.iter().any(|h| h == k))
            || new.is_some_and(|r| r.hidden.iter().any(|h| h == k))
    };
    let mut keys: Vec<&String> = oa.keys().chain(na.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (a, b) = (oa.get(k), na.get(k));
        if a == b {
            continue;
        }
        let mut c = Change::new(
            k.clone(),
            a.cloned().unwrap_or(Value::Null),
            b.cloned().unwrap_or(Value::Null),
        );
        fn text(v: Option<&Value>) -> Option<&str> {
            match v {
                Some(Value::String(s)) => Some(s.as_str()),
                None | Some(Value::Null) => Some(""),
                _ => None,
            }
        }
        let multiline = [a, b]
            .iter()
            .any(|v| matches!(v, Some(Value::String(s)) if s.contains('\n')));
        if !hidden(k) && multiline {
            if let (Some(x), Some(y)) = (text(a), text(b)) {
                let path = new.or(old).map(|r| r.id.name.as_str()).unwrap_or("");
                c.diff = Some(unified_diff(path, x, y));
                // The diff says it all; keep the one-line ends short.
                c.from = summary_of(a);
                c.to = summary_of(b);
            }
        }
        out.push(c);
    }
    let deps = |r: Option<&Resource>| -> Vec<String> {
        r.map(|r| {
            r.deps
                .iter()
                .map(|(d, k)| format!("{} ({})", d, k.as_str()))
                .collect()
        })
        .unwrap_or_default()
    };
    let (da, db) = (deps(old), deps(new));
    if old.is_some() && new.is_some() && da != db {
        // Only what changed: the dependencies dropped, and those added.
        let gone: Vec<String> = da.iter().filter(|d| !db.contains(d)).cloned().collect();
        let added: Vec<String> = db.iter().filter(|d| !da.contains(d)).cloned().collect();
        out.push(Change::new(
            "after",
            Value::from_iter(gone),
            Value::from_iter(added),
        ));
    }
    out
}

fn summary_of(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => Value::String(format!(
            "{} line{}, {} bytes",
            s.lines().count(),
            if s.lines().count() == 1 { "" } else { "s" },
            s.len()
        )),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// A unified diff of two texts, labelled with the path, like `git diff`.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

/// What changed between two catalogs of one host: resources added,
/// removed and modified (attribute by attribute), in the newer catalog's
/// order (removed ones last). Equal catalogs have no changes.
pub fn catalog_delta(old: Option<&Catalog>, new: Option<&Catalog>) -> Vec<ResourceChange> {
    if let (Some(a), Some(b)) = (old, new) {
        if a.id == b.id {
            return Vec::new();
        }
    }
    resources_delta(
        old.map(|c| c.resources.as_slice()),
        new.map(|c| c.resources.as_slice()),
    )
}

/// [`catalog_delta`] of two lists of resources (whole catalogs, or the
/// same places of two catalogs, see `Compiler::resources_at`).
pub fn resources_delta(old: Option<&[Resource]>, new: Option<&[Resource]>) -> Vec<ResourceChange> {
    let index = |c: Option<&[Resource]>| -> HashMap<ResourceId, usize> {
        c.map(|c| {
            c.iter()
                .enumerate()
                .map(|(i, r)| (r.id.clone(), i))
                .collect()
        })
        .unwrap_or_default()
    };
    let (oi, ni) = (index(old), index(new));
    let mut out = Vec::new();
    for r in new.unwrap_or_default() {
        let before = oi.get(&r.id).map(|&i| &old.expect("indexed")[i]);
        if before.is_some_and(|b| b.attrs == r.attrs && b.deps == r.deps) {
            continue; // the same resource: nothing to redact or compare
        }
        let action = match before {
            None => Action::Add,
            Some(_) => Action::Modify,
        };
        let changes = attr_changes(before, Some(r));
        if action == Action::Modify && changes.is_empty() {
            continue;
        }
        out.push(ResourceChange {
            id: r.id.clone(),
            action,
            changes,
            refresh: Vec::new(),
            reason: None,
            origin: Some(r.origin.clone()),
        });
    }
    for r in old.unwrap_or_default() {
        if !ni.contains_key(&r.id) {
            out.push(ResourceChange {
                id: r.id.clone(),
                action: Action::Remove,
                changes: attr_changes(Some(r), None),
                refresh: Vec::new(),
                reason: None,
                origin: Some(r.origin.clone()),
            });
        }
    }
    out
}

/// A host's plan as resource changes: what would change, what is unknown,
/// what cannot be planned; unchanged resources are left out.
pub fn plan_changes(catalog: &Catalog, plans: Vec<ResourcePlan>) -> Vec<ResourceChange> {
    let origins: HashMap<&ResourceId, &Origin> = catalog
        .resources
        .iter()
        .map(|r| (&r.id, &r.origin))
        .collect();
    plans
        .into_iter()
        .filter_map(|p| {
            let origin = origins.get(&p.id).map(|o| (*o).clone());
            let (action, changes, reason) = match p.verdict {
                Verdict::Unchanged if p.refresh.is_empty() && p.refresh_if.is_empty() => {
                    return None
                }
                Verdict::Unchanged if p.refresh.is_empty() => (
                    Action::Unknown,
                    Vec::new(),
                    Some(format!(
                        "refreshes if {} change{}",
                        p.refresh_if
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if p.refresh_if.len() == 1 { "s" } else { "" }
                    )),
                ),
                Verdict::Unchanged => (Action::Change, Vec::new(), None),
                Verdict::Changes { changes } => (Action::Change, changes, None),
                Verdict::Unknown { why } => (Action::Unknown, Vec::new(), Some(why)),
                Verdict::Error { error } => (Action::Fail, Vec::new(), Some(error)),
            };
            Some(ResourceChange {
                id: p.id,
                action,
                changes,
                refresh: p.refresh,
                reason,
                origin,
            })
        })
        .collect()
}

/// Host names as a person reads a long list: numbered names folded into
/// ranges (`ams-edge[1-40]`), at most `max` patterns, then a count.
pub fn host_patterns(names: &[String], max: usize) -> String {
    let mut stems: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for n in names {
        let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, num) = n.split_at(n.len() - digits);
        match num.parse::<u64>() {
            // Leading zeros would not survive the round trip: keep as is.
            Ok(v) if !num.starts_with('0') || num == "0" => stems.entry(stem).or_default().push(v),
            _ => plain.push(n),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for (stem, mut nums) in stems {
        nums.sort_unstable();
        nums.dedup();
        if nums.len() == 1 {
            parts.push(format!("{stem}{}", nums[0]));
            continue;
        }
        let mut ranges: Vec<String> = Vec::new();
        let mut start = nums[0];
        let mut prev = nums[0];
        for &v in &nums[1..] {
            if v != prev + 1 {
                ranges.push(range(start, prev));
                start = v;
            }
            prev = v;
        }
        ranges.push(range(start, prev));
        parts.push(format!("{stem}[{}]", ranges.join(",")));
    }
    parts.extend(plain.into_iter().map(String::from));
    if parts.len() > max {
        let more = parts.len() - max;
        parts.truncate(max);
        parts.push(format!("… {more} more"));
    }
    parts.join(", ")
}

fn range(a: u64, b: u64) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

impl FleetChanges {
    /// Whether any host would change (or changed in the catalog).
    pub fn has_changes(&self) -> bool {
        self.summary.all.changed > 0 || self.summary.all.removed > 0
    }

    /// For people: the summary (all hosts, per datacenter and role), then
    /// each group once with its hosts and its changes like `git diff`.
    pub fn to_text(&self, color: bool) -> String {
        use std::fmt::Write as _;
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let s = &self.summary;
        let line = |c: &Counts| {
            let mut parts = vec![
                format!("{} changed", c.changed),
                format!("{} unchanged", c.unchanged),
            ];
            for (n, what) in [
                (c.unknown, "unknown"),
                (c.no_facts, "without facts"),
                (c.stale_facts, "with stale facts"),
                (c.failed, "failed to compile"),
                (c.removed, "removed"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            parts.join(", ")
        };
        let _ = writeln!(
            out,
            "{}",
            paint(
                "1",
                &format!(
                    "{}: {} host{} — {}; {} resource change{}",
                    self.kind,
                    s.all.hosts,
                    if s.all.hosts == 1 { "" } else { "s" },
                    line(&s.all),
                    s.resource_changes,
                    if s.resource_changes == 1 { "" } else { "s" }
                )
            )
        );
        if s.by_dc.len() > 1 {
            for (dc, c) in &s.by_dc {
                let _ = writeln!(
                    out,
                    "  dc {dc:<12} {} host{}: {}",
                    c.hosts,
                    if c.hosts == 1 { "" } else { "s" },
                    line(c)
                );
            }
        }
        if s.by_role.len() > 1 {
            for (role, c) in &s.by_role {
                let _ = writeln!(
                    out,
                    "  role {role:<10} {} host{}: {}",
                    c.hosts,
                    if c.hosts == 1 { "" } else { "s" },
                    line(c)
                );
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            let _ = writeln!(
                out,
                "\n{} {}",
                paint(
                    "1;36",
                    &format!(
                        "── group {} · {} host{}:",
                        i + 1,
                        g.hosts.len(),
                        if g.hosts.len() == 1 { "" } else { "s" }
                    )
                ),
                host_patterns(&g.hosts, 8)
            );
            for c in &g.changes {
                let (mark, code, what) = match c.action {
                    Action::Add => ("+", "32", "added"),
                    Action::Remove => ("-", "31", "removed"),
                    Action::Modify => ("~", "33", "modified"),
                    Action::Change => ("~", "33", "would change"),
                    Action::Unknown => ("?", "35", "unknown (checked on apply)"),
                    Action::Fail => ("!", "31", "would fail"),
                };
                let mut head = format!(
                    "{} {}  {}",
                    paint(code, mark),
                    paint("1", &c.id.to_string()),
                    paint(code, what)
                );
                if let Some(r) = &c.reason {
                    head.push_str(&format!(": {r}"));
                }
                let _ = writeln!(out, "{head}");
                for ch in &c.changes {
                    if ch.attr == "after" {
                        let list = |v: &Value, sign: &str| -> Vec<String> {
                            v.as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str())
                                        .map(|x| format!("{sign}{x}"))
                                        .collect()
                                })
                                .unwrap_or_default()
                        };
                        let mut all = list(&ch.to, "+");
                        all.extend(list(&ch.from, "-"));
                        let _ = writeln!(out, "    after: {}", all.join(", "));
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "    {}: {} → {}",
                        ch.attr,
                        short(&ch.from),
                        short(&ch.to)
                    );
                    if let Some(d) = &ch.diff {
                        for l in d.lines() {
                            let painted = if l.starts_with("+++") || l.starts_with("---") {
                                paint("1", l)
                            } else if l.starts_with('+') {
                                paint("32", l)
                            } else if l.starts_with('-') {
                                paint("31", l)
                            } else if l.starts_with("@@") {
                                paint("36", l)
                            } else {
                                l.to_string()
                            };
                            let _ = writeln!(out, "      {painted}");
                        }
                    }
                }
                if !c.refresh.is_empty() {
                    let by: Vec<String> = c.refresh.iter().map(|r| r.to_string()).collect();
                    let _ = writeln!(out, "    would refresh: {} changed", by.join(", "));
                }
            }
        }
        let odd: Vec<&HostEntry> = self
            .hosts
            .iter()
            .filter(|h| {
                matches!(
                    h.status,
                    HostStatus::NoFacts
                        | HostStatus::StaleFacts
                        | HostStatus::Failed
                        | HostStatus::Removed
                )
            })
            .collect();
        if !odd.is_empty() {
            let _ = writeln!(out);
            for h in odd {
                let what = match h.status {
                    HostStatus::NoFacts => "no facts",
                    HostStatus::StaleFacts => "stale facts",
                    HostStatus::Failed => "does not compile",
                    _ => "removed from the inventory",
                };
                let _ = writeln!(
                    out,
                    "{} {}: {what}{}",
                    paint("31", "!"),
                    h.name,
                    h.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
        out
    }
}

/// A value for a one-line `from → to`: strings bare, long ones cut.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "(absent)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let first = s.lines().next().unwrap_or("");
    if first.chars().count() > 60 || s.contains('\n') {
        let cut: String = first.chars().take(57).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_fold_into_ranges() {
        let names: Vec<String> = [
            "ams-edge1",
            "ams-edge2",
            "ams-edge3",
            "ams-edge7",
            "lhr-db1",
            "web01",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            host_patterns(&names, 8),
            "ams-edge[1-3,7], lhr-db1, web01, x"
        );
        assert_eq!(
            host_patterns(&names, 2),
            "ams-edge[1-3,7], lhr-db1, … 2 more"
        );
    }
}
