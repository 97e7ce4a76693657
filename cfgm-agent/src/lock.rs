//! The run lock: one converge at a time per state directory.
//!
//! An exclusive `flock` on `STATE_DIR/lock`, held for the whole run and
//! released by the kernel when the process exits (also when it is killed),
//! so a crashed run never leaves a stale lock. The holder's pid is written
//! into the file for the message a second run prints.
//!
//! A process forked by a run (a command's supervisor, before it closes
//! what it inherited) shares the lock for an instant; if the run is killed
//! then, the lock outlives it by that instant. A run that finds the lock
//! held while the pid in the file is gone waits for it (at most
//! [`ORPHAN_WAIT`]) instead of refusing: the holder is a leftover child of
//! a run that ended, not a second run.

use crate::converge::RunError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// How long a run waits for a lock whose recorded holder has exited.
pub const ORPHAN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the lock; when it is held and the run that wrote its pid is gone,
/// tries again until [`ORPHAN_WAIT`] has passed.
fn lock_or_wait_for_orphans(file: &File) -> Result<(), TryLockError> {
    let t0 = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if t0.elapsed() < ORPHAN_WAIT && !holder_alive(file) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Whether the process whose pid the lock file holds still runs (no pid:
/// assumed to, so that a second run is refused as before).
fn holder_alive(mut file: &File) -> bool {
    let mut pid = String::new();
    if file.rewind().is_err() || file.read_to_string(&mut pid).is_err() {
        return true;
    }
    match pid.trim().parse::<u32>() {
        Ok(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => true,
    }
}

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
        match lock_or_wait_for_orphans(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = (&file).rewind();
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
