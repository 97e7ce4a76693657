//! Loading a states tree.
//!
//! This module owns the tree's format: `cfgm.toml`, `inventory.toml`,
//! `top.toml`, `data/` (layered: common, dc, role, host), `states/*.toml`,
//! `templates/` and `files/`. It reads every file once, through the tree's
//! [`TreeSource`] (a directory or, later, a git commit: one code path),
//! into [`Sources`], parses the plain TOML files (with spans, so errors
//! point into them), prepares the state and file templates in minijinja,
//! and records every problem as a [`Diagnostic`] instead of stopping at the
//! first.
//!
//! Reading the tree is the only I/O in cfgm-core; it never writes. A tree is
//! untrusted input: what it can make the loader read is confined by the
//! source (see `source`), and what it can make the loader hold is bounded
//! ([`MAX_TREE_BYTES`] in all).

use crate::diag::{suggest, Diagnostic, FileId, Sources, Span};
use crate::parse::toml_to_json;
use crate::render::{pulls_in, reads, tag_source, template_error};
use crate::select::{SelectError, Selector, Term};
use crate::source::{DirSource, SourceError, TreeSource, MAX_FILE_BYTES};
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use toml::Spanned;

/// The most a tree may hold in all (256 MiB): every file a load and its
/// compiles read, counted once.
pub const MAX_TREE_BYTES: u64 = 256 << 20;

/// `cfgm.toml`: settings of the tree.
///
/// Deliberately absent: anything that tells an agent where to write or
/// what to run. The tree is untrusted input and the agent runs as root;
/// its state directory comes from its own flags (`--state-dir`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeConfig {
    /// A name for the tree, shown in reports.
    #[serde(default)]
    pub name: Option<String>,
}

/// `cfgm.toml` as written: `state_dir` is recognised only to say why it
/// is not a tree setting (it once was documented as one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state_dir: Option<Spanned<toml::Value>>,
}

/// One inventory host.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub dc: String,
    pub role: String,
    pub address: Option<String>,
    pub tags: Vec<String>,
    pub vars: Value,
    /// Where the host is declared in inventory.toml.
    pub span: Span,
}

impl Host {
    /// The `host` variable templates see.
    pub fn to_context(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "dc": self.dc,
            "role": self.role,
            "address": self.address,
            "tags": self.tags,
            "vars": self.vars,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    hosts: BTreeMap<Spanned<String>, RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    dc: String,
    role: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    vars: toml::Table,
}

/// One line of top.toml: a target (all terms must match) and its states.
#[derive(Clone, Debug)]
pub struct TopRule {
    pub target: String,
    pub terms: Vec<Term>,
    pub span: Span,
    pub states: Vec<(String, Span)>,
}

impl TopRule {
    pub fn matches(&self, h: &Host) -> bool {
        self.terms.iter().all(|t| t.matches(h))
    }
}

/// A top.toml target that does not select: the selector's error at the
/// target's span.
fn top_error(e: SelectError, span: &Span) -> Diagnostic {
    Diagnostic::error("top", format!("top.toml: {}", e.message))
        .primary(span.clone(), e.label)
        .note(crate::select::SYNTAX)
}

/// A state file, ready to render.
#[derive(Debug)]
pub struct StateFile {
    pub name: String,
    pub file: FileId,
    /// The tagged source minijinja renders (see `render`).
    pub tagged: String,
    /// The context paths the template reads (`host.name`, `data.nginx` …):
    /// hosts that agree on these render the state identically.
    pub vars: Vec<String>,
}

/// A file template under `templates/`.
#[derive(Debug)]
pub struct TemplateFile {
    pub path: String,
    pub file: FileId,
    pub vars: Vec<String>,
}

/// A loaded states tree.
pub struct Tree {
    /// Where the tree's files come from: every read of the tree, at load
    /// and at compile time (`files/`), goes through it.
    pub source: Box<dyn TreeSource>,
    pub sources: Sources,
    pub config: TreeConfig,
    pub hosts: BTreeMap<String, Host>,
    pub top: Vec<TopRule>,
    pub data_common: Value,
    pub data_dc: BTreeMap<String, Value>,
    pub data_role: BTreeMap<String, Value>,
    pub data_host: BTreeMap<String, Value>,
    pub states: BTreeMap<String, StateFile>,
    /// States whose template does not parse (already reported): they exist,
    /// so naming them is not a second error.
    pub broken_states: BTreeSet<String>,
    pub templates: BTreeMap<String, TemplateFile>,
    /// File templates that could not be loaded (already reported).
    pub broken_templates: BTreeSet<String>,
    /// Bytes read from the source so far, against [`MAX_TREE_BYTES`].
    read_bytes: AtomicU64,
    pub(crate) states_env: Environment<'static>,
    pub(crate) files_env: Environment<'static>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("hosts", &self.hosts.len())
            .field("states", &self.states.len())
            .finish_non_exhaustive()
    }
}

/// A tree that could not be read at all (the directory is missing).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    // The cause is part of the message, not an error `source`: a chain
    // printer (anyhow's `{:#}`) would print it a second time.
    #[error("{path}: not a states tree: {cause}")]
    NotATree {
        path: PathBuf,
        cause: std::io::Error,
    },
}

fn new_env(states: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(crate::render::FUEL));
    // File templates read like Ansible's: block tags do not leave blank
    // lines. States get the same effect from `render::untag`, which needs
    // every newline kept to map lines.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(!states)
        .lstrip_blocks(!states)
        .build()
        .expect("default delimiters are valid");
    env.set_syntax(syntax);
    env
}

/// What reading one tree file gave.
enum Read {
    Text(FileId, String),
    /// No such file.
    Missing,
    /// Refused or unreadable; the problem is reported.
    Failed,
}

impl Tree {
    /// Reads the tree in directory `root` (see [`DirSource`]). Problems in
    /// its files come back as diagnostics; the tree is still returned so
    /// one run can report them all.
    pub fn load(root: impl AsRef<Path>) -> Result<(Tree, Vec<Diagnostic>), LoadError> {
        let root = root.as_ref();
        let source = DirSource::open(root).map_err(|cause| LoadError::NotATree {
            path: root.to_path_buf(),
            cause,
        })?;
        Ok(Tree::load_from(Box::new(source)))
    }

    /// Reads a tree from any source: a directory, a commit.
    pub fn load_from(source: Box<dyn TreeSource>) -> (Tree, Vec<Diagnostic>) {
        let mut t = Tree {
            source,
            sources: Sources::new(),
            config: TreeConfig::default(),
            hosts: BTreeMap::new(),
            top: Vec::new(),
            data_common: Value::Object(Map::new()),
            data_dc: BTreeMap::new(),
            data_role: BTreeMap::new(),
            data_host: BTreeMap::new(),
            states: BTreeMap::new(),
            broken_states: BTreeSet::new(),
            templates: BTreeMap::new(),
            broken_templates: BTreeSet::new(),
            read_bytes: AtomicU64::new(0),
            states_env: new_env(true),
            files_env: new_env(false),
        };
        let mut diags = Vec::new();
        t.load_config(&mut diags);
        t.load_inventory(&mut diags);
        t.load_data(&mut diags);
        t.load_states(&mut diags);
        t.load_templates(&mut diags);
        t.load_top(&mut diags);
        (t, diags)
    }

    /// The bytes of a tree file, through the source and within the limits
    /// (per file, and [`MAX_TREE_BYTES`] for everything read).
    pub fn read_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(bytes) = self.source.read(rel)? else {
            return Ok(None);
        };
        let n = bytes.len() as u64;
        if n > MAX_FILE_BYTES {
            return Err(SourceError::TooLarge {
                path: rel.to_string(),
                limit: MAX_FILE_BYTES,
            });
        }
        let total = self.read_bytes.fetch_add(n, Ordering::Relaxed) + n;
        if total > MAX_TREE_BYTES {
            return Err(SourceError::Limit {
                path: rel.to_string(),
                what: format!(
                    "the tree holds more than {MAX_TREE_BYTES} bytes (the limit for a whole tree)"
                ),
            });
        }
        Ok(Some(bytes))
    }

    fn read(&self, rel: &str, diags: &mut Vec<Diagnostic>) -> Read {
        match self.read_bytes(rel) {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => Read::Text(self.sources.add(rel, text.as_str()), text),
                Err(e) => {
                    diags.push(self.not_utf8(rel, e));
                    Read::Failed
                }
            },
            Ok(None) => Read::Missing,
            Err(e) => {
                diags.push(source_error(&e));
                Read::Failed
            }
        }
    }

    /// Text that is not UTF-8, located at its first invalid byte (the file
    /// is shown with U+FFFD in its place).
    fn not_utf8(&self, rel: &str, e: std::string::FromUtf8Error) -> Diagnostic {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let end = at + text[at..].chars().next().map_or(0, char::len_utf8);
        let id = self.sources.add(rel, text);
        Diagnostic::error("utf8", format!("{rel}: not UTF-8 text"))
            .primary(Span::new(id, at..end), "this byte is not UTF-8")
            .note("every file of a tree is UTF-8 text (files/ too)")
    }

    fn read_optional(&self, rel: &str, diags: &mut Vec<Diagnostic>) -> Option<(FileId, String)> {
        match self.read(rel, diags) {
            Read::Text(id, text) => Some((id, text)),
            Read::Missing | Read::Failed => None,
        }
    }

    fn read_required(
        &self,
        rel: &str,
        what: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(FileId, String)> {
        match self.read(rel, diags) {
            Read::Text(id, text) => Some((id, text)),
            Read::Failed => None,
            Read::Missing => {
                diags.push(
                    Diagnostic::error("missing-file", format!("{rel}: missing"))
                        .note(format!("a states tree needs {rel} ({what})")),
                );
                None
            }
        }
    }

    /// Every file below `dir` with the extension (any when empty); what
    /// the source refused to list is reported.
    fn list(&self, dir: &str, ext: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
        let listing = self.source.list(dir);
        diags.extend(listing.problems.iter().map(source_error));
        listing
            .files
            .into_iter()
            .filter(|f| ext.is_empty() || f.ends_with(&format!(".{ext}")))
            .collect()
    }

    fn load_config(&mut self, diags: &mut Vec<Diagnostic>) {
        let Some((id, text)) = self.read_optional("cfgm.toml", diags) else {
            return;
        };
        let Some(c) = self.parse_toml::<RawConfig>(id, &text, diags) else {
            return;
        };
        if let Some(sd) = c.state_dir {
            diags.push(
                Diagnostic::error("tree-setting", "cfgm.toml: `state_dir` is not a tree setting")
                    .primary(Span::new(id, sd.span()), "remove this setting")
                    .note("a tree is untrusted input and cannot tell an agent, which runs as root, where to write; the agent's state directory is its own `--state-dir` (default ROOT/var/lib/cfgm)"),
            );
        }
        self.config = TreeConfig { name: c.name };
    }

    fn parse_toml<T: serde::de::DeserializeOwned>(
        &self,
        id: FileId,
        text: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<T> {
        match toml::from_str::<T>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut d = toml_error(id, &e);
                let hint = crate::parse::leading_zero_hint(text, e.message(), e.span());
                d.notes.extend(hint);
                diags.push(d);
                None
            }
        }
    }

    fn load_inventory(&mut self, diags: &mut Vec<Diagnostic>) {
        let Some((id, text)) = self.read_required("inventory.toml", "the hosts", diags) else {
            return;
        };
        let Some(inv) = self.parse_toml::<RawInventory>(id, &text, diags) else {
            return;
        };
        for (name, h) in inv.hosts {
            let span = Span::new(id, name.span());
            let name = name.into_inner();
            self.hosts.insert(
                name.clone(),
                Host {
                    name,
                    dc: h.dc,
                    role: h.role,
                    address: h.address,
                    tags: h.tags,
                    vars: toml_to_json(&toml::Value::Table(h.vars)),
                    span,
                },
            );
        }
    }

    fn load_data(&mut self, diags: &mut Vec<Diagnostic>) {
        if let Some((id, text)) = self.read_optional("data/common.toml", diags) {
            if let Some(v) = self.parse_toml::<toml::Table>(id, &text, diags) {
                self.data_common = toml_to_json(&toml::Value::Table(v));
            }
        }
        for (dir, which) in [("dc", 0), ("role", 1), ("host", 2)] {
            for rel in self.list(&format!("data/{dir}"), "toml", diags) {
                let Some((id, text)) = self.read_optional(&rel, diags) else {
                    continue;
                };
                let Some(v) = self.parse_toml::<toml::Table>(id, &text, diags) else {
                    continue;
                };
                let key = Path::new(&rel)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let v = toml_to_json(&toml::Value::Table(v));
                match which {
                    0 => self.data_dc.insert(key, v),
                    1 => self.data_role.insert(key, v),
                    _ => self.data_host.insert(key, v),
                };
            }
        }
    }

    fn load_states(&mut self, diags: &mut Vec<Diagnostic>) {
        let listing = self.source.list("states");
        for p in &listing.problems {
            diags.push(source_error(p));
            // A state that exists but cannot be read is not also missing.
            if let Some(name) = state_name(p.path()) {
                self.broken_states.insert(name.to_string());
            }
        }
        for rel in listing.files {
            let Some(name) = state_name(&rel).map(str::to_string) else {
                continue;
            };
            let (id, text) = match self.read(&rel, diags) {
                Read::Text(id, text) => (id, text),
                Read::Missing => continue,
                Read::Failed => {
                    self.broken_states.insert(name);
                    continue;
                }
            };
            let tagged = tag_source(&text);
            match self
                .states_env
                .add_template_owned(name.clone(), tagged.clone())
            {
                Ok(()) => {
                    if let Some(at) = pulls_in(&text) {
                        // Another state's text would arrive with that file's
                        // line markers and be reported in this one.
                        diags.push(
                            Diagnostic::error("state-include", "a state file cannot pull in another template")
                                .primary(Span::new(id, at..at + 2), "Jinja include/import/extends in a state")
                                .note("states compose with `include = [\"base\"]` at the top of the file; file templates (templates/) may include each other"),
                        );
                        self.broken_states.insert(name);
                        continue;
                    }
                    let vars = self
                        .states_env
                        .get_template(&name)
                        .map(|t| reads(&text, t.undeclared_variables(true)))
                        .unwrap_or_default();
                    self.states.insert(
                        name.clone(),
                        StateFile {
                            name,
                            file: id,
                            tagged,
                            vars,
                        },
                    );
                }
                Err(e) => {
                    diags.push(template_error(&self.sources, id, &tagged, &e, None));
                    self.broken_states.insert(name);
                }
            }
        }
    }

    fn load_templates(&mut self, diags: &mut Vec<Diagnostic>) {
        let listing = self.source.list("templates");
        for p in &listing.problems {
            diags.push(source_error(p));
            if let Some(path) = p.path().strip_prefix("templates/") {
                self.broken_templates.insert(path.to_string());
            }
        }
        for rel in listing.files {
            let path = rel["templates/".len()..].to_string();
            let (id, text) = match self.read(&rel, diags) {
                Read::Text(id, text) => (id, text),
                Read::Missing => continue,
                Read::Failed => {
                    self.broken_templates.insert(path);
                    continue;
                }
            };
            match self
                .files_env
                .add_template_owned(path.clone(), text.clone())
            {
                Ok(()) => {
                    let vars = self
                        .files_env
                        .get_template(&path)
                        .map(|t| reads(&text, t.undeclared_variables(true)))
                        .unwrap_or_default();
                    self.templates.insert(
                        path.clone(),
                        TemplateFile {
                            path,
                            file: id,
                            vars,
                        },
                    );
                }
                Err(e) => {
                    diags.push(template_error(&self.sources, id, &text, &e, None));
                    self.broken_templates.insert(path);
                }
            }
        }
    }

    fn load_top(&mut self, diags: &mut Vec<Diagnostic>) {
        let Some((id, text)) =
            self.read_required("top.toml", "which states apply to which hosts", diags)
        else {
            return;
        };
        type RawTop = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;
        let Some(raw) = self.parse_toml::<RawTop>(id, &text, diags) else {
            return;
        };
        for (target, states) in raw {
            let span = Span::new(id, target.span());
            let mut terms = Vec::new();
            let mut ok = true;
            for term in target.get_ref().split('&').map(str::trim) {
                match self.parse_term(term, &span) {
                    Ok(t) => terms.push(t),
                    Err(d) => {
                        diags.push(d);
                        ok = false;
                    }
                }
            }
            if !ok {
                continue;
            }
            let states = states
                .into_inner()
                .into_iter()
                .map(|s| (s.get_ref().clone(), Span::new(id, s.span())))
                .collect();
            self.top.push(TopRule {
                target: target.into_inner(),
                terms,
                span,
                states,
            });
        }
        // A state named in top.toml must exist, whether or not a host matches.
        for rule in &self.top {
            for (s, span) in &rule.states {
                if !self.states.contains_key(s) && !self.broken_states.contains(s) {
                    diags.push(missing_state(self, s, span.clone(), "top.toml"));
                }
            }
        }
    }

    fn parse_term(&self, term: &str, span: &Span) -> Result<Term, Diagnostic> {
        match Selector::parse(term, &self.hosts) {
            Ok(mut sel) => Ok(sel.terms.remove(0)),
            Err(mut e) => Err(top_error(e.remove(0), span)),
        }
    }

    /// What the tree is: what its source says (the commit of a git
    /// checkout or of the commit it was read from), else `blake3:` + a
    /// hash of every file the compiler read.
    pub fn tree_id(&self) -> String {
        if let Some(c) = self.source.id() {
            return c;
        }
        let mut h = blake3::Hasher::new();
        for f in self.sources.all() {
            h.update(f.name.as_bytes());
            h.update(&[0]);
            h.update(f.text.as_bytes());
            h.update(&[0]);
        }
        format!("blake3:{}", &h.finalize().to_hex()[..16])
    }

    /// A key that changes whenever anything a compile of this tree could
    /// read changes (for caching compiled catalogs): the commit of a tree
    /// read from git objects; otherwise a hash of every file the loader
    /// read and of every file under `files/` (read at compile time).
    pub fn content_key(&self) -> String {
        if let Some(c) = self.source.content_id() {
            return format!("commit:{c}");
        }
        let mut h = blake3::Hasher::new();
        for f in self.sources.all() {
            h.update(f.name.as_bytes());
            h.update(&[0]);
            h.update(f.text.as_bytes());
            h.update(&[0]);
        }
        for rel in self.source.list("files").files {
            h.update(rel.as_bytes());
            h.update(&[0]);
            if let Ok(Some(b)) = self.source.read(&rel) {
                h.update(&b);
            }
            h.update(&[0]);
        }
        format!("blake3:{}", h.finalize().to_hex())
    }

    /// The data a host sees: common, then its dc, role and host layers,
    /// deep-merged in that order (later wins).
    pub fn data_for(&self, h: &Host) -> Value {
        let mut d = self.data_common.clone();
        for layer in [
            self.data_dc.get(&h.dc),
            self.data_role.get(&h.role),
            self.data_host.get(&h.name),
        ]
        .into_iter()
        .flatten()
        {
            deep_merge(&mut d, layer);
        }
        d
    }

    /// The states a host gets from top.toml, in target order, each once.
    pub fn states_for(&self, h: &Host) -> Vec<(String, Span)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for rule in self.top.iter().filter(|r| r.matches(h)) {
            for (s, span) in &rule.states {
                if seen.insert(s.clone()) {
                    out.push((s.clone(), span.clone()));
                }
            }
        }
        out
    }

    /// The host of that name, or a diagnostic that suggests the closest one.
    pub fn host(&self, name: &str) -> Result<&Host, Diagnostic> {
        self.hosts.get(name).ok_or_else(|| {
            let mut d = Diagnostic::error(
                "unknown-host",
                format!("host `{name}` is not in the inventory"),
            );
            if let Some(s) = suggest(name, self.hosts.keys().map(String::as_str)) {
                d = d.note(format!("did you mean `{s}`?"));
            }
            d.note(format!(
                "inventory.toml lists {}",
                crate::diag::plural(self.hosts.len(), "host")
            ))
        })
    }
}

/// A state that does not exist, named at `span` (in top.toml or an include).
pub fn missing_state(tree: &Tree, name: &str, span: Span, by: &str) -> Diagnostic {
    let label = match suggest(name, tree.states.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "no such state".to_string(),
    };
    Diagnostic::error(
        "missing-state",
        format!("{by} names state `{name}`, which does not exist"),
    )
    .primary(span, label)
    .note(format!("expected a file states/{name}.toml"))
}

/// A problem of the source, as a diagnostic. It names the tree path and
/// never shows content: for a link out, what lies behind it is not the
/// tree's to show.
pub fn source_error(e: &SourceError) -> Diagnostic {
    let d = Diagnostic::error(e.code(), e.to_string());
    match e {
        SourceError::Escape { .. } => d.note(
            "a tree is a closed world: a symlink in it must stay inside it (a relative target that does not climb out of the root)",
        ),
        SourceError::Loop { back_to: Some(_), .. } => {
            d.note("remove the link, or point it at a directory that is not above it")
        }
        SourceError::Loop { back_to: None, .. } => {
            d.note("make the chain of links end at a file or a directory")
        }
        SourceError::NotRegular { .. } => d.note("a tree holds regular files and directories only"),
        _ => d,
    }
}

/// The state a path under `states/` holds: `states/web.toml` → `web`.
fn state_name(rel: &str) -> Option<&str> {
    rel.strip_prefix("states/")?.strip_suffix(".toml")
}

/// Merges `over` into `base`: tables merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => deep_merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A TOML error in a plain (untemplated) file.
pub fn toml_error(file: FileId, e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim();
    let (head, rest) = msg.split_once('\n').unwrap_or((msg, ""));
    let mut d = Diagnostic::error("toml", format!("invalid TOML: {head}"))
        .primary(Span::new(file, e.span().unwrap_or(0..0)), head.to_string());
    if !rest.trim().is_empty() {
        d = d.note(rest.trim().to_string());
    }
    d
}
