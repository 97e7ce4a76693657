//! The host a catalog is converged on: a root directory ("/" for this
//! machine, or a host root filesystem mounted elsewhere), read-only and
//! writable views of it.
//!
//! [`HostRead`] is what `observe` gets: it reads files and runs query
//! commands, never changes anything. [`Host`] (which derefs to `HostRead`)
//! is what `apply` and `refresh` get: atomic file writes with backups and
//! mutating commands. With a root other than "/", paths resolve under the
//! root and commands run through `chroot ROOT`, so tests and the demo never
//! touch the machine they run on. Commands are argument vectors, never
//! shell strings (except where the `cmd` kind's job is a shell).

use cfgm_core::ModuleError;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many previous versions of a file the backup directory keeps.
pub const BACKUPS_KEPT: usize = 5;

/// A read-only view of a host.
#[derive(Clone, Debug)]
pub struct HostRead {
    root: PathBuf,
    state_dir: PathBuf,
    /// Parsed `/etc/passwd` and `/etc/group`, reused while the file is
    /// unchanged: every path resource names its owner and group, and
    /// re-reading both files per resource dominated a no-op run.
    dbs: DbCache,
}

/// What identifies one version of a file: inode, size, modification time.
type DbStamp = (u64, u64, i64, i64);

/// Parsed account databases by path, with the version they were read at.
type DbCache = Arc<Mutex<HashMap<&'static str, (DbStamp, Arc<Vec<Vec<String>>>)>>>;

/// A writable view of a host.
#[derive(Clone, Debug)]
pub struct Host {
    read: HostRead,
}

impl std::ops::Deref for Host {
    type Target = HostRead;
    fn deref(&self) -> &HostRead {
        &self.read
    }
}

/// Maps an I/O error of an operation on a path.
pub fn io_err<'a>(
    op: &'static str,
    path: &'a str,
) -> impl FnOnce(std::io::Error) -> ModuleError + 'a {
    move |source| ModuleError::Io {
        op,
        path: path.to_string(),
        source,
    }
}

/// A file's ownership and permission bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub is_file: bool,
    pub is_dir: bool,
    pub is_symlink: bool,
}

impl HostRead {
    /// `root`: the host's root directory; `state_dir`: the agent's state
    /// directory (outside or inside the root), for backups.
    pub fn new(root: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        HostRead {
            root: root.into(),
            state_dir: state_dir.into(),
            dbs: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether the root is another filesystem than this machine's "/".
    pub fn is_chroot(&self) -> bool {
        self.root != Path::new("/")
    }

    /// A host path (absolute, as in the catalog) on this machine.
    /// Only normal components are joined: whatever a path says, it stays
    /// under the root (`..` is dropped, not followed).
    pub fn path(&self, p: &str) -> PathBuf {
        let mut out = self.root.clone();
        for c in Path::new(p).components() {
            if let std::path::Component::Normal(n) = c {
                out.push(n);
            }
        }
        out
    }

    /// A file's bytes; `None` when it does not exist.
    pub fn read(&self, p: &str) -> Result<Option<Vec<u8>>, ModuleError> {
        match std::fs::read(self.path(p)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", p)(e)),
        }
    }

    /// Metadata without following a final symlink; `None` when absent.
    pub fn lstat(&self, p: &str) -> Result<Option<Meta>, ModuleError> {
        match std::fs::symlink_metadata(self.path(p)) {
            Ok(m) => Ok(Some(Meta {
                mode: m.permissions().mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                is_file: m.file_type().is_file(),
                is_dir: m.file_type().is_dir(),
                is_symlink: m.file_type().is_symlink(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", p)(e)),
        }
    }

    pub fn read_link(&self, p: &str) -> Result<Option<String>, ModuleError> {
        match std::fs::read_link(self.path(p)) {
            Ok(t) => Ok(Some(t.to_string_lossy().into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(None),
            Err(e) => Err(io_err("readlink", p)(e)),
        }
    }

    /// Entries of a directory (names), sorted.
    pub fn list_dir(&self, p: &str) -> Result<Vec<String>, ModuleError> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(p))
            .map_err(io_err("list", p))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    /// A command to run on the host: directly for "/", through chroot otherwise,
    /// with a fixed, minimal environment.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Command {
        let mut c = if self.is_chroot() {
            let mut c = Command::new("chroot");
            c.arg(&self.root).args(argv);
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("HOME", "/root")
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to *read* host state; its exit status is returned,
    /// not judged (`dpkg-query` exits 1 for an unknown package).
    pub fn query<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output, ModuleError> {
        run_with_timeout(self.command(argv), argv, Duration::from_secs(120))
    }

    /// `/etc/passwd` or `/etc/group` entries of the host: (name, id, fields).
    fn db(&self, file: &'static str) -> Result<Arc<Vec<Vec<String>>>, ModuleError> {
        let stamp = match std::fs::metadata(self.path(file)) {
            Ok(m) => (m.ino(), m.len(), m.mtime(), m.mtime_nsec()),
            Err(_) => (0, 0, 0, 0),
        };
        if let Some((st, db)) = self.dbs.lock().expect("db cache").get(file) {
            if *st == stamp {
                return Ok(db.clone());
            }
        }
        let text = self.read(file)?.unwrap_or_default();
        let db: Arc<Vec<Vec<String>>> = Arc::new(
            String::from_utf8_lossy(&text)
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split(':').map(str::to_string).collect())
                .collect(),
        );
        self.dbs
            .lock()
            .expect("db cache")
            .insert(file, (stamp, db.clone()));
        Ok(db)
    }

    /// A user's passwd fields (name, x, uid, gid, gecos, home, shell).
    pub fn passwd(&self, name: &str) -> Result<Option<Vec<String>>, ModuleError> {
        Ok(self
            .db("/etc/passwd")?
            .iter()
            .find(|f| f.first().map(String::as_str) == Some(name))
            .cloned())
    }

    /// A group's fields (name, x, gid, members).
    pub fn group(&self, name: &str) -> Result<Option<Vec<String>>, ModuleError> {
        Ok(self
            .db("/etc/group")?
            .iter()
            .find(|f| f.first().map(String::as_str) == Some(name))
            .cloned())
    }

    /// Every group's fields.
    pub fn groups(&self) -> Result<Vec<Vec<String>>, ModuleError> {
        Ok(self.db("/etc/group")?.as_ref().clone())
    }

    pub fn uid(&self, user: &str) -> Result<Option<u32>, ModuleError> {
        Ok(self.passwd(user)?.and_then(|f| f.get(2)?.parse().ok()))
    }

    pub fn gid(&self, group: &str) -> Result<Option<u32>, ModuleError> {
        Ok(self.group(group)?.and_then(|f| f.get(2)?.parse().ok()))
    }

    pub fn user_name(&self, uid: u32) -> Result<String, ModuleError> {
        Ok(self
            .db("/etc/passwd")?
            .iter()
            .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
            .and_then(|f| f.first().cloned())
            .unwrap_or_else(|| uid.to_string()))
    }

    pub fn group_name(&self, gid: u32) -> Result<String, ModuleError> {
        Ok(self
            .db("/etc/group")?
            .iter()
            .find(|f| f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(gid))
            .and_then(|f| f.first().cloned())
            .unwrap_or_else(|| gid.to_string()))
    }

    /// Whether the host runs systemd as PID 1. A root other than "/" is
    /// not booted here, so it never does.
    pub fn systemd(&self) -> bool {
        !self.is_chroot() && Path::new("/run/systemd/system").is_dir()
    }
}

impl Host {
    pub fn new(root: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Host {
            read: HostRead::new(root, state_dir),
        }
    }

    pub fn read_only(&self) -> &HostRead {
        &self.read
    }

    /// Runs a command that changes the host; a non-zero exit is an error
    /// carrying the command and the end of its stderr.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output, ModuleError> {
        self.run_cmd(self.command(argv), argv, Duration::from_secs(1800))
    }

    /// Runs a prepared command (see [`HostRead::command`]) with a timeout.
    pub fn run_cmd<S: AsRef<OsStr>>(
        &self,
        cmd: Command,
        argv: &[S],
        timeout: Duration,
    ) -> Result<Output, ModuleError> {
        let out = run_with_timeout(cmd, argv, timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(command_error(argv, &out))
        }
    }

    /// Writes a file atomically: a temporary file in the same directory,
    /// fsync, rename over the target, fsync the directory. A crash at any
    /// instant leaves the old file or the new one, never a torn one. The
    /// previous content, if any, is kept in the backup directory first.
    pub fn write_atomic(
        &self,
        p: &str,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), ModuleError> {
        self.safe_parents(p)?;
        let target = self.path(p);
        let dir = target
            .parent()
            .ok_or_else(|| ModuleError::Invalid(format!("{p}: no parent directory")))?;
        if !dir.is_dir() {
            return Err(ModuleError::Invalid(format!(
                "parent directory {} does not exist (declare a directory resource for it)",
                Path::new(p)
                    .parent()
                    .map(|x| x.display().to_string())
                    .unwrap_or_default()
            )));
        }
        self.backup(p)?;
        // One temporary name per target: a run killed mid-write leaves at
        // most this file, which the next write (or `file`'s cleanup) removes.
        // Removed first and created exclusively, so a planted symlink is
        // never followed.
        let tmp = temp_path(&target);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err("remove stale temporary of", p)(e))
            }
            _ => {}
        }
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_compat(0o600)
                .open(&tmp)
                .map_err(io_err("create", p))?;
            f.write_all(content).map_err(io_err("write", p))?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err("chown", p))?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", p))?;
            f.sync_all().map_err(io_err("fsync", p))?;
            drop(f);
            std::fs::rename(&tmp, &target).map_err(io_err("rename", p))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync directory of", p))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Keeps the current content of a file in `STATE_DIR/backups/`, at most
    /// [`BACKUPS_KEPT`] versions per path.
    pub fn backup(&self, p: &str) -> Result<(), ModuleError> {
        let src = self.path(p);
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            return Ok(());
        };
        if !meta.is_file() {
            return Ok(());
        }
        let dir = self
            .state_dir()
            .join("backups")
            .join(p.trim_start_matches('/').replace('/', "%"));
        std::fs::create_dir_all(&dir).map_err(io_err("create backup directory for", p))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::fs::copy(&src, dir.join(format!("{stamp:024}"))).map_err(io_err("back up", p))?;
        let mut kept: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_err("list backups of", p))?
            .flatten()
            .map(|e| e.path())
            .collect();
        kept.sort();
        while kept.len() > BACKUPS_KEPT {
            let old = kept.remove(0);
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// Refuses to work through a directory symlink that is not root's: a
    /// user who owns a directory on the way (a home, `/tmp`) could otherwise
    /// point it anywhere and have root write, chmod or chown there. Root's
    /// own symlinks (`/lib` → `usr/lib`, `/var/run` → `/run`) are fine. A
    /// user who swaps a directory for a symlink *between* this check and
    /// the write is not stopped (that would need openat on every component).
    pub fn safe_parents(&self, p: &str) -> Result<(), ModuleError> {
        let mut at = self.root().to_path_buf();
        let comps: Vec<_> = Path::new(p)
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_owned()),
                _ => None,
            })
            .collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() && m.uid() != 0 => {
                    return Err(ModuleError::Invalid(format!(
                        "{p}: {} is a symlink owned by uid {}; refusing to follow it",
                        at.strip_prefix(self.root())
                            .map(|r| format!("/{}", r.display()))
                            .unwrap_or_default(),
                        m.uid()
                    )))
                }
                Ok(_) => {}
                Err(_) => break, // missing: nothing further to follow
            }
        }
        Ok(())
    }

    pub fn chmod(&self, p: &str, mode: u32) -> Result<(), ModuleError> {
        self.safe_parents(p)?;
        if self.lstat(p)?.is_some_and(|m| m.is_symlink) {
            return Err(ModuleError::Invalid(format!(
                "{p} is a symlink; not changing the mode of its target"
            )));
        }
        std::fs::set_permissions(self.path(p), std::fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", p))
    }

    /// Changes owner and group without following a final symlink.
    pub fn chown(&self, p: &str, uid: Option<u32>, gid: Option<u32>) -> Result<(), ModuleError> {
        self.safe_parents(p)?;
        std::os::unix::fs::lchown(self.path(p), uid, gid).map_err(io_err("chown", p))
    }

    /// Removes a file or symlink (after backing a file up).
    pub fn remove_file(&self, p: &str) -> Result<(), ModuleError> {
        self.safe_parents(p)?;
        self.backup(p)?;
        match std::fs::remove_file(self.path(p)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", p)(e)),
            _ => Ok(()),
        }
    }
}

/// The temporary file a write of `target` goes through: `.NAME.cfgm-new`
/// beside it.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.cfgm-new"))
}

/// Opening with a mode portable across std versions.
trait ModeCompat {
    fn mode_compat(&mut self, mode: u32) -> &mut Self;
}

impl ModeCompat for std::fs::OpenOptions {
    fn mode_compat(&mut self, mode: u32) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, mode)
    }
}

/// The argv of a command as a person would type it.
pub fn argv_string<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.as_ref().to_string_lossy();
            if s.is_empty() || s.contains([' ', '"', '\'', '$', '\\']) {
                format!("'{}'", s.replace('\'', "'\\''"))
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A failed command as an error: the command, its status and the last
/// lines of its stderr (or stdout when stderr is empty).
pub fn command_error<S: AsRef<OsStr>>(argv: &[S], out: &Output) -> ModuleError {
    let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
    ModuleError::Command {
        argv: argv_string(argv),
        status: match out.status.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        },
        stderr: tail,
    }
}

/// Runs a command, killing it after `timeout`.
pub fn run_with_timeout<S: AsRef<OsStr>>(
    mut cmd: Command,
    argv: &[S],
    timeout: Duration,
) -> Result<Output, ModuleError> {
    let name = argv_string(argv);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ModuleError::Other(format!("cannot run `{name}`: {e}")))?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let to = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut b);
        b
    });
    let te = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut b);
        b
    });
    // A watchdog kills the command at the timeout; dropping `done` stops it.
    let pid = child.id();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = timed_out.clone();
    let dog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let status = child.wait();
    drop(done);
    let _ = dog.join();
    let status = status.map_err(|e| ModuleError::Other(format!("waiting for `{name}`: {e}")))?;
    if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ModuleError::Other(format!(
            "`{name}` timed out after {} s",
            timeout.as_secs()
        )));
    }
    Ok(Output {
        status,
        stdout: to.join().unwrap_or_default(),
        stderr: te.join().unwrap_or_default(),
    })
}
