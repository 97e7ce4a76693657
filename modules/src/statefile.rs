//! The agent's own files in its state directory (reports, the catalog
//! cache, tokens): written whole by a rename, read without following a
//! symlink or blocking on a FIFO. A state directory may lie inside a host
//! root, which is not trusted, so neither side trusts what is there.
//!
//! It owns only these primitives; what the files hold and when they
//! are written belongs to their owners (`cfgm-agent`'s `state`, and
//! [`crate::host`]'s no-temporaries token). It never touches a host's
//! managed files, which go through [`crate::Host`].

use std::path::Path;

/// Writes `bytes` at `path` whole; whether they were written. Best effort:
/// a run's outcome never depends on one of these files.
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

/// Opens a state file to read it, with its metadata: a regular file only,
/// never through a final symlink, never blocking on a FIFO.
pub fn open_state_file(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((f, meta))
}

/// A name stamp for a file of a series kept in time order (backups, the
/// report history): the time in nanoseconds, but always after `newest`, the
/// largest stamp of the series. A clock stepped back (NTP at boot) must not
/// sort a new file first, where pruning the oldest would take it.
pub fn stamp_after(newest: Option<u128>) -> u128 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    newest.map_or(now, |n| now.max(n + 1))
}
