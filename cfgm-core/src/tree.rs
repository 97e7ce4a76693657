//! Loading a states tree.
//!
//! This module owns the tree's format: `cfgm.toml`, `inventory.toml`,
//! `top.toml`, `data/` (layered as `cfgm.toml`'s hierarchy says; by
//! default common, dc, role, host), `states/*.toml`,
//! `macros/` (macro libraries states import), `templates/` and `files/`. It reads every file once, through the tree's
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
use crate::render::{
    imports, includes, reads, reads_with, tag_source, tag_source_in, template_error,
};
use crate::select::{SelectError, Selector, Term};
use crate::source::{DirSource, SourceError, TreeSource, MAX_FILE_BYTES};
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::Value;
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
#[derive(Clone, Debug, Default)]
pub struct TreeConfig {
    /// A name for the tree, shown in reports.
    pub name: Option<String>,
    /// The data layers, in merge order (later wins): paths under `data/`
    /// without `.toml`, templated by `host` and `facts`
    /// ([`DEFAULT_HIERARCHY`] unless `[data] hierarchy` says otherwise).
    pub hierarchy: Vec<String>,
    /// The facts a compile assumes of a host whose facts it does not have
    /// (`[default_facts]`; e.g. `cfgm validate` without `--facts`).
    pub default_facts: Option<Value>,
}

/// The data layers of a tree that does not declare them: common, then
/// the host's datacenter, role and own file.
pub const DEFAULT_HIERARCHY: &[&str] = &[
    "common",
    "dc/{{ host.dc }}",
    "role/{{ host.role }}",
    "host/{{ host.name }}",
];

/// `cfgm.toml` as written: `state_dir` is recognised only to say why it
/// is not a tree setting (it once was documented as one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state_dir: Option<Spanned<toml::Value>>,
    #[serde(default)]
    data: Option<RawDataConfig>,
    #[serde(default)]
    default_facts: Option<toml::Table>,
}

/// `[data]` in cfgm.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataConfig {
    #[serde(default)]
    hierarchy: Option<Vec<Spanned<String>>>,
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

/// A macro library under `macros/`, which states import from
/// (`{% from "ssh.jinja" import server %}`).
#[derive(Debug)]
pub struct MacroFile {
    /// Its path under `macros/`: the name states import it by.
    pub name: String,
    pub file: FileId,
    /// The tagged source: its markers name this file, so lines a macro
    /// writes into a state map to the macro's lines.
    pub tagged: String,
    /// The context paths it reads (see [`StateFile::vars`]).
    pub vars: Vec<String>,
    /// The macro libraries it imports in turn.
    pub imports: Vec<String>,
}

/// A file template under `templates/`.
#[derive(Debug)]
pub struct TemplateFile {
    pub path: String,
    pub file: FileId,
    pub vars: Vec<String>,
    /// Whitespace as Jinja has it by default (the newline after a block
    /// tag kept): the template's first line says `{# cfgm: whitespace =
    /// jinja #}`. Otherwise block tags leave no blank lines.
    pub jinja_whitespace: bool,
}

/// The whitespace switch on a template's first line, if any: `{# cfgm:
/// whitespace = jinja #}` (Jinja's defaults: the newline after a block tag
/// is kept, leading spaces too) or `= trim` (cfgm's default for file
/// templates: neither). `Err` for another value.
pub fn whitespace_switch(text: &str) -> Result<Option<bool>, String> {
    let first = text.lines().next().unwrap_or("").trim();
    let Some(inner) = first
        .strip_prefix("{#")
        .and_then(|r| r.strip_suffix("#}"))
        .map(|r| r.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()))
    else {
        return Ok(None);
    };
    let Some(setting) = inner.strip_prefix("cfgm:") else {
        return Ok(None);
    };
    match setting.split_once('=').map(|(k, v)| (k.trim(), v.trim().trim_matches('"'))) {
        Some(("whitespace", "jinja")) => Ok(Some(true)),
        Some(("whitespace", "trim")) => Ok(Some(false)),
        _ => Err(format!(
            "`{}` is not a template setting (expected `cfgm: whitespace = jinja` or `cfgm: whitespace = trim`)",
            setting.trim()
        )),
    }
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
    /// Every data file, by its path under `data/` without `.toml`
    /// (`common`, `dc/ams01`, `os/debian-12`): the hierarchy's layers pick
    /// from these, so a compile reads no file a layer names.
    pub data: BTreeMap<String, Data>,
    pub states: BTreeMap<String, StateFile>,
    /// Macro libraries under `macros/`, by name.
    pub macros: BTreeMap<String, MacroFile>,
    /// Macro libraries that could not be loaded (already reported).
    pub broken_macros: BTreeSet<String>,
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
    /// File templates again, with Jinja's own whitespace rules, for those
    /// that ask for them (see [`TemplateFile::jinja_whitespace`]); empty
    /// when none does.
    pub(crate) files_jinja_env: Environment<'static>,
    /// The hierarchy's layer paths as templates, named by their index.
    layers_env: Environment<'static>,
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
    // `x is version(">=", "1:9.2")`, and the filter alike: Debian ordering.
    env.add_test("version", crate::version::template_fn);
    env.add_filter("version", crate::version::template_fn);
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
            data: BTreeMap::new(),
            states: BTreeMap::new(),
            macros: BTreeMap::new(),
            broken_macros: BTreeSet::new(),
            broken_states: BTreeSet::new(),
            templates: BTreeMap::new(),
            broken_templates: BTreeSet::new(),
            read_bytes: AtomicU64::new(0),
            states_env: new_env(true),
            files_env: new_env(false),
            files_jinja_env: new_env(true),
            layers_env: new_env(false),
        };
        let mut diags = Vec::new();
        t.load_config(&mut diags);
        t.load_inventory(&mut diags);
        t.load_data(&mut diags);
        t.load_macros(&mut diags);
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
        let default = || -> Vec<(String, Option<Span>)> {
            DEFAULT_HIERARCHY
                .iter()
                .map(|l| (l.to_string(), None))
                .collect()
        };
        let Some((id, text)) = self.read_optional("cfgm.toml", diags) else {
            let h = default();
            self.config.hierarchy = h.iter().map(|(l, _)| l.clone()).collect();
            self.load_layers(&h, diags);
            return;
        };
        let Some(c) = self.parse_toml::<RawConfig>(id, &text, diags) else {
            let h = default();
            self.config.hierarchy = h.iter().map(|(l, _)| l.clone()).collect();
            self.load_layers(&h, diags);
            return;
        };
        if let Some(sd) = c.state_dir {
            diags.push(
                Diagnostic::error("tree-setting", "cfgm.toml: `state_dir` is not a tree setting")
                    .primary(Span::new(id, sd.span()), "remove this setting")
                    .note("a tree is untrusted input and cannot tell an agent, which runs as root, where to write; the agent's state directory is its own `--state-dir` (default ROOT/var/lib/cfgm)"),
            );
        }
        let hierarchy: Vec<(String, Option<Span>)> = match c.data.and_then(|d| d.hierarchy) {
            Some(h) => h
                .into_iter()
                .map(|l| {
                    let span = Span::new(id, l.span());
                    (l.into_inner(), Some(span))
                })
                .collect(),
            None => default(),
        };
        self.config = TreeConfig {
            name: c.name,
            hierarchy: hierarchy.iter().map(|(l, _)| l.clone()).collect(),
            default_facts: c
                .default_facts
                .map(|t| toml_to_json(&toml::Value::Table(t))),
        };
        self.load_layers(&hierarchy, diags);
    }

    /// Prepares the hierarchy's layer paths as templates.
    fn load_layers(&mut self, layers: &[(String, Option<Span>)], diags: &mut Vec<Diagnostic>) {
        for (i, (layer, span)) in layers.iter().enumerate() {
            if let Err(e) = self
                .layers_env
                .add_template_owned(i.to_string(), layer.clone())
            {
                let span = span.clone().unwrap_or_else(|| Span::new(FileId(0), 0..0));
                diags.push(
                    Diagnostic::error(
                        "hierarchy",
                        format!(
                            "cfgm.toml: data layer `{layer}` is not a template: {}",
                            e.detail().unwrap_or("syntax error")
                        ),
                    )
                    .primary(span, "in this layer")
                    .note("a layer is a path under data/ without `.toml`, e.g. \"os/{{ facts.os.id }}\""),
                );
            }
        }
    }

    /// The layer paths for a host: each layer rendered with `host` and
    /// `facts`; a layer that needs a field or fact the host lacks is left
    /// out (`None` in its place).
    pub fn layers_for(&self, h: &Host, facts: &Value) -> Vec<Option<String>> {
        let ctx = serde_json::json!({ "host": h.to_context(), "facts": facts });
        (0..self.config.hierarchy.len())
            .map(|i| {
                let t = self.layers_env.get_template(&i.to_string()).ok()?;
                let p = t.render(minijinja::value::Serde(&ctx)).ok()?;
                let p = p.trim();
                (!p.is_empty()).then(|| p.to_string())
            })
            .collect()
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

    /// Reads every `.toml` file under `data/`, by its path there without
    /// the extension; which of them a host sees is the hierarchy's call.
    fn load_data(&mut self, diags: &mut Vec<Diagnostic>) {
        for rel in self.list("data", "toml", diags) {
            let Some((id, text)) = self.read_optional(&rel, diags) else {
                continue;
            };
            let Some(v) = self.parse_toml::<toml::Table>(id, &text, diags) else {
                continue;
            };
            let key = rel["data/".len()..rel.len() - ".toml".len()].to_string();
            self.data.insert(key, plain_data(toml::Value::Table(v)));
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
            if self.macros.contains_key(&name) {
                diags.push(
                    Diagnostic::error(
                        "state-name",
                        format!("{rel}: state `{name}` has the name of a macro library"),
                    )
                    .primary(Span::new(id, 0..0), "rename this state")
                    .note(format!("macros/{name} is imported by that name")),
                );
                self.broken_states.insert(name);
                continue;
            }
            let tagged = tag_source(&text);
            match self
                .states_env
                .add_template_owned(name.clone(), tagged.clone())
            {
                Ok(()) => {
                    if let Some(at) = includes(&text) {
                        // Another state's text would arrive with that file's
                        // line markers and be reported in this one.
                        diags.push(
                            Diagnostic::error("state-include", "a state file cannot include or extend another template")
                                .primary(Span::new(id, at..at + 2), "Jinja include/extends in a state")
                                .note("states compose with `include = [\"base\"]` at the top of the file, and import macros from macros/ (`{% from \"x.jinja\" import y %}`); file templates (templates/) may include each other"),
                        );
                        self.broken_states.insert(name);
                        continue;
                    }
                    let Some(imported) = self.check_imports(id, &text, diags) else {
                        self.broken_states.insert(name);
                        continue;
                    };
                    let own = self
                        .states_env
                        .get_template(&name)
                        .map(|t| reads_with(&text, t.undeclared_variables(true), true))
                        .unwrap_or_default();
                    let vars = self.with_macro_vars(own, &imported);
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

    /// Loads `macros/`: every file is a macro library states may import by
    /// its path under `macros/`. Read through the source like every other
    /// file; its markers name its own file (see `render::tag_source_in`).
    fn load_macros(&mut self, diags: &mut Vec<Diagnostic>) {
        let listing = self.source.list("macros");
        for p in &listing.problems {
            diags.push(source_error(p));
            if let Some(path) = p.path().strip_prefix("macros/") {
                self.broken_macros.insert(path.to_string());
            }
        }
        let mut loaded = Vec::new();
        for rel in listing.files {
            let name = rel["macros/".len()..].to_string();
            let (id, text) = match self.read(&rel, diags) {
                Read::Text(id, text) => (id, text),
                Read::Missing => continue,
                Read::Failed => {
                    self.broken_macros.insert(name);
                    continue;
                }
            };
            let tagged = tag_source_in(&text, id);
            if let Err(e) = self
                .states_env
                .add_template_owned(name.clone(), tagged.clone())
            {
                diags.push(template_error(&self.sources, id, &tagged, &e, None));
                self.broken_macros.insert(name);
                continue;
            }
            if let Some(at) = includes(&text) {
                diags.push(
                    Diagnostic::error("state-include", "a macro library cannot include or extend another template")
                        .primary(Span::new(id, at..at + 2), "Jinja include/extends in a macro library")
                        .note("a macro library holds macros; it may import other macro libraries (`{% from \"x.jinja\" import y %}`)"),
                );
                self.broken_macros.insert(name);
                continue;
            }
            let vars = self
                .states_env
                .get_template(&name)
                .map(|t| reads_with(&text, t.undeclared_variables(true), true))
                .unwrap_or_default();
            self.macros.insert(
                name.clone(),
                MacroFile {
                    name: name.clone(),
                    file: id,
                    tagged,
                    vars,
                    imports: Vec::new(),
                },
            );
            loaded.push((name, id, text));
        }
        // Imports are checked once every library is known.
        for (name, id, text) in loaded {
            match self.check_imports(id, &text, diags) {
                Some(imports) => {
                    if let Some(m) = self.macros.get_mut(&name) {
                        m.imports = imports;
                    }
                }
                None => {
                    self.macros.remove(&name);
                    self.broken_macros.insert(name);
                }
            }
        }
    }

    /// The macro libraries a state or library imports, each named by a
    /// string literal that is a file under `macros/`; `None` (reported)
    /// when one is not.
    fn check_imports(
        &self,
        id: FileId,
        text: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (at, lit) in imports(text) {
            match lit {
                Some((_, name)) if self.macros.contains_key(name) => out.push(name.to_string()),
                // Its own problem was reported when it loaded.
                Some((_, name)) if self.broken_macros.contains(name) => ok = false,
                Some((range, name)) => {
                    let label = match suggest(name, self.macros.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "no such macro library".to_string(),
                    };
                    diags.push(
                        Diagnostic::error(
                            "missing-macros",
                            format!("imports `{name}`, which is not a macro library"),
                        )
                        .primary(Span::new(id, range), label)
                        .note(format!(
                            "expected a file macros/{name}; states import macros from macros/ only"
                        )),
                    );
                    ok = false;
                }
                None => {
                    diags.push(
                        Diagnostic::error(
                            "state-include",
                            "an import must name its macro library literally",
                        )
                        .primary(Span::new(id, at..at + 2), "import of a computed name")
                        .note("write the name as a string: `{% from \"x.jinja\" import y %}`"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A state's own reads plus those of every macro library it imports,
    /// directly or not: hosts that agree on all of them render it alike.
    fn with_macro_vars(&self, mut vars: Vec<String>, imported: &[String]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = imported.iter().map(String::as_str).collect();
        while let Some(n) = todo.pop() {
            if !seen.insert(n) {
                continue;
            }
            if let Some(m) = self.macros.get(n) {
                vars.extend(m.vars.iter().cloned());
                todo.extend(m.imports.iter().map(String::as_str));
            }
        }
        vars.sort();
        vars.dedup();
        vars
    }

    fn load_templates(&mut self, diags: &mut Vec<Diagnostic>) {
        let listing = self.source.list("templates");
        for p in &listing.problems {
            diags.push(source_error(p));
            if let Some(path) = p.path().strip_prefix("templates/") {
                self.broken_templates.insert(path.to_string());
            }
        }
        let mut loaded = Vec::new();
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
            let jinja_whitespace = match whitespace_switch(&text) {
                Ok(w) => w.unwrap_or(false),
                Err(msg) => {
                    let end = text.find('\n').unwrap_or(text.len());
                    diags.push(
                        Diagnostic::error("template-setting", format!("{rel}: {msg}"))
                            .primary(Span::new(id, 0..end), "on the template's first line")
                            .note("`{# cfgm: whitespace = jinja #}` keeps the newline after block tags, as Jinja does by default"),
                    );
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
                            path: path.clone(),
                            file: id,
                            vars,
                            jinja_whitespace,
                        },
                    );
                    loaded.push((path, text));
                }
                Err(e) => {
                    diags.push(template_error(&self.sources, id, &text, &e, None));
                    self.broken_templates.insert(path);
                }
            }
        }
        // Templates that ask for Jinja's whitespace render in an
        // environment of their own, with every template they may include.
        if self.templates.values().any(|t| t.jinja_whitespace) {
            for (path, text) in loaded {
                // The switch's own line leaves nothing behind.
                let text = match whitespace_switch(&text) {
                    Ok(Some(_)) => {
                        let end = text.find('\n').unwrap_or(text.len());
                        match text[..end].rfind("#}") {
                            Some(p) if !text[..p].ends_with('-') => {
                                format!("{}-{}", &text[..p], &text[p..])
                            }
                            _ => text,
                        }
                    }
                    _ => text,
                };
                // It parsed above, with the same syntax but for whitespace.
                let _ = self.files_jinja_env.add_template_owned(path, text);
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

    /// The data a host sees: the hierarchy's layers that exist for it
    /// (see [`layers_for`](Self::layers_for)), deep-merged in order (later
    /// wins), tables in source order.
    pub fn data_for(&self, h: &Host, facts: &Value) -> Data {
        let mut d = Data::Table(Default::default());
        for layer in self.layers_for(h, facts).into_iter().flatten() {
            if let Some(v) = self.data.get(&layer) {
                merge_data(&mut d, v);
            }
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

/// A host's data: TOML values whose tables keep their source order (the
/// order an author wrote directives in is what a template writes them in),
/// and whose dates are strings.
pub type Data = toml::Value;

/// Data as templates see it: every date and time as its TOML text.
fn plain_data(v: toml::Value) -> Data {
    match v {
        toml::Value::Datetime(d) => toml::Value::String(d.to_string()),
        toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(plain_data).collect()),
        toml::Value::Table(t) => {
            toml::Value::Table(t.into_iter().map(|(k, v)| (k, plain_data(v))).collect())
        }
        other => other,
    }
}

/// Merges data layer `over` into `base`: tables merge key by key (a key
/// already there keeps its place, a new one comes after), anything else
/// replaces.
pub fn merge_data(base: &mut Data, over: &Data) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge_data(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whitespace_switch_is_read_off_the_first_line_only() {
        assert_eq!(
            whitespace_switch("{# cfgm: whitespace = jinja #}\nx\n"),
            Ok(Some(true))
        );
        assert_eq!(
            whitespace_switch("{#- cfgm: whitespace = \"trim\" -#}\n"),
            Ok(Some(false))
        );
        assert_eq!(whitespace_switch("{# a comment #}\n"), Ok(None));
        assert_eq!(
            whitespace_switch("x\n{# cfgm: whitespace = jinja #}\n"),
            Ok(None)
        );
        assert!(whitespace_switch("{# cfgm: whitespace = keep #}\n").is_err());
        assert!(whitespace_switch("{# cfgm: trim_blocks = false #}\n").is_err());
    }

    #[test]
    fn merging_data_keeps_the_places_of_overridden_keys() {
        let t = |s: &str| plain_data(toml::Value::Table(toml::from_str(s).unwrap()));
        let mut base = t("[a]\nz = 1\nb = 2\n[x]\ny = 1\n");
        merge_data(&mut base, &t("[a]\nc = 3\nz = 9\n[x]\ny = [1]\n"));
        let a: Vec<(&String, &toml::Value)> = base["a"].as_table().unwrap().iter().collect();
        let keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "b", "c"]);
        assert_eq!(base["a"]["z"].as_integer(), Some(9));
        // Anything but a table replaces.
        assert_eq!(base["x"]["y"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn dates_in_data_are_their_toml_text() {
        let v = plain_data(toml::Value::Table(
            toml::from_str("d = 2026-12-02T10:00:00Z\n").unwrap(),
        ));
        assert_eq!(v["d"].as_str(), Some("2026-12-02T10:00:00Z"));
    }
}
