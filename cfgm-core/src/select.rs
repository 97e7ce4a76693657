//! Selectors: which hosts a top.toml rule or a fleet command means.
//!
//! One syntax everywhere — top.toml targets, `cfgm hosts --select`, plans
//! and rollouts: `*` (every host), `role:NAME`, `dc:NAME`, `tag:NAME`,
//! `name:GLOB` (or a bare host-name glob), joined with `&` (every term must
//! match). Parsing checks the terms against the inventory, so a typo
//! (`role:egde`) is an error with a did-you-mean instead of a selector that
//! silently matches nothing. This module knows hosts and nothing else.

use crate::diag::suggest;
use crate::tree::Host;
use globset::{Glob, GlobMatcher};
use std::collections::{BTreeMap, BTreeSet};

/// One term of a selector.
#[derive(Clone, Debug)]
pub enum Term {
    All,
    Role(String),
    Dc(String),
    Tag(String),
    Name(GlobMatcher),
}

impl Term {
    pub fn matches(&self, h: &Host) -> bool {
        match self {
            Term::All => true,
            Term::Role(r) => &h.role == r,
            Term::Dc(d) => &h.dc == d,
            Term::Tag(t) => h.tags.iter().any(|x| x == t),
            Term::Name(g) => g.is_match(&h.name),
        }
    }
}

/// A parsed selector: every term must match.
#[derive(Clone, Debug)]
pub struct Selector {
    /// As written.
    pub text: String,
    pub terms: Vec<Term>,
}

/// A term that does not parse or names nothing in the inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectError {
    /// What is wrong, in a sentence (`no host in the inventory has role `egde``).
    pub message: String,
    /// A short label for a caret (`unknown role; did you mean `edge`?`).
    pub label: String,
}

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.label)
    }
}

/// What a selector may say, for error notes and `--help`.
pub const SYNTAX: &str = "a selector is `*`, `role:NAME`, `dc:NAME`, `tag:NAME`, `name:GLOB` or a host-name glob; join terms with `&`";

impl Selector {
    /// Parses `text` against the inventory; every problem is reported.
    pub fn parse(text: &str, hosts: &BTreeMap<String, Host>) -> Result<Selector, Vec<SelectError>> {
        let mut terms = Vec::new();
        let mut errors = Vec::new();
        for term in text.split('&').map(str::trim) {
            match parse_term(term, hosts) {
                Ok(t) => terms.push(t),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Selector {
                text: text.to_string(),
                terms,
            })
        } else {
            Err(errors)
        }
    }

    /// Every host.
    pub fn all() -> Selector {
        Selector {
            text: "*".into(),
            terms: vec![Term::All],
        }
    }

    pub fn matches(&self, h: &Host) -> bool {
        self.terms.iter().all(|t| t.matches(h))
    }

    /// The inventory's hosts this selector picks, in name order.
    pub fn select<'a>(&self, hosts: &'a BTreeMap<String, Host>) -> Vec<&'a Host> {
        hosts.values().filter(|h| self.matches(h)).collect()
    }
}

fn err(message: String, label: String) -> SelectError {
    SelectError { message, label }
}

fn hint(value: &str, among: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let owned: Vec<String> = among.into_iter().map(|s| s.as_ref().to_string()).collect();
    suggest(value, owned.iter().map(String::as_str))
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

fn parse_term(term: &str, hosts: &BTreeMap<String, Host>) -> Result<Term, SelectError> {
    if term == "*" {
        return Ok(Term::All);
    }
    if term.is_empty() {
        return Err(err(
            "an empty selector term".into(),
            "expected a term between `&`s".into(),
        ));
    }
    let (prefix, value) = match term.split_once(':') {
        Some((p, v)) => (p.trim(), v.trim()),
        None => ("name", term),
    };
    match prefix {
        "role" => {
            if !hosts.values().any(|h| h.role == value) {
                let roles: BTreeSet<&str> = hosts.values().map(|h| h.role.as_str()).collect();
                return Err(err(
                    format!("no host in the inventory has role `{value}`"),
                    format!("unknown role{}", hint(value, roles)),
                ));
            }
            Ok(Term::Role(value.to_string()))
        }
        "dc" => {
            if !hosts.values().any(|h| h.dc == value) {
                let dcs: BTreeSet<&str> = hosts.values().map(|h| h.dc.as_str()).collect();
                return Err(err(
                    format!("no host in the inventory is in datacenter `{value}`"),
                    format!("unknown datacenter{}", hint(value, dcs)),
                ));
            }
            Ok(Term::Dc(value.to_string()))
        }
        "tag" => {
            if !hosts.values().any(|h| h.tags.iter().any(|t| t == value)) {
                let tags: BTreeSet<&str> = hosts
                    .values()
                    .flat_map(|h| h.tags.iter().map(String::as_str))
                    .collect();
                return Err(err(
                    format!("no host in the inventory has tag `{value}`"),
                    format!("unknown tag{}", hint(value, tags)),
                ));
            }
            Ok(Term::Tag(value.to_string()))
        }
        "name" => {
            let is_glob = value.contains(['*', '?', '[', '{']);
            if !is_glob && !hosts.contains_key(value) {
                return Err(err(
                    format!("host `{value}` is not in the inventory"),
                    format!("unknown host{}", hint(value, hosts.keys())),
                ));
            }
            Glob::new(value)
                .map(|g| Term::Name(g.compile_matcher()))
                .map_err(|e| {
                    err(
                        format!("bad host-name glob `{value}`"),
                        e.kind().to_string(),
                    )
                })
        }
        other => Err(err(
            format!("unknown selector kind `{other}`"),
            match suggest(other, ["role", "dc", "tag", "name"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "expected role, dc, tag or name".into(),
            },
        )),
    }
}
