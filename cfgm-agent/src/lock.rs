//! The run lock: one converge at a time per state directory.
//!
//! An exclusive `flock` on `STATE_DIR/lock`, held for the whole run and
//! released by the kernel when the process exits (also when it is killed),
//! so a crashed run never leaves a stale lock. The holder's pid is written
//! into the file for the message a second run prints.

use crate::converge::RunError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(state_dir: &Path) -> Result<RunLock, RunError> {
        let io = |what: &str, e: std::io::Error| RunError::Io(format!("{what}: {e}"));
        std::fs::create_dir_all(state_dir).map_err(|e| {
            io(
                &format!("create state directory {}", state_dir.display()),
                e,
            )
        })?;
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&format!("open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(RunError::Busy(format!(
                    "another cfgm-agent run holds {}{}; not starting a second one",
                    path.display(),
                    if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    }
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(&format!("lock {}", path.display()), e)),
        }
        let mut write_pid = || -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{}", std::process::id())?;
            file.flush()
        };
        write_pid().map_err(|e| io(&format!("write {}", path.display()), e))?;
        Ok(RunLock { _file: file })
    }
}
