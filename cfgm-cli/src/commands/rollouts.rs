//! `cfgm rollouts` and `cfgm rollout show ID`: past rollouts from their
//! journals.

use super::apply::default_journal_dir;
use crate::ui::Ui;
use cfgm_cli::rollout::journals;
use cfgm_core::exit;
use cfgm_core::rollout::{HostState, Replayed};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ListArgs {
    /// Where rollout journals are kept.
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// As JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum Rollout {
    /// One rollout: its waves and every host's state.
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
    id: String,
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn outcome(r: &Replayed) -> String {
    match (&r.finished, r.interrupted) {
        (Some(o), _) => o.clone(),
        (None, true) => "interrupted".into(),
        (None, false) => "running or killed".into(),
    }
}

fn counts(r: &Replayed) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for (s, _) in r.hosts.values() {
        match s {
            HostState::Converged | HostState::Planned => c.0 += 1,
            HostState::Failed => c.1 += 1,
            _ => c.2 += 1,
        }
    }
    c
}

pub fn list(ui: &Ui, a: ListArgs) -> anyhow::Result<u8> {
    let dir = a.journal_dir.unwrap_or_else(default_journal_dir);
    let mut rows = Vec::new();
    for (id, path) in journals(&dir) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(r) = Replayed::from_lines(&text) else {
            continue;
        };
        rows.push(r);
        let _ = id;
    }
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let (ok, failed, pending) = counts(r);
                serde_json::json!({"id": r.id, "commit": r.commit, "time": r.time, "dry_run": r.dry_run,
                    "outcome": outcome(r), "ok": ok, "failed": failed, "pending": pending})
            })
            .collect();
        ui.out(&format!("{}\n", serde_json::Value::Array(v)));
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        ui.out(&format!("no rollouts in {}\n", dir.display()));
        return Ok(exit::OK);
    }
    ui.out(&ui.bold(&format!(
        "{:<32} {:<12} {:<18} {:>5} {:>7} {:>8}\n",
        "rollout", "commit", "outcome", "ok", "failed", "pending"
    )));
    for r in &rows {
        let (ok, failed, pending) = counts(r);
        ui.out(&format!(
            "{:<32} {:<12} {:<18} {ok:>5} {failed:>7} {pending:>8}\n",
            r.id,
            &r.commit[..12.min(r.commit.len())],
            format!(
                "{}{}",
                outcome(r),
                if r.dry_run { " (dry run)" } else { "" }
            )
        ));
    }
    Ok(exit::OK)
}

pub fn show(ui: &Ui, r: Rollout) -> anyhow::Result<u8> {
    let Rollout::Show(a) = r;
    let dir = a.journal_dir.unwrap_or_else(default_journal_dir);
    let path = dir.join(format!("{}.jsonl", a.id));
    let Ok(text) = std::fs::read_to_string(&path) else {
        let known = journals(&dir);
        let hint = cfgm_core::rollout::suggest_id(&a.id, known.iter().map(|(i, _)| i.as_str()))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        ui.error(&format!("no rollout `{}` in {}{hint}", a.id, dir.display()));
        return Ok(exit::FAILED);
    };
    let r = Replayed::from_lines(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Per host, from its last record: the resources that failed and how many changed.
    let mut detail: std::collections::BTreeMap<String, (Vec<String>, u64)> = Default::default();
    for rec in text
        .lines()
        .filter_map(|l| serde_json::from_str::<cfgm_core::rollout::Record>(l).ok())
    {
        if let cfgm_core::rollout::Record::Host {
            host,
            failed_resources,
            changed,
            ..
        } = rec
        {
            detail.insert(host, (failed_resources, changed));
        }
    }
    if a.json {
        let waves: Vec<serde_json::Value> = r
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| {
                serde_json::json!({
                    "name": w.wave.name, "halted": r.done.get(&i),
                    "hosts": w.hosts.iter().map(|h| {
                        let (s, why) = r.hosts.get(h).cloned().unwrap_or((HostState::Pending, None));
                        let (failed, changed) = detail.get(h).cloned().unwrap_or_default();
                        serde_json::json!({"host": h, "state": s, "reason": why,
                                           "changed": changed, "failed_resources": failed})
                    }).collect::<Vec<_>>()
                })
            })
            .collect();
        ui.out(&format!(
            "{}\n",
            serde_json::json!({"id": r.id, "commit": r.commit, "outcome": outcome(&r), "waves": waves})
        ));
        return Ok(exit::OK);
    }
    ui.out(&ui.bold(&format!(
        "rollout {} of {}: {}\n",
        r.id,
        r.commit,
        outcome(&r)
    )));
    for (i, w) in r.waves.iter().enumerate() {
        let status = match r.done.get(&i) {
            Some(true) => "halted",
            Some(false) => "done",
            None => "not finished",
        };
        ui.out(&format!("  wave {} · {} ({status})\n", i + 1, w.wave.name));
        for h in &w.hosts {
            let (s, why) = r
                .hosts
                .get(h)
                .cloned()
                .unwrap_or((HostState::Pending, None));
            ui.out(&format!(
                "      {h:<16} {:<10} {}\n",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                why.unwrap_or_default()
            ));
            for res in detail.get(h).map(|d| d.0.as_slice()).unwrap_or_default() {
                ui.out(&format!("          {res}\n"));
            }
        }
    }
    Ok(exit::OK)
}
