//! Refresh debts on disk: `STATE_DIR/owed-refresh.json`.
//!
//! The engine records a debt before the change that makes a refresh due and
//! clears it once the refresh ran (see `cfgm_core::engine::DebtLedger`);
//! this file is where those debts survive a killed run. Every update is
//! durable (temporary file, fsync, rename, fsync of the directory), so after
//! a crash the file holds the set before or after the update, never a torn
//! one. The file holds a JSON list of resource ids; it is removed when empty.

use cfgm_core::engine::DebtLedger;
use cfgm_core::ResourceId;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct FileLedger {
    path: PathBuf,
    /// The debts, and whether the file holds exactly them.
    owed: Mutex<(BTreeSet<ResourceId>, bool)>,
}

impl FileLedger {
    /// The ledger of a state directory, with the debts earlier runs left.
    pub fn open(state_dir: &Path) -> FileLedger {
        let path = state_dir.join("owed-refresh.json");
        let owed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<ResourceId>>(&t).ok())
            .unwrap_or_default()
            .into_iter()
            .collect();
        FileLedger {
            path,
            owed: Mutex::new((owed, true)),
        }
    }

    /// The debts as loaded (or as last written).
    pub fn owed(&self) -> BTreeSet<ResourceId> {
        self.owed.lock().expect("ledger").0.clone()
    }

    /// Replaces the debts with the run's final account (no write when the
    /// file already holds it: a run with no debt touches nothing).
    pub fn settle(&self, owed: &[ResourceId]) -> std::io::Result<()> {
        let mut held = self.owed.lock().expect("ledger");
        let set: BTreeSet<ResourceId> = owed.iter().cloned().collect();
        if held.1 && held.0 == set {
            return Ok(());
        }
        held.0 = set;
        held.1 = false;
        self.write(&held.0)?;
        held.1 = true;
        Ok(())
    }

    fn write(&self, set: &BTreeSet<ResourceId>) -> std::io::Result<()> {
        if set.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => sync_dir(&self.path),
                // Nothing to remove: an earlier removal was made durable
                // when it was made.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
        }
        let list: Vec<&ResourceId> = set.iter().collect();
        let text = serde_json::to_string_pretty(&list).map_err(std::io::Error::other)?;
        write_durable(&self.path, text.as_bytes())
    }
}

impl DebtLedger for FileLedger {
    fn owe(&self, ids: &[ResourceId]) -> Result<(), String> {
        let mut held = self.owed.lock().expect("ledger");
        let before = held.0.len();
        held.0.extend(ids.iter().cloned());
        if held.0.len() == before && held.1 {
            return Ok(()); // already owed, already on disk
        }
        held.1 = false;
        self.write(&held.0)
            .map_err(|e| format!("write {}: {e}", self.path.display()))?;
        held.1 = true;
        Ok(())
    }

    fn paid(&self, id: &ResourceId) {
        let mut held = self.owed.lock().expect("ledger");
        if held.0.remove(id) {
            // Best effort: a debt left on disk only repeats a refresh.
            held.1 = self.write(&held.0).is_ok();
        }
    }
}

/// Writes a file so that a crash leaves the old or the new content.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(d) => std::fs::File::open(d)?.sync_all(),
        None => Ok(()),
    }
}
