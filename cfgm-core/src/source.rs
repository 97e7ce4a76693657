//! Where a tree's files come from: the [`TreeSource`] trait, and
//! [`DirSource`], a directory read as a closed world.
//!
//! A states tree is untrusted input: whoever can push to the states
//! repository must not be able to make a compile read something outside
//! it (a catalog or an error message carrying `/etc/shadow` of the machine
//! that compiles), nor make the loader hang or grow without limit. So
//! every byte the compiler reads comes through a `TreeSource`, and a
//! source answers only for what lies inside the tree:
//!
//! - **Confinement.** A path resolves beneath the tree root. Symlinks that
//!   stay inside the tree are followed; one that leads out (an absolute
//!   target, or `..` past the root) is a [`SourceError::Escape`] that names
//!   the link and its target text, never the content behind it.
//! - **No loops.** A listing never descends into a directory it is already
//!   inside of (a symlink back to an ancestor is a [`SourceError::Loop`]),
//!   and a chain of symlinks that loops is one too.
//! - **Regular files only.** FIFOs, sockets and devices are refused without
//!   being opened for reading (a FIFO would block the loader).
//! - **Bounded.** A file holds at most [`MAX_FILE_BYTES`]; a listing goes at
//!   most [`MAX_DEPTH`] directories deep and looks at most [`MAX_ENTRIES`]
//!   entries.
//!
//! The tree loader and the compiler know only the trait, so a tree loaded
//! from a git commit's objects and one loaded from a checkout take the same
//! code path. This module knows files and paths, nothing about what the
//! tree's files mean.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest file a tree may hold (16 MiB): state files, data, templates
/// and `files/` alike.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// How deep a listing goes below the directory listed.
pub const MAX_DEPTH: usize = 32;
/// How many directory entries one listing looks at.
pub const MAX_ENTRIES: usize = 100_000;

/// What a source cannot give, always naming the tree path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// `link` is a symlink to `target` (its text), which leads out of the tree.
    #[error("{link} is a symlink to {target}, outside the tree")]
    Escape { link: String, target: String },
    /// Following `path` loops: a chain of symlinks that never ends (no
    /// `back_to`), or a directory symlink back to `back_to`, a directory the
    /// listing is inside of.
    #[error("{path} {}", match back_to {
        Some(d) => format!("is a symlink back to {d}, a directory it is in (a loop)"),
        None => "is a symlink that loops (a chain of symlinks that never ends)".into(),
    })]
    Loop {
        path: String,
        back_to: Option<String>,
    },
    /// Not a regular file (a FIFO, a socket, a device, a directory).
    #[error("{path} is {what}, not a regular file")]
    NotRegular { path: String, what: &'static str },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {limit} bytes (the limit for a file in a tree)")]
    TooLarge { path: String, limit: u64 },
    /// A listing went deeper than [`MAX_DEPTH`] or saw more than
    /// [`MAX_ENTRIES`] entries.
    #[error("{path}: {what}")]
    Limit { path: String, what: String },
    /// Not a relative path in normal form, or not UTF-8.
    #[error("{path}: {what}")]
    BadPath { path: String, what: &'static str },
    #[error("{path}: cannot {op}: {message}")]
    Io {
        op: &'static str,
        path: String,
        message: String,
    },
}

impl SourceError {
    /// The tree path the error is about.
    pub fn path(&self) -> &str {
        match self {
            SourceError::Escape { link: p, .. }
            | SourceError::Loop { path: p, .. }
            | SourceError::NotRegular { path: p, .. }
            | SourceError::TooLarge { path: p, .. }
            | SourceError::Limit { path: p, .. }
            | SourceError::BadPath { path: p, .. }
            | SourceError::Io { path: p, .. } => p,
        }
    }

    /// A short stable name of the error class, for diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Escape { .. } => "tree-escape",
            SourceError::Loop { .. } => "tree-loop",
            SourceError::NotRegular { .. } => "tree-file",
            SourceError::TooLarge { .. } | SourceError::Limit { .. } => "tree-limit",
            SourceError::BadPath { .. } => "tree-path",
            SourceError::Io { .. } => "io",
        }
    }
}

/// What [`TreeSource::list`] found under a directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Every regular file below the directory (recursively), as paths
    /// relative to the tree root with `/` separators, sorted.
    pub files: Vec<String>,
    /// Every entry that could not be listed (a link out of the tree, a
    /// loop, something not a regular file, a limit reached), each naming
    /// the entry; sorted by path.
    pub problems: Vec<SourceError>,
}

/// Where a tree's files come from.
///
/// Paths are relative to the tree root, `/`-separated and in normal form
/// (`states/web.toml`: no leading `/`, no `.`, `..` or empty parts).
/// Implementations must answer only for what lies inside the tree and keep
/// the limits of this module ([`MAX_FILE_BYTES`], [`MAX_DEPTH`],
/// [`MAX_ENTRIES`]); the tree loader relies on it.
pub trait TreeSource: Send + Sync {
    /// The bytes of the regular file at `rel`; `Ok(None)` when there is no
    /// such file. Anything else that is not a readable regular file inside
    /// the tree (a link out, a FIFO, too large …) is an error naming it.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError>;

    /// The files below directory `dir` (e.g. `states`), recursively. A
    /// directory that does not exist lists nothing.
    fn list(&self, dir: &str) -> Listing;

    /// What the tree is, when the source knows: the commit it was read
    /// from. The tree falls back to a hash of what it read.
    fn id(&self) -> Option<String> {
        None
    }

    /// An id that fixes every byte of the tree (a commit read from its
    /// objects), for caches; `None` when files can change under the same
    /// id (a checkout's HEAD says nothing of uncommitted edits).
    fn content_id(&self) -> Option<String> {
        None
    }
}

/// A tree in a directory, read so that nothing resolves outside it.
///
/// Every open is an `openat2(2)` relative to a descriptor of the root with
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the kernel refuses (`EXDEV`)
/// any path, `..` or symlink, absolute or relative, that would leave the
/// root, with no window between a check and the open. Needs Linux ≥ 5.6.
#[derive(Debug)]
pub struct DirSource {
    path: PathBuf,
    root: OwnedFd,
}

/// `openat2(2)` with `resolve` (`RESOLVE_BENEATH` or `RESOLVE_IN_ROOT`),
/// retried while the kernel answers `EAGAIN`. The one place every confined
/// open of the project (tree, host root, facts) goes through.
///
/// The kernel answers `EAGAIN` when a rename or a mount anywhere on the
/// machine raced with a `..` of the lookup (a symlink such as
/// `/sys/class/net/lo -> ../../devices/…` has one), because it can no
/// longer prove the lookup stayed inside; the answer is "try again", not
/// "no". A busy machine (an agent beside other writers, a test suite)
/// sees it on a few percent of such opens. The retries are bounded: 16
/// at once, then up to 48 more with a yield between them.
pub fn openat2_confined<Fd: AsFd>(
    dir: Fd,
    path: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let dir = dir.as_fd();
    let mut tries = 0u32;
    loop {
        match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 64 => {
                tries += 1;
                if tries > 16 {
                    std::thread::yield_now();
                }
            }
            other => return other,
        }
    }
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl DirSource {
    /// Opens the tree at `path` (the root itself may be reached through a
    /// symlink: that is the caller's choice, not the tree's).
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<DirSource> {
        let path = path.as_ref().to_path_buf();
        let root = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirSource { path, root })
    }

    /// The directory this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_beneath(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = if rel.is_empty() { "." } else { rel };
        // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW
        // and O_CLOEXEC.
        let flags = match flags.contains(OFlags::PATH) {
            true => flags | OFlags::CLOEXEC,
            false => flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        };
        openat2_confined(&self.root, rel, flags, BENEATH)
    }

    /// The error for a path the kernel refused to resolve beneath the root.
    fn refused(&self, rel: &str, errno: Errno, op: &'static str) -> SourceError {
        match errno {
            Errno::XDEV => self.escape(rel),
            Errno::LOOP => SourceError::Loop {
                path: rel.to_string(),
                back_to: None,
            },
            Errno::NOSYS => SourceError::Io {
                op,
                path: rel.to_string(),
                message: "openat2(2) is not available (Linux 5.6 or later is needed to read a tree safely)".into(),
            },
            e => SourceError::Io {
                op,
                path: rel.to_string(),
                message: std::io::Error::from(e).to_string(),
            },
        }
    }

    /// Which component of `rel` is the symlink that leads out, and where to.
    fn escape(&self, rel: &str) -> SourceError {
        let parts: Vec<&str> = rel.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            if let Err(Errno::XDEV) = self.open_beneath(&prefix, OFlags::PATH) {
                let parent = parts[..i - 1].join("/");
                let target = self
                    .open_beneath(&parent, OFlags::PATH | OFlags::DIRECTORY)
                    .ok()
                    .and_then(|d| rustix::fs::readlinkat(&d, parts[i - 1], Vec::new()).ok())
                    .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned())
                    .unwrap_or_else(|| "a place".into());
                return SourceError::Escape {
                    link: prefix,
                    target,
                };
            }
        }
        // The path resolved after all (it changed meanwhile): still refused.
        SourceError::Escape {
            link: rel.to_string(),
            target: "a place".into(),
        }
    }

    fn walk(&self, w: &mut Walk, rel: &str, fd: OwnedFd, depth: usize) {
        let mut dir = match rustix::fs::Dir::new(fd) {
            Ok(d) => d,
            Err(e) => {
                w.problems.push(self.refused(rel, e, "list"));
                return;
            }
        };
        let mut entries: Vec<(String, FileType)> = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    w.problems.push(self.refused(rel, e, "list"));
                    break;
                }
            };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            w.entries += 1;
            if w.entries > w.max_entries {
                if !w.over {
                    w.over = true;
                    w.problems.push(SourceError::Limit {
                        path: w.top.clone(),
                        what: format!(
                            "more than {} entries below it (the limit for states/, templates/ or a data/ directory)",
                            w.max_entries
                        ),
                    });
                }
                return;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                w.problems.push(SourceError::BadPath {
                    path: format!("{rel}/{}", String::from_utf8_lossy(name)),
                    what: "a file name that is not UTF-8",
                });
                continue;
            };
            entries.push((name.to_string(), entry.file_type()));
        }
        // Listing order is the filesystem's; walk in name order so that the
        // problems found (and which limit hits first) do not depend on it.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ty) in entries {
            let path = format!("{rel}/{name}");
            let ty = match ty {
                FileType::Unknown => match rustix::fs::statat(
                    dir.fd().expect("open directory"),
                    name.as_str(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(e) => {
                        w.problems.push(self.refused(&path, e, "inspect"));
                        continue;
                    }
                },
                t => t,
            };
            match ty {
                FileType::RegularFile => w.files.push(path),
                FileType::Directory | FileType::Symlink => {
                    self.enter(w, &path, ty == FileType::Symlink, depth)
                }
                other => w.problems.push(SourceError::NotRegular {
                    path,
                    what: kind_name(other),
                }),
            }
        }
    }

    /// A directory, or a symlink to anything, met during a walk.
    fn enter(&self, w: &mut Walk, path: &str, link: bool, depth: usize) {
        let fd = match self.open_beneath(path, OFlags::PATH) {
            Ok(fd) => fd,
            // A dangling symlink names nothing (editors leave such lock
            // files next to what they edit); there is nothing to read.
            Err(Errno::NOENT) if link => return,
            Err(e) => {
                w.problems.push(self.refused(path, e, "list"));
                return;
            }
        };
        let st = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => {
                w.problems.push(self.refused(path, e, "inspect"));
                return;
            }
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {}
            FileType::RegularFile => {
                w.files.push(path.to_string());
                return;
            }
            other => {
                w.problems.push(SourceError::NotRegular {
                    path: path.to_string(),
                    what: kind_name(other),
                });
                return;
            }
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(i) = w.ancestors.iter().position(|(k, _)| *k == key) {
            w.problems.push(SourceError::Loop {
                path: path.to_string(),
                back_to: Some(w.ancestors[i].1.clone()),
            });
            return;
        }
        if depth + 1 > MAX_DEPTH {
            w.problems.push(SourceError::Limit {
                path: path.to_string(),
                what: format!("more than {MAX_DEPTH} directories deep (the limit in a tree)"),
            });
            return;
        }
        let dir = match self.open_beneath(path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(d) => d,
            Err(e) => {
                w.problems.push(self.refused(path, e, "list"));
                return;
            }
        };
        w.ancestors.push((key, path.to_string()));
        self.walk(w, path, dir, depth + 1);
        w.ancestors.pop();
    }

    /// [`TreeSource::list`] looking at no more than `max_entries` entries.
    fn list_bounded(&self, dir: &str, max_entries: usize) -> Listing {
        let mut w = Walk {
            top: dir.to_string(),
            files: Vec::new(),
            problems: Vec::new(),
            ancestors: Vec::new(),
            entries: 0,
            max_entries,
            over: false,
        };
        if !is_tree_path(dir) {
            w.problems.push(SourceError::BadPath {
                path: dir.replace('\0', "\\0"),
                what: "not a relative path in normal form",
            });
            return Listing {
                files: w.files,
                problems: w.problems,
            };
        }
        // The root and every directory on the way down are ancestors: a
        // symlink back to any of them is a loop.
        let parts: Vec<&str> = dir.split('/').collect();
        for i in 0..parts.len() {
            let p = parts[..i].join("/");
            if let Ok(st) = self
                .open_beneath(&p, OFlags::PATH)
                .and_then(|fd| rustix::fs::fstat(fd.as_fd()))
            {
                let name = if p.is_empty() {
                    "the tree root".to_string()
                } else {
                    p
                };
                w.ancestors.push(((st.st_dev, st.st_ino), name));
            }
        }
        match self.open_beneath(dir, OFlags::PATH) {
            Ok(_) => self.enter(&mut w, dir, false, 0),
            Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(e) => w.problems.push(self.refused(dir, e, "list")),
        }
        // `enter` lists a regular file given as the directory itself: a
        // tree path that should be a directory but is a file lists nothing.
        w.files.retain(|f| f != dir);
        w.files.sort();
        w.problems.sort_by(|a, b| a.path().cmp(b.path()));
        Listing {
            files: w.files,
            problems: w.problems,
        }
    }
}

/// The state of one listing.
struct Walk {
    top: String,
    files: Vec<String>,
    problems: Vec<SourceError>,
    /// The directories the walk is inside of, by (device, inode), with their path.
    ancestors: Vec<((u64, u64), String)>,
    entries: usize,
    max_entries: usize,
    over: bool,
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "not a file",
    }
}

/// Whether `rel` is a tree path in normal form: relative, `/`-separated,
/// no `.`, `..` or empty parts, no NUL.
pub fn is_tree_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl TreeSource for DirSource {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        if !is_tree_path(rel) {
            return Err(SourceError::BadPath {
                path: rel.replace('\0', "\\0"),
                what: "not a relative path in normal form",
            });
        }
        // Look before opening for reading: opening a FIFO or a device can
        // block or act on the device. An O_PATH descriptor does neither.
        let probe = match self.open_beneath(rel, OFlags::PATH) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(self.refused(rel, e, "read")),
        };
        let regular = |fd: &OwnedFd| -> Result<u64, SourceError> {
            let st = rustix::fs::fstat(fd).map_err(|e| self.refused(rel, e, "inspect"))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => Ok(st.st_size as u64),
                other => Err(SourceError::NotRegular {
                    path: rel.to_string(),
                    what: kind_name(other),
                }),
            }
        };
        let size = regular(&probe)?;
        if size > MAX_FILE_BYTES {
            return Err(SourceError::TooLarge {
                path: rel.to_string(),
                limit: MAX_FILE_BYTES,
            });
        }
        // Non-blocking, and checked again: the entry may have been swapped
        // for a FIFO since the probe.
        let fd = self
            .open_beneath(rel, OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(|e| self.refused(rel, e, "read"))?;
        regular(&fd)?;
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::from(fd)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::Io {
                op: "read",
                path: rel.to_string(),
                message: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(SourceError::TooLarge {
                path: rel.to_string(),
                limit: MAX_FILE_BYTES,
            });
        }
        Ok(Some(bytes))
    }

    fn list(&self, dir: &str) -> Listing {
        self.list_bounded(dir, MAX_ENTRIES)
    }

    /// The commit of a git checkout (`.git/HEAD`, a loose ref or
    /// `packed-refs`), read through the same confinement as everything
    /// else: only a well-formed object id is ever returned, so no file's
    /// content can reach a report through it.
    fn id(&self) -> Option<String> {
        let text = |rel: &str| {
            self.read(rel)
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let head = text(".git/HEAD")?;
        let head = head.trim();
        let Some(r) = head.strip_prefix("ref: ") else {
            return object_id(head);
        };
        if !r.starts_with("refs/") || !is_tree_path(r) {
            return None;
        }
        if let Some(c) = text(&format!(".git/{r}")) {
            return object_id(c.trim());
        }
        let packed = text(".git/packed-refs")?;
        packed
            .lines()
            .find(|l| l.ends_with(&format!(" {r}")))
            .and_then(|l| l.split_whitespace().next())
            .and_then(object_id)
    }
}

/// A git object id (SHA-1 or SHA-256, hex), or nothing.
fn object_id(s: &str) -> Option<String> {
    ((s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("tree");
        std::fs::create_dir_all(root.join("states/sub")).unwrap();
        std::fs::write(root.join("states/a.toml"), "a = 1\n").unwrap();
        std::fs::write(root.join("states/sub/b.toml"), "b = 1\n").unwrap();
        std::fs::create_dir_all(d.path().join("outside")).unwrap();
        std::fs::write(d.path().join("outside/secret"), "OUTSIDE\n").unwrap();
        (d, root)
    }

    #[test]
    fn reads_files_and_links_inside() {
        let (_d, root) = tree();
        symlink("a.toml", root.join("states/c.toml")).unwrap();
        symlink("sub", root.join("states/alias")).unwrap();
        let s = DirSource::open(&root).unwrap();
        assert_eq!(s.read("states/c.toml").unwrap().unwrap(), b"a = 1\n");
        assert_eq!(s.read("states/nope.toml").unwrap(), None);
        let l = s.list("states");
        assert_eq!(
            l.files,
            [
                "states/a.toml",
                "states/alias/b.toml",
                "states/c.toml",
                "states/sub/b.toml"
            ]
        );
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(s.list("nothing"), Listing::default());
    }

    /// The race is caused for real: a thread renames a file back and forth
    /// while the test opens paths with a `..` (through a symlink, as
    /// `/sys/class/net/lo` is) in the root; on Linux 6.x a few percent of
    /// the bare `openat2` calls answer `EAGAIN` then. Every confined open
    /// must still succeed.
    #[test]
    fn a_rename_racing_a_dotdot_never_fails_a_confined_open() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (d, root) = tree();
        symlink("../states/sub", root.join("link")).unwrap();
        std::fs::write(d.path().join("churn"), "x").unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let renamer = {
            let (stop, a, b) = (
                stop.clone(),
                d.path().join("churn"),
                d.path().join("churn2"),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&a, &b).unwrap();
                    std::fs::rename(&b, &a).unwrap();
                }
            })
        };
        let dir = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let (mut bare_again, mut failed) = (0, Vec::new());
        for i in 0..20_000 {
            let (path, resolve) = match i % 2 {
                0 => ("link/b.toml", ResolveFlags::IN_ROOT),
                _ => ("states/sub/../a.toml", ResolveFlags::BENEATH),
            };
            if let Err(Errno::AGAIN) =
                rustix::fs::openat2(&dir, path, flags, Mode::empty(), resolve)
            {
                bare_again += 1;
            }
            if let Err(e) = openat2_confined(&dir, path, flags, resolve) {
                failed.push((path, e));
            }
        }
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        println!("bare openat2 answered EAGAIN {bare_again} times in 20,000");
        assert!(
            failed.is_empty(),
            "{} failed, first {:?}",
            failed.len(),
            failed[0]
        );
    }

    #[test]
    fn links_out_are_refused_and_named() {
        let (d, root) = tree();
        symlink("../../outside/secret", root.join("states/x.toml")).unwrap();
        symlink(d.path().join("outside"), root.join("states/out")).unwrap();
        let s = DirSource::open(&root).unwrap();
        let e = s.read("states/x.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "states/x.toml is a symlink to ../../outside/secret, outside the tree"
        );
        // Through a linked directory: the directory is named.
        let e = s.read("states/out/secret").unwrap_err();
        assert!(
            matches!(&e, SourceError::Escape { link, .. } if link == "states/out"),
            "{e}"
        );
        let l = s.list("states");
        assert_eq!(l.files, ["states/a.toml", "states/sub/b.toml"]);
        let named: Vec<&str> = l.problems.iter().map(|p| p.path()).collect();
        assert_eq!(named, ["states/out", "states/x.toml"]);
        assert!(l.problems.iter().all(|p| p.code() == "tree-escape"));
    }

    #[test]
    fn loops_end() {
        let (_d, root) = tree();
        symlink(".", root.join("states/self")).unwrap();
        symlink("..", root.join("states/sub/up")).unwrap();
        symlink("l2", root.join("states/l1.toml")).unwrap();
        symlink("l1.toml", root.join("states/l2")).unwrap();
        let s = DirSource::open(&root).unwrap();
        let l = s.list("states");
        assert_eq!(l.files, ["states/a.toml", "states/sub/b.toml"]);
        let named: Vec<(&str, &str)> = l.problems.iter().map(|p| (p.path(), p.code())).collect();
        assert_eq!(
            named,
            [
                ("states/l1.toml", "tree-loop"),
                ("states/l2", "tree-loop"),
                ("states/self", "tree-loop"),
                ("states/sub/up", "tree-loop"),
            ]
        );
    }

    #[test]
    fn fifos_are_refused_unopened() {
        let (_d, root) = tree();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("states/f.toml"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let s = DirSource::open(&root).unwrap();
        let e = s.read("states/f.toml").unwrap_err();
        assert_eq!(e.to_string(), "states/f.toml is a FIFO, not a regular file");
        assert_eq!(s.list("states").problems, [e]);
    }

    #[test]
    fn bad_paths_and_limits() {
        let (_d, root) = tree();
        let s = DirSource::open(&root).unwrap();
        for p in ["/etc/passwd", "states/../x", "", "a//b", "a\0b"] {
            assert_eq!(s.read(p).unwrap_err().code(), "tree-path", "{p:?}");
        }
        let big = std::fs::File::create(root.join("states/big.toml")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(s.read("states/big.toml").unwrap_err().code(), "tree-limit");
        let mut deep = root.join("states");
        for _ in 0..MAX_DEPTH + 1 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let l = s.list("states");
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert_eq!(l.problems[0].code(), "tree-limit");
    }

    #[test]
    fn a_listing_stops_at_its_entry_limit() {
        let (_d, root) = tree();
        let many = root.join("states/many");
        std::fs::create_dir_all(&many).unwrap();
        for i in 0..10 {
            std::fs::File::create(many.join(i.to_string())).unwrap();
        }
        let s = DirSource::open(&root).unwrap();
        assert!(s.list_bounded("states", 20).problems.is_empty());
        let l = s.list_bounded("states", 10);
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert_eq!(l.problems[0].code(), "tree-limit");
        assert_eq!(l.problems[0].path(), "states");
        assert!(l.files.len() < 10);
    }

    #[test]
    fn git_ids_are_object_ids_only() {
        let (_d, root) = tree();
        std::fs::create_dir_all(root.join(".git/refs/heads")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let s = DirSource::open(&root).unwrap();
        assert_eq!(s.id(), None);
        let c = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(root.join(".git/refs/heads/main"), format!("{c}\n")).unwrap();
        assert_eq!(s.id().as_deref(), Some(c));
        std::fs::write(root.join(".git/HEAD"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        assert_eq!(s.id(), None);
    }
}
