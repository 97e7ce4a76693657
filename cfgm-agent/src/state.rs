//! The agent's own files in its state directory (not the host's files,
//! which go through `cfgm_modules::Host`): the last report and a bounded
//! history of reports, written so a reader never sees half of one.

use std::path::Path;

pub use cfgm_modules::statefile::{open_state_file, write_state_bytes};

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
    let mut kept = entries(&history);
    let newest = kept
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .split('-')
                .next()?
                .parse::<u128>()
                .ok()
        })
        .max();
    let stamp = cfgm_modules::statefile::stamp_after(newest);
    let entry = history.join(format!("{stamp:020}-{status}.json"));
    let linked =
        std::fs::create_dir_all(&history).is_ok() && std::fs::hard_link(&last, &entry).is_ok();
    if linked || write_state_bytes(&entry, json) {
        kept.push(entry);
    }
    for old in kept.iter().take(kept.len().saturating_sub(HISTORY_KEPT)) {
        let _ = std::fs::remove_file(old);
    }
}

/// The reports in the history, oldest first (their names sort by time).
pub fn history(state_dir: &Path) -> Vec<std::path::PathBuf> {
    entries(&state_dir.join("reports/history"))
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => return Vec::new(),
    };
    v.sort();
    v
}

/// Writes one of the agent's own files atomically (temporary name, then
/// rename). Best effort: the run's outcome does not depend on it.
pub fn write_state_file(path: &Path, text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write_state_bytes(path, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_bounded_and_a_clock_stepped_back_keeps_its_order() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..HISTORY_KEPT + 5 {
            save_report(t.path(), format!("{{\"run\":{i}}}").as_bytes(), "ok");
        }
        let h = history(t.path());
        assert_eq!(h.len(), HISTORY_KEPT);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&h[0]), "{\"run\":5}");
        assert_eq!(
            read(h.last().unwrap()),
            format!("{{\"run\":{}}}", HISTORY_KEPT + 4)
        );
        // A report kept while the clock ran a year ahead: the next run's
        // report still sorts last, and the oldest one is the one dropped.
        let ahead = (std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 86400))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let planted = t
            .path()
            .join(format!("reports/history/{ahead:020}-ok.json"));
        std::fs::write(&planted, "{\"run\":\"ahead\"}").unwrap();
        save_report(t.path(), b"{\"run\":\"now\"}", "ok");
        let h = history(t.path());
        assert_eq!(h.len(), HISTORY_KEPT);
        assert_eq!(read(h.last().unwrap()), "{\"run\":\"now\"}");
        assert_eq!(read(&h[h.len() - 2]), "{\"run\":\"ahead\"}");
        assert_eq!(read(&h[0]), "{\"run\":7}");
    }
}
