//! Parsing a rendered state file into typed resources.
//!
//! Input: the rendered TOML text of one state and its [`LineMap`]. Output: a
//! [`ParsedState`] (includes and resources, every attribute with the span of
//! its key and value) plus every problem found, each mapped back to the line
//! the author wrote. Parsing never stops at the first problem: a resource
//! with a bad attribute is still returned without that attribute, so later
//! steps report their own problems too.
//!
//! The checks here are the ones a single file can answer: TOML syntax,
//! known kinds, known attributes and their types (from the [`Registry`]),
//! requisite syntax. Cross-file checks (duplicates, missing requisite
//! targets, cycles) belong to `compile`.

use crate::catalog::ResourceId;
use crate::diag::{suggest, Diagnostic, Sources, Span};
use crate::render::Rendered;
use crate::schema::{Attrs, KindSpec, Registry, REQUISITES};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A requisite as written: which resource, and where.
#[derive(Clone, Debug)]
pub struct Requisite {
    /// `require`, `watch` or `before`.
    pub kind: &'static str,
    pub target: ResourceId,
    pub range: Range<usize>,
}

/// Where an attribute's key and value are in the rendered text.
#[derive(Clone, Debug)]
pub struct AttrSpan {
    pub key: Range<usize>,
    pub val: Range<usize>,
}

/// One resource as declared in one state file.
#[derive(Clone, Debug)]
pub struct ParsedResource {
    pub id: ResourceId,
    /// Span of the resource's name key in the rendered text.
    pub range: Range<usize>,
    /// Attribute values by name (requisites excluded).
    pub attrs: Attrs,
    /// Where each attribute was written.
    pub spans: BTreeMap<String, AttrSpan>,
    pub requisites: Vec<Requisite>,
}

/// A state file after rendering and parsing, shared by every host that
/// renders it the same way.
#[derive(Debug)]
pub struct ParsedState {
    pub name: String,
    pub rendered: Arc<Rendered>,
    pub includes: Vec<(String, Range<usize>)>,
    pub resources: Vec<ParsedResource>,
}

impl ParsedState {
    /// Maps a rendered range to a source span.
    pub fn span(&self, sources: &Sources, range: Range<usize>) -> Span {
        self.rendered
            .map
            .map(sources, &self.rendered.text, range)
            .span
    }

    /// A diagnostic pointing at a rendered range, in source terms; when the
    /// rendered line differs from the source line, a note shows it.
    pub fn diag(
        &self,
        sources: &Sources,
        code: &'static str,
        message: impl Into<String>,
        range: Range<usize>,
        label: impl Into<String>,
    ) -> Diagnostic {
        diag_at(&self.rendered, sources, code, message, range, label)
    }
}

pub(crate) fn diag_at(
    rendered: &Rendered,
    sources: &Sources,
    code: &'static str,
    message: impl Into<String>,
    range: Range<usize>,
    label: impl Into<String>,
) -> Diagnostic {
    let m = rendered.map.map(sources, &rendered.text, range);
    let src_line = sources.get(m.span.file).and_then(|f| {
        let line = f.line_index(m.span.range.start) + 1;
        f.line_range(line).map(|r| f.text[r].to_string())
    });
    let mut d = Diagnostic::error(code, message).primary(m.span, label);
    if let Some((line, text)) = m.rendered_line {
        let (note, hidden) = rendered_note(
            &rendered.text,
            src_line.as_deref().unwrap_or(""),
            line,
            text.trim_end(),
        );
        d = d.note(note);
        if hidden && code == "toml" {
            // The author cannot see the value that broke the TOML; the
            // usual cause is worth saying.
            d = d.note("template output goes into the TOML as it is: a value with a `\"` or a newline ends its string early; `key = {{ value | tojson }}` (no quotes) inserts any string safely");
        }
    }
    d
}

/// The note that shows the rendered line a diagnostic is about, without
/// ever showing a secret.
///
/// Secrecy is a property of resources (`secret = true`), but a rendered
/// line is shown before (or without) knowing which resource it belongs to:
/// the TOML may not parse, and one line can hold several resources (inline
/// tables). So the rule is about the whole rendered state, and sound by
/// construction:
///
/// - If the rendered text cannot declare a secret resource, the line is
///   shown. It can only if it holds the key `secret`, and TOML writes that
///   key either literally (bare, `"secret"`, `'secret'`, `a.secret`) — then
///   the text contains `secret` — or with escapes in a quoted key (`\u`,
///   `\U`, `\x`). Text with none of these four substrings declares no
///   secret resource, whatever else is wrong with it.
/// - Otherwise only the author's own text is shown: the part of the source
///   line before its first tag and after its last tag, when the rendered
///   line starts and ends with exactly those; everything between (all
///   template output) is hidden. When the line does not have that shape
///   (a loop, a value with newlines), nothing of it is shown.
///
/// Returns the note, and whether template output was hidden.
pub(crate) fn rendered_note(
    text: &str,
    src_line: &str,
    line: usize,
    rline: &str,
) -> (String, bool) {
    let may_be_secret = ["secret", "\\u", "\\U", "\\x"]
        .iter()
        .any(|p| text.contains(p));
    if !may_be_secret {
        return (format!("rendered line {line}: {rline}"), false);
    }
    const HIDDEN: &str = "‹template output hidden›";
    let why = "this state may declare secret resources";
    let first = ["{{", "{%", "{#"]
        .iter()
        .filter_map(|t| src_line.find(t))
        .min();
    let last = ["}}", "%}", "#}"]
        .iter()
        .filter_map(|t| src_line.rfind(t).map(|p| p + 2))
        .max();
    if let (Some(a), Some(b)) = (first, last) {
        let (pre, post) = (&src_line[..a], src_line[b.max(a)..].trim_end());
        if rline.len() >= pre.len() + post.len() && rline.starts_with(pre) && rline.ends_with(post)
        {
            return (
                format!("rendered line {line} ({why}): {pre}{HIDDEN}{post}"),
                true,
            );
        }
    }
    (
        format!("rendered line {line} is not shown: {why}, and it holds template output"),
        true,
    )
}

/// Parses one rendered state.
pub fn parse_state(
    name: &str,
    rendered: Arc<Rendered>,
    sources: &Sources,
    registry: &Registry,
) -> (ParsedState, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut state = ParsedState {
        name: name.to_string(),
        rendered: rendered.clone(),
        includes: Vec::new(),
        resources: Vec::new(),
    };
    let (doc, errors) = DeTable::parse_recoverable(&rendered.text);
    // After a syntax error the parser resynchronises line by line; past the
    // first few, its errors are echoes of the first (an unclosed string
    // makes every later line wrong). Show the first few distinct ones and
    // count the rest.
    const SHOWN: usize = 3;
    let mut shown: Vec<Diagnostic> = Vec::new();
    for e in errors.iter().take(200) {
        let range = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        let (headline, rest) = match msg.split_once('\n') {
            Some((h, r)) => (h.to_string(), Some(r.trim().to_string())),
            None => (msg.clone(), None),
        };
        let mut d = diag_at(
            &rendered,
            sources,
            "toml",
            format!("invalid TOML: {headline}"),
            range,
            headline.clone(),
        );
        if let Some(r) = rest.filter(|r| !r.is_empty()) {
            d = d.note(r);
        }
        if let Some(hint) = leading_zero_hint(&rendered.text, &msg, e.span()) {
            d = d.note(hint);
        }
        let dup = shown
            .iter()
            .any(|x| x.message == d.message && x.first_span() == d.first_span());
        if !dup {
            shown.push(d);
        }
        if shown.len() == SHOWN {
            break;
        }
    }
    let n_shown = shown.len();
    if errors.len() > n_shown {
        if let Some(last) = shown.last_mut() {
            let shown_ones = match n_shown {
                1 => "only the first is shown".to_string(),
                n => format!("the first {n} distinct ones are shown"),
            };
            last.notes.push(format!(
                "{} TOML errors in this file in all; {shown_ones} (later ones are usually consequences of the first)",
                errors.len(),
            ));
        }
    }
    diags.extend(shown);
    if !errors.is_empty() {
        // A document with syntax errors yields partial tables; checking them
        // would only add noise after the real problem.
        return (state, diags);
    }
    let ctx = Ctx {
        rendered: &rendered,
        sources,
    };
    for (key, val) in doc.get_ref().iter() {
        let k = key.get_ref().as_ref();
        if k == "include" {
            match val.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) => state.includes.push((s.to_string(), item.span())),
                            other => diags.push(ctx.diag(
                                "include",
                                "an include must name a state",
                                item.span(),
                                format!(
                                    "expected a state name (a string), found {}",
                                    de_type(other)
                                ),
                            )),
                        }
                    }
                }
                other => diags.push(ctx.diag(
                    "include",
                    "`include` must be a list of state names",
                    val.span(),
                    format!(
                        "expected a list such as [\"base\"], found {}",
                        de_type(other)
                    ),
                )),
            }
            continue;
        }
        let Some(spec) = registry.get(k) else {
            let mut label = "not a resource type".to_string();
            if let Some(s) = suggest(k, registry.names()) {
                label = format!("did you mean `{s}`?");
            }
            diags.push(
                ctx.diag(
                    "unknown-kind",
                    format!("unknown resource type `{k}`"),
                    key.span(),
                    label,
                )
                .note(format!(
                    "known types: {}; a state file may also set `include`",
                    registry.names().collect::<Vec<_>>().join(", ")
                )),
            );
            continue;
        };
        let DeValue::Table(resources) = val.get_ref() else {
            diags.push(ctx.diag(
                "type",
                format!("`{k}` must be a table of resources"),
                val.span(),
                format!(
                    "expected [{k}.NAME] tables, found {}",
                    de_type(val.get_ref())
                ),
            ));
            continue;
        };
        for (rname, rval) in resources.iter() {
            if let Some(r) = parse_resource(&ctx, spec, rname, rval, &mut diags) {
                state.resources.push(r);
            }
        }
    }
    (state, diags)
}

struct Ctx<'a> {
    rendered: &'a Rendered,
    sources: &'a Sources,
}

impl Ctx<'_> {
    fn diag(
        &self,
        code: &'static str,
        message: impl Into<String>,
        range: Range<usize>,
        label: impl Into<String>,
    ) -> Diagnostic {
        diag_at(self.rendered, self.sources, code, message, range, label)
    }
}

fn parse_resource(
    ctx: &Ctx<'_>,
    spec: &KindSpec,
    rname: &Spanned<std::borrow::Cow<'_, str>>,
    rval: &Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ParsedResource> {
    let kind = spec.kind;
    let name = rname.get_ref().to_string();
    let id = ResourceId::new(kind, &name);
    let DeValue::Table(table) = rval.get_ref() else {
        diags.push(ctx.diag(
            "type",
            format!("{id} must be a table of attributes"),
            rval.span(),
            format!("expected a table, found {}", de_type(rval.get_ref())),
        ));
        return None;
    };
    if name.contains('\0') {
        diags.push(ctx.diag(
            "name",
            format!(
                "{}: a name cannot hold a NUL character",
                id.to_string().escape_debug()
            ),
            rname.span(),
            "a NUL (`\\u0000`) in this name",
        ));
        // Every later message names the resource: none may carry a NUL.
        return None;
    } else if spec.name_is_path && !name.starts_with('/') {
        diags.push(ctx.diag(
            "name",
            format!("{id}: the name of a {kind} must be an absolute path"),
            rname.span(),
            "expected a path starting with `/`",
        ));
    } else if spec.name_is_path && !is_normal_path(&name) {
        // One path, one name: `/etc/./x`, `/etc//x` and `/etc/x/` would be
        // other resources for the same file, and `..` could leave --root.
        diags.push(ctx.diag(
            "name",
            format!("{id}: the path is not in normal form"),
            rname.span(),
            "expected no `.` or `..` parts, no `//` and no trailing `/`",
        ));
    }
    // Whether the resource is, or was meant to be, secret: even a `secret`
    // that is not a boolean hides its secret attributes' values in messages.
    let secret = table.iter().any(|(k, v)| {
        k.get_ref().as_ref() == "secret" && !matches!(v.get_ref(), DeValue::Boolean(false))
    });
    let mut res = ParsedResource {
        id: id.clone(),
        range: rname.span(),
        attrs: Attrs::new(),
        spans: BTreeMap::new(),
        requisites: Vec::new(),
    };
    // Attributes dropped for their type, with the value as written (see
    // the cross-attribute rules below).
    let mut mistyped: Attrs = Attrs::new();
    for (akey, aval) in table.iter() {
        let a = akey.get_ref().as_ref();
        if let Some(req) = REQUISITES.iter().find(|r| **r == a) {
            parse_requisites(ctx, &id, req, aval, &mut res.requisites, diags);
            continue;
        }
        let Some(aspec) = crate::schema::attr_or_guard(spec, a) else {
            let names = spec.attrs.iter().map(|s| s.name).chain(REQUISITES);
            let label = match suggest(a, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "unknown attribute".to_string(),
            };
            diags.push(
                ctx.diag(
                    "unknown-attribute",
                    format!("{id}: unknown attribute `{a}`"),
                    akey.span(),
                    label,
                )
                .note(format!(
                    "{kind} takes: {}",
                    spec.attrs
                        .iter()
                        .map(|s| s.name)
                        .chain(REQUISITES)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            continue;
        };
        let value = de_to_json(aval.get_ref());
        let checked = aspec.ty.check(&value).and_then(|()| {
            if crate::schema::is_guard(spec, a) {
                crate::schema::check_guard(&value)
            } else {
                Ok(())
            }
        });
        if let Err(mut msg) = checked {
            // In a secret resource no type error quotes a value: values of
            // other attributes are often built from the same secret data.
            if secret {
                msg = format!(
                    "expected {}, found {} (the value is secret)",
                    aspec.ty.expected(),
                    crate::schema::type_name(&value)
                );
            }
            // A string where a mode goes is the right type with a value
            // cfgm does not take (e.g. a symbolic mode): say what it takes.
            let head = match (&aspec.ty, &value) {
                (crate::schema::AttrType::Mode, Value::String(_)) => {
                    format!("{id}: `{a}` is not an octal file mode")
                }
                _ => format!("{id}: wrong type for `{a}`"),
            };
            diags.push(ctx.diag("type", head, aval.span(), msg));
            mistyped.insert(a.to_string(), value);
            continue;
        }
        res.attrs.insert(a.to_string(), value);
        res.spans.insert(
            a.to_string(),
            AttrSpan {
                key: akey.span(),
                val: aval.span(),
            },
        );
    }
    for aspec in spec.attrs.iter().filter(|s| s.required) {
        if !table
            .iter()
            .any(|(k, _)| k.get_ref().as_ref() == aspec.name)
        {
            diags.push(ctx.diag(
                "missing-attribute",
                format!("{id}: missing required attribute `{}`", aspec.name),
                rname.span(),
                format!("add `{} = …` ({})", aspec.name, aspec.ty.expected()),
            ));
        }
    }
    // Cross-attribute rules judge the attributes as written, mistyped ones
    // included: without them they would report a consequence (a `cmd`
    // "without creates" whose `creates` was only misspelt as a path). What
    // they say of a mistyped attribute itself was already said.
    let problems: Vec<_> = if mistyped.is_empty() {
        (spec.check)(&name, &res.attrs)
    } else {
        let mut written = res.attrs.clone();
        written.extend(mistyped.clone());
        (spec.check)(&name, &written)
            .into_iter()
            .filter(|p| !p.attr.as_ref().is_some_and(|a| mistyped.contains_key(a)))
            .collect()
    };
    for p in problems {
        let range = p
            .attr
            .as_ref()
            .and_then(|a| res.spans.get(a))
            .map(|a| a.key.clone())
            .unwrap_or_else(|| rname.span());
        diags.push(ctx.diag(
            "invalid",
            format!("{id}: {}", p.message),
            range,
            p.message.clone(),
        ));
    }
    Some(res)
}

fn parse_requisites(
    ctx: &Ctx<'_>,
    id: &ResourceId,
    req: &'static str,
    val: &Spanned<DeValue<'_>>,
    out: &mut Vec<Requisite>,
    diags: &mut Vec<Diagnostic>,
) {
    let items: Vec<&Spanned<DeValue<'_>>> = match val.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        DeValue::String(_) => vec![val],
        other => {
            diags.push(ctx.diag(
                "type",
                format!("{id}: wrong type for `{req}`"),
                val.span(),
                format!(
                    "expected a list of \"kind:name\" strings, found {}",
                    de_type(other)
                ),
            ));
            return;
        }
    };
    for item in items {
        match item.get_ref() {
            DeValue::String(s) => match ResourceId::parse_ref(s) {
                Some(target) => out.push(Requisite {
                    kind: req,
                    target,
                    range: item.span(),
                }),
                None => diags.push(ctx.diag(
                    "requisite",
                    format!("{id}: `{s}` is not a resource reference"),
                    item.span(),
                    "expected \"kind:name\", e.g. \"pkg:nginx\"",
                )),
            },
            other => diags.push(ctx.diag(
                "type",
                format!("{id}: wrong type in `{req}`"),
                item.span(),
                format!("expected a \"kind:name\" string, found {}", de_type(other)),
            )),
        }
    }
}

/// An absolute path without `.`, `..` or empty parts, no trailing `/` and
/// no NUL.
pub fn is_normal_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains('\0')
        && (p == "/"
            || p[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."))
}

fn de_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Converts a parsed TOML value to JSON (datetimes become strings).
pub fn de_to_json(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let s = i.as_str().replace('_', "");
            let radix = i.radix();
            let digits = s.trim_start_matches(['+']);
            let digits = match radix {
                16 => digits.trim_start_matches("0x"),
                8 => digits.trim_start_matches("0o"),
                2 => digits.trim_start_matches("0b"),
                _ => digits,
            };
            match i64::from_str_radix(digits, radix) {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(i.as_str().to_string()),
            }
        }
        DeValue::Float(f) => {
            let s = f.as_str().replace('_', "");
            s.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(s))
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| de_to_json(x.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), de_to_json(v.get_ref())))
                .collect(),
        ),
    }
}

/// Converts a `toml::Value` (from plain data files) to JSON.
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// `mode = 0644` (unquoted, as Salt and Ansible users write it) is no TOML
/// number: the parser says "unexpected leading zero". The hint says what
/// to write instead, with the author's digits.
pub(crate) fn leading_zero_hint(
    text: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<String> {
    if !message.contains("leading zero") {
        return None;
    }
    let at = span?.start;
    // The number the error points into: back to its start, on to its end.
    let start = text[..at.min(text.len())]
        .rfind(|c: char| !(c.is_ascii_digit() || c == '_'))
        .map_or(0, |i| i + 1);
    let len = text[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len() - start);
    let digits = &text[start..start + len];
    if digits.len() < 2 || !digits.starts_with('0') {
        return None;
    }
    let line = &text[text[..start].rfind('\n').map_or(0, |i| i + 1)..start];
    let key = line.trim_end().trim_end_matches('=').trim_end();
    Some(if key.trim_matches('"').ends_with("mode") {
        format!("quote it: \"{digits}\" (a mode is a string of octal digits; TOML numbers cannot start with 0)")
    } else {
        format!("TOML numbers cannot start with 0; if the zero matters, quote it: \"{digits}\"")
    })
}

#[cfg(test)]
mod tests {
    use super::rendered_note;

    #[test]
    fn rendered_lines_show_in_states_without_secrets() {
        let (n, hidden) = rendered_note("v = \"a\"b\"\n", "v = \"{{ x }}\"", 3, "v = \"a\"b\"");
        assert_eq!(n, "rendered line 3: v = \"a\"b\"");
        assert!(!hidden);
    }

    #[test]
    fn template_output_is_hidden_where_a_secret_may_be_declared() {
        // Every way TOML can write the key `secret` hides the output.
        for text in [
            "secret = true\nv = \"s3\"\n",
            "x = { \"secret\" = true }\n",
            "'secret' = true\n",
            "\"\\u0073ecret\" = true\n",
            "\"\\U00000073ecret\" = true\n",
            "\"\\x73ecret\" = true\n",
        ] {
            let (n, hidden) = rendered_note(text, "v = \"{{ x }}\" # end", 2, "v = \"s3\" # end");
            assert!(hidden, "{text}");
            assert!(!n.contains("s3"), "{text}: {n}");
            assert!(n.ends_with("v = \"‹template output hidden›\" # end"), "{n}");
        }
        // When the rendered line is not the source's text around template
        // output, none of it is shown.
        let (n, _) = rendered_note("secret = true", "a = {{ x }}", 4, "s3cret value");
        assert_eq!(
            n,
            "rendered line 4 is not shown: this state may declare secret resources, and it holds template output"
        );
        let (n, _) = rendered_note("secret = true", "a = \"{{ x }}\"", 4, "b = \"s3\"");
        assert!(!n.contains("s3"), "{n}");
    }
}
