//! The host a catalog is converged on: a root directory ("/" for this
//! machine, or a host root filesystem mounted elsewhere), read-only and
//! writable views of it. This is the only door to the host: no kind
//! touches a host path or starts a process except through it.
//!
//! [`HostRead`] is what `observe` gets: it reads files and runs query
//! commands, never changes anything. [`Host`] (which derefs to `HostRead`)
//! is what `apply` and `refresh` get: atomic file writes with backups,
//! directories, symlinks, modes, owners and times, and mutating commands.
//!
//! **Paths resolve inside the root.** The root is opened once as a
//! directory descriptor; every host path is resolved against it by the
//! kernel with `openat2(RESOLVE_IN_ROOT)`, so an absolute symlink, a
//! relative one climbing with `..`, or `..` in the path itself never leads
//! out of the root (`ROOT/var/run -> /run` means `ROOT/run`, whatever the
//! root). Changes are made with `*at` calls on the descriptor of the
//! parent directory, so a path is resolved once and cannot be swapped
//! between a check and its use. Writes also refuse to pass through a
//! directory symlink that is not root's (a user could point it anywhere
//! inside the root); that is checked on descriptors, component by
//! component, only when the path has a symlink on the way. Without
//! `openat2` (Linux < 5.6, or a seccomp filter that forbids it) a host is
//! refused, never handled unconfined. The root "/" takes the same path.
//!
//! **Commands** are argument vectors, never shell strings (except where the
//! `cmd` kind's job is a shell); with a root other than "/" they run
//! through `chroot ROOT`. Each runs in a process group of its own under a
//! small supervisor process that kills the whole group when the agent dies
//! (or the command times out), so no command outlives the run that
//! started it.
//!
//! This module must not know about kinds: it offers file-system and
//! process operations, and the kinds decide what to do with them.

use cfgm_core::ModuleError;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many previous versions of a file the backup directory keeps.
pub const BACKUPS_KEPT: usize = 5;

/// How many symlinks one resolution may follow (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// A read-only view of a host.
#[derive(Clone, Debug)]
pub struct HostRead {
    root: PathBuf,
    /// The root directory, opened once: every host path resolves against it.
    root_fd: Arc<OwnedFd>,
    state_dir: PathBuf,
    /// Parsed `/etc/passwd` and `/etc/group`, reused while the file is
    /// unchanged: every path resource names its owner and group, and
    /// re-reading both files per resource dominated a no-op run. While
    /// nothing has changed the host since (see [`CHANGES`]), not even
    /// stat'ed again.
    dbs: DbCache,
    /// Whether a run killed mid-write can have left temporary files in the
    /// root (see [`Temps`]).
    temps: Arc<Temps>,
    /// The root's /etc, opened (inside the root) once it exists: a
    /// database's version is then one stat in it, not a resolution.
    etc: Arc<std::sync::OnceLock<OwnedFd>>,
}

/// What identifies one version of a file: inode, size, modification time.
type DbStamp = (u64, u64, i64, i64);

/// Parsed account databases by path, with the version they were read at
/// and the count of [`CHANGES`] when that version was last seen.
type DbCache = Arc<Mutex<HashMap<&'static str, (u64, DbStamp, Arc<Vec<Vec<String>>>)>>>;

/// How many operations that may change a host have ended in this process:
/// every [`Host`] method that writes, and every command (a query too: the
/// count is conservative). While it stands still, what was read of the
/// account databases is still what they hold, so a no-op run stats them
/// once, not once per path resource. Process-wide, so one host's change
/// only costs another a stat.
static CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one change in [`CHANGES`] when it ends, however it ends.
struct Changing;

impl Drop for Changing {
    fn drop(&mut self) {
        CHANGES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The state directory's word on temporary files (`.NAME.cfgm-new`) in the
/// root: probing for one beside every managed file costs a path lookup
/// each, and one can only be there when a run died mid-write.
///
/// `STATE_DIR/no-temporaries` (holding the root's device and inode) says
/// that no run working on this root has left one. It is removed, durably
/// (unlink, fsync of the state directory), before a run's first temporary
/// is created, and written again by [`Host::settle_temps`] only after a run
/// in which every resource was observed and nothing failed. So a run that
/// is killed, crashes, or fails leaves no token, and the next one probes
/// every file (and removes what it finds); a run after a clean one does
/// not probe. A token for another root (a state directory moved) counts
/// as none.
#[derive(Debug)]
struct Temps {
    /// The token was there for this root when the host was opened.
    none_at_start: bool,
    /// The token is still there: removed before this run's first temporary.
    token: Mutex<bool>,
    /// The token's path and content.
    path: PathBuf,
    identity: String,
}

/// The token's name in the state directory (see [`Temps`]).
const NO_TEMPS: &str = "no-temporaries";

/// The token's bytes: a regular file of at most 64 bytes (see
/// [`crate::statefile`]: the state directory may lie inside the root).
fn read_token(path: &Path) -> Option<Vec<u8>> {
    let (f, meta) = crate::statefile::open_state_file(path).ok()?;
    if meta.len() > 64 {
        return None;
    }
    let mut t = Vec::new();
    f.take(64).read_to_end(&mut t).ok()?;
    Some(t)
}

impl Temps {
    fn open(root_fd: BorrowedFd, state_dir: &Path) -> Self {
        let identity = match rfs::fstat(root_fd) {
            Ok(st) => format!("{}:{}\n", st.st_dev, st.st_ino),
            Err(_) => String::new(),
        };
        let path = state_dir.join(NO_TEMPS);
        let there =
            !identity.is_empty() && read_token(&path).is_some_and(|t| t == identity.as_bytes());
        Temps {
            none_at_start: there,
            token: Mutex::new(there),
            path,
            identity,
        }
    }
}
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

/// Maps a system call's error of an operation on a path.
fn sys_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> ModuleError + 'a {
    move |e| io_err(op, path)(e.into())
}

/// What [`HostRead::lstat_read`] finds: metadata, and the content of a
/// regular file.
pub type MetaAndContent = (Meta, Option<Vec<u8>>);

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

impl Meta {
    fn of(st: &rfs::Stat) -> Meta {
        let ty = FileType::from_raw_mode(st.st_mode as _);
        Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            is_file: ty == FileType::RegularFile,
            is_dir: ty == FileType::Directory,
            is_symlink: ty == FileType::Symlink,
        }
    }
}

/// A host path relative to the root, as `openat2` takes it.
fn rel(p: &str) -> &str {
    match p.trim_start_matches('/') {
        "" => ".",
        r => r,
    }
}

/// The components of a path that name something (no empty or `.` parts).
fn components(p: &str) -> impl DoubleEndedIterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// A host path split into its parent directory and its last name.
fn split(p: &str) -> Result<(&str, &str), ModuleError> {
    let t = p.trim_end_matches('/');
    let (dir, name) = t.rsplit_once('/').unwrap_or(("", t));
    if name.is_empty() || name == "." || name == ".." {
        return Err(ModuleError::Invalid(format!(
            "{p}: not a path to a name (it must not end in `/`, `.` or `..`)"
        )));
    }
    Ok((dir, name))
}

/// The parent directory of a host path ("/" for a name at the top).
pub fn parent_of(p: &str) -> &str {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((d, _)) => d,
    }
}

/// The error of a write whose parent directory is missing (apply's, and a
/// dry run's that sees it coming).
pub fn missing_parent(p: &str) -> ModuleError {
    ModuleError::Invalid(format!(
        "parent directory {} does not exist (declare a directory resource for it)",
        parent_of(p)
    ))
}

/// The temporary name a write of `name` goes through: `.NAME.cfgm-new`.
fn temp_name(name: &str) -> String {
    format!(".{name}.cfgm-new")
}

/// The temporary file a write of the host path `p` goes through:
/// `.NAME.cfgm-new` beside it.
pub fn temp_path(p: &str) -> String {
    match p.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}", temp_name(name)),
        None => temp_name(p),
    }
}

/// `openat2` confined to `root`: symlinks and `..` never lead above it,
/// magic links (`/proc/PID/fd/…`) are not followed. Retried when the
/// kernel asks to (a rename raced with a `..`).
fn open_in(
    root: BorrowedFd,
    p: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let resolve = resolve | ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    cfgm_core::source::openat2_confined(root, rel(p), flags | OFlags::CLOEXEC, resolve)
}

impl HostRead {
    /// `root`: the host's root directory; `state_dir`: the agent's state
    /// directory (outside or inside the root), for backups. Refuses a
    /// kernel that cannot confine paths to the root.
    fn open(root: PathBuf, state_dir: PathBuf) -> Result<Self, ModuleError> {
        let shown = root.display().to_string();
        let fd = rfs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open root", &shown)(e.into()))?;
        match open_in(
            fd.as_fd(),
            "/",
            OFlags::PATH | OFlags::DIRECTORY,
            ResolveFlags::empty(),
        ) {
            Ok(_) => {}
            Err(e @ (Errno::NOSYS | Errno::PERM | Errno::INVAL)) => {
                return Err(ModuleError::Other(format!(
                    "{shown}: this system cannot confine paths to the root \
                     (openat2 with RESOLVE_IN_ROOT: {e}; Linux 5.6 or later is needed); \
                     refusing to work on the host without it"
                )))
            }
            Err(e) => return Err(io_err("open root", &shown)(e.into())),
        }
        let temps = Arc::new(Temps::open(fd.as_fd(), &state_dir));
        Ok(HostRead {
            root,
            root_fd: Arc::new(fd),
            state_dir,
            dbs: Arc::default(),
            temps,
            etc: Arc::default(),
        })
    }

    fn root_fd(&self) -> BorrowedFd<'_> {
        self.root_fd.as_fd()
    }

    /// Whether the root is another filesystem than this machine's "/".
    pub fn is_chroot(&self) -> bool {
        self.root != Path::new("/")
    }

    /// Opens a host path inside the root, following symlinks (a final one
    /// too, unless `flags` say `NOFOLLOW`).
    fn resolve(&self, p: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        open_in(self.root_fd(), p, flags, ResolveFlags::empty())
    }

    /// A file's bytes; `None` when it does not exist.
    pub fn read(&self, p: &str) -> Result<Option<Vec<u8>>, ModuleError> {
        let fd = match self.resolve(p, OFlags::RDONLY | OFlags::NOCTTY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(sys_err("read", p)(e)),
        };
        Ok(Some(read_all(fd, None).map_err(io_err("read", p))?))
    }

    /// Metadata without following a final symlink and, when the path is a
    /// regular file, its bytes; `None` when absent. One open serves both
    /// (the no-op run reads every managed file): it follows no final
    /// symlink and does not block (a FIFO), and nothing but a regular file
    /// is read. (A device node's driver does see the open.)
    pub fn lstat_read(&self, p: &str) -> Result<Option<MetaAndContent>, ModuleError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match self.resolve(p, flags) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            // A symlink (ELOOP with NOFOLLOW), a socket, or no permission:
            // what is there, without its content.
            Err(_) => return Ok(self.lstat(p)?.map(|m| (m, None))),
        };
        let st = rfs::fstat(&fd).map_err(sys_err("stat", p))?;
        let m = Meta::of(&st);
        if !m.is_file {
            return Ok(Some((m, None)));
        }
        let size = st.st_size.max(0) as usize;
        Ok(Some((
            m,
            Some(read_all(fd, Some(size)).map_err(io_err("read", p))?),
        )))
    }

    /// Metadata without following a final symlink; `None` when absent.
    pub fn lstat(&self, p: &str) -> Result<Option<Meta>, ModuleError> {
        match self.resolve(p, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(fd) => Ok(Some(Meta::of(
                &rfs::fstat(&fd).map_err(sys_err("stat", p))?,
            ))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(sys_err("stat", p)(e)),
        }
    }

    /// Whether a path exists (a dangling symlink exists).
    pub fn exists(&self, p: &str) -> Result<bool, ModuleError> {
        Ok(self.lstat(p)?.is_some())
    }

    /// Whether a path is a directory, following symlinks (inside the root).
    pub fn is_dir(&self, p: &str) -> bool {
        self.resolve(p, OFlags::PATH | OFlags::DIRECTORY).is_ok()
    }

    /// Where a symlink points; `None` when absent or not a symlink.
    pub fn read_link(&self, p: &str) -> Result<Option<String>, ModuleError> {
        let fd = match self.resolve(p, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(sys_err("readlink", p)(e)),
        };
        if !Meta::of(&rfs::fstat(&fd).map_err(sys_err("readlink", p))?).is_symlink {
            return Ok(None);
        }
        // An empty path reads the link the descriptor itself is.
        let t = rfs::readlinkat(&fd, "", Vec::new()).map_err(sys_err("readlink", p))?;
        Ok(Some(t.to_string_lossy().into_owned()))
    }

    /// Entries of a directory (names), sorted.
    pub fn list_dir(&self, p: &str) -> Result<Vec<String>, ModuleError> {
        let fd = self
            .resolve(p, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(sys_err("list", p))?;
        let mut v = names(fd.as_fd()).map_err(sys_err("list", p))?;
        v.sort();
        Ok(v)
    }

    /// Whether the temporary file of a write of `p` is there (left by a run
    /// killed mid-write). Not looked for when the state directory says no
    /// run left one (see [`Temps`]).
    pub fn has_leftover(&self, p: &str) -> Result<bool, ModuleError> {
        if self.temps.none_at_start {
            return Ok(false);
        }
        self.exists(&temp_path(p))
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
        // Read before the stat: a change that ends after it moves the count
        // on, and the next call looks again.
        let changes = CHANGES.load(std::sync::atomic::Ordering::SeqCst);
        if let Some((seen, _, db)) = self.dbs.lock().expect("db cache").get(file) {
            if *seen == changes {
                return Ok(db.clone());
            }
        }
        let stamp = match self.db_stat(file) {
            Ok(m) => (
                m.st_ino,
                m.st_size as u64,
                m.st_mtime,
                m.st_mtime_nsec as i64,
            ),
            Err(_) => (0, 0, 0, 0),
        };
        if let Some((seen, st, db)) = self.dbs.lock().expect("db cache").get_mut(file) {
            if *st == stamp {
                *seen = changes;
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
            .insert(file, (changes, stamp, db.clone()));
        Ok(db)
    }

    /// The metadata of `/etc/NAME` (following symlinks, inside the root).
    fn db_stat(&self, file: &str) -> Result<rfs::Stat, Errno> {
        let etc = match self.etc.get() {
            Some(etc) => etc,
            None => {
                let fd = self.resolve("/etc", OFlags::PATH | OFlags::DIRECTORY)?;
                self.etc.get_or_init(|| fd)
            }
        };
        let name = file.trim_start_matches("/etc/");
        match rfs::statat(etc, name, AtFlags::SYMLINK_NOFOLLOW) {
            // A symlink is resolved the long way, inside the root.
            Ok(st) if Meta::of(&st).is_symlink => self
                .resolve(file, OFlags::PATH)
                .and_then(|fd| rfs::fstat(&fd)),
            r => r,
        }
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

    /// The user that has `uid`, if any.
    pub fn user_with_uid(&self, uid: u32) -> Result<Option<String>, ModuleError> {
        Ok(self
            .db("/etc/passwd")?
            .iter()
            .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
            .and_then(|f| f.first().cloned()))
    }

    /// The group that has `gid`, if any.
    pub fn group_with_gid(&self, gid: u32) -> Result<Option<String>, ModuleError> {
        Ok(self
            .db("/etc/group")?
            .iter()
            .find(|f| f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(gid))
            .and_then(|f| f.first().cloned()))
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
        !self.is_chroot() && self.is_dir("/run/systemd/system")
    }
}

/// Reads an open file to its end; its size (known, or from fstat) sizes
/// the buffer (std's `read_to_end` would also stat and seek).
fn read_all(fd: OwnedFd, size: Option<usize>) -> std::io::Result<Vec<u8>> {
    let size = size.unwrap_or_else(|| {
        rfs::fstat(&fd)
            .map(|st| st.st_size.max(0) as usize)
            .unwrap_or(0)
    });
    let mut f = std::fs::File::from(fd);
    // One read for a file of the size it reports, into a buffer of that
    // size and one byte more (a short read of a regular file is its end:
    // no second read to see 0). /proc/sys files report size 0 and answer
    // only a read at offset 0: room for a small one.
    let mut b = vec![0u8; if size == 0 { 4096 } else { size } + 1];
    let mut len = 0;
    loop {
        if len == b.len() {
            b.resize(b.len() * 2, 0);
        }
        let asked = b.len() - len;
        match f.read(&mut b[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if size > 0 && n < asked {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    b.truncate(len);
    Ok(b)
}

/// The names in a directory, without `.` and `..`, as the kernel has them.
fn entries(dir: BorrowedFd) -> Result<Vec<std::ffi::CString>, Errno> {
    let mut out = Vec::new();
    for e in rfs::Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// The names in a directory, without `.` and `..`, as text.
fn names(dir: BorrowedFd) -> Result<Vec<String>, Errno> {
    Ok(entries(dir)?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect())
}

/// A host path's parent directory, open for reading (so it can be listed
/// and synced), and the last name, on which the `*at` calls act.
struct Parent<'a> {
    dir: OwnedFd,
    name: &'a str,
}

/// Serialises backups: two resources may back up one path in one run.
static BACKUPS: Mutex<()> = Mutex::new(());

impl Host {
    /// Opens the host at `root` (see [`HostRead`]); `state_dir` holds the
    /// backups. Fails when the root cannot be opened or this system cannot
    /// confine paths to it.
    pub fn new(
        root: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
    ) -> Result<Self, ModuleError> {
        Ok(Host {
            read: HostRead::open(root.into(), state_dir.into())?,
        })
    }

    pub fn read_only(&self) -> &HostRead {
        &self.read
    }

    /// Before a temporary file is made: the state directory's token that
    /// none can be left (see [`Temps`]) goes first, durably. When it cannot
    /// be removed, nothing is written: a temporary that a killed run left
    /// would then go unseen.
    fn temps_may_remain(&self) -> Result<(), ModuleError> {
        let mut token = self.temps.token.lock().unwrap_or_else(|e| e.into_inner());
        if !*token {
            return Ok(());
        }
        let shown = self.temps.path.display().to_string();
        match std::fs::remove_file(&self.temps.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &shown)(e)),
        }
        if let Some(dir) = self.temps.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync", &dir.display().to_string()))?;
        }
        *token = false;
        Ok(())
    }

    /// Whether this run looks for temporaries a killed run left: the state
    /// directory had no token saying none is left (see [`Temps`]).
    pub fn may_have_leftovers(&self) -> bool {
        !self.temps.none_at_start
    }

    /// Removes the temporary (`.NAME.cfgm-new`) beside each of these host
    /// paths where there is one. A run that found no token clears those of
    /// every path its catalog (or the last one) writes, whatever the kind,
    /// before it writes the token: only `file` resources look beside
    /// themselves as they are observed. False when one could not be
    /// removed (or its directory not opened).
    pub fn clear_leftovers<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> bool {
        let _changing = Changing;
        let mut all = true;
        for p in paths {
            // Not a path a write goes to ("/"): no temporary of it.
            let Ok((d, name)) = split(p) else { continue };
            match self.dir(d, false, p) {
                Ok(Some(dir)) => {
                    match rfs::unlinkat(&dir, temp_name(name).as_str(), AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(_) => all = false,
                    }
                }
                Ok(None) => {}
                Err(_) => all = false,
            }
        }
        all
    }

    /// After a run: `clean` says every resource was observed (none skipped)
    /// and none failed, so no temporary of this run or an earlier one is
    /// left: the token says so for the next run (see [`Temps`]). Best
    /// effort: without it, the next run only probes.
    pub fn settle_temps(&self, clean: bool) {
        let token = self.temps.token.lock().unwrap_or_else(|e| e.into_inner());
        if !clean || *token || self.temps.identity.is_empty() {
            return;
        }
        crate::statefile::write_state_bytes(&self.temps.path, self.temps.identity.as_bytes());
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

    /// Opens a directory of the host for a change, creating what is missing
    /// when `create` (like `mkdir -p`: mode 0755, root's).
    ///
    /// The common case — no symlink on the way — is one `openat2` that
    /// follows none. Otherwise the path is walked one component at a time
    /// on descriptors: a symlink is followed only when root owns it (its
    /// target walked the same way, absolute from the root, `..` never above
    /// it), so neither a symlink nor a swap during the walk leads out of
    /// the root or through a user's link. Components of a symlink's target
    /// are never created (neither does `mkdir -p`). `None`: a directory on
    /// the way does not exist.
    fn dir(&self, d: &str, create: bool, p: &str) -> Result<Option<OwnedFd>, ModuleError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match open_in(self.root_fd(), d, flags, ResolveFlags::NO_SYMLINKS) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::LOOP | Errno::XDEV | Errno::AGAIN) => {}
            Err(Errno::NOENT) if create => {}
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(sys_err("open directory of", p)(e)),
        }
        let mut stack: Vec<(OwnedFd, String)> = vec![(
            rfs::openat(
                self.root_fd(),
                ".",
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys_err("open root for", p))?,
            String::new(),
        )];
        let mut todo: VecDeque<(String, bool)> =
            components(d).map(|c| (c.to_string(), create)).collect();
        let mut links = 0;
        while let Some((c, may_create)) = todo.pop_front() {
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let (cur, at) = stack.last().expect("the root stays");
            let here = format!("{at}/{c}");
            let fd = match rfs::openat(
                cur,
                &c,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if may_create => {
                    match rfs::mkdirat(cur, &c, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(sys_err("create", p)(e)),
                    }
                    todo.push_front((c, false));
                    continue;
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(sys_err("open directory of", p)(e)),
            };
            let st = rfs::fstat(&fd).map_err(sys_err("stat", p))?;
            match FileType::from_raw_mode(st.st_mode as _) {
                FileType::Directory => stack.push((fd, here)),
                FileType::Symlink => {
                    if st.st_uid != 0 {
                        return Err(ModuleError::Invalid(format!(
                            "{p}: {here} is a symlink owned by uid {}; refusing to follow it",
                            st.st_uid
                        )));
                    }
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(sys_err("resolve", p)(Errno::LOOP));
                    }
                    let target =
                        rfs::readlinkat(&fd, "", Vec::new()).map_err(sys_err("readlink", p))?;
                    let target = target.to_string_lossy();
                    if target.starts_with('/') {
                        stack.truncate(1);
                    }
                    for t in components(&target).rev() {
                        todo.push_front((t.to_string(), false));
                    }
                }
                _ => return Err(sys_err("open directory of", p)(Errno::NOTDIR)),
            }
        }
        let (fd, _) = stack.pop().expect("the root stays");
        rfs::openat(&fd, ".", flags | OFlags::CLOEXEC, Mode::empty())
            .map(Some)
            .map_err(sys_err("open directory of", p))
    }

    /// A directory that must be there (see [`Host::dir`]).
    fn dir_there(&self, d: &str, create: bool, p: &str) -> Result<OwnedFd, ModuleError> {
        self.dir(d, create, p)?
            .ok_or_else(|| self.missing_parent(p))
    }

    fn missing_parent(&self, p: &str) -> ModuleError {
        missing_parent(p)
    }

    /// The parent directory of `p`, opened (see [`Host::dir`]), and its name.
    fn parent<'a>(&self, p: &'a str) -> Result<Parent<'a>, ModuleError> {
        self.parent_if_there(p)?
            .ok_or_else(|| self.missing_parent(p))
    }

    /// Like [`Host::parent`]; `None` when a directory on the way is missing.
    fn parent_if_there<'a>(&self, p: &'a str) -> Result<Option<Parent<'a>>, ModuleError> {
        let (d, name) = split(p)?;
        Ok(self.dir(d, false, p)?.map(|dir| Parent { dir, name }))
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
        let _changing = Changing;
        self.temps_may_remain()?;
        let at = self.parent(p)?;
        if let Some(item) = staging_item() {
            // Within a staged batch: the whole temporary file now, made
            // durable, backed up and renamed with the others (see
            // `Host::staged`). The filesystem is opened for its barrier
            // before the first write to it, so that a writeback error of
            // any of the batch's files is reported there.
            let dev = rfs::fstat(&at.dir)
                .map_err(sys_err("stat the directory of", p))?
                .st_dev;
            let known = STAGED.with(|s| {
                s.borrow()
                    .as_ref()
                    .is_some_and(|st| st.filesystems.contains_key(&dev))
            });
            if !known {
                let fd = rfs::openat(
                    &at.dir,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys_err("open the directory of", p))?;
                STAGED.with(|s| {
                    if let Some(st) = s.borrow_mut().as_mut() {
                        st.filesystems.insert(dev, fd);
                    }
                });
            }
            // The first half of the write: the complete temporary file.
            write_temp(
                at.dir.as_fd(),
                &temp_name(at.name),
                p,
                content,
                mode,
                Some((uid, gid)),
            )?;
            STAGED.with(|s| {
                if let Some(st) = s.borrow_mut().as_mut() {
                    st.writes.push((item, dev, p.to_string()));
                }
            });
            return Ok(());
        }
        self.backup(&at, p)?;
        write_new(
            at.dir.as_fd(),
            at.name,
            p,
            content,
            mode,
            Some((uid, gid)),
            &|| Ok(()),
        )
    }

    /// Applies `n` items of a batch (`apply(k)` for each), their whole-file
    /// writes ([`Host::write_atomic`]) staged: each item writes its
    /// temporary file in full (content, owner, mode); then one durability
    /// barrier per filesystem makes the temporary files durable together
    /// (`syncfs`, opened before the first write; where it is not sure —
    /// fewer than [`BARRIER_MIN`] files, a network filesystem, Linux before
    /// 5.8 — each file's own fsync); then each old file is backed up and
    /// each new one renamed into place; then each directory is made durable
    /// once. After a crash at any instant every file is still the old or
    /// the new one (a temporary left behind is removed by the next run), as
    /// with one write at a time. An item that fails or panics fails alone,
    /// its temporary removed. Writes outside this call (and on other
    /// threads) are not staged; a call inside another is not staged either.
    pub fn staged(
        &self,
        n: usize,
        mut apply: impl FnMut(usize) -> Result<(), ModuleError>,
    ) -> Vec<Result<(), ModuleError>> {
        let _changing = Changing;
        // Cleared however this ends (a panicking item included).
        struct Staging;
        impl Drop for Staging {
            fn drop(&mut self) {
                STAGED.with(|s| s.borrow_mut().take());
            }
        }
        // One item's panic fails that item alone, as it would unbatched.
        let mut one = |k: usize| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(k)))
                .unwrap_or_else(|_| Err(ModuleError::Other("apply panicked".into())))
        };
        if staging_item().is_some() {
            // Already inside a batch (nothing nests today): unstaged, so
            // that the outer batch keeps its own writes.
            return (0..n).map(one).collect();
        }
        let _staging = Staging;
        STAGED.with(|s| *s.borrow_mut() = Some(Stage::default()));
        let mut results = Vec::with_capacity(n);
        for k in 0..n {
            STAGED.with(|s| {
                if let Some(st) = s.borrow_mut().as_mut() {
                    st.item = k;
                }
            });
            results.push(one(k));
        }
        let stage = STAGED.with(|s| s.borrow_mut().take()).unwrap_or_default();
        self.commit_staged(stage, &mut results);
        results
    }

    /// A staged write's temporary file made durable on its own.
    fn fsync_temp(&self, p: &str) -> Result<(), ModuleError> {
        let at = self.parent(p)?;
        let fd = rfs::openat(
            &at.dir,
            temp_name(at.name).as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys_err("open the new content of", p))?;
        rfs::fsync(&fd).map_err(sys_err("fsync the new content of", p))
    }

    /// The second half of [`Host::staged`]: barrier, backups and renames,
    /// directories. A step that fails fails its item (and removes its
    /// temporary file); the other items go on.
    fn commit_staged(&self, stage: Stage, results: &mut [Result<(), ModuleError>]) {
        let drop_temp = |p: &str| {
            if let Ok(at) = self.parent(p) {
                let _ = rfs::unlinkat(&at.dir, temp_name(at.name).as_str(), AtFlags::empty());
            }
        };
        // Per filesystem, the live writes (their item failed: temp removed).
        let mut by_fs: HashMap<u64, Vec<(usize, String)>> = HashMap::new();
        for (k, dev, p) in stage.writes {
            if results[k].is_ok() {
                by_fs.entry(dev).or_default().push((k, p));
            } else {
                drop_temp(&p);
            }
        }
        // The barrier, per filesystem: one `syncfs` where it is sure and
        // pays (a local filesystem, a kernel that reports writeback errors
        // to it, enough files); else each temporary file's own fsync.
        let mut live: Vec<(usize, String)> = Vec::new();
        for (dev, writes) in by_fs {
            let fs = stage.filesystems.get(&dev);
            let barrier = writes.len() >= BARRIER_MIN && fs.is_some_and(syncfs_is_sure);
            let synced: Vec<Result<(), ModuleError>> = match (barrier, fs) {
                (true, Some(fd)) => {
                    let r = rfs::syncfs(fd).map_err(|e| {
                        format!(
                            "make the new content durable (syncfs): {}",
                            std::io::Error::from(e)
                        )
                    });
                    writes
                        .iter()
                        .map(|_| r.clone().map_err(ModuleError::Other))
                        .collect()
                }
                _ => writes.iter().map(|(_, p)| self.fsync_temp(p)).collect(),
            };
            for ((k, p), r) in writes.into_iter().zip(synced) {
                match r {
                    Ok(()) => live.push((k, p)),
                    Err(e) => {
                        results[k] = Err(e);
                        drop_temp(&p);
                    }
                }
            }
        }
        live.sort();
        let mut dirs: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (k, p) in &live {
            let renamed = (|| {
                let at = self.parent(p)?;
                self.backup(&at, p)?;
                rfs::renameat(&at.dir, temp_name(at.name).as_str(), &at.dir, at.name)
                    .map_err(sys_err("rename", p))
            })();
            match renamed {
                Ok(()) => dirs.entry(parent_of(p).to_string()).or_default().push(*k),
                Err(e) => {
                    results[*k] = Err(e);
                    drop_temp(p);
                }
            }
        }
        for (d, items) in dirs {
            let synced = self
                .dir(&d, false, &d)
                .and_then(|fd| fd.ok_or_else(|| self.missing_parent(&d)))
                .and_then(|fd| rfs::fsync(&fd).map_err(sys_err("fsync directory", &d)));
            if let Err(e) = synced {
                let msg = e.to_string();
                for k in items {
                    results[k] = Err(ModuleError::Other(msg.clone()));
                }
            }
        }
    }

    /// Like [`Host::write_atomic`], with a check of the new content before
    /// it replaces the old: `check` is given the temporary file's path as
    /// a command run on the host sees it (`.NAME.cfgm-new` beside the
    /// file, so relative includes resolve as they will for the file) once
    /// that file is complete (content, owner, mode, fsynced). When the
    /// check fails, the temporary file is removed and the old file stays
    /// as it was, not even backed up: nothing of the host has changed.
    pub fn write_atomic_checked(
        &self,
        p: &str,
        content: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        check: &dyn Fn(&str) -> Result<(), ModuleError>,
    ) -> Result<(), ModuleError> {
        let _changing = Changing;
        self.temps_may_remain()?;
        let at = self.parent(p)?;
        let temp = temp_path(p);
        write_new(
            at.dir.as_fd(),
            at.name,
            p,
            content,
            mode,
            Some((uid, gid)),
            &|| {
                check(&temp)?;
                self.backup(&at, p)
            },
        )
    }

    /// Writes into an existing file in place (a kernel parameter under
    /// /proc/sys): no temporary file, no backup, never creates it.
    pub fn write_in_place(&self, p: &str, content: &[u8]) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        let fd = rfs::openat(
            &at.dir,
            at.name,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys_err("open", p))?;
        std::fs::File::from(fd)
            .write_all(content)
            .map_err(io_err("write", p))
    }

    /// Keeps the current content of a regular file in
    /// `STATE_DIR/backups/NAME/STAMP`, at most [`BACKUPS_KEPT`] versions per
    /// path, each written like the files themselves (temporary, fsync,
    /// rename, fsync): a crash leaves a whole backup or none. The source is
    /// read through its parent's descriptor, never through a final symlink.
    fn backup(&self, at: &Parent, p: &str) -> Result<(), ModuleError> {
        let is_file = |st: &rfs::Stat| Meta::of(st).is_file;
        match rfs::statat(&at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if is_file(&st) => {}
            Ok(_) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(sys_err("back up", p)(e)),
        }
        let src = match rfs::openat(
            &at.dir,
            at.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(sys_err("back up", p)(e)),
        };
        if !is_file(&rfs::fstat(&src).map_err(sys_err("back up", p))?) {
            return Ok(());
        }
        let mut content = Vec::new();
        std::fs::File::from(src)
            .read_to_end(&mut content)
            .map_err(io_err("back up", p))?;
        let _one = BACKUPS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.backup_dir(p)?;
        // Temporaries start with a dot; versions sort by their stamp.
        let mut kept: Vec<String> = names(dir.as_fd())
            .map_err(sys_err("list backups of", p))?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        let newest = kept.iter().filter_map(|n| n.parse::<u128>().ok()).max();
        let name = format!("{:024}", crate::statefile::stamp_after(newest));
        write_new(dir.as_fd(), &name, p, &content, 0o600, None, &|| Ok(()))?;
        kept.push(name);
        kept.sort();
        let drop = kept.len().saturating_sub(BACKUPS_KEPT);
        for old in &kept[..drop] {
            let _ = rfs::unlinkat(&dir, old.as_str(), AtFlags::empty());
        }
        Ok(())
    }

    /// `STATE_DIR/backups/NAME` for a host path, created (0700) if missing.
    /// A state directory inside the root is reached through the root like
    /// every host path; one outside it is the agent's own.
    fn backup_dir(&self, p: &str) -> Result<OwnedFd, ModuleError> {
        let state = match self.state_dir.strip_prefix(&self.root) {
            Ok(r) => self.dir_there(&format!("/{}", r.to_string_lossy()), true, p)?,
            Err(_) => {
                let shown = self.state_dir.display().to_string();
                std::fs::create_dir_all(&self.state_dir).map_err(io_err("create", &shown))?;
                rfs::open(
                    &self.state_dir,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys_err("open", &shown))?
            }
        };
        let backups =
            subdir(state.as_fd(), "backups").map_err(sys_err("create backup directory for", p))?;
        subdir(backups.as_fd(), &backup_name(p)).map_err(sys_err("create backup directory for", p))
    }

    /// Creates a directory and whatever is missing above it (like
    /// `mkdir -p`: new directories are root's, mode 0755 less the umask).
    pub fn create_dir_all(&self, p: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        self.dir_there(p, true, p).map(drop)
    }

    /// Removes a directory and everything in it, never following a symlink
    /// and never crossing into another filesystem mounted below it.
    pub fn remove_tree(&self, p: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        let st = match rfs::statat(&at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(sys_err("remove", p)(e)),
        };
        if !Meta::of(&st).is_dir {
            return Err(ModuleError::Invalid(format!(
                "{p} is not a directory; not removing it as one"
            )));
        }
        let name = std::ffi::CString::new(at.name)
            .map_err(|_| ModuleError::Invalid(format!("{p}: a path cannot hold a NUL byte")))?;
        remove_tree_at(at.dir.as_fd(), &name, st.st_dev).map_err(sys_err("remove", p))
    }

    /// Points a symlink at `target`, atomically: a new link under a
    /// temporary name renamed over the path (a regular file there is backed
    /// up first), then the directory synced.
    pub fn symlink(&self, p: &str, target: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        self.temps_may_remain()?;
        let at = self.parent(p)?;
        let tmp = temp_name(at.name);
        match rfs::unlinkat(&at.dir, tmp.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(sys_err("remove stale temporary of", p)(e)),
        }
        rfs::symlinkat(target, &at.dir, tmp.as_str()).map_err(sys_err("symlink", p))?;
        let result = self.backup(&at, p).and_then(|()| {
            rfs::renameat(&at.dir, tmp.as_str(), &at.dir, at.name).map_err(sys_err("rename", p))
        });
        if result.is_err() {
            let _ = rfs::unlinkat(&at.dir, tmp.as_str(), AtFlags::empty());
        }
        result?;
        rfs::fsync(&at.dir).map_err(sys_err("fsync directory of", p))
    }

    /// Changes the permission bits of a regular file or a directory (never
    /// of a symlink's target).
    pub fn chmod(&self, p: &str, mode: u32) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        let st = rfs::statat(&at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(sys_err("chmod", p))?;
        let m = Meta::of(&st);
        if m.is_symlink {
            return Err(ModuleError::Invalid(format!(
                "{p} is a symlink; not changing the mode of its target"
            )));
        }
        if !m.is_file && !m.is_dir {
            return Err(ModuleError::Invalid(format!(
                "{p} is not a regular file or a directory; not changing its mode"
            )));
        }
        // An O_PATH descriptor cannot be chmod-ed before Linux 6.6: open the
        // very inode (no final symlink, no blocking) and change that.
        let fd = rfs::openat(
            &at.dir,
            at.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys_err("chmod", p))?;
        let now = rfs::fstat(&fd).map_err(sys_err("chmod", p))?;
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            return Err(ModuleError::Invalid(format!(
                "{p} changed while its mode was set"
            )));
        }
        rfs::fchmod(&fd, Mode::from_raw_mode(mode as _)).map_err(sys_err("chmod", p))
    }

    /// Changes owner and group without following a final symlink.
    pub fn chown(&self, p: &str, uid: Option<u32>, gid: Option<u32>) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        rfs::chownat(
            &at.dir,
            at.name,
            uid.map(rustix::process::Uid::from_raw),
            gid.map(rustix::process::Gid::from_raw),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(sys_err("chown", p))
    }

    /// Sets the modification (and access) time of a path to now, never
    /// through a final symlink: for daemons that notice changes by a
    /// directory's modification time.
    pub fn touch(&self, p: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        let now = rfs::Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_NOW,
        };
        let times = rfs::Timestamps {
            last_access: now,
            last_modification: now,
        };
        rfs::utimensat(&at.dir, at.name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(sys_err("touch", p))
    }

    /// Removes a file or symlink (after backing a file up).
    pub fn remove_file(&self, p: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        let Some(at) = self.parent_if_there(p)? else {
            return Ok(()); // nothing there to remove
        };
        self.backup(&at, p)?;
        match rfs::unlinkat(&at.dir, at.name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(sys_err("remove", p)(e)),
        }
    }

    /// Moves what is at `p` (a directory, a link, anything) aside, to
    /// `.NAME.cfgm-replaced` beside it — one rename in its directory, so
    /// nothing of it is lost or copied — replacing an earlier one. Returns
    /// the new path. For `file … force = true`.
    pub fn move_aside(&self, p: &str) -> Result<String, ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        let aside = format!(".{}.cfgm-replaced", at.name);
        match rfs::statat(&at.dir, aside.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Meta::of(&st).is_dir => {
                let name = std::ffi::CString::new(aside.as_str())
                    .map_err(|_| ModuleError::Invalid(format!("{p}: a NUL byte")))?;
                remove_tree_at(at.dir.as_fd(), &name, st.st_dev).map_err(sys_err("remove", p))?
            }
            Ok(_) => rfs::unlinkat(&at.dir, aside.as_str(), AtFlags::empty())
                .map_err(sys_err("remove", p))?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(sys_err("move aside", p)(e)),
        }
        rfs::renameat(&at.dir, at.name, &at.dir, aside.as_str())
            .map_err(sys_err("move aside", p))?;
        rfs::fsync(&at.dir).map_err(sys_err("fsync directory of", p))?;
        Ok(format!("{}/{aside}", parent_of(p).trim_end_matches('/')))
    }

    /// Removes the temporary file a killed write of `p` left (never `p`).
    pub fn remove_leftover(&self, p: &str) -> Result<(), ModuleError> {
        let _changing = Changing;
        let at = self.parent(p)?;
        match rfs::unlinkat(&at.dir, temp_name(at.name).as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(sys_err("remove", &temp_path(p))(e)),
        }
    }
}

/// Writes `name` in `dir` atomically: `.NAME.cfgm-new` (removed first and
/// created exclusively, so a planted symlink is never followed), content,
/// owner, mode, fsync, rename, fsync of the directory. A run killed
/// mid-write leaves at most the temporary, which the next write removes.
fn write_new(
    dir: BorrowedFd,
    name: &str,
    p: &str,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    before_rename: &dyn Fn() -> Result<(), ModuleError>,
) -> Result<(), ModuleError> {
    let tmp = temp_name(name);
    let result = (|| {
        let f = write_temp(dir, &tmp, p, content, mode, owner)?;
        f.sync_all().map_err(io_err("fsync", p))?;
        drop(f);
        before_rename()?;
        rfs::renameat(dir, tmp.as_str(), dir, name).map_err(sys_err("rename", p))?;
        rfs::fsync(dir).map_err(sys_err("fsync directory of", p))
    })();
    if result.is_err() {
        let _ = rfs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    result
}

/// The temporary file of a write (`.NAME.cfgm-new`, removed first and
/// created exclusively, so a planted symlink is never followed), complete:
/// content, owner, mode; not yet durable.
fn write_temp(
    dir: BorrowedFd,
    tmp: &str,
    p: &str,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<std::fs::File, ModuleError> {
    match rfs::unlinkat(dir, tmp, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(sys_err("remove stale temporary of", p)(e)),
    }
    let fd = rfs::openat(
        dir,
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(sys_err("create", p))?;
    let mut f = std::fs::File::from(fd);
    let done = (|| {
        f.write_all(content).map_err(io_err("write", p))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err("chown", p))?;
        }
        rfs::fchmod(&f, Mode::from_raw_mode(mode as _)).map_err(sys_err("chmod", p))
    })();
    match done {
        Ok(()) => Ok(f),
        Err(e) => {
            let _ = rfs::unlinkat(dir, tmp, AtFlags::empty());
            Err(e)
        }
    }
}

/// A batch being staged on this thread (see `Host::staged`).
#[derive(Default)]
struct Stage {
    /// The item being applied.
    item: usize,
    /// The staged writes: item, filesystem (device), host path.
    writes: Vec<(usize, u64, String)>,
    /// Each filesystem written to, opened before its first write.
    filesystems: HashMap<u64, OwnedFd>,
}

/// Below this many files on one filesystem, each is fsynced on its own: a
/// `syncfs` also waits for whatever else is dirty there (a database's
/// writes), which a handful of files does not justify.
const BARRIER_MIN: usize = 16;

/// Whether one `syncfs` makes every file written on this filesystem durable
/// and says so when it could not: a local filesystem (a network or FUSE one
/// may not flush to its server), and Linux ≥ 5.8 (before, `syncfs` reports
/// no writeback error).
fn syncfs_is_sure(fd: &OwnedFd) -> bool {
    const LOCAL: &[i64] = &[
        0xEF53,      // ext2/3/4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0xF2F5_2010, // f2fs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs (its upper filesystem)
    ];
    static KERNEL_OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let kernel = *KERNEL_OK.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (5, 8)
    });
    kernel
        && rfs::fstatfs(fd)
            // (`f_type`'s width differs between architectures.)
            .map(|st| {
                #[allow(clippy::unnecessary_cast)]
                let t = st.f_type as i64;
                LOCAL.contains(&t)
            })
            .unwrap_or(false)
}

thread_local! {
    static STAGED: std::cell::RefCell<Option<Stage>> = const { std::cell::RefCell::new(None) };
}

/// The item whose writes are being staged on this thread, if any.
fn staging_item() -> Option<usize> {
    STAGED.with(|s| s.borrow().as_ref().map(|st| st.item))
}

/// A subdirectory of `dir` (mode 0700 when created), never through a symlink.
fn subdir(dir: BorrowedFd, name: &str) -> Result<OwnedFd, Errno> {
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The backup directory name of a host path: readable (`etc%motd`) and
/// then a hash of the exact path, so that no two paths share one
/// (`/a%b` and `/a/b` read alike) and a long path still makes a valid name.
fn backup_name(p: &str) -> String {
    let mut readable = p.trim_start_matches('/').replace('/', "%");
    if readable.len() > 200 {
        let mut cut = 200;
        while !readable.is_char_boundary(cut) {
            cut -= 1;
        }
        readable.truncate(cut);
    }
    let hash = blake3::hash(p.as_bytes()).to_hex();
    format!("{readable}-{}", &hash[..16])
}

/// Removes `name` in `parent` and everything below it: no symlink is
/// followed (`openat` with `NOFOLLOW`, `unlinkat` on names), and a
/// directory on another device than `dev` (a mount point) is an error.
fn remove_tree_at(parent: BorrowedFd, name: &std::ffi::CStr, dev: u64) -> Result<(), Errno> {
    let fd = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if rfs::fstat(&fd)?.st_dev != dev {
        return Err(Errno::BUSY);
    }
    for n in entries(fd.as_fd())? {
        let st = rfs::statat(&fd, n.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode as _) == FileType::Directory {
            remove_tree_at(fd.as_fd(), &n, dev)?;
        } else {
            rfs::unlinkat(&fd, n.as_c_str(), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
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

/// Runs a command, killing it (and everything it started in its process
/// group) after `timeout`, or when this process dies.
///
/// The process spawned is a supervisor (see [`supervise`]): it leads a new
/// process group, forks the command into it and waits. When the agent
/// dies, even by SIGKILL, the kernel signals the supervisor
/// (`PR_SET_PDEATHSIG`), which kills the whole group; the command's own
/// children die with it unless they left the group on purpose (a daemon
/// that a service start detached). The parent-death signal comes when the
/// *thread* that forked ends: here that thread waits for the supervisor,
/// so it outlives it (engine worker threads included).
pub fn run_with_timeout<S: AsRef<OsStr>>(
    mut cmd: Command,
    argv: &[S],
    timeout: Duration,
) -> Result<Output, ModuleError> {
    let _changing = Changing;
    let name = argv_string(argv);
    let agent = std::process::id() as libc::pid_t;
    // SAFETY: `supervise` makes only async-signal-safe calls and does not
    // allocate, as code between fork and exec must.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || supervise(agent));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // ETXTBSY: the program was written a moment ago (a file resource, then
    // a command that runs it) and a fork by another thread still held the
    // writer's descriptor until its exec. It passes; try again, briefly.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            r => break r.map_err(|e| ModuleError::Other(format!("cannot run `{name}`: {e}")))?,
        }
    };
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let to = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let te = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    // A watchdog kills the group at the timeout; dropping `done` stops it.
    let group = rustix::process::Pid::from_child(&child);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = timed_out.clone();
    let dog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
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

/// Runs in the spawned child between fork and exec. It makes the child
/// the leader of a new process group, then forks: the new process returns
/// and becomes the command (exec follows); this one stays as the
/// supervisor and never returns. The supervisor closes every descriptor
/// (the command's pipes and std's exec-error pipe stay with the command
/// alone), and waits for one of two signals: SIGCHLD — the command ended,
/// and the supervisor exits the same way — or SIGTERM, which the kernel
/// sends when the agent dies (`PR_SET_PDEATHSIG`) — the supervisor then
/// kills its whole group, itself included.
///
/// Only async-signal-safe calls, no allocation: the agent has threads.
fn supervise(agent: libc::pid_t) -> std::io::Result<()> {
    use std::io::Error;
    // SAFETY: raw system calls on values of this function; see above.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(Error::last_os_error());
        }
        let mut waited: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut waited);
        libc::sigaddset(&mut waited, libc::SIGCHLD);
        libc::sigaddset(&mut waited, libc::SIGTERM);
        // Blocked before they can arrive, so that sigwaitinfo sees them.
        if libc::sigprocmask(libc::SIG_BLOCK, &waited, &mut before) != 0 {
            return Err(Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
            return Err(Error::last_os_error());
        }
        // The agent may have died before the line above: nothing to run for.
        if libc::getppid() != agent {
            return Err(Error::from_raw_os_error(libc::ESRCH));
        }
        let supervisor = libc::getpid();
        let command = libc::fork();
        if command < 0 {
            return Err(Error::last_os_error());
        }
        if command == 0 {
            // The command: the usual signal mask, and it dies with the
            // supervisor should that be killed on its own.
            libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != supervisor {
                return Err(Error::from_raw_os_error(libc::ESRCH));
            }
            return Ok(());
        }
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            let mut lim: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                1024
            };
            for fd in 0..max {
                libc::close(fd);
            }
        }
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&waited, &mut info);
            if sig == libc::SIGCHLD {
                let mut status = 0;
                if libc::waitpid(command, &mut status, libc::WNOHANG) != command {
                    continue;
                }
                if libc::WIFEXITED(status) {
                    libc::_exit(libc::WEXITSTATUS(status));
                }
                // Killed: end the same way (a core-dumping signal as SIGKILL,
                // so the supervisor leaves no core of its own).
                let s = libc::WTERMSIG(status);
                let again = match s {
                    libc::SIGQUIT
                    | libc::SIGILL
                    | libc::SIGABRT
                    | libc::SIGFPE
                    | libc::SIGSEGV
                    | libc::SIGBUS
                    | libc::SIGSYS
                    | libc::SIGTRAP
                    | libc::SIGXCPU
                    | libc::SIGXFSZ => libc::SIGKILL,
                    s => s,
                };
                libc::signal(again, libc::SIG_DFL);
                let mut one: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut one);
                libc::sigaddset(&mut one, again);
                libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                libc::kill(libc::getpid(), again);
                libc::_exit(128 + s);
            } else if sig == libc::SIGTERM {
                // The agent is gone (or asks the command to end): the group goes.
                libc::kill(0, libc::SIGKILL);
                libc::_exit(137);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with `outside/` beside it (same parent).
    fn setup() -> (tempfile::TempDir, Host, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "victim\n").unwrap();
        let host = Host::new(&root, t.path().join("state")).unwrap();
        (t, host, root, outside)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The state directory's token that no temporary file is left: a host
    /// opened with it does not probe; the first write removes it (and a
    /// host opened then probes); only a clean run writes it again; a token
    /// of another root counts as none.
    #[test]
    fn temporaries_are_probed_until_a_clean_run_says_none_is_left() {
        let (t, host, root, _) = setup();
        let state = t.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
        std::fs::write(root.join("etc/.f.cfgm-new"), "torn").unwrap();
        std::fs::write(root.join("etc/f"), "old").unwrap();
        // No token: probed, the leftover is seen.
        assert!(host.has_leftover("/etc/f").unwrap());
        host.settle_temps(false);
        assert!(
            !state.join(NO_TEMPS).exists(),
            "a run that failed wrote the token"
        );
        host.remove_leftover("/etc/f").unwrap();
        host.settle_temps(true);
        assert!(state.join(NO_TEMPS).exists(), "a clean run wrote no token");
        // With the token: not probed (a temporary planted by hand is not a
        // killed run's, and goes unseen).
        std::fs::write(root.join("etc/.f.cfgm-new"), "planted").unwrap();
        let next = Host::new(&root, &state).unwrap();
        assert!(!next.has_leftover("/etc/f").unwrap());
        // A write takes the token away before its temporary exists.
        next.write_atomic("/etc/f", b"new", 0o644, uid.as_raw(), gid.as_raw())
            .unwrap();
        assert!(!state.join(NO_TEMPS).exists(), "the token outlived a write");
        std::fs::write(root.join("etc/.f.cfgm-new"), "torn").unwrap();
        let after = Host::new(&root, &state).unwrap();
        assert!(
            after.has_leftover("/etc/f").unwrap(),
            "a host opened after a write did not probe"
        );
        // The token of another root is none.
        std::fs::write(state.join(NO_TEMPS), "1:2\n").unwrap();
        assert!(Host::new(&root, &state)
            .unwrap()
            .has_leftover("/etc/f")
            .unwrap());
    }

    #[test]
    fn links_out_of_the_root_resolve_inside_it() {
        if !crate::testing::needs_root("host::tests::links_out_of_the_root_resolve_inside_it") {
            return;
        }
        let (_t, host, root, outside) = setup();
        // Absolute, and relative climbing out (ROOT/rel/.. is ROOT, ROOT/.. stays ROOT).
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../outside", root.join("rel")).unwrap();
        symlink("../../../../../outside", root.join("etc/deep")).unwrap();
        for p in ["/abs/f", "/rel/f", "/etc/deep/f"] {
            // The target inside the root does not exist yet: a clean failure.
            let e = host.write_atomic(p, b"x\n", 0o644, 0, 0).unwrap_err();
            assert!(e.to_string().contains("does not exist"), "{p}: {e}");
            assert!(host.read(p).unwrap().is_none(), "{p}");
            assert!(host.lstat(p).unwrap().is_none(), "{p}");
        }
        assert_eq!(host.read("/abs/victim").unwrap(), None);
        // Made inside the root, the writes land there.
        let inside_abs = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside_abs).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        host.write_atomic("/abs/f", b"abs\n", 0o644, 0, 0).unwrap();
        host.write_atomic("/rel/f", b"rel\n", 0o644, 0, 0).unwrap();
        host.symlink("/abs/l", "/anywhere").unwrap();
        host.create_dir_all("/rel/made/deeper").unwrap();
        host.chmod("/rel/made", 0o700).unwrap();
        host.chown("/rel/f", Some(0), Some(0)).unwrap();
        assert_eq!(std::fs::read(inside_abs.join("f")).unwrap(), b"abs\n");
        assert_eq!(std::fs::read(root.join("outside/f")).unwrap(), b"rel\n");
        assert!(root.join("outside/made/deeper").is_dir());
        host.remove_file("/abs/f").unwrap();
        host.remove_tree("/rel/made").unwrap();
        assert_eq!(listing(&outside), ["victim"]);
    }

    #[test]
    fn dotdot_never_climbs_above_the_root() {
        if !crate::testing::needs_root("host::tests::dotdot_never_climbs_above_the_root") {
            return;
        }
        let (_t, host, root, outside) = setup();
        host.write_atomic("/../../../outside/victim", b"in\n", 0o644, 0, 0)
            .unwrap_err();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        host.write_atomic("/etc/../../../outside/victim", b"in\n", 0o644, 0, 0)
            .unwrap();
        assert_eq!(std::fs::read(root.join("outside/victim")).unwrap(), b"in\n");
        assert_eq!(host.read("/../outside/victim").unwrap().unwrap(), b"in\n");
        assert_eq!(host.list_dir("/..").unwrap(), ["etc", "outside"]);
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"victim\n");
        // A path must end in a name.
        assert!(host.write_atomic("/etc/..", b"", 0o644, 0, 0).is_err());
    }

    #[test]
    fn remove_tree_follows_no_symlink() {
        let (_t, host, root, outside) = setup();
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/sub/f"), "f").unwrap();
        symlink(&outside, root.join("d/abs")).unwrap();
        symlink("../../../outside", root.join("d/sub/rel")).unwrap();
        host.remove_tree("/d").unwrap();
        assert!(!root.join("d").exists());
        assert_eq!(listing(&outside), ["victim"]);
        // Removing a link as a tree is refused, whatever it points at.
        symlink(&outside, root.join("link")).unwrap();
        assert!(host.remove_tree("/link").is_err());
        assert_eq!(listing(&outside), ["victim"]);
    }

    #[test]
    fn a_users_directory_symlink_on_the_way_is_refused() {
        if !crate::testing::needs_root(
            "host::tests::a_users_directory_symlink_on_the_way_is_refused",
        ) {
            return;
        }
        let (_t, host, root, _) = setup();
        std::fs::create_dir_all(root.join("home/alice")).unwrap();
        symlink("/etc", root.join("home/alice/.ssh")).unwrap();
        std::os::unix::fs::lchown(root.join("home/alice/.ssh"), Some(1000), Some(1000)).unwrap();
        for r in [
            host.write_atomic("/home/alice/.ssh/authorized_keys", b"k\n", 0o600, 0, 0),
            host.create_dir_all("/home/alice/.ssh/x"),
            host.symlink("/home/alice/.ssh/l", "/x"),
            host.chmod("/home/alice/.ssh/passwd", 0o777),
        ] {
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains(
                    "/home/alice/.ssh is a symlink owned by uid 1000; refusing to follow it"
                ),
                "{e}"
            );
        }
        assert_eq!(listing(&root.join("etc")), Vec::<String>::new());
        // Root's own links are followed (inside the root).
        symlink("/etc", root.join("etc-link")).unwrap();
        host.write_atomic("/etc-link/ok", b"ok\n", 0o644, 0, 0)
            .unwrap();
        assert_eq!(std::fs::read(root.join("etc/ok")).unwrap(), b"ok\n");
    }

    #[test]
    fn touch_makes_a_directory_newer_and_follows_no_final_symlink() {
        let (_t, host, root, outside) = setup();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let mtime = |p: &Path| std::fs::symlink_metadata(p).unwrap().modified().unwrap();
        std::fs::File::open(root.join("etc"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::File::open(&outside)
            .unwrap()
            .set_modified(old)
            .unwrap();
        host.touch("/etc").unwrap();
        assert!(mtime(&root.join("etc")) > old);
        // A link to the outside: the link itself is touched, never its target.
        symlink(&outside, root.join("etc/out")).unwrap();
        host.touch("/etc/out").unwrap();
        assert_eq!(mtime(&outside), old);
    }

    #[test]
    fn backups_are_whole_bounded_and_never_share_a_directory() {
        assert_ne!(backup_name("/a%b"), backup_name("/a/b"));
        assert!(backup_name("/etc/motd").starts_with("etc%motd-"));
        if !crate::testing::needs_root(
            "host::tests::backups_are_whole_bounded_and_never_share_a_directory",
        ) {
            return;
        }
        assert!(backup_name(&format!("/{}", "x".repeat(400))).len() < 255);
        let (t, host, root, _) = setup();
        for i in 0..8 {
            host.write_atomic("/etc/f", format!("v{i}\n").as_bytes(), 0o644, 0, 0)
                .unwrap();
        }
        let dir = t.path().join("state/backups").join(backup_name("/etc/f"));
        // A temporary a killed backup left is neither kept nor counted.
        std::fs::write(dir.join(".stale.cfgm-new"), "torn").unwrap();
        host.write_atomic("/etc/f", b"v8\n", 0o644, 0, 0).unwrap();
        let kept: Vec<String> = listing(&dir)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(kept.len(), BACKUPS_KEPT);
        let newest = std::fs::read_to_string(dir.join(kept.last().unwrap())).unwrap();
        assert_eq!(newest, "v7\n");
        assert_eq!(std::fs::read(root.join("etc/f")).unwrap(), b"v8\n");
        // Backups made while the clock ran a year ahead (it was stepped back
        // since): the next backup still sorts last and survives pruning.
        let ahead = (std::time::SystemTime::now() + Duration::from_secs(365 * 86400))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::fs::write(dir.join(format!("{ahead:024}")), "from ahead\n").unwrap();
        host.write_atomic("/etc/f", b"v9\n", 0o644, 0, 0).unwrap();
        let mut kept = listing(&dir);
        kept.retain(|n| !n.starts_with('.'));
        kept.sort();
        assert_eq!(kept.len(), BACKUPS_KEPT);
        let newest = std::fs::read_to_string(dir.join(kept.last().unwrap())).unwrap();
        assert_eq!(newest, "v8\n", "{kept:?}");
    }

    #[test]
    fn a_state_dir_inside_the_root_is_reached_through_the_root() {
        if !crate::testing::needs_root(
            "host::tests::a_state_dir_inside_the_root_is_reached_through_the_root",
        ) {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("var/lib")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // ROOT/var/lib/cfgm -> /elsewhere: the backups must stay in the root.
        symlink(&outside, root.join("var/lib/cfgm")).unwrap();
        let inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        let host = Host::new(&root, root.join("var/lib/cfgm")).unwrap();
        std::fs::write(root.join("etc/f"), "old\n").unwrap();
        host.write_atomic("/etc/f", b"new\n", 0o644, 0, 0).unwrap();
        assert_eq!(listing(&outside), Vec::<String>::new());
        assert_eq!(listing(&inside), ["backups"]);
    }

    fn gone(pid: &str) -> bool {
        // Gone, or a zombie waiting for init.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')),
        }
    }

    #[test]
    fn a_timeout_kills_the_commands_whole_group() {
        let t = tempfile::tempdir().unwrap();
        let pid = t.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid.display());
        let argv = ["sh", "-c", script.as_str()];
        let mut cmd = Command::new("sh");
        cmd.args(&argv[1..]);
        let t0 = std::time::Instant::now();
        // 3 s: time enough for the shell to start the sleep and write its
        // pid on a loaded machine, before the timeout kills the group.
        let e = run_with_timeout(cmd, &argv, Duration::from_secs(3)).unwrap_err();
        assert!(e.to_string().contains("timed out after 3 s"), "{e}");
        // The background sleep held the output pipe: it died with the group.
        assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
        let bg = std::fs::read_to_string(&pid).unwrap();
        assert!(bg.ends_with('\n'), "the shell wrote no whole pid: {bg:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone(bg.trim()) {
            assert!(std::time::Instant::now() < deadline, "{bg} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The fault made for real: a program whose file is still open for
    /// writing (as a fork by another thread holds a file resource's
    /// descriptor until its exec) cannot be executed (ETXTBSY). The run
    /// waits for the writer to let go instead of failing the command.
    #[test]
    fn a_program_still_open_for_writing_runs_once_it_is_closed() {
        use std::os::unix::fs::OpenOptionsExt;
        let t = tempfile::tempdir().unwrap();
        let prog = t.path().join("prog");
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&prog)
            .unwrap();
        std::io::Write::write_all(&mut w, b"#!/bin/sh\necho ran\n").unwrap();
        let busy = Command::new(&prog).output().unwrap_err();
        assert_eq!(busy.kind(), std::io::ErrorKind::ExecutableFileBusy);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(w);
        });
        let argv = [prog.to_str().unwrap()];
        let out = run_with_timeout(Command::new(&prog), &argv, Duration::from_secs(10)).unwrap();
        writer.join().unwrap();
        assert_eq!(out.stdout, b"ran\n");
    }

    #[test]
    fn the_supervisor_passes_on_status_and_output() {
        let run = |script: &str| {
            let argv = ["sh", "-c", script];
            let mut cmd = Command::new("sh");
            cmd.args(&argv[1..]);
            run_with_timeout(cmd, &argv, Duration::from_secs(10)).unwrap()
        };
        let out = run("echo out; echo err >&2; exit 3");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(run("kill -TERM $$").status.signal(), Some(libc::SIGTERM));
        assert_eq!(run("kill -SEGV $$").status.signal(), Some(libc::SIGKILL));
        // Its own process group, led by the supervisor.
        let out = run("ps -o pgid= -p $$; ps -o pid= -p $PPID");
        let ids: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert_eq!(ids[0], ids[1]);
        let argv = ["/no/such/program"];
        let e = run_with_timeout(Command::new(argv[0]), &argv, Duration::from_secs(5)).unwrap_err();
        assert!(
            e.to_string().contains("cannot run `/no/such/program`"),
            "{e}"
        );
    }
}
