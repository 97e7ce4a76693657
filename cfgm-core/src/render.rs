//! Rendering state files with minijinja while keeping every rendered line's
//! origin in the template source.
//!
//! A state file is a template first and TOML second. Before a state is
//! handed to minijinja, [`tag_source`] appends an invisible marker to every
//! source line whose end lies in plain template text (not inside a `{{ }}`,
//! `{% %}` or `{# #}` tag). Each marker carries the source line number, so
//! after rendering every output line ends in the marker of the source line
//! that produced it — a loop body's lines point at the loop body, a value
//! with embedded newlines points at the expression. [`untag`] strips the
//! markers and returns the clean text plus a [`LineMap`].
//!
//! Lines that hold only block tags (`{% if %}`, `{% endfor %}` …) are
//! dropped from the output, which is what `trim_blocks` + `lstrip_blocks`
//! would do; the tagged source has the same number of lines as the original,
//! so minijinja's own error lines and columns are source lines and columns.
//!
//! Rendering is bounded ([`FUEL`], [`MAX_OUTPUT_BYTES`]): no template can
//! make a compile hang or grow without limit; reaching a limit is a
//! [`RenderError::Output`] or minijinja's `OutOfFuel`, both located.
//!
//! This module knows templates and lines, nothing about TOML or resources.

use crate::diag::{suggest, Diagnostic, FileId, SourceFile, Sources, Span};
use serde_json::Value;
use std::ops::Range;

/// The work one render may do, in minijinja fuel: about one unit per
/// instruction executed and per 64 bytes of data created (output, strings,
/// lists). A state that renders 2,000 resources uses ~17,000: two million
/// leave a hundredfold headroom, and bound a render at well under a second
/// of work and ~122 MiB of data created (fuel counts every allocation,
/// freed or not).
pub const FUEL: u64 = 2_000_000;

/// The most text one render may produce (16 MiB, the size of the largest
/// file a tree may hold).
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// Why a render failed.
#[derive(Debug)]
pub enum RenderError {
    /// The template failed (an undefined variable, out of fuel …).
    Template(minijinja::Error),
    /// The output passed [`MAX_OUTPUT_BYTES`]; `last_line` is the last
    /// source line whose output was complete, when the output says (states
    /// carry line markers; file templates do not).
    Output { last_line: Option<usize> },
}

/// Renders a template with the output capped at [`MAX_OUTPUT_BYTES`] (fuel
/// is set on the environment).
pub fn render_bounded(
    t: &minijinja::Template<'_, '_>,
    ctx: &impl serde::Serialize,
) -> Result<String, RenderError> {
    let mut out = Capped {
        buf: Vec::new(),
        over: false,
    };
    match t.render_captured_to(minijinja::value::Serde(ctx), &mut out) {
        Ok(_) => Ok(String::from_utf8(out.buf).expect("minijinja writes str")),
        Err(_) if out.over => {
            let text = String::from_utf8_lossy(&out.buf);
            let last_line = text.rfind(OPEN).and_then(|p| {
                let tag = &text[p + OPEN.len_utf8()..];
                let digits = tag.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
                // A macro's line (`file:line`) is no line of this file.
                (!tag[digits..].starts_with(':'))
                    .then(|| tag[..digits].parse().ok())
                    .flatten()
            });
            Err(RenderError::Output { last_line })
        }
        Err(e) => Err(RenderError::Template(e)),
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lex {
    Text,
    Raw,
    Tag(TagKind),
    Str(TagKind, char),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TagKind {
    Var,
    Block,
    Comment,
}

/// Returns the source with an origin marker before each line end that lies
/// in template text. Line count and in-line byte offsets are unchanged.
pub fn tag_source(src: &str) -> String {
    tag(src, None).0
}

/// [`tag_source`] for a template whose output lands in another file's
/// render (a macro library imported by a state): its markers also name
/// `file`, so lines a macro produces map to the macro's own lines.
pub fn tag_source_in(src: &str, file: FileId) -> String {
    tag(src, Some(file)).0
}

/// Where a template ends inside a tag or a string in a tag, if it does:
/// the offset where that tag or string opened, and which it is. minijinja
/// reports such an error at the end of the file; the author needs the
/// place it began.
pub fn unclosed_at_end(src: &str) -> Option<(usize, &'static str)> {
    tag(src, None).1
}

fn tag(src: &str, file: Option<FileId>) -> (String, Option<(usize, &'static str)>) {
    let prefix = file.map(|f| format!("{}:", f.0)).unwrap_or_default();
    let push_marker = |out: &mut String, line: u32, text: bool, expr: bool, block: bool| {
        push_marker(out, &prefix, line, text, expr, block)
    };
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let bytes = src.as_bytes();
    let mut state = Lex::Text;
    let mut line: u32 = 1;
    // Per line: did it start in text, hold text, hold an expression, hold a block tag?
    let mut has_text = false;
    let mut has_expr = false;
    let mut has_block = false;
    // The last tag on this line closed with `-%}`/`-}}`/`-#}` and only
    // whitespace followed: Jinja eats the newline, so no marker may sit
    // before it.
    let mut trims_newline = false;
    let mut i = 0;
    let mut tag_start = 0usize;
    let mut str_start = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        match state {
            Lex::Text => {
                if c == b'{' && i + 1 < bytes.len() && matches!(bytes[i + 1], b'{' | b'%' | b'#') {
                    let kind = match bytes[i + 1] {
                        b'{' => TagKind::Var,
                        b'%' => TagKind::Block,
                        _ => TagKind::Comment,
                    };
                    match kind {
                        TagKind::Var => has_expr = true,
                        _ => has_block = true,
                    }
                    tag_start = i;
                    state = Lex::Tag(kind);
                    out.push_str(&src[i..i + 2]);
                    i += 2;
                    continue;
                }
                if c == b'\n' {
                    if !trims_newline {
                        push_marker(&mut out, line, has_text, has_expr, has_block);
                    }
                    out.push('\n');
                    line += 1;
                    has_text = false;
                    has_expr = false;
                    has_block = false;
                    trims_newline = false;
                    i += 1;
                    continue;
                }
                if !c.is_ascii_whitespace() {
                    has_text = true;
                    trims_newline = false;
                }
            }
            Lex::Raw => {
                if c == b'{' && src[i..].starts_with("{%") {
                    if let Some(end) = src[i..].find("%}") {
                        let inner = src[i + 2..i + end]
                            .trim_matches(|ch: char| ch == '-' || ch == '+' || ch.is_whitespace());
                        if inner == "endraw" {
                            out.push_str(&src[i..i + end + 2]);
                            i += end + 2;
                            has_block = true;
                            state = Lex::Text;
                            continue;
                        }
                    }
                }
                if c == b'\n' {
                    push_marker(&mut out, line, has_text, false, has_block);
                    out.push('\n');
                    line += 1;
                    has_text = false;
                    has_expr = false;
                    has_block = false;
                    i += 1;
                    continue;
                }
                if !c.is_ascii_whitespace() {
                    has_text = true;
                }
            }
            Lex::Tag(kind) => {
                let close = match kind {
                    TagKind::Var => b'}',
                    TagKind::Block => b'%',
                    TagKind::Comment => b'#',
                };
                if c == close && i + 1 < bytes.len() && bytes[i + 1] == b'}' {
                    trims_newline = i > 0 && bytes[i - 1] == b'-';
                    out.push_str(&src[i..i + 2]);
                    i += 2;
                    state = Lex::Text;
                    if kind == TagKind::Block {
                        let inner = src[tag_start + 2..i - 2]
                            .trim_matches(|ch: char| ch == '-' || ch == '+' || ch.is_whitespace());
                        if inner == "raw" {
                            state = Lex::Raw;
                        }
                    }
                    continue;
                }
                if kind != TagKind::Comment && (c == b'"' || c == b'\'') {
                    state = Lex::Str(kind, c as char);
                    str_start = i;
                }
                if c == b'\n' {
                    // The line ends inside a tag: no marker (it would become template code).
                    line += 1;
                    has_text = false;
                    has_expr = kind == TagKind::Var;
                    has_block = kind != TagKind::Var;
                }
            }
            Lex::Str(kind, q) => {
                if c == b'\\' && i + 1 < bytes.len() {
                    // The escaped character may be multi-byte.
                    let n = 1 + utf8_len(bytes[i + 1]);
                    out.push_str(&src[i..(i + n).min(src.len())]);
                    i += n;
                    continue;
                }
                if c as char == q {
                    state = Lex::Tag(kind);
                }
                if c == b'\n' {
                    line += 1;
                }
            }
        }
        // Copy one whole UTF-8 character.
        let len = utf8_len(c);
        out.push_str(&src[i..i + len]);
        i += len;
    }
    if matches!(state, Lex::Text | Lex::Raw) && !src.is_empty() && !src.ends_with('\n') {
        push_marker(&mut out, line, has_text, has_expr, has_block);
    }
    let unclosed = match state {
        Lex::Str(..) => Some((str_start, "string")),
        Lex::Tag(TagKind::Comment) => Some((tag_start, "comment")),
        Lex::Tag(_) => Some((tag_start, "tag")),
        Lex::Raw => Some((tag_start, "raw block")),
        Lex::Text => None,
    };
    (out, unclosed)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn push_marker(out: &mut String, prefix: &str, line: u32, text: bool, expr: bool, block: bool) {
    let block_only = block && !text && !expr;
    out.push(OPEN);
    out.push_str(prefix);
    out.push_str(&line.to_string());
    out.push(if block_only { 'B' } else { 'T' });
    out.push(CLOSE);
}

/// Where each line of a rendered state came from.
#[derive(Clone, Debug)]
pub struct LineMap {
    /// The source file (original, untagged text).
    pub file: FileId,
    /// Per rendered line (0-based index): the 1-based source line.
    pub origin: Vec<u32>,
    /// Per rendered line, the file of `origin` when some line came from
    /// another file (a macro library); empty when all are `file`'s.
    pub files: Vec<FileId>,
    /// Byte offset where each rendered line starts in the rendered text.
    pub starts: Vec<usize>,
}

/// A state rendered to TOML text, with its line map.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub text: String,
    pub map: LineMap,
}

/// Strips the markers of rendered output and drops block-only lines.
pub fn untag(file: FileId, output: &str) -> Rendered {
    // Hot path: a big state renders to ~1 MB. Lines are copied straight into
    // the output (no per-line allocation) and truncated away when dropped.
    let mut text = String::with_capacity(output.len());
    let mut origin: Vec<Option<(FileId, u32)>> = Vec::new();
    let mut foreign = false;
    let mut starts = Vec::new();
    let mut rest_all = output;
    loop {
        let (line, last) = match rest_all.find('\n') {
            Some(p) => (&rest_all[..p], false),
            None => (rest_all, true),
        };
        if last && line.is_empty() {
            break;
        }
        let begin = text.len();
        let mut last_t: Option<(FileId, u32)> = None;
        let mut last_any: Option<(FileId, u32)> = None;
        let mut rest = line;
        while let Some(p) = rest.find(OPEN) {
            text.push_str(&rest[..p]);
            let after = &rest[p + OPEN.len_utf8()..];
            match after.find(CLOSE) {
                Some(q) => {
                    let tag = &after[..q];
                    let (num, flag) = tag.split_at(tag.len().saturating_sub(1));
                    let at = match num.split_once(':') {
                        Some((f, n)) => {
                            f.parse::<u32>()
                                .ok()
                                .zip(n.parse::<u32>().ok())
                                .map(|(f, n)| {
                                    foreign = true;
                                    (FileId(f), n)
                                })
                        }
                        None => num.parse::<u32>().ok().map(|n| (file, n)),
                    };
                    if let Some(at) = at {
                        last_any = Some(at);
                        if flag == "T" {
                            last_t = Some(at);
                        }
                    }
                    rest = &after[q + CLOSE.len_utf8()..];
                }
                None => {
                    text.push(OPEN);
                    rest = after;
                }
            }
        }
        text.push_str(rest);
        if last_any.is_some() && last_t.is_none() && text[begin..].trim().is_empty() {
            // A line of block tags only.
            text.truncate(begin);
        } else {
            starts.push(begin);
            if !last {
                text.push('\n');
            }
            origin.push(last_t.or(last_any));
        }
        if last {
            break;
        }
        rest_all = &rest_all[line.len() + 1..];
    }
    // Lines without a marker come from a value with embedded newlines: they
    // belong to the next marked line (the expression's line).
    let mut next: Option<(FileId, u32)> = None;
    let mut filled = vec![(file, 0u32); origin.len()];
    for (i, o) in origin.iter().enumerate().rev() {
        if o.is_some() {
            next = *o;
        }
        filled[i] = o.or(next).unwrap_or((file, 0));
    }
    let mut prev = (file, 1);
    for f in filled.iter_mut() {
        if f.1 == 0 {
            *f = prev;
        }
        prev = *f;
    }
    let files = if foreign {
        filled.iter().map(|f| f.0).collect()
    } else {
        Vec::new()
    };
    Rendered {
        text,
        map: LineMap {
            file,
            origin: filled.into_iter().map(|f| f.1).collect(),
            files,
            starts,
        },
    }
}

/// A rendered byte range mapped back to the template source.
pub struct Mapped {
    pub span: Span,
    /// The rendered line, when it differs from the source line it came from.
    pub rendered_line: Option<(usize, String)>,
}

impl LineMap {
    fn rendered_line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        }
    }

    /// The file the rendered line at `offset` came from: the state's, or
    /// a macro library's.
    pub fn file_at(&self, offset: usize) -> FileId {
        match self.files.get(self.rendered_line_of(offset)) {
            Some(f) => *f,
            None => self.file,
        }
    }

    /// Maps a byte range of the rendered text to the source: same columns
    /// when the rendered line equals its source line; else the same text
    /// found in the source line; else the whole source line.
    pub fn map(&self, sources: &Sources, rendered: &str, range: Range<usize>) -> Mapped {
        match sources.get(self.file_at(range.start)) {
            Some(src) => self.map_in(&src, rendered, range),
            None => Mapped {
                span: Span::new(self.file, 0..0),
                rendered_line: None,
            },
        }
    }

    /// [`map`](Self::map) with the source file already at hand.
    /// `src` must be the file of the line (see [`file_at`](Self::file_at)).
    pub fn map_in(&self, src: &SourceFile, rendered: &str, range: Range<usize>) -> Mapped {
        let file = self.file_at(range.start);
        if self.starts.is_empty() {
            return Mapped {
                span: Span::new(file, 0..0),
                rendered_line: None,
            };
        }
        let start = range.start.min(rendered.len());
        let rl = self.rendered_line_of(start);
        let rstart = self.starts[rl];
        let rend = rendered[rstart..]
            .find('\n')
            .map(|e| rstart + e)
            .unwrap_or(rendered.len());
        let rline = &rendered[rstart..rend];
        let src_line_no = self.origin.get(rl).copied().unwrap_or(1) as usize;
        let Some(src_range) = src.line_range(src_line_no) else {
            return Mapped {
                span: Span::new(file, 0..0),
                rendered_line: None,
            };
        };
        let sline = &src.text[src_range.clone()];
        let end = range.end.clamp(start, rend.max(start));
        if sline == rline {
            let s = src_range.start + (start - rstart);
            let e = src_range.start + (end - rstart);
            return Mapped {
                span: Span::new(file, s..e.max(s)),
                rendered_line: None,
            };
        }
        let needle = &rendered[start..end];
        let span = match (!needle.trim().is_empty())
            .then(|| sline.find(needle))
            .flatten()
        {
            Some(p) => src_range.start + p..src_range.start + p + needle.len(),
            None => {
                let lead = sline.len() - sline.trim_start().len();
                src_range.start + lead..src_range.end
            }
        };
        Mapped {
            span: Span::new(file, span),
            rendered_line: Some((rl + 1, rline.to_string())),
        }
    }
}

/// Maps a byte range in the *tagged* source (what minijinja saw) to the
/// original source: the tagged text only adds markers at line ends.
pub fn tagged_to_source(
    tagged: &str,
    sources: &Sources,
    file: FileId,
    range: Range<usize>,
) -> Span {
    let start = range.start.min(tagged.len());
    let line_idx = tagged[..start].matches('\n').count();
    let line_start = tagged[..start].rfind('\n').map(|p| p + 1).unwrap_or(0);
    let col = start - line_start;
    let Some(src) = sources.line_range(file, line_idx + 1) else {
        return Span::new(file, 0..0);
    };
    let s = (src.start + col).min(src.end);
    let len = range.end.saturating_sub(range.start);
    Span::new(file, s..(s + len).min(src.end).max(s))
}

// ---- template analysis and errors ----------------------------------------

/// The context paths a template reads, for sharing renders between hosts.
/// Keyed by the whole context instead when the variables cannot tell: a
/// template that pulls in another (`include`, `import`, `from`, `extends`:
/// it may read anything the other reads), or one that rebinds a context
/// name (`{% set data = data.nginx %}` hides which `data.…` it then reads).
pub(crate) fn reads(source: &str, vars: std::collections::HashSet<String>) -> Vec<String> {
    reads_with(source, vars, false)
}

/// [`reads`], for a template whose imports are known macro libraries
/// (states): their reads are added by the caller, so an `import` or
/// `from` does not make the template opaque; `include`/`extends` still do.
pub(crate) fn reads_with(
    source: &str,
    vars: std::collections::HashSet<String>,
    imports_known: bool,
) -> Vec<String> {
    let pulls = if imports_known {
        includes(source).is_some()
    } else {
        pulls_in(source).is_some()
    };
    let opaque = pulls
        || block_tags(source).any(|(_, keyword, rest)| {
            // `set`, `for`, `with` and `macro` can bind a context name.
            matches!(keyword, "set" | "for" | "with" | "macro") && binds_context_name(rest)
        });
    if opaque {
        return vec!["data".into(), "facts".into(), "host".into(), "vars".into()];
    }
    let mut v: Vec<String> = vars.into_iter().collect();
    v.sort();
    v
}

/// Where a template pulls in another (`{% include`, `import`, `from`,
/// `extends`), if it does: the byte offset of that tag.
pub(crate) fn pulls_in(source: &str) -> Option<usize> {
    block_tags(source)
        .find(|(_, keyword, _)| matches!(*keyword, "include" | "import" | "from" | "extends"))
        .map(|(at, _, _)| at)
}

/// Where a template includes or extends another (`{% include`,
/// `extends`), if it does: the byte offset of that tag.
pub(crate) fn includes(source: &str) -> Option<usize> {
    block_tags(source)
        .find(|(_, keyword, _)| matches!(*keyword, "include" | "extends"))
        .map(|(at, _, _)| at)
}

/// A string literal in a template: where its text is, and the text.
pub(crate) type Literal<'a> = (Range<usize>, &'a str);

/// The templates a template imports (`{% import "x" as m %}`, `{% from
/// "x" import y %}`): each tag's offset, and the name it imports when
/// that is a string literal (the span of the literal's text, too).
pub(crate) fn imports(source: &str) -> Vec<(usize, Option<Literal<'_>>)> {
    block_tags(source)
        .filter(|(_, keyword, _)| matches!(*keyword, "import" | "from"))
        .map(|(at, _, rest)| {
            let lit = (|| {
                let trimmed = rest.trim_start();
                let q = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                let end = trimmed[1..].find(q)?;
                let name = &trimmed[1..1 + end];
                let after = trimmed[1 + end + 1..].trim_start();
                // `"a" ~ x` is an expression, not a name.
                if !(after.starts_with("import") || after.starts_with("as")) {
                    return None;
                }
                let start = source.len() - rest.len() + (rest.len() - trimmed.len()) + 1;
                Some((start..start + name.len(), name))
            })();
            (at, lit)
        })
        .collect()
}

/// Every `{% … %}` tag of a template: its offset, its first word, and the
/// text after that word.
pub(crate) fn block_tags(source: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    source.match_indices("{%").map(move |(at, _)| {
        let rest = source[at + 2..].trim_start_matches(['-', '+']).trim_start();
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (at, &rest[..end], &rest[end..])
    })
}

/// Whether the targets of a `set`/`for`/`with`/`macro` tag (the part before
/// `=`, `in` or the closing `%}`) name `host`, `data`, `facts` or `vars`.
fn binds_context_name(after_keyword: &str) -> bool {
    let end = after_keyword.find("%}").unwrap_or(after_keyword.len());
    let tag = &after_keyword[..end];
    let targets = match (tag.find('='), tag.find(" in ")) {
        (Some(e), Some(n)) => &tag[..e.min(n)],
        (Some(e), None) => &tag[..e],
        (None, Some(n)) => &tag[..n],
        (None, None) => tag,
    };
    targets
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| matches!(w, "host" | "data" | "facts" | "vars"))
}

/// A bounded render's failure as a diagnostic in the template source.
pub fn render_error(
    sources: &Sources,
    file: FileId,
    tagged: &str,
    e: &RenderError,
    ctx: Option<&Value>,
) -> Diagnostic {
    match e {
        RenderError::Template(e) => template_error(sources, file, tagged, e, ctx),
        RenderError::Output { last_line } => {
            let limit = format!("{} MiB", MAX_OUTPUT_BYTES >> 20);
            let d = Diagnostic::error(
                "template-limit",
                format!("{}: the rendered output passed {limit}", sources.name(file)),
            );
            // The output ends with the marker of the last line it completed;
            // the limit was passed writing what came next, usually the next
            // line (in a loop: the body after the `for` line).
            let line = last_line.and_then(|l| {
                sources
                    .line_range(file, l + 1)
                    .or_else(|| sources.line_range(file, l))
            });
            let d = match line {
                Some(r) => d.primary(
                    Span::new(file, r),
                    format!("the output passed {limit} around here"),
                ),
                None => d.primary(
                    Span::new(file, 0..0),
                    format!("this template's output passed {limit}"),
                ),
            };
            d.note(format!(
                "one render may produce at most {limit} ({MAX_OUTPUT_BYTES} bytes), the size of the largest file a tree may hold"
            ))
        }
    }
}

/// A minijinja error as a diagnostic in the template source. `ctx` is the
/// render context, used to name the missing part of an undefined path.
pub fn template_error(
    sources: &Sources,
    file: FileId,
    tagged: &str,
    e: &minijinja::Error,
    ctx: Option<&Value>,
) -> Diagnostic {
    let text = sources.text(file);
    let span = match e.range() {
        Some(r) => tagged_to_source(tagged, sources, file, r),
        None => match e.line().and_then(|l| sources.line_range(file, l)) {
            Some(r) => Span::new(file, r),
            None => Span::new(file, 0..0),
        },
    };
    let detail = e.detail().map(str::to_string);
    if e.kind() == minijinja::ErrorKind::SyntaxError && span.range.start >= text.trim_end().len() {
        // minijinja meets an unclosed string or tag at the end of the
        // file (a line that does not exist); point where it opened.
        if let Some((at, what)) = unclosed_at_end(&text) {
            let len = if what == "string" { 1 } else { 2 };
            return Diagnostic::error(
                "template-syntax",
                format!("template syntax error: unterminated {what}"),
            )
            .primary(
                Span::new(file, at..at + len),
                format!("this {what} is never closed"),
            )
            .note(format!(
                "minijinja: {}",
                detail.unwrap_or_else(|| "unexpected end of input".into())
            ));
        }
    }
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return Diagnostic::error(
            "template-limit",
            format!("{}: the template does too much work", sources.name(file)),
        )
        .primary(span, "the work limit was reached here")
        .note(format!(
            "one render may execute about {FUEL} instructions and create about {} MiB of data (minijinja fuel {FUEL}); a loop over a huge range or a value built up without end passes it",
            (FUEL * 64) >> 20
        ));
    }
    // minijinja may point at the failing part of a path (`.app.port`): widen
    // the span to the whole dotted name the author wrote (`data.app.port`).
    let mut span = span;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    while span.range.start > 0
        && text
            .as_bytes()
            .get(span.range.start - 1)
            .is_some_and(|&c| ident(c))
    {
        span.range.start -= 1;
    }
    let snippet = text
        .get(span.range.clone())
        .unwrap_or("")
        .trim()
        .to_string();
    match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            let (label, note) = undefined_hint(&snippet, ctx);
            let mut d = Diagnostic::error(
                "undefined",
                format!("undefined variable in template: `{snippet}`"),
            )
            .primary(span, label);
            if let Some(n) = note {
                d = d.note(n);
            }
            d.note("templates are strict: every variable must be defined (test with `is defined` or use `| default(…)`)")
        }
        minijinja::ErrorKind::SyntaxError => Diagnostic::error(
            "template-syntax",
            format!(
                "template syntax error: {}",
                detail.clone().unwrap_or_default()
            ),
        )
        .primary(span, detail.unwrap_or_else(|| "here".into())),
        _ => Diagnostic::error(
            "template",
            format!(
                "template error: {}{}",
                e.kind(),
                detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        )
        .primary(span, detail.unwrap_or_else(|| e.kind().to_string())),
    }
}

/// For `data.nginx.vesion`: which part is missing, and the closest key there.
fn undefined_hint(expr: &str, ctx: Option<&Value>) -> (String, Option<String>) {
    let path: Vec<&str> = expr.split('.').map(str::trim).collect();
    let plain = path
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
    let (Some(ctx), true) = (ctx, plain) else {
        return ("undefined".into(), None);
    };
    let mut cur = ctx;
    for (i, part) in path.iter().enumerate() {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                let here = path[..i].join(".");
                let label = if here.is_empty() {
                    format!("`{part}` is not defined")
                } else {
                    format!("`{here}` has no key `{part}`")
                };
                let note = cur.as_object().and_then(|o| {
                    suggest(part, o.keys().map(String::as_str)).map(|s| {
                        if here.is_empty() {
                            format!("did you mean `{s}`?")
                        } else {
                            format!("did you mean `{here}.{s}`?")
                        }
                    })
                });
                return (label, note);
            }
        }
    }
    ("undefined".into(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn run(src: &str, ctx: serde_json::Value) -> Rendered {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .unwrap(),
        );
        let tagged = tag_source(src);
        env.add_template_owned("t", tagged).unwrap();
        let out = env
            .get_template("t")
            .unwrap()
            .render(minijinja::value::Serde(ctx))
            .unwrap();
        untag(FileId(0), &out)
    }

    #[test]
    fn plain_text_maps_line_by_line() {
        let r = run("a = 1\nb = 2\n", serde_json::json!({}));
        assert_eq!(r.text, "a = 1\nb = 2\n");
        assert_eq!(r.map.origin, vec![1, 2]);
    }

    #[test]
    fn loop_body_lines_point_at_the_body() {
        let src = "x = 1\n{% for i in [1, 2] %}\n[pkg.p{{ i }}]\nversion = \"{{ i }}\"\n{% endfor %}\ny = 2\n";
        let r = run(src, serde_json::json!({}));
        assert_eq!(
            r.text,
            "x = 1\n[pkg.p1]\nversion = \"1\"\n[pkg.p2]\nversion = \"2\"\ny = 2\n"
        );
        assert_eq!(r.map.origin, vec![1, 3, 4, 3, 4, 6]);
    }

    #[test]
    fn false_if_drops_lines_and_keeps_origins() {
        let src = "{% if false %}\na = 1\n{% endif %}\nb = 2\n";
        let r = run(src, serde_json::json!({}));
        assert_eq!(r.text, "b = 2\n");
        assert_eq!(r.map.origin, vec![4]);
    }

    #[test]
    fn multiline_tags_and_strings_are_not_tagged_inside() {
        let src = "{% set xs = [\n  \"a%}\",\n  'b'] %}\nv = {{ xs | tojson }}\n";
        let r = run(src, serde_json::json!({}));
        assert_eq!(r.text, "v = [\"a%}\", \"b\"]\n");
        assert_eq!(r.map.origin, vec![4]);
    }

    #[test]
    fn raw_blocks_pass_through() {
        let src = "{% raw %}\na = \"{{ x }}\"\n{% endraw %}\n";
        let r = run(src, serde_json::json!({}));
        assert_eq!(r.text, "a = \"{{ x }}\"\n");
        assert_eq!(r.map.origin, vec![2]);
    }

    #[test]
    fn value_with_newlines_points_at_expression() {
        let src = "a = 1\nb = \"\"\"\n{{ v }}\n\"\"\"\n";
        let r = run(src, serde_json::json!({"v": "l1\nl2"}));
        assert_eq!(r.text, "a = 1\nb = \"\"\"\nl1\nl2\n\"\"\"\n");
        assert_eq!(r.map.origin, vec![1, 2, 3, 3, 4]);
    }

    /// Regression: `-%}` at a line end must eat the newline as in Jinja.
    #[test]
    fn whitespace_control_eats_the_newline() {
        let src = "motd = \"{% for t in tags -%}\n{{ t }}\n{%- endfor %}\"\nx = 1\n";
        let r = run(src, serde_json::json!({"tags": ["a", "b"]}));
        assert_eq!(r.text, "motd = \"ab\"\nx = 1\n");
        assert_eq!(r.map.origin, vec![3, 4]);
    }

    #[test]
    fn no_trailing_newline() {
        let r = run("a = 1", serde_json::json!({}));
        assert_eq!(r.text, "a = 1");
        assert_eq!(r.map.origin, vec![1]);
    }
}
