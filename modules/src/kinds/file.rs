//! `file`: a regular file's content, mode and ownership, or its absence.
//!
//! Content comes inline (`content`), from a template under the tree's
//! `templates/` (`template`, rendered at compile time with the host's
//! context) or from a file under `files/` (`source`).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, KindSpec, Problem};

const ENSURE: &[&str] = &["present", "absent"];

pub static SPEC: KindSpec = KindSpec {
    kind: "file",
    doc: "A regular file: content, mode, owner, group; or ensure it is absent.",
    attrs: &[
        AttrSpec::opt(
            "ensure",
            AttrType::Enum(ENSURE),
            "\"present\" (default) or \"absent\"",
        ),
        AttrSpec::opt("content", AttrType::Str, "the file's content, inline"),
        AttrSpec::opt(
            "template",
            AttrType::Template { into: "content" },
            "a template under templates/, rendered with host, data and facts",
        ),
        AttrSpec::opt(
            "source",
            AttrType::TreeFile { into: "content" },
            "a file under files/ copied as is",
        ),
        AttrSpec::opt("mode", AttrType::Mode, "octal mode, e.g. \"0644\""),
        AttrSpec::opt("owner", AttrType::Str, "owning user name"),
        AttrSpec::opt("group", AttrType::Str, "owning group name"),
        AttrSpec::opt(
            "secret",
            AttrType::Bool,
            "never show the content (plans show a hash)",
        ),
    ],
    name_is_path: true,
    secret_attrs: &["content"],
    check,
    auto_deps: crate::path_auto_deps,
};

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let sources: Vec<&str> = ["content", "template", "source"]
        .into_iter()
        .filter(|a| attrs.contains_key(*a))
        .collect();
    let mut out = Vec::new();
    if sources.len() > 1 {
        out.push(Problem::attr(
            sources[1],
            format!(
                "`{}` and `{}` exclude each other: give the content one way",
                sources[0], sources[1]
            ),
        ));
    }
    if crate::is_absent(attrs) {
        for a in ["content", "template", "source", "mode", "owner", "group"] {
            if attrs.contains_key(a) {
                out.push(Problem::attr(
                    a,
                    format!("`{a}` makes no sense with ensure = \"absent\""),
                ));
            }
        }
    }
    out
}

// ---- behaviour -----------------------------------------------------------

use crate::host::{Host, HostRead, Meta};
use crate::module::{content_summary, unified_diff, Module};
use cfgm_core::engine::RunCtx;
use cfgm_core::schema::parse_mode;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Content larger than this is compared by hash only (no unified diff).
const DIFF_LIMIT: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default)]
    pub ensure: crate::Ensure,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub secret: Option<bool>,
}

impl Desired {
    fn secret(&self) -> bool {
        self.secret == Some(true)
    }
}

/// What is at the path. Content is kept (for diffs) only for text up to
/// 1 MiB; the hash always.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    /// "file", "directory", "symlink" or "other".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A temporary file left beside it by a run that was killed mid-write.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leftover: bool,
}

pub struct File;

/// Observes a path's type, mode and ownership (shared by the path kinds).
pub(crate) fn observe_meta(host: &HostRead, name: &str) -> Result<Observed, ModuleError> {
    meta_observed(host, host.lstat(name)?)
}

/// A path's type, mode and ownership from its metadata.
fn meta_observed(host: &HostRead, m: Option<Meta>) -> Result<Observed, ModuleError> {
    let Some(m) = m else {
        return Ok(Observed::default());
    };
    let kind = if m.is_file {
        "file"
    } else if m.is_dir {
        "directory"
    } else if m.is_symlink {
        "symlink"
    } else {
        "other"
    };
    Ok(Observed {
        exists: true,
        kind: Some(kind.into()),
        mode: Some(format!("{:04o}", m.mode)),
        owner: Some(host.user_name(m.uid)?),
        group: Some(host.group_name(m.gid)?),
        ..Observed::default()
    })
}

/// Mode, owner and group changes (shared by the path kinds).
pub(crate) fn meta_changes(
    out: &mut Vec<Change>,
    o: &Observed,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) {
    let to_val = |s: Option<&String>| s.map(|s| Value::String(s.clone())).unwrap_or(Value::Null);
    if let Some(m) = mode.and_then(parse_mode) {
        let want = format!("{m:04o}");
        if o.mode.as_deref() != Some(want.as_str()) {
            out.push(Change::new("mode", to_val(o.mode.as_ref()), want));
        }
    }
    if let Some(u) = owner {
        if o.owner.as_deref() != Some(u) {
            out.push(Change::new("owner", to_val(o.owner.as_ref()), u));
        }
    }
    if let Some(g) = group {
        if o.group.as_deref() != Some(g) {
            out.push(Change::new("group", to_val(o.group.as_ref()), g));
        }
    }
}

/// Resolves owner and group names on the host.
pub(crate) fn ids(
    host: &HostRead,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(Option<u32>, Option<u32>), ModuleError> {
    let uid = match owner {
        Some(u) => Some(host.uid(u)?.ok_or_else(|| {
            ModuleError::Invalid(format!("no user `{u}` on the host (declare user[{u}])"))
        })?),
        None => None,
    };
    let gid = match group {
        Some(g) => Some(host.gid(g)?.ok_or_else(|| {
            ModuleError::Invalid(format!("no group `{g}` on the host (declare group[{g}])"))
        })?),
        None => None,
    };
    Ok((uid, gid))
}

impl Module for File {
    type Desired = Desired;
    type Observed = Observed;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        _: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        // One open for the metadata and, of a regular file only, the content.
        let (meta, content) = match host.lstat_read(name)? {
            Some((m, c)) => (Some(m), c),
            None => (None, None),
        };
        let mut o = meta_observed(host, meta)?;
        o.leftover = host.has_leftover(name)?;
        if let Some(bytes) = content {
            o.hash = Some(blake3::hash(&bytes).to_hex().to_string());
            o.size = Some(bytes.len());
            if !d.secret() && bytes.len() <= DIFF_LIMIT {
                o.content = String::from_utf8(bytes).ok();
            }
        }
        Ok(o)
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<Change> {
        let mut out = Vec::new();
        let kind = o.kind.as_deref();
        if o.leftover {
            out.push(Change::new(
                "leftover",
                crate::host::temp_path(name),
                Value::Null,
            ));
        }
        if d.ensure.absent() {
            if o.exists {
                out.push(Change::new("ensure", kind.unwrap_or("file"), "absent"));
            }
            return out;
        }
        if !o.exists {
            out.push(Change::new("ensure", Value::Null, "present"));
        } else if kind != Some("file") {
            out.push(Change::new("type", kind.unwrap_or("other"), "file"));
        }
        let content = d
            .content
            .as_deref()
            .or(if o.exists { None } else { Some("") });
        if let Some(c) = content {
            let want = blake3::hash(c.as_bytes()).to_hex().to_string();
            if o.hash.as_deref() != Some(want.as_str()) {
                let from = match (&o.hash, o.size) {
                    (Some(h), Some(n)) => Value::String(content_summary(n, h)),
                    _ => Value::Null,
                };
                let diff = match (&o.content, d.secret()) {
                    (_, true) => None,
                    (Some(old), false) if c.len() <= DIFF_LIMIT => Some(unified_diff(name, old, c)),
                    (None, false) if !o.exists && c.len() <= DIFF_LIMIT => {
                        Some(unified_diff(name, "", c))
                    }
                    _ => None,
                };
                out.push(
                    Change::new("content", from, content_summary(c.len(), &want)).with_diff(diff),
                );
            }
        }
        meta_changes(
            &mut out,
            o,
            d.mode.as_deref(),
            d.owner.as_deref(),
            d.group.as_deref(),
        );
        out
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[Change],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        if changes.iter().any(|c| c.attr == "leftover") {
            // An interrupted run's temporary file: never the live one.
            host.remove_leftover(name)?;
        }
        let now = host.lstat(name)?;
        if d.ensure.absent() {
            return match now {
                Some(m) if m.is_dir => Err(ModuleError::Invalid(format!(
                    "{name} is a directory; a file resource does not remove directories"
                ))),
                Some(_) => host.remove_file(name),
                None => Ok(()),
            };
        }
        if now.is_some_and(|m| m.is_dir) {
            return Err(ModuleError::Invalid(format!(
                "{name} is a directory; refusing to replace it with a file"
            )));
        }
        let (uid, gid) = ids(host, d.owner.as_deref(), d.group.as_deref())?;
        let rewrite = changes
            .iter()
            .any(|c| matches!(c.attr.as_str(), "ensure" | "content" | "type"));
        if rewrite {
            let existing = now.filter(|m| m.is_file);
            let content: Vec<u8> = match &d.content {
                Some(c) => c.clone().into_bytes(),
                // Keep the content of a regular file only: never read
                // through a symlink, a FIFO or a device.
                None if existing.is_some() => host.read(name)?.unwrap_or_default(),
                None => Vec::new(),
            };
            let mode = d
                .mode
                .as_deref()
                .and_then(parse_mode)
                .or(existing.map(|m| m.mode))
                .unwrap_or(0o644);
            let uid = uid.or(existing.map(|m| m.uid)).unwrap_or(0);
            let gid = gid.or(existing.map(|m| m.gid)).unwrap_or(0);
            return host.write_atomic(name, &content, mode, uid, gid);
        }
        for c in changes {
            match c.attr.as_str() {
                "mode" => {
                    let m = d.mode.as_deref().and_then(parse_mode).unwrap_or(0o644);
                    host.chmod(name, m)?;
                }
                "owner" | "group" => host.chown(name, uid, gid)?,
                _ => {}
            }
        }
        Ok(())
    }
}
