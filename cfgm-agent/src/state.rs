//! The agent's own files in its state directory (not the host's files,
//! which go through `cfgm_modules::Host`): the last report, written so a
//! reader never sees half of one.

use std::path::Path;

/// Keeps the last report in STATE_DIR/reports/last.json.
pub fn save_report(state_dir: &Path, json: &serde_json::Value) {
    write_state_file(&state_dir.join("reports/last.json"), &format!("{json:#}"));
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
