//! Rollouts: which hosts a change reaches, in which waves, and when to stop.
//!
//! This module owns `rollout.toml` (the waves, their budgets, bakes and
//! health gates, parsed with located errors), wave resolution (pure and
//! deterministic: the same inventory, selector and commit give the same
//! waves, so they can be printed before anything happens), the failure
//! budget arithmetic, and the journal's records. It does not reach hosts:
//! executing a rollout (SSH, gates, the live view) is the CLI's business
//! through a transport; this is the plan of it.

use crate::diag::{suggest, Diagnostic, FileId, Span};
use crate::select::Selector;
use crate::tree::{Host, Tree};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use toml::Spanned;

/// A failure budget: how many hosts of a wave may fail before it halts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    Count(usize),
    Percent(f64),
}

impl Budget {
    /// How many failures a wave of `hosts` hosts tolerates.
    pub fn allowed(&self, hosts: usize) -> usize {
        match *self {
            Budget::Count(n) => n,
            Budget::Percent(p) => ((hosts as f64) * p / 100.0).floor() as usize,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Count(n) => write!(f, "{n}"),
            Budget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How a wave takes hosts from those still left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Slice {
    /// Every candidate.
    All,
    /// The first `n` (spread over datacenters).
    Count(usize),
    /// `n` from every datacenter.
    PerDc(usize),
    /// This percentage of each datacenter's remaining hosts (rounded up).
    Percent(f64),
    /// Whatever is left.
    Rest,
}

/// Health gates of a wave.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Run on each host after its converge; exit 0 = healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// GET on each host (`{address}` and `{name}` are replaced); 2xx = healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// A PromQL query that must return no series during the bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
}

/// One wave as declared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    pub name: String,
    /// Only hosts this selector picks (as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    pub slice: Slice,
    pub concurrency: usize,
    pub max_failures: Budget,
    /// Seconds to wait after the wave, gates still checked.
    pub bake: u64,
    #[serde(default)]
    pub health: Health,
}

impl Wave {
    pub fn bake(&self) -> Duration {
        Duration::from_secs(self.bake)
    }
}

/// `rollout.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutConfig {
    /// Where PromQL gates are asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_url: Option<String>,
    pub waves: Vec<Wave>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    prometheus_url: Option<Spanned<String>>,
    #[serde(default)]
    wave: Vec<Spanned<RawWave>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWave {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    select: Option<Spanned<String>>,
    #[serde(default)]
    count: Option<Spanned<i64>>,
    #[serde(default)]
    per_dc: Option<Spanned<i64>>,
    #[serde(default)]
    percent: Option<Spanned<f64>>,
    #[serde(default)]
    rest: Option<Spanned<bool>>,
    #[serde(default)]
    concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    max_failures: Option<Spanned<toml::Value>>,
    #[serde(default)]
    bake: Option<Spanned<toml::Value>>,
    #[serde(default)]
    health: Option<RawHealth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    #[serde(default)]
    command: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    http: Option<Spanned<String>>,
    #[serde(default)]
    promql: Option<Spanned<String>>,
}

/// Parses `30`, `"90s"`, `"5m"`, `"1h"` into seconds.
fn seconds(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        toml::Value::String(s) => {
            let s = s.trim();
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = num
                .parse()
                .map_err(|_| format!("`{s}` is not a duration"))?;
            match unit {
                "" | "s" => Ok(n),
                "m" => Ok(n * 60),
                "h" => Ok(n * 3600),
                _ => Err(format!("`{s}`: unknown unit `{unit}`")),
            }
        }
        _ => Err("expected seconds or a duration such as \"90s\", \"5m\"".into()),
    }
}

/// Parses a budget: a count or a percentage (`"10%"`).
fn budget(v: &toml::Value) -> Result<Budget, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Budget::Count(*n as usize)),
        toml::Value::String(s) => {
            let p: f64 = s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| format!("`{s}` is not a count or a percentage such as \"10%\""))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{p}% is not between 0% and 100%"));
            }
            Ok(Budget::Percent(p))
        }
        _ => Err("expected a count or a percentage such as \"10%\"".into()),
    }
}

impl RolloutConfig {
    /// Reads `rollout.toml` of a tree: `Ok(None)` when the tree has none;
    /// every problem as a located diagnostic (selectors are checked against
    /// the inventory: one that matches nothing is an error).
    pub fn load(tree: &Tree) -> Result<Option<RolloutConfig>, Vec<Diagnostic>> {
        let bytes = match tree.read_bytes("rollout.toml") {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(vec![crate::tree::source_error(&e)]),
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            vec![Diagnostic::error(
                "not-utf8",
                "rollout.toml: not UTF-8 text",
            )]
        })?;
        let file = tree.sources.add("rollout.toml", text.as_str());
        Self::parse(file, &text, &tree.hosts).map(Some)
    }

    /// Parses rollout text (file `file` of the tree's sources).
    pub fn parse(
        file: FileId,
        text: &str,
        hosts: &BTreeMap<String, Host>,
    ) -> Result<RolloutConfig, Vec<Diagnostic>> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let mut d = crate::tree::toml_error(file, &e);
            if e.message().contains("unknown field") {
                d = d.note("rollout.toml takes `prometheus_url` and `[[wave]]` tables with: name, select, count, per_dc, percent, rest, concurrency, max_failures, bake, health.command, health.http, health.promql");
            }
            vec![d]
        })?;
        let mut diags = Vec::new();
        let mut bad = |range: std::ops::Range<usize>, msg: String, label: String| {
            diags.push(
                Diagnostic::error("rollout", format!("rollout.toml: {msg}"))
                    .primary(Span::new(file, range), label),
            );
        };
        if raw.wave.is_empty() {
            bad(
                0..0,
                "no waves".into(),
                "declare `[[wave]]` tables, in order".into(),
            );
        }
        let mut waves = Vec::new();
        let mut names = BTreeSet::new();
        let wave_count = raw.wave.len();
        for (i, w) in raw.wave.into_iter().enumerate() {
            let span = w.span();
            let w = w.into_inner();
            let name = w.name.clone().unwrap_or_else(|| format!("wave {}", i + 1));
            if !names.insert(name.clone()) {
                bad(
                    span.clone(),
                    format!("two waves are named `{name}`"),
                    "give each wave its own name".into(),
                );
            }
            if let Some(s) = &w.select {
                match Selector::parse(s.get_ref(), hosts) {
                    Err(errs) => {
                        for e in errs {
                            bad(s.span(), format!("wave `{name}`: {}", e.message), e.label);
                        }
                    }
                    Ok(sel) if sel.select(hosts).is_empty() => bad(
                        s.span(),
                        format!("wave `{name}`: `{}` matches no host", s.get_ref()),
                        "matches no host in the inventory".into(),
                    ),
                    Ok(_) => {}
                }
            }
            let slices: Vec<(&str, std::ops::Range<usize>)> = [
                w.count.as_ref().map(|c| ("count", c.span())),
                w.per_dc.as_ref().map(|c| ("per_dc", c.span())),
                w.percent.as_ref().map(|c| ("percent", c.span())),
                w.rest.as_ref().map(|c| ("rest", c.span())),
            ]
            .into_iter()
            .flatten()
            .collect();
            if slices.len() > 1 {
                bad(
                    slices[1].1.clone(),
                    format!(
                        "wave `{name}`: `{}` and `{}` exclude each other",
                        slices[0].0, slices[1].0
                    ),
                    "a wave takes one slice: count, per_dc, percent or rest".into(),
                );
            }
            let slice = if let Some(c) = &w.count {
                if *c.get_ref() < 1 {
                    bad(
                        c.span(),
                        format!("wave `{name}`: count {} takes no host", c.get_ref()),
                        "expected at least 1".into(),
                    );
                }
                Slice::Count(*c.get_ref() as usize)
            } else if let Some(c) = &w.per_dc {
                if *c.get_ref() < 1 {
                    bad(
                        c.span(),
                        format!("wave `{name}`: per_dc {} takes no host", c.get_ref()),
                        "expected at least 1".into(),
                    );
                }
                Slice::PerDc(*c.get_ref() as usize)
            } else if let Some(p) = &w.percent {
                let v = *p.get_ref();
                if !(v > 0.0 && v <= 100.0) {
                    bad(
                        p.span(),
                        format!("wave `{name}`: percent {v} is not in (0, 100]"),
                        "expected a percentage above 0, at most 100".into(),
                    );
                }
                Slice::Percent(v)
            } else if let Some(r) = &w.rest {
                if !*r.get_ref() {
                    bad(
                        r.span(),
                        format!("wave `{name}`: `rest = false` takes nothing"),
                        "write `rest = true` or drop it".into(),
                    );
                }
                Slice::Rest
            } else if w.select.is_some() {
                Slice::All
            } else {
                bad(
                    span.clone(),
                    format!("wave `{name}` is empty: it neither selects hosts nor takes a slice"),
                    "add `select = \"…\"`, `count`, `per_dc`, `percent` or `rest = true`".into(),
                );
                Slice::All
            };
            let concurrency = match &w.concurrency {
                Some(c) if *c.get_ref() < 1 => {
                    bad(
                        c.span(),
                        format!("wave `{name}`: concurrency {}", c.get_ref()),
                        "expected at least 1".into(),
                    );
                    1
                }
                Some(c) => *c.get_ref() as usize,
                None => 10,
            };
            let max_failures = match &w.max_failures {
                Some(v) => budget(v.get_ref()).unwrap_or_else(|e| {
                    bad(
                        v.span(),
                        format!("wave `{name}`: max_failures: {e}"),
                        "expected e.g. 0, 2 or \"10%\"".into(),
                    );
                    Budget::Count(0)
                }),
                None => Budget::Count(0),
            };
            let bake = match &w.bake {
                Some(v) => seconds(v.get_ref()).unwrap_or_else(|e| {
                    bad(
                        v.span(),
                        format!("wave `{name}`: bake: {e}"),
                        "expected e.g. 30, \"90s\" or \"5m\"".into(),
                    );
                    0
                }),
                None => 0,
            };
            let mut health = Health::default();
            if let Some(h) = w.health {
                if let Some(c) = h.command {
                    if c.get_ref().is_empty() {
                        bad(
                            c.span(),
                            format!("wave `{name}`: an empty health command"),
                            "expected an argument vector, e.g. [\"curl\", \"-fs\", \"localhost\"]"
                                .into(),
                        );
                    }
                    health.command = c.into_inner();
                }
                if let Some(u) = h.http {
                    if !u.get_ref().starts_with("http://") {
                        bad(
                            u.span(),
                            format!("wave `{name}`: health.http `{}`", u.get_ref()),
                            "expected an http:// URL ({address} and {name} stand for the host)"
                                .into(),
                        );
                    }
                    health.http = Some(u.into_inner());
                }
                if let Some(q) = h.promql {
                    if raw.prometheus_url.is_none() {
                        bad(
                            q.span(),
                            format!("wave `{name}`: a PromQL gate without `prometheus_url`"),
                            "set prometheus_url at the top of rollout.toml".into(),
                        );
                    }
                    health.promql = Some(q.into_inner());
                }
            }
            waves.push(Wave {
                name,
                select: w.select.map(Spanned::into_inner),
                slice,
                concurrency,
                max_failures,
                bake,
                health,
            });
        }
        let _ = wave_count;
        if diags.is_empty() {
            Ok(RolloutConfig {
                prometheus_url: raw.prometheus_url.map(Spanned::into_inner),
                waves,
            })
        } else {
            Err(diags)
        }
    }

    /// No waves: everything at once (`--all-at-once`).
    pub fn all_at_once(concurrency: usize) -> RolloutConfig {
        RolloutConfig {
            prometheus_url: None,
            waves: vec![Wave {
                name: "all".into(),
                select: None,
                slice: Slice::Rest,
                concurrency: concurrency.max(1),
                max_failures: Budget::Count(0),
                bake: 0,
                health: Health::default(),
            }],
        }
    }
}

/// One wave with its hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedWave {
    pub wave: Wave,
    /// Host names, in the order they are started.
    pub hosts: Vec<String>,
}

/// The order hosts are taken in: datacenters interleaved, and within one a
/// stable shuffle seeded by the commit, so different changes canary on
/// different hosts while one change always resolves the same way.
fn order<'a>(hosts: &[&'a Host], commit: &str) -> Vec<&'a Host> {
    let mut by_dc: BTreeMap<&str, Vec<&Host>> = BTreeMap::new();
    for h in hosts {
        by_dc.entry(h.dc.as_str()).or_default().push(h);
    }
    for list in by_dc.values_mut() {
        list.sort_by_cached_key(|h| {
            *blake3::hash(format!("{commit}\0{}", h.name).as_bytes()).as_bytes()
        });
    }
    let mut out = Vec::with_capacity(hosts.len());
    let mut i = 0;
    loop {
        let mut any = false;
        for list in by_dc.values() {
            if let Some(h) = list.get(i) {
                out.push(*h);
                any = true;
            }
        }
        if !any {
            break;
        }
        i += 1;
    }
    out
}

/// Resolves the waves over `selected` hosts for `commit`: each wave takes
/// from the hosts no earlier wave took. Hosts no wave takes are returned
/// last (the rollout reports them as not covered).
pub fn resolve(
    cfg: &RolloutConfig,
    tree_hosts: &BTreeMap<String, Host>,
    selected: &[&Host],
    commit: &str,
) -> (Vec<ResolvedWave>, Vec<String>) {
    let mut left: Vec<&Host> = order(selected, commit);
    let mut out = Vec::new();
    for w in &cfg.waves {
        let sel = w
            .select
            .as_ref()
            .and_then(|s| Selector::parse(s, tree_hosts).ok());
        let candidates: Vec<&Host> = left
            .iter()
            .copied()
            .filter(|h| sel.as_ref().is_none_or(|s| s.matches(h)))
            .collect();
        let taken: Vec<&Host> = match w.slice {
            Slice::All | Slice::Rest => candidates,
            Slice::Count(n) => candidates.into_iter().take(n).collect(),
            Slice::PerDc(n) => {
                let mut per: BTreeMap<&str, usize> = BTreeMap::new();
                candidates
                    .into_iter()
                    .filter(|h| {
                        let c = per.entry(h.dc.as_str()).or_default();
                        *c += 1;
                        *c <= n
                    })
                    .collect()
            }
            Slice::Percent(p) => {
                let mut total: BTreeMap<&str, usize> = BTreeMap::new();
                for h in &candidates {
                    *total.entry(h.dc.as_str()).or_default() += 1;
                }
                let mut per: BTreeMap<&str, usize> = BTreeMap::new();
                candidates
                    .into_iter()
                    .filter(|h| {
                        let want = ((total[h.dc.as_str()] as f64) * p / 100.0).ceil() as usize;
                        let c = per.entry(h.dc.as_str()).or_default();
                        *c += 1;
                        *c <= want
                    })
                    .collect()
            }
        };
        let names: BTreeSet<&str> = taken.iter().map(|h| h.name.as_str()).collect();
        left.retain(|h| !names.contains(h.name.as_str()));
        out.push(ResolvedWave {
            wave: w.clone(),
            hosts: taken.iter().map(|h| h.name.clone()).collect(),
        });
    }
    (out, left.iter().map(|h| h.name.clone()).collect())
}

/// What became of a host in a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    Pending,
    Running,
    /// Converged at the commit (and healthy).
    Converged,
    /// Did not answer, failed a resource, refused the commit, or a gate.
    Failed,
    /// A dry run's plan (`--dry-run`).
    Planned,
}

/// One record of a rollout's journal: a JSON line, fsynced as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// The first line: what the rollout is.
    Start {
        id: String,
        commit: String,
        select: Option<String>,
        dry_run: bool,
        /// Unix seconds.
        time: i64,
        waves: Vec<ResolvedWave>,
        prometheus_url: Option<String>,
    },
    WaveStarted {
        wave: usize,
        time: i64,
    },
    Host {
        wave: usize,
        host: String,
        state: HostState,
        /// Why it failed, in one line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// blake3 of the agent's report, for the record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failed_resources: Vec<String>,
        /// Resources the agent changed (or, in a dry run, would change).
        #[serde(default)]
        changed: u64,
        time: i64,
    },
    WaveDone {
        wave: usize,
        ok: usize,
        failed: usize,
        halted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        time: i64,
    },
    /// Stopped by the operator (Ctrl-C): resumable.
    Interrupted {
        time: i64,
    },
    Finished {
        outcome: String,
        time: i64,
    },
}

/// A rollout's state, replayed from its journal.
#[derive(Clone, Debug, Default)]
pub struct Replayed {
    pub id: String,
    pub commit: String,
    pub select: Option<String>,
    pub dry_run: bool,
    pub time: i64,
    pub waves: Vec<ResolvedWave>,
    pub prometheus_url: Option<String>,
    /// Last known state per host.
    pub hosts: BTreeMap<String, (HostState, Option<String>)>,
    /// Waves finished (and whether they halted).
    pub done: BTreeMap<usize, bool>,
    pub finished: Option<String>,
    pub interrupted: bool,
}

impl Replayed {
    /// Replays journal lines; a torn last line (a crash mid-write) is ignored.
    pub fn from_lines(text: &str) -> Result<Replayed, String> {
        let mut r = Replayed::default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            let rec: Record = match serde_json::from_str(line) {
                Ok(rec) => rec,
                Err(_) if i + 1 == lines.len() => break,
                Err(e) => return Err(format!("line {}: {e}", i + 1)),
            };
            match rec {
                Record::Start {
                    id,
                    commit,
                    select,
                    dry_run,
                    time,
                    waves,
                    prometheus_url,
                } => {
                    r.id = id;
                    r.commit = commit;
                    r.select = select;
                    r.dry_run = dry_run;
                    r.time = time;
                    for w in &waves {
                        for h in &w.hosts {
                            r.hosts.insert(h.clone(), (HostState::Pending, None));
                        }
                    }
                    r.waves = waves;
                    r.prometheus_url = prometheus_url;
                }
                Record::Host {
                    host,
                    state,
                    reason,
                    ..
                } => {
                    r.hosts.insert(host, (state, reason));
                }
                Record::WaveDone { wave, halted, .. } => {
                    r.done.insert(wave, halted);
                }
                Record::Interrupted { .. } => r.interrupted = true,
                Record::Finished { outcome, .. } => r.finished = Some(outcome),
                Record::WaveStarted { .. } => {}
            }
        }
        if r.id.is_empty() {
            return Err("no start record".into());
        }
        Ok(r)
    }

    /// Whether any wave halted.
    pub fn halted(&self) -> bool {
        self.done.values().any(|h| *h)
    }
}

/// A did-you-mean for an unknown rollout id.
pub fn suggest_id<'a>(id: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    suggest(id, known)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> BTreeMap<String, Host> {
        let mut m = BTreeMap::new();
        for (i, dc) in [
            "ams", "ams", "ams", "lhr", "lhr", "lis", "lis", "lis", "lis",
        ]
        .iter()
        .enumerate()
        {
            let name = format!("{dc}-{i}");
            m.insert(
                name.clone(),
                Host {
                    name,
                    dc: dc.to_string(),
                    role: if i % 3 == 0 {
                        "db".into()
                    } else {
                        "edge".into()
                    },
                    address: None,
                    tags: if i == 4 {
                        vec!["canary".into()]
                    } else {
                        vec![]
                    },
                    vars: serde_json::json!({}),
                    span: Span::new(FileId(0), 0..0),
                },
            );
        }
        m
    }

    fn parse(text: &str) -> Result<RolloutConfig, Vec<String>> {
        let s = crate::diag::Sources::new();
        let f = s.add("rollout.toml", text);
        RolloutConfig::parse(f, text, &hosts()).map_err(|d| {
            d.iter()
                .map(|d| {
                    let at = d
                        .first_span()
                        .map(|sp| s.location(sp.file, sp.range.start))
                        .unwrap_or_default();
                    format!("{at}: {}", d.message)
                })
                .collect()
        })
    }

    const WAVES: &str = r#"
[[wave]]
name = "canary"
select = "tag:canary"
count = 1

[[wave]]
name = "one per dc"
per_dc = 1
concurrency = 3
max_failures = "34%"
bake = "1m"

[[wave]]
name = "rest"
rest = true
concurrency = 5
"#;

    #[test]
    fn waves_resolve_deterministically_canary_then_one_per_dc_then_rest() {
        let cfg = parse(WAVES).unwrap();
        assert_eq!(cfg.waves[1].bake, 60);
        assert_eq!(cfg.waves[1].max_failures, Budget::Percent(34.0));
        let hs = hosts();
        let all: Vec<&Host> = hs.values().collect();
        let (w, left) = resolve(&cfg, &hs, &all, "abc");
        assert_eq!(w[0].hosts, ["lhr-4"]);
        let dcs: Vec<&str> = w[1]
            .hosts
            .iter()
            .map(|h| h.split('-').next().unwrap())
            .collect();
        assert_eq!(dcs, ["ams", "lhr", "lis"]);
        assert_eq!(w[2].hosts.len(), 9 - 4);
        assert!(left.is_empty());
        // Same inputs, same waves; another commit may canary elsewhere but
        // keeps the shape.
        assert_eq!(resolve(&cfg, &hs, &all, "abc").0, w);
        let other = resolve(&cfg, &hs, &all, "def").0;
        assert_eq!(other[0].hosts, ["lhr-4"]);
        assert_eq!(other[1].hosts.len(), 3);
    }

    #[test]
    fn percent_is_of_each_datacenters_remaining_hosts_rounded_up() {
        let cfg = parse("[[wave]]\npercent = 50\n\n[[wave]]\nrest = true\n").unwrap();
        let hs = hosts();
        let all: Vec<&Host> = hs.values().collect();
        let (w, _) = resolve(&cfg, &hs, &all, "c");
        // ams 3 → 2, lhr 2 → 1, lis 4 → 2
        assert_eq!(w[0].hosts.len(), 5);
        assert_eq!(w[1].hosts.len(), 4);
        assert_eq!(Budget::Percent(10.0).allowed(25), 2);
        assert_eq!(Budget::Count(1).allowed(100), 1);
    }

    #[test]
    fn bad_rollouts_are_located_errors() {
        let e = parse("[[wave]]\ncount = 1\nspeed = 3\n").unwrap_err();
        assert!(
            e[0].starts_with("rollout.toml:3:1:") && e[0].contains("unknown field `speed`"),
            "{e:?}"
        );
        let e = parse("[[wave]]\nname = \"x\"\n").unwrap_err();
        assert!(e[0].contains("wave `x` is empty"), "{e:?}");
        let e = parse("[[wave]]\npercent = 150\n").unwrap_err();
        assert!(
            e[0].starts_with("rollout.toml:2:11:") && e[0].contains("percent 150"),
            "{e:?}"
        );
        let e = parse("[[wave]]\nselect = \"role:egde\"\n").unwrap_err();
        assert!(
            e[0].contains("no host in the inventory has role `egde`"),
            "{e:?}"
        );
        let e = parse("[[wave]]\nselect = \"name:zz*\"\n").unwrap_err();
        assert!(e[0].contains("matches no host"), "{e:?}");
        let e = parse("[[wave]]\ncount = 1\nmax_failures = \"120%\"\n").unwrap_err();
        assert!(e[0].contains("120% is not between 0% and 100%"), "{e:?}");
        let e = parse("[[wave]]\ncount = 1\n[wave.health]\npromql = \"up == 0\"\n").unwrap_err();
        assert!(e[0].contains("without `prometheus_url`"), "{e:?}");
        let e = parse("").unwrap_err();
        assert!(e[0].contains("no waves"), "{e:?}");
    }

    #[test]
    fn a_journal_replays_and_ignores_a_torn_last_line() {
        let start = Record::Start {
            id: "r1".into(),
            commit: "c".into(),
            select: None,
            dry_run: false,
            time: 1,
            waves: vec![ResolvedWave {
                wave: parse(WAVES).unwrap().waves[0].clone(),
                hosts: vec!["a".into(), "b".into()],
            }],
            prometheus_url: None,
        };
        let host = Record::Host {
            wave: 0,
            host: "a".into(),
            state: HostState::Converged,
            reason: None,
            report: None,
            failed_resources: vec![],
            changed: 0,
            time: 2,
        };
        let text = format!(
            "{}\n{}\n{{\"record\":\"host\",\"wa",
            serde_json::to_string(&start).unwrap(),
            serde_json::to_string(&host).unwrap()
        );
        let r = Replayed::from_lines(&text).unwrap();
        assert_eq!(r.hosts["a"].0, HostState::Converged);
        assert_eq!(r.hosts["b"].0, HostState::Pending);
    }
}
