//! Diagnostics: what went wrong in the author's input, and where.
//!
//! This module owns the source database ([`Sources`]: every file the compiler
//! read, by [`FileId`]) and the [`Diagnostic`] type that every step of the
//! pipeline collects instead of aborting. It renders diagnostics like rustc
//! does (file:line:column, the source line, a caret) through
//! codespan-reporting, with or without colour, and as JSON for machines.
//!
//! It knows nothing about TOML, templates or resources: a label is a byte
//! range in a file, a note is a line of text.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{self, Files};
use codespan_reporting::term;
use serde::Serialize;
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Index of a file in [`Sources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FileId(pub u32);

/// One source file: its display name, text and line index.
#[derive(Debug)]
pub struct SourceFile {
    pub id: FileId,
    pub name: String,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Byte range of a one-based line, without its line terminator.
    pub fn line_range(&self, line: usize) -> Option<Range<usize>> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        let trimmed = self.text[start..end].trim_end_matches(['\n', '\r']).len();
        Some(start..start + trimmed)
    }

    /// The zero-based line a byte offset is on.
    pub fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        }
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_index(offset);
        let start = self.line_starts[line];
        let end = offset.min(self.text.len());
        let col = self
            .text
            .get(start..end)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line + 1, col + 1)
    }
}

/// Every source file read while loading and compiling a tree.
///
/// Files are only ever added, so a [`FileId`] stays valid for the life of
/// the database; it is shared between threads while hosts compile.
#[derive(Debug, Default)]
pub struct Sources {
    files: RwLock<Vec<Arc<SourceFile>>>,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file under its display name (a path relative to the tree root).
    pub fn add(&self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let text = text.into();
        let line_starts = files::line_starts(&text).collect();
        let mut files = self.files.write().expect("sources lock");
        let id = FileId(files.len() as u32);
        files.push(Arc::new(SourceFile {
            id,
            name: name.into(),
            text,
            line_starts,
        }));
        FileId(files.len() as u32 - 1)
    }

    /// The file itself, to read many positions without taking the lock each time.
    pub fn get(&self, id: FileId) -> Option<Arc<SourceFile>> {
        self.file(id).ok()
    }

    fn file(&self, id: FileId) -> Result<Arc<SourceFile>, files::Error> {
        self.files
            .read()
            .expect("sources lock")
            .get(id.0 as usize)
            .cloned()
            .ok_or(files::Error::FileMissing)
    }

    /// Every file, in the order they were added.
    pub fn all(&self) -> Vec<Arc<SourceFile>> {
        self.files.read().expect("sources lock").clone()
    }

    pub fn name(&self, id: FileId) -> String {
        self.file(id).map(|f| f.name.clone()).unwrap_or_default()
    }

    pub fn text(&self, id: FileId) -> Arc<str> {
        self.file(id)
            .map(|f| f.text.clone())
            .unwrap_or_else(|_| "".into())
    }

    /// One-based line and column of a byte offset.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        self.file(id).map(|f| f.line_col(offset)).unwrap_or((1, 1))
    }

    /// Byte range of a one-based line, without its line terminator.
    pub fn line_range(&self, id: FileId, line: usize) -> Option<Range<usize>> {
        self.file(id).ok()?.line_range(line)
    }

    /// `file:line:col` of a location, for one-line messages.
    pub fn location(&self, id: FileId, offset: usize) -> String {
        let (l, c) = self.line_col(id, offset);
        format!("{}:{}:{}", self.name(id), l, c)
    }
}

impl<'a> Files<'a> for Sources {
    type FileId = FileId;
    type Name = String;
    type Source = Arc<str>;

    fn name(&'a self, id: FileId) -> Result<String, files::Error> {
        Ok(self.file(id)?.name.clone())
    }

    fn source(&'a self, id: FileId) -> Result<Arc<str>, files::Error> {
        Ok(self.file(id)?.text.clone())
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, files::Error> {
        Ok(self.file(id)?.line_index(byte_index))
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, files::Error> {
        let f = self.file(id)?;
        let start = *f
            .line_starts
            .get(line_index)
            .ok_or(files::Error::LineTooLarge {
                given: line_index,
                max: f.line_starts.len() - 1,
            })?;
        let end = f
            .line_starts
            .get(line_index + 1)
            .copied()
            .unwrap_or(f.text.len());
        Ok(start..end)
    }
}

/// A place in a source file: what a diagnostic label points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Self {
        Self { file, range }
    }
}

#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// How bad a diagnostic is: an error stops a compile; a warning (a data
/// key nothing reads) does not, unless `--deny-warnings` says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// One problem in the author's input, with every place that explains it.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Short stable name of the error class (`toml`, `unknown-attribute`, `cycle` …).
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A problem that does not stop a compile.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// The place the error is (there is one primary label; more are allowed).
    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Another place that explains the error.
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Where the diagnostic points first, for sorting and one-line output.
    pub fn first_span(&self) -> Option<&Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())
            .map(|l| &l.span)
    }

    fn to_codespan(&self) -> cs::Diagnostic<FileId> {
        let d = match self.severity {
            Severity::Error => cs::Diagnostic::error(),
            Severity::Warning => cs::Diagnostic::warning(),
        };
        d.with_message(&self.message)
            .with_code(self.code)
            .with_labels(
                self.labels
                    .iter()
                    .map(|l| {
                        let lab = if l.primary {
                            cs::Label::primary(l.span.file, l.span.range.clone())
                        } else {
                            cs::Label::secondary(l.span.file, l.span.range.clone())
                        };
                        lab.with_message(&l.message)
                    })
                    .collect(),
            )
            .with_notes(self.notes.clone())
    }

    /// Renders the diagnostic for a person: header, `--> file:line:col`,
    /// the source line with a caret, then notes. ANSI colour when `color`.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        let config = term::Config::default();
        let diag = self.to_codespan();
        if color {
            let mut w = term::termcolor::Ansi::new(Vec::new());
            let ok = term::emit_to_write_style(&mut w, &config, sources, &diag).is_ok();
            let out = String::from_utf8_lossy(&w.into_inner()).into_owned();
            if ok {
                return out;
            }
        }
        match term::emit_into_string(&config, sources, &diag) {
            Ok(s) => s,
            Err(_) => format!("error[{}]: {}\n", self.code, self.message),
        }
    }

    /// The machine form: code, message, and every label as file:line:column.
    pub fn to_json(&self, sources: &Sources) -> serde_json::Value {
        let labels: Vec<_> = self
            .labels
            .iter()
            .map(|l| {
                let (line, column) = sources.line_col(l.span.file, l.span.range.start);
                serde_json::json!({
                    "file": sources.name(l.span.file),
                    "line": line,
                    "column": column,
                    "message": l.message,
                    "primary": l.primary,
                })
            })
            .collect();
        serde_json::json!({
            "code": self.code,
            "message": self.message,
            "labels": labels,
            "notes": self.notes,
        })
    }
}

/// Sorts diagnostics by where they point, then by message, and drops exact
/// repeats (a state shared by many hosts fails the same way for each).
pub fn sort_dedup(sources: &Sources, diags: &mut Vec<Diagnostic>) {
    let key = |d: &Diagnostic| {
        let s = d.first_span();
        (
            s.map(|s| sources.name(s.file)),
            s.map(|s| s.range.start),
            d.message.clone(),
        )
    };
    diags.sort_by_cached_key(key);
    diags.dedup_by(|a, b| {
        a.message == b.message
            && a.labels
                .iter()
                .map(|l| &l.span)
                .eq(b.labels.iter().map(|l| &l.span))
    });
}

/// `1 host`, `2 hosts`: a count with its noun (plural by `s`).
pub fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The closest candidate to `word` (Jaro-Winkler ≥ 0.8 or edit distance ≤ 2),
/// for "did you mean" hints.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let jw = strsim::jaro_winkler(word, c);
        let lev = strsim::levenshtein(word, c);
        let ok = jw >= 0.8 || lev <= 2.min(word.len().saturating_sub(1));
        if ok && best.is_none_or(|(b, _)| jw > b) {
            best = Some((jw, c));
        }
    }
    best.map(|(_, c)| c)
}
