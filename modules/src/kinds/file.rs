//! `file`: a regular file's content, mode and ownership, or its absence.
//!
//! Content comes inline (`content`, or `content_b64` for bytes), from a
//! template under the tree's `templates/` (`template`, rendered at compile
//! time with the host's context) or from a file under `files/` (`source`;
//! bytes that are not UTF-8 text reach the catalog as `content_b64`).
//! Something else than a regular file at the path is refused, unless
//! `force = true`: then it is moved aside to `.NAME.cfgm-replaced` beside
//! it (a directory with its content, a symlink as a link). A missing parent
//! directory is an error unless `makedirs = true` (made like `mkdir -p`).

use cfgm_core::schema::{AttrSpec, AttrType, Attrs, Claim, KindSpec, Problem};

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
            "content_b64",
            AttrType::Str,
            "the file's content as base64, for bytes that are not text",
        ),
        AttrSpec::opt(
            "template",
            AttrType::Template { into: "content" },
            "a template under templates/, rendered with host, data and facts",
        ),
        AttrSpec::opt(
            "vars",
            AttrType::TemplateVars,
            "variables for the template, seen there as `vars` (any TOML values)",
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
        AttrSpec::opt(
            "create",
            AttrType::Bool,
            "false: manage the file only if it exists as a file, never create it",
        ),
        AttrSpec::opt(
            "force",
            AttrType::Bool,
            "replace a directory, symlink or other non-file at the path: it is moved \
             aside to .NAME.cfgm-replaced beside it (the previous one of those goes)",
        ),
        AttrSpec::opt(
            "makedirs",
            AttrType::Bool,
            "create missing parent directories (root's, 0755, like mkdir -p)",
        ),
        AttrSpec::opt(
            "validate",
            AttrType::StrList,
            "a command (argument vector, no shell) that checks the new content before it \
             replaces the file; `%s` stands for the temporary file's path on the host. A \
             failing check fails the resource and leaves the old file in place. It runs at \
             apply only: a dry run shows `validate` beside the content change",
        ),
    ],
    name_is_path: true,
    secret_attrs: &["content", "content_b64"],
    check,
    auto_deps: crate::path_auto_deps,
    claims,
};

/// A file with content sets the whole of it; without, it manages only the
/// file's existence and metadata, and `line` resources may edit it.
fn claims(name: &str, attrs: &Attrs) -> Vec<Claim> {
    let content = ["content", "content_b64", "template", "source"]
        .iter()
        .any(|a| attrs.contains_key(*a));
    if content && !crate::is_absent(attrs) {
        vec![Claim::Sets(name.to_string())]
    } else {
        Vec::new()
    }
}

fn check(_name: &str, attrs: &Attrs) -> Vec<Problem> {
    let sources: Vec<&str> = ["content", "content_b64", "template", "source"]
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
    if attrs.contains_key("vars") && !attrs.contains_key("template") {
        out.push(Problem::attr(
            "vars",
            "`vars` are for a template: give `template` too",
        ));
    }
    if crate::is_absent(attrs) && attrs.contains_key("create") {
        out.push(Problem::attr(
            "create",
            "`create` makes no sense with ensure = \"absent\"",
        ));
    }
    if let Some(Value::String(b)) = attrs.get("content_b64") {
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
            // Never quotes the value: it may be secret.
            out.push(Problem::attr(
                "content_b64",
                "`content_b64` is not base64 (standard alphabet, with padding)",
            ));
        }
    }
    if let Some(v) = attrs.get("validate").and_then(Value::as_array) {
        let argv: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
        match argv.first() {
            None => out.push(Problem::attr(
                "validate",
                "`validate` is an empty command (expected e.g. [\"visudo\", \"-cf\", \"%s\"])",
            )),
            Some(c) if c.is_empty() || c.starts_with('-') => out.push(Problem::attr(
                "validate",
                format!("`validate` must start with a command, not `{c}`"),
            )),
            Some(_) if !argv[1..].iter().any(|a| a.contains("%s")) => {
                out.push(Problem::attr(
                    "validate",
                    "`validate` never names the file to check: put `%s` (the new \
                     content's temporary path) in one of its arguments",
                ))
            }
            Some(_) => {}
        }
    }
    if crate::is_absent(attrs) {
        for a in [
            "content",
            "content_b64",
            "template",
            "source",
            "mode",
            "owner",
            "group",
            "validate",
            "force",
            "makedirs",
        ] {
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

use crate::host::{argv_string, command_error, run_with_timeout, Host, HostRead, Meta};
use crate::module::{content_summary, unified_diff, KindChange, KindDef, Module};
use cfgm_core::provider::RunCtx;
use cfgm_core::schema::parse_mode;
use cfgm_core::{Change, ModuleError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind's entry in `crate::KINDS`.
pub static KIND: KindDef = KindDef::of::<File>();

/// How long a `validate` command may take.
const VALIDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

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
    /// Consumed by the compiler (rendered into `content`); accepted so a
    /// resource may say it, never in a catalog.
    #[serde(default)]
    pub vars: Option<Value>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub secret: Option<bool>,
    #[serde(default)]
    pub create: Option<bool>,
    #[serde(default)]
    pub validate: Option<Vec<String>>,
    #[serde(default)]
    pub content_b64: Option<String>,
    #[serde(default)]
    pub force: Option<bool>,
    #[serde(default)]
    pub makedirs: Option<bool>,
}

impl Desired {
    fn secret(&self) -> bool {
        self.secret == Some(true)
    }

    fn force(&self) -> bool {
        self.force == Some(true)
    }

    fn makedirs(&self) -> bool {
        self.makedirs == Some(true)
    }

    /// The content the catalog gives, as bytes (`None`: not managed).
    /// Base64 was checked when compiling; bad base64 here is an error.
    fn bytes(&self) -> Result<Option<std::borrow::Cow<'_, [u8]>>, ModuleError> {
        use base64::Engine as _;
        if let Some(c) = &self.content {
            return Ok(Some(c.as_bytes().into()));
        }
        match &self.content_b64 {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map(|v| Some(v.into()))
                .map_err(|_| ModuleError::Invalid("content_b64: not base64".into())),
            None => Ok(None),
        }
    }
}

/// A directory where the file should be (or go): never removed or replaced
/// by a file resource.
fn directory_in_the_way(name: &str, d: &Desired) -> ModuleError {
    ModuleError::Invalid(if d.ensure.absent() {
        format!("{name} is a directory; a file resource does not remove directories")
    } else {
        format!("{name} is a directory; refusing to replace it with a file (force = true moves it aside)")
    })
}

/// Runs the `validate` command of a file on its new content at `temp` (the
/// temporary file's path as a command on the host sees it). A refusal is
/// the resource's error, with the tool's last lines (not for a secret
/// file: a checker may quote the content it refuses).
fn validate(
    host: &Host,
    name: &str,
    d: &Desired,
    argv: &[String],
    temp: &str,
) -> Result<(), ModuleError> {
    let argv: Vec<String> = argv.iter().map(|a| a.replace("%s", temp)).collect();
    let shown = argv_string(&argv);
    let out = run_with_timeout(host.command(&argv), &argv, VALIDATE_TIMEOUT)?;
    if out.status.success() {
        return Ok(());
    }
    let said = match command_error(&argv, &out) {
        ModuleError::Command { status, .. } if d.secret() => {
            format!("{status}; its output is not shown: the file is secret")
        }
        ModuleError::Command { status, stderr, .. } => format!("{status}: {stderr}"),
        e => e.to_string(),
    };
    Err(ModuleError::Invalid(format!(
        "validate: `{shown}` refused the new content ({said}); {name} left as it was"
    )))
}

/// What is at the path, of a file whose content the resource manages:
/// the content itself when it is text up to 1 MiB (for diffs), else its
/// hash (a secret, a large or a binary file).
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
    /// The text is the catalog's and was left out of a report (see
    /// `cfgm_core::schema::AS_CATALOG_KEY`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub as_catalog: bool,
}

#[derive(Default)]
pub struct File;

/// How a file differs.
#[derive(Clone, Debug, PartialEq)]
pub enum FileChange {
    /// A temporary file that a killed run left beside the file: removed
    /// (never the live file).
    Leftover { temp: String },
    /// Nothing is at the path: the file is made.
    Create,
    /// Something is at the path (`was`: what) and must not be.
    Remove { was: String },
    /// Something else than a regular file is at the path.
    Type { was: String },
    /// The content differs: size-and-hash summaries, and (unless secret or
    /// large) a unified diff.
    Content {
        from: Option<String>,
        to: String,
        diff: Option<String>,
    },
    /// Mode, owner or group.
    Meta(MetaChange),
    /// The new content goes through the `validate` command before it
    /// replaces the file (with a content change only). Shown so that a dry
    /// run says the check is still to come: it needs the new file on the
    /// host, so only apply can run it.
    Validate { argv: String },
}

impl KindChange for FileChange {
    fn show(&self) -> Change {
        match self {
            FileChange::Leftover { temp } => Change::new("leftover", temp.as_str(), Value::Null),
            FileChange::Create => Change::new("ensure", Value::Null, "present"),
            FileChange::Remove { was } => Change::new("ensure", was.as_str(), "absent"),
            FileChange::Type { was } => Change::new("type", was.as_str(), "file"),
            FileChange::Content { from, to, diff } => {
                Change::new("content", from.clone(), to.as_str()).with_diff(diff.clone())
            }
            FileChange::Meta(m) => m.show(),
            FileChange::Validate { argv } => {
                Change::new("validate", Value::Null, format!("{argv} (at apply)"))
            }
        }
    }
}

/// How a path's mode or ownership differs (shared by the path kinds).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaChange {
    Mode { from: Option<String>, to: String },
    Owner { from: Option<String>, to: String },
    Group { from: Option<String>, to: String },
}

impl MetaChange {
    pub fn show(&self) -> Change {
        let (attr, from, to) = match self {
            MetaChange::Mode { from, to } => ("mode", from, to),
            MetaChange::Owner { from, to } => ("owner", from, to),
            MetaChange::Group { from, to } => ("group", from, to),
        };
        Change::new(attr, from.clone(), to.as_str())
    }
}

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

/// Mode, owner and group changes, in that order (shared by the path kinds).
pub(crate) fn meta_changes(
    o: &Observed,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Vec<MetaChange> {
    let mut out = Vec::new();
    if let Some(m) = mode.and_then(parse_mode) {
        let want = format!("{m:04o}");
        if o.mode.as_deref() != Some(want.as_str()) {
            out.push(MetaChange::Mode {
                from: o.mode.clone(),
                to: want,
            });
        }
    }
    if let Some(u) = owner {
        if o.owner.as_deref() != Some(u) {
            out.push(MetaChange::Owner {
                from: o.owner.clone(),
                to: u.to_string(),
            });
        }
    }
    if let Some(g) = group {
        if o.group.as_deref() != Some(g) {
            out.push(MetaChange::Group {
                from: o.group.clone(),
                to: g.to_string(),
            });
        }
    }
    out
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
    const SPEC: &'static KindSpec = &SPEC;
    type Desired = Desired;
    type Observed = Observed;
    type Change = FileChange;

    fn observe(
        &self,
        host: &HostRead,
        name: &str,
        d: &Desired,
        ctx: &RunCtx,
    ) -> Result<Observed, ModuleError> {
        // One open for the metadata and, of a regular file only, the content.
        let (meta, content) = match host.lstat_read(name)? {
            Some((m, c)) => (Some(m), c),
            None => (None, None),
        };
        // What apply would refuse, refused here too: a dry run sees it.
        match meta {
            Some(m) if m.is_dir && (d.ensure.absent() || !d.force()) => {
                return Err(directory_in_the_way(name, d))
            }
            None if !d.ensure.absent() && !d.makedirs() => {
                crate::parent_there(host, ("file", name), name, ctx)?
            }
            _ => {}
        }
        let manages_content = d.bytes()?.is_some();
        if !d.ensure.absent() {
            crate::owners_there(host, ("file", name), d.owner.as_deref(), d.group.as_deref(), ctx)?;
        }
        let mut o = meta_observed(host, meta)?;
        o.leftover = host.has_leftover(name)?;
        if let Some(bytes) = content {
            o.size = Some(bytes.len());
            // Content the resource does not manage (a private key whose
            // mode it sets) is not observed: reports and facts leave the
            // host, and neither needs it.
            if manages_content {
                // Text is kept as it is (the hash would say nothing more);
                // a secret, a large or a binary file as its hash.
                let text = if !d.secret() && bytes.len() <= DIFF_LIMIT {
                    String::from_utf8(bytes).map_err(|e| e.into_bytes())
                } else {
                    Err(bytes)
                };
                match text {
                    Ok(t) => o.content = Some(t),
                    Err(b) => o.hash = Some(blake3::hash(&b).to_hex().to_string()),
                }
            }
        }
        Ok(o)
    }

    fn trim_converged(_d: &Desired, o: &mut Observed) {
        // Nothing to change: the text is the catalog's content.
        if o.content.take().is_some() {
            o.as_catalog = true;
        }
    }

    fn restore_converged(d: &Desired, o: &mut Observed) -> bool {
        if !o.as_catalog {
            return false;
        }
        match d.bytes().ok().flatten().map(|b| String::from_utf8(b.into_owned())) {
            Some(Ok(text)) => {
                o.content = Some(text);
                o.as_catalog = false;
                true
            }
            _ => false,
        }
    }

    fn diff(name: &str, d: &Desired, o: &Observed) -> Vec<FileChange> {
        let mut out = Vec::new();
        let kind = o.kind.as_deref();
        if o.leftover {
            out.push(FileChange::Leftover {
                temp: crate::host::temp_path(name),
            });
        }
        if d.ensure.absent() {
            if o.exists {
                out.push(FileChange::Remove {
                    was: kind.unwrap_or("file").to_string(),
                });
            }
            return out;
        }
        if d.create == Some(false) && kind != Some("file") {
            // Only a file that is there is managed (host keys that exist
            // on some hosts): nothing is made, nothing else replaced.
            return out;
        }
        if !o.exists {
            out.push(FileChange::Create);
        } else if kind != Some("file") {
            out.push(FileChange::Type {
                was: kind.unwrap_or("other").to_string(),
            });
        }
        // Bad base64 is refused by observe; here it plans as no content.
        let bytes = d.bytes().ok().flatten();
        let content: Option<&[u8]> = bytes
            .as_deref()
            .or(if o.exists { None } else { Some(b"") });
        if let Some(c) = content {
            // The content observed, when kept, is compared as it is; else
            // the hashes (a secret, a large or a binary file).
            let same = match &o.content {
                Some(seen) if o.exists => seen.as_bytes() == c,
                _ => o.hash.as_deref() == Some(blake3::hash(c).to_hex().as_str()),
            };
            if !same {
                let hash = o.hash.clone().or_else(|| {
                    o.content
                        .as_ref()
                        .map(|t| blake3::hash(t.as_bytes()).to_hex().to_string())
                });
                let from = match (hash, o.size) {
                    (Some(h), Some(n)) => Some(content_summary(n, &h)),
                    _ => None,
                };
                // Text only: bytes that are not UTF-8 show as size and hash.
                let text = std::str::from_utf8(c).ok();
                let diff = match (&o.content, text, d.secret()) {
                    (_, _, true) | (_, None, _) => None,
                    (Some(old), Some(c), false) if c.len() <= DIFF_LIMIT => {
                        Some(unified_diff(name, old, c))
                    }
                    (None, Some(c), false) if !o.exists && c.len() <= DIFF_LIMIT => {
                        Some(unified_diff(name, "", c))
                    }
                    _ => None,
                };
                out.push(FileChange::Content {
                    from,
                    to: content_summary(c.len(), &blake3::hash(c).to_hex()),
                    diff,
                });
            }
        }
        let rewrite = out.iter().any(|c| {
            matches!(
                c,
                FileChange::Create | FileChange::Type { .. } | FileChange::Content { .. }
            )
        });
        if let (true, Some(argv)) = (rewrite, &d.validate) {
            out.push(FileChange::Validate {
                argv: argv_string(argv),
            });
        }
        let meta = meta_changes(
            o,
            d.mode.as_deref(),
            d.owner.as_deref(),
            d.group.as_deref(),
        );
        out.extend(meta.into_iter().map(FileChange::Meta));
        out
    }

    /// The files of a wave are applied together: their whole-file writes
    /// share one durability barrier (see `Host::staged`).
    fn batched(&self) -> bool {
        true
    }

    /// A run asked to stop finishes the batch it is in: 256 files at most.
    fn batch_limit(&self) -> usize {
        256
    }

    /// Files with a `validate` check are written after the others of the
    /// batch are in place (a configuration that includes another file of
    /// the same wave is checked against its new version), one at a time.
    fn apply_batch(
        &self,
        host: &Host,
        items: &[crate::module::BatchItem<'_, Self>],
        ctx: &RunCtx,
    ) -> Vec<Result<(), ModuleError>> {
        let (checked, plain): (Vec<usize>, Vec<usize>) =
            (0..items.len()).partition(|&k| items[k].1.validate.is_some());
        let mut results: Vec<Result<(), ModuleError>> = items.iter().map(|_| Ok(())).collect();
        let staged = host.staged(plain.len(), |j| {
            let (name, d, changes) = items[plain[j]];
            self.apply(host, name, d, changes, ctx)
        });
        for (k, r) in plain.into_iter().zip(staged) {
            results[k] = r;
        }
        // (Through `staged` too, for its panic guard: a checked write is
        // never staged, it is made durable and renamed on its own.)
        let after = host.staged(checked.len(), |j| {
            let (name, d, changes) = items[checked[j]];
            self.apply(host, name, d, changes, ctx)
        });
        for (k, r) in checked.into_iter().zip(after) {
            results[k] = r;
        }
        results
    }

    fn apply(
        &self,
        host: &Host,
        name: &str,
        d: &Desired,
        changes: &[FileChange],
        _: &RunCtx,
    ) -> Result<(), ModuleError> {
        let (mut leftover, mut remove, mut rewrite, mut chmod, mut chown) =
            (false, false, false, false, false);
        for c in changes {
            match c {
                FileChange::Leftover { .. } => leftover = true,
                FileChange::Remove { .. } => remove = true,
                FileChange::Create | FileChange::Type { .. } | FileChange::Content { .. } => {
                    rewrite = true
                }
                FileChange::Meta(MetaChange::Mode { .. }) => chmod = true,
                FileChange::Meta(MetaChange::Owner { .. } | MetaChange::Group { .. }) => {
                    chown = true
                }
                // Runs with the rewrite it comes with.
                FileChange::Validate { .. } => {}
            }
        }
        if leftover {
            // An interrupted run's temporary file: never the live one.
            host.remove_leftover(name)?;
        }
        let now = host.lstat(name)?;
        if remove {
            return match now {
                Some(m) if m.is_dir => Err(directory_in_the_way(name, d)),
                Some(_) => host.remove_file(name),
                None => Ok(()),
            };
        }
        if d.ensure.absent() {
            // Only the leftover was to go.
            return Ok(());
        }
        let (uid, gid) = ids(host, d.owner.as_deref(), d.group.as_deref())?;
        match now {
            // Anything but a regular file: moved aside (a directory, a
            // symlink, a FIFO …) only when forced. A symlink without force
            // is replaced by the rename, as it always was; the file it
            // points at is never touched.
            Some(m) if !m.is_file && d.force() => {
                host.move_aside(name)?;
            }
            Some(m) if m.is_dir => return Err(directory_in_the_way(name, d)),
            None if d.makedirs() => host.create_dir_all(crate::host::parent_of(name))?,
            _ => {}
        }
        let now = if d.force() { host.lstat(name)? } else { now };
        if rewrite {
            let existing = now.filter(|m| m.is_file);
            let content: Vec<u8> = match d.bytes()? {
                Some(c) => c.into_owned(),
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
            return match &d.validate {
                Some(argv) => host.write_atomic_checked(name, &content, mode, uid, gid, &|t| {
                    validate(host, name, d, argv, t)
                }),
                None => host.write_atomic(name, &content, mode, uid, gid),
            };
        }
        if chmod {
            let m = d.mode.as_deref().and_then(parse_mode).unwrap_or(0o644);
            host.chmod(name, m)?;
        }
        if chown {
            host.chown(name, uid, gid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{diff_table, resource};
    use serde_json::json;

    fn b3(s: &str) -> String {
        blake3::hash(s.as_bytes()).to_hex().to_string()
    }

    /// What observe says of a regular file with this text (the text, no
    /// hash: a summary's hash is of the text).
    fn file(content: &str, mode: &str) -> serde_json::Value {
        json!({
            "exists": true, "kind": "file", "size": content.len(),
            "content": content, "mode": mode, "owner": "root", "group": "root",
        })
    }

    #[test]
    fn diff() {
        let absent = json!({"exists": false});
        diff_table(
            "file",
            &[
                (
                    "/etc/motd",
                    json!({"content": "hi\n", "mode": "0644", "owner": "root"}),
                    absent.clone(),
                    &[
                        r#"ensure: null → "present""#,
                        r#"content: null → "3 bytes, blake3 0b8b60248fad" (diff)"#,
                        r#"mode: null → "0644""#,
                        r#"owner: null → "root""#,
                    ],
                ),
                // No content given: an empty file.
                (
                    "/etc/motd",
                    json!({}),
                    absent.clone(),
                    &[
                        r#"ensure: null → "present""#,
                        r#"content: null → "0 bytes, blake3 af1349b9f5f9" (diff)"#,
                    ],
                ),
                (
                    "/etc/motd",
                    json!({"content": "hi\n", "mode": "644", "owner": "root", "group": "root"}),
                    file("hi\n", "0644"),
                    &[],
                ),
                (
                    "/etc/motd",
                    json!({"content": "hi\n", "mode": "0600"}),
                    file("old\n", "0644"),
                    &[
                        r#"content: "4 bytes, blake3 87b86a9f9e06" → "3 bytes, blake3 0b8b60248fad" (diff)"#,
                        r#"mode: "0644" → "0600""#,
                    ],
                ),
                // Content left alone when not given; ownership only.
                (
                    "/etc/motd",
                    json!({"owner": "alice", "group": "staff"}),
                    file("old\n", "0644"),
                    &[r#"owner: "root" → "alice""#, r#"group: "root" → "staff""#],
                ),
                // A secret's content is compared by hash only: no diff.
                (
                    "/etc/key",
                    json!({"content": "s3cret\n", "secret": true}),
                    json!({"exists": true, "kind": "file", "hash": b3("old\n"), "size": 4}),
                    &[r#"content: "4 bytes, blake3 87b86a9f9e06" → "7 bytes, blake3 7af8f243929a""#],
                ),
                (
                    "/etc/motd",
                    json!({"content": "hi\n"}),
                    json!({"exists": true, "kind": "directory", "mode": "0755"}),
                    &[
                        r#"type: "directory" → "file""#,
                        r#"content: null → "3 bytes, blake3 0b8b60248fad""#,
                    ],
                ),
                (
                    "/etc/motd",
                    json!({"ensure": "absent"}),
                    file("hi\n", "0644"),
                    &[r#"ensure: "file" → "absent""#],
                ),
                ("/etc/motd", json!({"ensure": "absent"}), absent, &[]),
                // A killed run's temporary file goes, whatever else.
                (
                    "/etc/motd",
                    json!({"ensure": "absent"}),
                    json!({"exists": false, "leftover": true}),
                    &[r#"leftover: "/etc/.motd.cfgm-new" → null"#],
                ),
            ],
        );
    }

    /// A content change with `validate` says the check is still to come;
    /// a mode change alone runs no check.
    #[test]
    fn validate_comes_with_a_rewrite_only() {
        let v = json!(["visudo", "-cf", "%s"]);
        diff_table(
            "file",
            &[
                (
                    "/etc/sudoers.d/ops",
                    json!({"content": "hi\n", "validate": v}),
                    file("old\n", "0440"),
                    &[
                        r#"content: "4 bytes, blake3 87b86a9f9e06" → "3 bytes, blake3 0b8b60248fad" (diff)"#,
                        r#"validate: null → "visudo -cf %s (at apply)""#,
                    ],
                ),
                (
                    "/etc/sudoers.d/ops",
                    json!({"content": "hi\n", "mode": "0400", "validate": v}),
                    file("hi\n", "0440"),
                    &[r#"mode: "0440" → "0400""#],
                ),
            ],
        );
    }

    /// `validate` is a command that names the file to check.
    #[test]
    fn validate_rules() {
        let problems = |v: serde_json::Value| -> Vec<String> {
            let attrs = serde_json::from_value(json!({"content": "x", "validate": v})).unwrap();
            super::check("/etc/x", &attrs)
                .into_iter()
                .map(|p| p.message)
                .collect()
        };
        assert!(problems(json!(["nginx", "-t", "-c", "%s"])).is_empty());
        assert!(problems(json!(["sh", "-c", "check --file=%s"])).is_empty());
        assert!(problems(json!([]))[0].contains("empty command"));
        assert!(problems(json!(["-t", "%s"]))[0].contains("must start with a command"));
        assert!(problems(json!(["nginx", "-t"]))[0].contains("`%s`"));
        assert!(problems(json!(["%s"]))[0].contains("`%s`"));
    }

    /// The content change carries a unified diff, like `git diff`.
    #[test]
    fn a_content_change_shows_a_unified_diff() {
        let r = resource("file", "/etc/motd", &json!({"content": "one\ntwo\n"}));
        let c = crate::diff(&r, &file("one\n2\n", "0644")).unwrap().unwrap();
        assert_eq!(
            c[0].diff.as_deref(),
            Some("--- a/etc/motd\n+++ b/etc/motd\n@@ -1,2 +1,2 @@\n one\n-2\n+two\n")
        );
    }
}

#[cfg(test)]
mod create_tests {
    use crate::testing::diff_table;
    use serde_json::json;

    /// `create = false`: a missing file (or something else at the path)
    /// is left alone; a file that is there is managed.
    #[test]
    fn create_false_never_makes_the_file() {
        diff_table(
            "file",
            &[
                (
                    "/etc/ssh/ssh_host_ed25519_key",
                    json!({"create": false, "mode": "0600", "owner": "root"}),
                    json!({"exists": false}),
                    &[],
                ),
                (
                    "/etc/ssh/ssh_host_ed25519_key",
                    json!({"create": false, "mode": "0600"}),
                    json!({"exists": true, "kind": "directory", "mode": "0755"}),
                    &[],
                ),
                (
                    "/etc/ssh/ssh_host_ed25519_key",
                    json!({"create": false, "mode": "0600", "group": "root"}),
                    json!({"exists": true, "kind": "file", "hash": "x", "size": 1, "mode": "0644", "owner": "root", "group": "ssh"}),
                    &[r#"mode: "0644" → "0600""#, r#"group: "ssh" → "root""#],
                ),
            ],
        );
    }
}
