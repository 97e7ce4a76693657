//! The agent's own files in its state directory (not the host's files,
//! which go through `cfgm_modules::Host`): the last report and a bounded
//! history of reports, written so a reader never sees half of one.

use std::path::Path;

/// How many reports `STATE_DIR/reports/history/` keeps (oldest removed).
pub const HISTORY_KEPT: usize = 50;

/// Keeps the report as STATE_DIR/reports/last.json and in the history.
pub fn save_report(state_dir: &Path, json: &serde_json::Value) {
    let text = format!("{json:#}");
    let reports = state_dir.join("reports");
    write_state_file(&reports.join("last.json"), &text);
    let history = reports.join("history");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let status = json["status"].as_str().unwrap_or("run");
    write_state_file(&history.join(format!("{stamp:020}-{status}.json")), &text);
    prune(&history, HISTORY_KEPT);
}

/// The reports in the history, oldest first.
pub fn history(state_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(state_dir.join("reports/history"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn prune(dir: &Path, keep: usize) {
    let mut v: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => return,
    };
    v.sort();
    let json: Vec<_> = v
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    for old in json.iter().take(json.len().saturating_sub(keep)) {
        let _ = std::fs::remove_file(old);
    }
}

/// Writes one of the agent's own files atomically (temporary name, then
/// rename). Best effort: the run's outcome does not depend on it.
pub fn write_state_file(path: &Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, format!("{text}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}
