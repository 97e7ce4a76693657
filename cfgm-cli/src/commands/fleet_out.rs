//! Rendering a fleet's changes (`cfgm diff`, `cfgm plan`): for people, as
//! the versioned JSON, or as GitHub Actions annotations.

use crate::ui::Ui;
use cfgm_core::fleet::{host_patterns, Action, FleetChanges};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
}

impl Format {
    /// `--json` is a shorthand for `--format json`.
    pub fn or_json(self, json: bool) -> Format {
        if json {
            Format::Json
        } else {
            self
        }
    }
}

/// `prefix`: where the tree is in the repository, so annotations name
/// files as the repository does.
pub fn render(ui: &Ui, out: &FleetChanges, format: Format, prefix: &str) {
    match format {
        Format::Text => ui.out(&out.to_text(ui.color_out)),
        Format::Json => ui.out(&format!(
            "{}\n",
            serde_json::to_string_pretty(out).unwrap_or_default()
        )),
        Format::Github => ui.out(&github(out, prefix)),
    }
}

/// Escapes a workflow-command value (GitHub's rules for data and properties).
fn esc(s: &str, property: bool) -> String {
    let mut o = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        o = o.replace(':', "%3A").replace(',', "%2C");
    }
    o
}

/// Compile problems as `::error` and each group's resource changes as
/// `::notice`/`::warning` at the line that declares the resource.
pub fn github(out: &FleetChanges, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let path = |f: &str| {
        if prefix.is_empty() {
            f.to_string()
        } else {
            format!("{prefix}/{f}")
        }
    };
    let mut s = String::new();
    for d in &out.diagnostics {
        let label = d["labels"].as_array().and_then(|l| l.first());
        let msg = d["message"].as_str().unwrap_or("");
        match label {
            Some(l) => s.push_str(&format!(
                "::error file={},line={},col={}::{}\n",
                esc(&path(l["file"].as_str().unwrap_or("")), true),
                l["line"],
                l["column"],
                esc(msg, false)
            )),
            None => s.push_str(&format!("::error::{}\n", esc(msg, false))),
        }
    }
    for h in &out.hosts {
        if h.status == cfgm_core::fleet::HostStatus::Failed {
            s.push_str(&format!(
                "::error title={}::{}\n",
                esc(&format!("{} does not compile", h.name), true),
                esc(h.reason.as_deref().unwrap_or(""), false)
            ));
        }
    }
    for g in &out.groups {
        let who = format!(
            "{} host{} ({})",
            g.hosts.len(),
            if g.hosts.len() == 1 { "" } else { "s" },
            host_patterns(&g.hosts, 4)
        );
        for c in &g.changes {
            let level = match c.action {
                Action::Fail => "error",
                Action::Remove => "warning",
                _ => "notice",
            };
            let what = match c.action {
                Action::Add => "added",
                Action::Remove => "removed",
                Action::Modify => "modified",
                Action::Change => "would change",
                Action::Unknown => "unknown until apply",
                Action::Fail => "would fail",
            };
            let attrs: Vec<&str> = c.changes.iter().map(|x| x.attr.as_str()).collect();
            let mut body = format!("{} {what} on {who}", c.id);
            if !attrs.is_empty() {
                body.push_str(&format!(": {}", attrs.join(", ")));
            }
            if let Some(r) = &c.reason {
                body.push_str(&format!(" — {r}"));
            }
            match &c.origin {
                Some(o) if o.line > 0 => s.push_str(&format!(
                    "::{level} file={},line={},col={},title={}::{}\n",
                    esc(&path(&o.file), true),
                    o.line,
                    o.column,
                    esc(&c.id.to_string(), true),
                    esc(&body, false)
                )),
                _ => s.push_str(&format!("::{level}::{}\n", esc(&body, false))),
            }
        }
    }
    let sm = &out.summary;
    s.push_str(&format!(
        "::notice title=cfgm {}::{} hosts: {} changed, {} unchanged, {} resource changes\n",
        out.kind, sm.all.hosts, sm.all.changed, sm.all.unchanged, sm.resource_changes
    ));
    s
}
