//! `pkgrepo`: an apt repository as a deb822 source file, with its key.
//!
//! `pkgrepo[NAME]` is `/etc/apt/sources.list.d/NAME.sources` (Types, URIs,
//! Suites, Components, Architectures, Signed-By) and, when `signed_by`
//! names a key under the tree's `files/` (binary, as `gpg --export` writes
//! it, or armored), `/etc/apt/keyrings/NAME.gpg`. Repositories are applied
//! together (a batched kind): when any of them changed, the package lists
//! are refreshed once (`apt-get update`) before the batch returns, and
//! every `pkg` comes after every `pkgrepo` (an automatic edge), so a package
//! from a new repository installs in the same run.

use cfgm_core::schema::{no_auto_deps, AttrSpec, AttrType, Attrs, KindSpec, Problem};

pub static SPEC: KindSpec = KindSpec {
    kind: "pkgrepo",
    doc: "An apt repository: a deb822 file in /etc/apt/sources.list.d/ and its signing key; package lists refreshed when it changes.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(&["present", "absent"]),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt(
            "uris",
            AttrType::StrList,
            "the repository's URIs (required unless absent)",
        ),
        AttrSpec::opt(
            "suites",
            AttrType::StrList,
            "suites, e.g. [\"bookworm\"]; a flat repository's path ends in `/` (required unless absent)",
        ),
        AttrSpec::opt(
            "components",
            AttrType::StrList,
            "components, e.g. [\"main\"] (none for a flat repository)",
        ),
        AttrSpec::opt(
            "types",
            AttrType::StrList,
            "[\"deb\"] (default), [\"deb\", \"deb-src\"]",
        ),
        AttrSpec::opt(
            "architectures",
            AttrType::StrList,
            "restrict to these architectures",
        ),
        AttrSpec::opt(
            "signed_by",
            AttrType::TreeBinary {
                into: "signed_by_key",
            },
            "the repository's key, a file under files/ (binary or armored), installed as /etc/apt/keyrings/NAME.gpg",
        ),
        AttrSpec::opt(
            "signed_by_key",
            AttrType::Str,
            "the key's bytes as hex (set from `signed_by` at compile time)",
        ),
    ],
    name_is_path: false,
    secret_attrs: &[],
    check,
    auto_deps: no_auto_deps,
    claims,
};

fn check(name: &str, attrs: &Attrs) -> Vec<Problem> {
    let mut out = Vec::new();
    // The name becomes a file name in two directories.
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !valid {
        out.push(Problem::resource(format!(
            "`{name}` is not a repository name (lower-case letters, digits, . _ -; it names /etc/apt/sources.list.d/{name}.sources)"
        )));
    }
    let list = |a: &str| -> Vec<String> {
        attrs
            .get(a)
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    if crate::is_absent(attrs) {
        return out;
    }
    for a in ["uris", "suites"] {
        if list(a).is_empty() {
            out.push(Problem::resource(format!("`{a}` is required (a non-empty list)")));
        }
    }
    let flat = list("suites").iter().any(|s| s.ends_with('/'));
    if !flat && list("components").is_empty() && attrs.contains_key("suites") {
        out.push(Problem::attr(
            "suites",
            "a suite that does not end in `/` needs `components`",
        ));
    }
    for t in list("types") {
        if t != "deb" && t != "deb-src" {
            out.push(Problem::attr(
                "types",
                format!("`{t}` is not \"deb\" or \"deb-src\""),
            ));
        }
    }
    for a in ["uris", "suites", "components", "types", "architectures"] {
        if list(a)
            .iter()
            .any(|v| v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            out.push(Problem::attr(
                a,
                format!("`{a}` holds an empty value or one with white space"),
            ));
        }
    }
    if attrs.contains_key("signed_by") && attrs.contains_key("signed_by_key") {
        out.push(Problem::attr(
            "signed_by_key",
            "`signed_by_key` is set from `signed_by`: give one",
        ));
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead};
use crate::module::{content_summary, unified_diff, BatchItem, KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<PkgRepo>();

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub uris: Vec<String>,
    #[serde(default)]
    pub suites: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub signed_by: Option<String>,
    #[serde(default)]
    pub signed_by_key: Option<String>,
}

/// What is on the host: the source file's text and the key's hash.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<usize>,
}

#[derive(Default)]
pub struct PkgRepo;

/// How a repository differs.
#[derive(Clone, Debug, PartialEq)]
pub enum PkgRepoChange {
    /// The source file is missing or says something else.
    Sources {
        from: Option<String>,
        to: String,
        diff: String,
    },
    /// The key is missing or another.
    Key { from: Option<String>, to: String },
    /// A file of a repository that must be absent.
    Remove { path: String },
}

impl KindChange for PkgRepoChange {
    fn show(&self) -> Change {
        match self {
            PkgRepoChange::Sources { from, to, diff } => {
                Change::new("sources", from.clone(), to.as_str()).with_diff(Some(diff.clone()))
            }
            PkgRepoChange::Key { from, to } => Change::new("signed_by", from.clone(), to.as_str()),
            PkgRepoChange::Remove { path } => Change::new("ensure", path.as_str(), "absent"),
        }
    }
}

fn sources_path(name: &str) -> String {
    format!("/etc/apt/sources.list.d/{name}.sources")
}

fn key_path(name: &str) -> String {
    format!("/etc/apt/keyrings/{name}.gpg")
}

/// The key's bytes, from the catalog's hex.
fn key_bytes(d: &Desired) -> Result<Option<Vec<u8>>, ModuleError> {
    let Some(h) = &d.signed_by_key else {
        return Ok(None);
    };
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let b = h.as_bytes();
    if b.len() % 2 != 0 {
        return Err(ModuleError::Invalid("signed_by_key is not hex".into()));
    }
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Some)
        .ok_or_else(|| ModuleError::Invalid("signed_by_key is not hex".into()))
}

/// The deb822 source file of a repository.
fn render(name: &str, d: &Desired) -> String {
    let types = if d.types.is_empty() {
        "deb".to_string()
    } else {
        d.types.join(" ")
    };
    let mut s = format!(
        "# pkgrepo[{name}], managed by cfgm\nTypes: {types}\nURIs: {}\nSuites: {}\n",
        d.uris.join(" "),
        d.suites.join(" ")
    );
    if !d.components.is_empty() {
        s.push_str(&format!("Components: {}\n", d.components.join(" ")));
    }
    if !d.architectures.is_empty() {
        s.push_str(&format!("Architectures: {}\n", d.architectures.join(" ")));
    }
    if d.signed_by_key.is_some() {
        s.push_str(&format!("Signed-By: {}\n", key_path(name)));
    }
    s
}

fn summary(b: &[u8]) -> String {
    content_summary(b.len(), &blake3::hash(b).to_hex())
}

/// Refreshes the package lists (once for every repository that changed).
fn update(host: &Host) -> Result<(), ModuleError> {
    host.run(super::pkg::APT_UPDATE).map(drop)
}

impl Module for PkgRepo {
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = PkgRepoChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        _: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        let sources = host
            .read(&sources_path(name))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let key = host.read(&key_path(name))?;
        Ok(Observed {
            sources,
            key_size: key.as_ref().map(Vec::len),
            key: key.map(|k| blake3::hash(&k).to_hex().to_string()),
        })
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<PkgRepoChange> {
        let mut out = Vec::new();
        if d.ensure.absent() {
            if o.sources.is_some() {
                out.push(PkgRepoChange::Remove {
                    path: sources_path(name),
                });
            }
            if o.key.is_some() {
                out.push(PkgRepoChange::Remove {
                    path: key_path(name),
                });
            }
            return out;
        }
        let want = render(name, d);
        if o.sources.as_deref() != Some(want.as_str()) {
            out.push(PkgRepoChange::Sources {
                from: o
                    .sources
                    .as_ref()
                    .map(|s| content_summary(s.len(), &blake3::hash(s.as_bytes()).to_hex())),
                to: summary(want.as_bytes()),
                diff: unified_diff(
                    &sources_path(name),
                    o.sources.as_deref().unwrap_or(""),
                    &want,
                ),
            });
        }
        // A key that is not hex fails in apply; the diff shows it as due.
        let key = key_bytes(d).ok().flatten();
        if let Some(k) = key {
            let hash = blake3::hash(&k).to_hex().to_string();
            if o.key.as_deref() != Some(hash.as_str()) {
                out.push(PkgRepoChange::Key {
                    from: match (&o.key, o.key_size) {
                        (Some(h), Some(n)) => Some(content_summary(n, h)),
                        _ => None,
                    },
                    to: summary(&k),
                });
            }
        }
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[PkgRepoChange],
        ctx: &RunCtx,
    ) -> Result<(), ModuleError> {
        self.apply_batch(host, &[(name, d, changes)], ctx)
            .pop()
            .unwrap_or(Ok(()))
    }

    fn batched(&self) -> bool {
        true
    }

    /// Writes (or removes) every repository's files, then refreshes the
    /// lists once if anything changed; a failed refresh fails the
    /// repositories that changed.
    fn apply_batch(
        &self,
        host: &Host,
        items: &[BatchItem<'_, Self>],
        _: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        let mut results: Vec<Result<(), ModuleError>> = items
            .iter()
            .map(|(name, d, changes)| {
                for c in changes.iter() {
                    match c {
                        PkgRepoChange::Sources { .. } => {
                            host.create_dir_all("/etc/apt/sources.list.d")?;
                            host.write_atomic(
                                &sources_path(name),
                                render(name, d).as_bytes(),
                                0o644,
                                0,
                                0,
                            )?;
                        }
                        PkgRepoChange::Key { .. } => {
                            let key = key_bytes(d)?.unwrap_or_default();
                            host.create_dir_all("/etc/apt/keyrings")?;
                            host.write_atomic(&key_path(name), &key, 0o644, 0, 0)?;
                        }
                        PkgRepoChange::Remove { path } => host.remove_file(path)?,
                    }
                }
                Ok(())
            })
            .collect();
        let changed = items
            .iter()
            .zip(&results)
            .any(|((_, _, c), r)| !c.is_empty() && r.is_ok());
        if changed {
            if let Err(e) = update(host) {
                for ((_, _, c), r) in items.iter().zip(results.iter_mut()) {
                    if !c.is_empty() && r.is_ok() {
                        *r = Err(ModuleError::Invalid(format!(
                            "the package lists could not be refreshed: {e}"
                        )));
                    }
                }
            }
        }
        results
    }
}

/// A repository sets the whole content of its sources file and its key.
fn claims(name: &str, attrs: &Attrs) -> Vec<cfgm_core::schema::Claim> {
    if crate::is_absent(attrs) {
        return Vec::new();
    }
    vec![
        cfgm_core::schema::Claim::Sets(sources_path(name)),
        cfgm_core::schema::Claim::Sets(key_path(name)),
    ]
}

#[cfg(test)]
mod tests {
    use crate::testing::diff_table;
    use serde_json::json;

    #[test]
    fn diff() {
        let want = "# pkgrepo[nginx], managed by cfgm\nTypes: deb\nURIs: http://nginx.org/packages/debian\nSuites: bookworm\nComponents: nginx\nSigned-By: /etc/apt/keyrings/nginx.gpg\n";
        let key_hash = blake3::hash(&[0x99, 0x01]).to_hex().to_string();
        let d = json!({
            "uris": ["http://nginx.org/packages/debian"],
            "suites": ["bookworm"],
            "components": ["nginx"],
            "signed_by_key": "9901",
        });
        diff_table(
            "pkgrepo",
            &[
                (
                    "nginx",
                    d.clone(),
                    json!({}),
                    &[
                        r#"sources: null → "158 bytes, blake3 d008ce96abf8" (diff)"#,
                        r#"signed_by: null → "2 bytes, blake3 7caabc617585""#,
                    ],
                ),
                (
                    "nginx",
                    d.clone(),
                    json!({"sources": want, "key": key_hash, "key_size": 2}),
                    &[],
                ),
                (
                    "nginx",
                    json!({"ensure": "absent"}),
                    json!({"sources": want, "key": key_hash, "key_size": 2}),
                    &[
                        r#"ensure: "/etc/apt/sources.list.d/nginx.sources" → "absent""#,
                        r#"ensure: "/etc/apt/keyrings/nginx.gpg" → "absent""#,
                    ],
                ),
            ],
        );
    }
}

