//! `pkg`: a Debian package through apt/dpkg: installed (any version),
//! pinned to a version, or absent.
//!
//! Observes with `dpkg-query -W` (an unknown package is absent, not an
//! error). Applies in batches: every pending install of a run goes to one
//! `apt-get install` transaction and every removal to one `apt-get remove`;
//! when apt cannot find a package because the lists are missing or stale,
//! `apt-get update` runs once and the transaction is retried, and when a
//! batch fails each package is retried alone so that the failure names the
//! package at fault. A failed batch may still have changed the host (dpkg
//! unpacked or configured some packages before a maintainer script
//! failed): dpkg's status database, read before and after, tells which,
//! and every failure of the batch says so (`this run touched: NAME VERSION
//! (STATE), …`, or `nothing was changed`). Knows nothing of other package
//! managers or of apt sources (the host's own configuration is used).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "pkg",
    doc: "A package (apt/dpkg): installed, pinned to a version, or absent.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["installed", "absent"]),
            "\"installed\" (default) or \"absent\"",
        ),
        AttrSpec::opt(
            "version",
            AttrType::Str,
            "exact version to pin, e.g. \"1.22.1-9\"; or \"latest\": apt's candidate \
             (installed, then upgraded whenever the lists have a newer one)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps,
    claims: cfgm_core::schema::no_claims,
};

/// A package comes after every apt repository: the lists a new source
/// brings are refreshed before packages install (see `pkgrepo`).
fn auto_deps(_: &str, _: &Attrs) -> Vec<cfgm_core::schema::AutoDep> {
    vec![cfgm_core::schema::AutoDep {
        candidates: vec![cfgm_core::ResourceId::new(
            "pkgrepo",
            cfgm_core::schema::EVERY,
        )],
    }]
}

fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    if attrs.get("ensure").and_then(|v| v.as_str()) == Some("absent")
        && attrs.contains_key("version")
    {
        out.push(Problem::attr(
            "version",
            "a version makes no sense with ensure = \"absent\"",
        ));
    }
    // Debian: starts with a letter or digit (and never `-`, which apt would
    // read as an option).
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a Debian package name (lower-case letters, digits, + - .)"
        )));
    }
    // NAME=VERSION is one apt argument: a version is a Debian version.
    if let Some(Value::String(v)) = attrs.get("version") {
        let valid = v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
        if v.contains(['*', '?', '[']) {
            // apt would take `NAME=2.*` as a pattern, but dpkg reports the
            // exact version installed: such a pin never converges.
            out.push(Problem::attr(
                "version",
                format!("`{v}` is a pattern; `version` pins one exact Debian version (e.g. \"1.22.1-9\")"),
            ));
        } else if !valid {
            out.push(Problem::attr(
                "version",
                format!("`{v}` is not a Debian version (letters, digits, . + ~ : -; first a letter or digit)"),
            ));
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{command_error, run_with_timeout, Host, HostRead};
use crate::module::{KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<Pkg>();
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

/// How long one apt transaction may take.
const APT_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub version: Option<String>,
}

/// The package as dpkg knows it: the installed version, or none (never
/// installed, removed, or only its configuration files left).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// With `version = "latest"`: the version apt would install (its
    /// candidate), when the host's lists know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
}

/// The `version` that means "apt's candidate, kept up to date".
const LATEST: &str = "latest";

impl Desired {
    /// The exact version pinned, if any (not "latest").
    fn pinned(&self) -> Option<&str> {
        self.version.as_deref().filter(|v| *v != LATEST)
    }

    fn latest(&self) -> bool {
        self.version.as_deref() == Some(LATEST)
    }
}

#[derive(Default)]
pub struct Pkg;

/// How a package differs.
#[derive(Clone, Debug, PartialEq)]
pub enum PkgChange {
    /// Not installed, any version wanted.
    Install,
    /// Not installed (`from` is none) or another version than the pinned one.
    Pin { from: Option<String>, to: String },
    /// Installed (this version) and must not be.
    Remove { version: String },
    /// `version = "latest"`: not installed (`from` none) or older than
    /// apt's candidate `to`.
    Upgrade { from: Option<String>, to: String },
}

impl KindChange for PkgChange {
    fn show(&self) -> Change {
        match self {
            PkgChange::Install => Change::new("ensure", Value::Null, "installed"),
            PkgChange::Pin { from, to } => Change::new("version", from.clone(), to.as_str()),
            PkgChange::Remove { version } => Change::new("ensure", version.as_str(), "absent"),
            PkgChange::Upgrade { from, to } => Change::new("version", from.clone(), to.as_str()),
        }
    }
}

/// Whether a package's changes take it away (else they install it).
fn is_removal(changes: &[PkgChange]) -> bool {
    changes.iter().any(|c| match c {
        PkgChange::Remove { .. } => true,
        PkgChange::Install | PkgChange::Pin { .. } | PkgChange::Upgrade { .. } => false,
    })
}

/// The options of every install: non-interactive, keep changed
/// configuration files, no recommends, a pinned version may be older,
/// wait for a dpkg lock another apt run holds rather than fail at once,
/// and retry a download that failed (a mirror's blip is not a failed run).
const INSTALL: &[&str] = &[
    "apt-get",
    "install",
    "-y",
    "-q",
    "-o",
    "DPkg::Lock::Timeout=300",
    "-o",
    "Acquire::Retries=3",
    "--no-install-recommends",
    "--allow-downgrades",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
    "--",
];

/// Refreshes the package lists: waits for another apt's lock, retries a
/// failed download (also for `pkgrepo`).
pub(crate) const APT_UPDATE: &[&str] = &[
    "apt-get",
    "update",
    "-q",
    "-o",
    "DPkg::Lock::Timeout=300",
    "-o",
    "Acquire::Retries=3",
];

const REMOVE: &[&str] = &[
    "apt-get",
    "remove",
    "-y",
    "-q",
    "-o",
    "DPkg::Lock::Timeout=300",
    "--",
];

/// Whether a failed apt run looks like missing or stale package lists,
/// which `apt-get update` cures.
fn stale_lists(host: &HostRead, out: &Output) -> bool {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let no_lists = host
        .list_dir("/var/lib/apt/lists")
        .map(|l| !l.iter().any(|f| f.ends_with("_Packages")))
        .unwrap_or(true);
    text.contains("404")
        || text.contains("Failed to fetch")
        || (no_lists && text.contains("Unable to locate package"))
}

/// The apt argument for one pending change: NAME or NAME=VERSION (NAME
/// alone for "latest": apt installs, or upgrades to, its candidate).
fn target(name: &str, d: &Desired) -> String {
    match d.pinned() {
        Some(v) => format!("{name}={v}"),
        None => name.to_string(),
    }
}

/// Runs one apt transaction, after one `apt-get update` when the lists
/// are missing or stale (`updated` records that it ran).
fn transaction(host: &Host, argv: &[String], updated: &mut bool) -> Result<(), ModuleError> {
    let apt = |argv: &[String]| run_with_timeout(host.command(argv), argv, APT_TIMEOUT);
    let out = apt(argv)?;
    if out.status.success() {
        return Ok(());
    }
    if !*updated && stale_lists(host, &out) {
        *updated = true;
        host.run(APT_UPDATE)?;
        let again = apt(argv)?;
        if again.status.success() {
            return Ok(());
        }
        return Err(command_error(argv, &again));
    }
    Err(command_error(argv, &out))
}

/// One transaction for all of `names`; when it fails and there is more than
/// one, each alone, so that the failure is pinned on the package at fault.
/// Every failure ends with what the transaction and its retries changed in
/// dpkg's status database.
fn batch(
    host: &Host,
    base: &[&str],
    names: &[String],
    updated: &mut bool,
) -> Vec<Result<(), ModuleError>> {
    if names.is_empty() {
        return Vec::new();
    }
    let argv = |ns: &[String]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(ns.iter().cloned())
            .collect()
    };
    let before = DpkgDb::read(host);
    let results = match transaction(host, &argv(names), updated) {
        Ok(()) => return names.iter().map(|_| Ok(())).collect(),
        Err(e) if names.len() == 1 => vec![Err(e)],
        Err(_) => names
            .iter()
            .map(|n| transaction(host, &argv(std::slice::from_ref(n)), updated))
            .collect(),
    };
    if results.iter().all(Result::is_ok) {
        return results;
    }
    let what = match (before, DpkgDb::read(host)) {
        (Ok(before), Ok(after)) => touched_summary(&touched(&before.records(), &after.records())),
        (Err(e), _) | (_, Err(e)) => format!("what this run touched is unknown ({e})"),
    };
    results
        .into_iter()
        .map(|r| r.map_err(|e| ModuleError::Other(format!("{e}; {what}"))))
        .collect()
}

// ---- what a failed transaction touched -----------------------------------

/// dpkg's status database.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// dpkg's journal: records written since the last rewrite of the status
/// file (a dpkg that was killed leaves them there).
const DPKG_UPDATES: &str = "/var/lib/dpkg/updates";
/// How many touched packages a message names.
const MAX_TOUCHED: usize = 20;

/// dpkg's status database as read from the host, not yet parsed (only a
/// failure needs it parsed).
struct DpkgDb {
    status: Vec<u8>,
    /// The journal's records, in the order dpkg replays them.
    updates: Vec<Vec<u8>>,
}

/// A package's `Status` (`want flag state`) and `Version` fields.
#[derive(Debug, PartialEq)]
struct Record {
    status: Option<String>,
    version: Option<String>,
}

/// Records by package name and architecture (sorted by name).
type Records = BTreeMap<(String, String), Record>;

impl DpkgDb {
    fn read(host: &HostRead) -> Result<DpkgDb, ModuleError> {
        let status = host.read(DPKG_STATUS)?.unwrap_or_default();
        let mut journal: Vec<(u64, String)> = if host.is_dir(DPKG_UPDATES) {
            host.list_dir(DPKG_UPDATES)?
                .into_iter()
                // `tmp.i` is a record being written, not yet in the journal.
                .filter_map(|n| Some((n.parse().ok()?, n)))
                .collect()
        } else {
            Vec::new()
        };
        journal.sort();
        let mut updates = Vec::new();
        for (_, name) in journal {
            let path = format!("{DPKG_UPDATES}/{name}");
            updates.extend(host.read(&path)?);
        }
        Ok(DpkgDb { status, updates })
    }

    /// The records dpkg sees: the status file, each journal record
    /// replacing the package's.
    fn records(&self) -> Records {
        let texts: Vec<String> = std::iter::once(&self.status)
            .chain(&self.updates)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        parse_records(texts.iter().map(String::as_str))
    }
}

/// Parses status-file stanzas (blank-line separated `Field: value` lines;
/// continuation lines start with a space); a later stanza of a package
/// replaces an earlier one.
fn parse_records<'a>(texts: impl IntoIterator<Item = &'a str>) -> Records {
    let mut out = Records::new();
    for text in texts {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines().chain([""]) {
            if line.trim().is_empty() {
                if let Some(name) = fields.get("Package") {
                    let arch = fields.get("Architecture").copied().unwrap_or_default();
                    let record = Record {
                        status: fields.get("Status").map(|s| s.to_string()),
                        version: fields.get("Version").map(|s| s.to_string()),
                    };
                    out.insert((name.to_string(), arch.to_string()), record);
                }
                fields.clear();
            } else if !line.starts_with([' ', '\t']) {
                if let Some((k, v)) = line.split_once(':') {
                    fields.insert(k, v.trim());
                }
            }
        }
    }
    out
}

/// The packages whose `Status` or `Version` differ from `before` to
/// `after`, sorted by name: `NAME VERSION (STATE)`, the version before →
/// after when it changed, the state dpkg has now (`not-installed` when its
/// record is gone). A name carries its architecture when the database has
/// it for more than one.
fn touched(before: &Records, after: &Records) -> Vec<String> {
    let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let mut arches: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &keys {
        *arches.entry(name.as_str()).or_default() += 1;
    }
    keys.into_iter()
        .filter_map(|key| {
            let (b, a) = (before.get(key), after.get(key));
            if b == a {
                return None;
            }
            let (name, arch) = key;
            let mut line = if arches[name.as_str()] > 1 {
                format!("{name}:{arch}")
            } else {
                name.clone()
            };
            let version = |r: Option<&Record>| r.and_then(|r| r.version.clone());
            match (version(b), version(a)) {
                (Some(old), Some(new)) if old != new => line += &format!(" {old} → {new}"),
                (_, Some(v)) | (Some(v), None) => line += &format!(" {v}"),
                (None, None) => {}
            }
            let status = a.and_then(|r| r.status.as_deref());
            line += &format!(" ({})", state(status.unwrap_or("unknown ok not-installed")));
            Some(line)
        })
        .collect()
}

/// A `Status` as a reader wants it: the state, with a flag other than
/// `ok` (`reinstreq`) and a `hold`.
fn state(status: &str) -> String {
    match status.split_whitespace().collect::<Vec<_>>()[..] {
        [want, flag, state] => {
            let mut s = state.to_string();
            if flag != "ok" {
                s += &format!(", {flag}");
            }
            if want == "hold" {
                s += ", hold";
            }
            s
        }
        _ => status.to_string(),
    }
}

/// The end of a failed batch's messages: the touched packages, at most
/// `MAX_TOUCHED` of them named, or that there are none.
fn touched_summary(touched: &[String]) -> String {
    if touched.is_empty() {
        return "nothing was changed (dpkg's status is as before)".into();
    }
    let mut s = format!(
        "this run touched: {}",
        touched[..touched.len().min(MAX_TOUCHED)].join(", ")
    );
    if touched.len() > MAX_TOUCHED {
        s += &format!(", and {} more", touched.len() - MAX_TOUCHED);
    }
    s
}

impl Module for Pkg {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = PkgChange;

    /// From the facts' package inventory (the dpkg status database): an
    /// installed package has its version, any other is absent.
    fn observe_facts(name: &str, d: &Desired, facts: &cfgm_core::facts::Facts) -> Option<Observed> {
        if d.latest() {
            // The facts know what is installed, not apt's candidate.
            return None;
        }
        let (base, arch) = match name.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (name, None),
        };
        let version = facts
            .packages
            .iter()
            .find(|p| p.name == base && arch.is_none_or(|a| p.arch == a))
            .map(|p| p.version.clone());
        Some(Observed {
            version,
            candidate: None,
        })
    }

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let mut o = installed(host, name)?;
        let wanted = match (d.pinned(), &o.version) {
            _ if d.ensure.absent() => false,
            (_, None) => true,
            (Some(v), Some(have)) => v != have,
            (None, Some(_)) => false,
        };
        // A package after a repository (or a command) of the catalog may
        // come from lists that run refreshes: not knowable beforehand.
        if wanted && !ctx.comes_after("pkg", name, &["pkgrepo", "cmd"]) {
            in_the_apt_lists(host, name, d.pinned())?;
        }
        if d.latest() && !d.ensure.absent() {
            o.candidate = candidate(host, name)?;
        }
        Ok(o)
    }

    fn diff(_name: &str, d: &Desired, o: &Observed) -> Vec<PkgChange> {
        diff(d, o)
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[PkgChange],
        ctx: &RunCtx,
    ) -> Result<(), ModuleError> {
        self.apply_batch(host, &[(name, d, changes)], ctx)
            .pop()
            .unwrap_or(Ok(()))
    }

    fn batched(&self) -> bool {
        true
    }

    /// All installs in one apt transaction, all removals in another.
    fn apply_batch(
        &self,
        host: &Host,
        items: &[(&str, &Desired, &[PkgChange])],
        _: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        let (removes, installs): (Vec<usize>, Vec<usize>) =
            (0..items.len()).partition(|&i| is_removal(items[i].2));
        let mut updated = false;
        let mut results: Vec<Result<(), ModuleError>> = items.iter().map(|_| Ok(())).collect();
        let names: Vec<String> = installs
            .iter()
            .map(|&i| target(items[i].0, items[i].1))
            .collect();
        for (&i, r) in installs
            .iter()
            .zip(batch(host, INSTALL, &names, &mut updated))
        {
            results[i] = r;
        }
        let names: Vec<String> = removes.iter().map(|&i| items[i].0.to_string()).collect();
        for (&i, r) in removes
            .iter()
            .zip(batch(host, REMOVE, &names, &mut updated))
        {
            results[i] = r;
        }
        results
    }
}

/// What dpkg says is installed of the package (nothing when unknown).
fn installed(host: &HostRead, name: &str) -> Result<Observed, ModuleError> {
    let argv = [
        "dpkg-query",
        "-W",
        "-f",
        "${Status}\\t${Version}\\n",
        "--",
        name,
    ];
    let out = host.query(&argv)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Exit 1 with "no packages found" is an unknown package: absent.
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(1)
            && (text.trim().is_empty() || err.contains("no packages found"))
        {
            return Ok(Observed::default());
        }
        return Err(command_error(&argv, &out));
    }
    let version = text.lines().find_map(|l| {
        let (status, version) = l.split_once('\t')?;
        status
            .ends_with(" ok installed")
            .then(|| version.to_string())
    });
    Ok(Observed {
        version,
        candidate: None,
    })
}

/// apt's candidate version of a package (`apt-cache policy`), when the
/// host's lists know one; the caches in memory, so nothing is written.
fn candidate(host: &HostRead, name: &str) -> Result<Option<String>, ModuleError> {
    let argv = [
        "apt-cache",
        "-o",
        "Dir::Cache::pkgcache=",
        "-o",
        "Dir::Cache::srcpkgcache=",
        "policy",
        "--",
        name,
    ];
    let out = host.query(&argv)?;
    if !out.status.success() {
        return Err(command_error(&argv, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let c = l.trim().strip_prefix("Candidate:")?.trim();
        (c != "(none)" && !c.is_empty()).then(|| c.to_string())
    }))
}

/// The changes from `o` to `d` (the kind's pure diff).
fn diff(d: &Desired, o: &Observed) -> Vec<PkgChange> {
    if d.ensure.absent() {
        return match &o.version {
            Some(v) => vec![PkgChange::Remove { version: v.clone() }],
            None => vec![],
        };
    }
    if d.latest() {
        return match (&o.version, &o.candidate) {
            (have, Some(c)) if have.as_ref() != Some(c) => vec![PkgChange::Upgrade {
                from: have.clone(),
                to: c.clone(),
            }],
            (None, None) => vec![PkgChange::Install],
            _ => vec![],
        };
    }
    match (&d.version, &o.version) {
        (Some(want), have) if have.as_ref() != Some(want) => vec![PkgChange::Pin {
            from: have.clone(),
            to: want.clone(),
        }],
        (None, None) => vec![PkgChange::Install],
        _ => vec![],
    }
}

/// A package to install, or a version to pin, that the host's apt lists do
/// not have fails here, when observing, so that a dry run reports it (and
/// apply says the same, without running apt). Without lists (never
/// updated) nothing can be said: apply updates them and tries.
fn in_the_apt_lists(host: &HostRead, name: &str, version: Option<&str>) -> Result<(), ModuleError> {
    let lists = host.list_dir("/var/lib/apt/lists").unwrap_or_default();
    if !lists.iter().any(|f| f.ends_with("_Packages")) {
        return Ok(());
    }
    // The caches in memory: a dry run writes nothing (no pkgcache.bin).
    let apt_cache = |cmd: &'static str| {
        [
            "apt-cache",
            "-o",
            "Dir::Cache::pkgcache=",
            "-o",
            "Dir::Cache::srcpkgcache=",
            cmd,
            "--",
            name,
        ]
    };
    let argv = apt_cache("madison");
    let out = host.query(&argv)?;
    if !out.status.success() {
        return Err(command_error(&argv, &out));
    }
    let versions: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| Some(l.split('|').nth(1)?.trim().to_string()))
        .collect();
    if versions.is_empty() {
        // A virtual package has no versions of its own but providers.
        let argv = apt_cache("showpkg");
        let out = host.query(&argv)?;
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Err(ModuleError::Invalid(format!(
                "E: Unable to locate package {name} (not in the host's apt lists)"
            )));
        }
        return Ok(());
    }
    match version {
        Some(v) if !versions.iter().any(|x| x == v) => Err(ModuleError::Invalid(format!(
            "E: Version '{v}' for '{name}' was not found (the apt lists have {})",
            versions.join(", ")
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::diff_table;
    use serde_json::json;

    /// A version glob is refused when compiling: it would never converge
    /// (`dpkg-query` reports the exact version, which never equals `2.*`).
    #[test]
    fn a_version_pattern_is_refused_at_compile_time() {
        let problems = |v: &str| -> Vec<String> {
            let attrs = serde_json::from_value(json!({"version": v})).unwrap();
            check("nginx", &attrs).into_iter().map(|p| p.message).collect()
        };
        assert!(problems("1.22.1-9").is_empty());
        assert!(problems("1:2.3~rc1+dfsg-1").is_empty());
        for glob in ["2.*", "1.2?", "1.[0-9]"] {
            assert!(problems(glob)[0].contains("is a pattern"), "{glob}");
        }
    }

    #[test]
    fn diff() {
        let none = json!({});
        let v1 = json!({"version": "1.0"});
        diff_table(
            "pkg",
            &[
                ("p", json!({}), none.clone(), &[r#"ensure: null → "installed""#]),
                ("p", json!({}), v1.clone(), &[]),
                // "latest": apt's candidate, from → to; unknown candidate:
                // installed when missing, else nothing to say.
                (
                    "p",
                    json!({"version": "latest"}),
                    json!({"version": "1.0", "candidate": "1.1"}),
                    &[r#"version: "1.0" → "1.1""#],
                ),
                (
                    "p",
                    json!({"version": "latest"}),
                    json!({"candidate": "1.1"}),
                    &[r#"version: null → "1.1""#],
                ),
                (
                    "p",
                    json!({"version": "latest"}),
                    json!({"version": "1.1", "candidate": "1.1"}),
                    &[],
                ),
                (
                    "p",
                    json!({"version": "latest"}),
                    none.clone(),
                    &[r#"ensure: null → "installed""#],
                ),
                ("p", json!({"version": "latest"}), v1.clone(), &[]),
                (
                    "p",
                    json!({"ensure": "installed", "version": "1:2.0-1"}),
                    json!({"version": "1:2.0-1"}),
                    &[],
                ),
                (
                    "p",
                    json!({"version": "2.0"}),
                    v1.clone(),
                    &[r#"version: "1.0" → "2.0""#],
                ),
                (
                    "p",
                    json!({"version": "2.0"}),
                    none.clone(),
                    &[r#"version: null → "2.0""#],
                ),
                (
                    "p",
                    json!({"ensure": "absent"}),
                    v1,
                    &[r#"ensure: "1.0" → "absent""#],
                ),
                ("p", json!({"ensure": "absent"}), none, &[]),
            ],
        );
    }

    /// A failed transaction's report from dpkg's status before and after:
    /// what changed (installed, half-configured, upgraded, removed, purged,
    /// a record from the journal), sorted by name; what did not is left out.
    #[test]
    fn a_failed_transaction_says_what_dpkg_shows_changed() {
        let before = "\
Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.
 Status: not a field, a continuation line

Package: old-tool
Status: install ok installed
Architecture: all
Version: 2.0

Package: gone
Status: install ok installed
Architecture: all
Version: 0.9

Package: libz
Status: install ok installed
Architecture: amd64
Version: 1.2
";
        let after = "\
Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: old-tool
Status: deinstall ok config-files
Architecture: all
Version: 2.0
Config-Version: 2.0

Package: cfgm-good
Status: install ok installed
Architecture: all
Version: 1.0

Package: cfgm-bad
Status: install ok installed
Architecture: all
Version: 1.0

Package: libz
Status: install ok installed
Architecture: amd64
Version: 1.3

Package: libz
Status: install ok unpacked
Architecture: i386
Version: 1.3
";
        // dpkg was interrupted: its journal has cfgm-bad's newer record.
        let journal = "\
Package: cfgm-bad
Status: install reinstreq half-configured
Architecture: all
Version: 1.0
";
        let changes = touched(&parse_records([before]), &parse_records([after, journal]));
        assert_eq!(
            changes,
            [
                "cfgm-bad 1.0 (half-configured, reinstreq)",
                "cfgm-good 1.0 (installed)",
                "gone 0.9 (not-installed)",
                "libz:amd64 1.2 → 1.3 (installed)",
                "libz:i386 1.3 (unpacked)",
                "old-tool 2.0 (config-files)",
            ]
        );
        assert_eq!(
            touched_summary(&changes),
            "this run touched: cfgm-bad 1.0 (half-configured, reinstreq), \
             cfgm-good 1.0 (installed), gone 0.9 (not-installed), \
             libz:amd64 1.2 → 1.3 (installed), libz:i386 1.3 (unpacked), \
             old-tool 2.0 (config-files)"
        );
        // The same database twice: nothing, said so.
        let same = touched(&parse_records([before]), &parse_records([before]));
        assert!(same.is_empty());
        assert_eq!(
            touched_summary(&same),
            "nothing was changed (dpkg's status is as before)"
        );
    }

    /// A long list names the first 20 and counts the rest.
    #[test]
    fn touched_packages_are_bounded() {
        let after: String = (0..25)
            .map(|i| format!("Package: p{i:02}\nStatus: install ok installed\nVersion: 1\n\n"))
            .collect();
        let changes = touched(&Records::new(), &parse_records([after.as_str()]));
        assert_eq!(changes.len(), 25);
        let s = touched_summary(&changes);
        assert!(s.starts_with("this run touched: p00 1 (installed), p01 1"), "{s}");
        assert!(s.ends_with("p19 1 (installed), and 5 more"), "{s}");
    }

    #[test]
    fn a_pin_is_one_apt_argument() {
        let d = Desired {
            ensure: crate::Ensure(None),
            version: Some("2.0".into()),
        };
        assert_eq!(target("p", &d), "p=2.0");
    }
}
