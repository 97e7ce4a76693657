//! The agent's own files in its state directory (not the host's files,
//! which go through `cfgm_modules::Host`): the last report and a bounded
//! history of reports, written so a reader never sees half of one.

use std::path::Path;

/// How many reports `STATE_DIR/reports/history/` keeps (oldest removed).
pub const HISTORY_KEPT: usize = 50;

/// Keeps the report (its JSON, see `converge::report_json`) as
/// STATE_DIR/reports/last.json and in the history: written once, the
/// history entry a second name of the same file (last.json is only ever
/// replaced by a rename, never written in place).
pub fn save_report(state_dir: &Path, json: &[u8], status: &str) {
    let reports = state_dir.join("reports");
    let last = reports.join("last.json");
    write_state_bytes(&last, json);
    let history = reports.join("history");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let entry = history.join(format!("{stamp:020}-{status}.json"));
    let linked =
        std::fs::create_dir_all(&history).is_ok() && std::fs::hard_link(&last, &entry).is_ok();
    if !linked {
        write_state_bytes(&entry, json);
    }
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
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write_state_bytes(path, &bytes);
}

/// [`write_state_file`] of bytes as they are; whether they were written.
///
/// The temporary is this process's own (`.NAME.PID.tmp`), made new
/// (`O_EXCL`: a symlink planted under its name is never followed) after
/// removing what a killed process of the same pid left; a file renamed
/// into place is never written again, so a reader that mapped it sees it
/// whole.
pub fn write_state_bytes(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Write as _;
    let Some(dir) = path.parent() else {
        return false;
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::create_dir_all(dir).is_ok()
        && std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .is_ok()
        && std::fs::rename(&tmp, path).is_ok();
    if !written {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Opens one of the agent's own files to read it: a regular file only,
/// never through a final symlink, never blocking on a FIFO (a state
/// directory may lie inside a host root that is not trusted).
pub fn open_state_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}
