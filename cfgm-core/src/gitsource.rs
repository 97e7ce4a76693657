//! A states tree read straight from a git commit's objects, never checked
//! out: the agent compiles the commit it verified, and `cfgm diff` compares
//! two commits, through the same [`TreeSource`] contract as a directory.
//!
//! [`read_tree`] reads every file of a commit once, bounded ([`Limits`]):
//! symlinks are resolved inside the tree, and one that leads outside it,
//! to a directory or nowhere refuses the whole tree, as do submodules and
//! bad names. Reading objects is reading the tree; nothing here fetches,
//! verifies or writes (that is the agent's `git` module).

use crate::source::{Listing, SourceError, TreeSource};
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Bounds on reading a commit's tree: a tree is untrusted input.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_files: usize,
    pub max_file_bytes: usize,
    pub max_total_bytes: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: 100_000,
            max_file_bytes: 16 << 20,
            max_total_bytes: 512 << 20,
            max_depth: 64,
        }
    }
}

/// Why a commit's tree was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("read {what}: {message}")]
    Git { what: String, message: String },
    /// A symlink that leads outside the tree (absolute, or `..` past the top).
    #[error("{path}: symlink to \"{target}\" leads outside the tree")]
    SymlinkEscapes { path: String, target: String },
    /// A symlink to a directory, to a missing entry or in a loop.
    #[error("{path}: symlink to \"{target}\": {why}")]
    BadSymlink {
        path: String,
        target: String,
        why: &'static str,
    },
    /// An entry the tree may not hold (a submodule, a bad name).
    #[error("{path}: {why}")]
    BadEntry { path: String, why: String },
    #[error("the tree exceeds a limit: {0}")]
    TooLarge(String),
}

/// Every file of a commit's tree, read once, as (path, bytes); symlinks
/// that stay inside the tree read as their target's content.
#[derive(Clone, Debug, Default)]
pub struct CommitFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl CommitFiles {
    /// Files under `dir` (recursively; `""` for all), sorted, as paths
    /// relative to the tree root with `/` separators.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let dir = dir.trim_matches('/');
        if dir.is_empty() {
            return self.files.keys().cloned().collect();
        }
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A file's bytes, by path relative to the tree root.
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        self.files.get(rel.trim_start_matches('/')).cloned()
    }

    /// A file's bytes without a copy.
    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files
            .get(rel.trim_start_matches('/'))
            .map(Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Reads every file of `commit`'s tree. Symlinks are resolved inside the
/// tree; one that leads outside, to a directory or nowhere refuses the whole
/// tree, as do submodules and bad names. Sizes and depth are bounded.
pub fn read_tree(
    repo: &Repository,
    commit: Oid,
    limits: &Limits,
) -> Result<CommitFiles, TreeError> {
    read_subtree(repo, commit, "", limits)
}

/// Like [`read_tree`], of the directory `subdir` of the commit (`""`: the
/// whole tree); paths are relative to it, and a symlink that leaves it
/// leaves the tree.
pub fn read_subtree(
    repo: &Repository,
    commit: Oid,
    subdir: &str,
    limits: &Limits,
) -> Result<CommitFiles, TreeError> {
    let git = |what: &str| {
        let what = what.to_string();
        move |e: git2::Error| TreeError::Git {
            what,
            message: e.message().to_string(),
        }
    };
    let mut tree = repo
        .find_commit(commit)
        .map_err(git(&format!("commit {commit}")))?
        .tree()
        .map_err(git(&format!("tree of {commit}")))?;
    let subdir = subdir.trim_matches('/');
    if !subdir.is_empty() {
        let entry = tree
            .get_path(std::path::Path::new(subdir))
            .map_err(git(&format!("{subdir} in {commit}")))?;
        tree = entry
            .to_object(repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(git(&format!("{subdir} in {commit} (not a directory)")))?;
    }
    let mut blobs: BTreeMap<String, Oid> = BTreeMap::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut links: BTreeMap<String, Oid> = BTreeMap::new();
    let mut problem: Option<TreeError> = None;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let path = format!("{parent}{name}");
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            problem = Some(TreeError::BadEntry {
                path,
                why: "not a valid file name".into(),
            });
            return TreeWalkResult::Abort;
        }
        if parent.matches('/').count() >= limits.max_depth {
            problem = Some(TreeError::TooLarge(format!(
                "{path}: deeper than {} directories",
                limits.max_depth
            )));
            return TreeWalkResult::Abort;
        }
        if blobs.len() + links.len() >= limits.max_files {
            problem = Some(TreeError::TooLarge(format!(
                "more than {} files",
                limits.max_files
            )));
            return TreeWalkResult::Abort;
        }
        match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Tree), _) => {
                dirs.insert(path);
            }
            (Some(ObjectType::Blob), 0o120000) => {
                links.insert(path, entry.id());
            }
            (Some(ObjectType::Blob), _) => {
                blobs.insert(path, entry.id());
            }
            _ => {
                problem = Some(TreeError::BadEntry {
                    path,
                    why: "a submodule (or other non-file entry) is not supported in a states tree"
                        .into(),
                });
                return TreeWalkResult::Abort;
            }
        }
        TreeWalkResult::Ok
    })
    .map_err(git("tree"))
    .or_else(|e| if problem.is_some() { Ok(()) } else { Err(e) })?;
    if let Some(p) = problem {
        return Err(p);
    }

    // Sizes come from the object headers, so an oversized blob is refused
    // before it is inflated.
    let odb = repo.odb().map_err(git("object database"))?;
    let size = |path: &str, id: Oid| -> Result<usize, TreeError> {
        odb.read_header(id).map(|(n, _)| n).map_err(git(path))
    };
    let mut total = 0usize;
    let mut read_blob = |path: &str, id: Oid| -> Result<Vec<u8>, TreeError> {
        let n = size(path, id)?;
        if n > limits.max_file_bytes {
            return Err(TreeError::TooLarge(format!(
                "{path}: {n} bytes, more than {}",
                limits.max_file_bytes
            )));
        }
        total += n;
        if total > limits.max_total_bytes {
            return Err(TreeError::TooLarge(format!(
                "more than {} bytes in all",
                limits.max_total_bytes
            )));
        }
        Ok(repo.find_blob(id).map_err(git(path))?.content().to_vec())
    };
    let mut files = BTreeMap::new();
    for (path, id) in &blobs {
        files.insert(path.clone(), read_blob(path, *id)?);
    }
    let mut targets = BTreeMap::new();
    for (path, id) in &links {
        if size(path, *id)? > 4096 {
            return Err(TreeError::BadEntry {
                path: path.clone(),
                why: "a symlink target longer than 4096 bytes".into(),
            });
        }
        let blob = repo.find_blob(*id).map_err(git(path))?;
        targets.insert(
            path.clone(),
            String::from_utf8_lossy(blob.content()).into_owned(),
        );
    }
    for path in links.keys() {
        let resolved = resolve_link(path, &blobs, &dirs, &targets)?;
        files.insert(path.clone(), read_blob(path, blobs[&resolved])?);
    }
    Ok(CommitFiles { files })
}

/// Resolves a symlink at `path` inside the tree to the regular file it
/// leads to, following at most 40 links (as the kernel does). `links` maps
/// each symlink's path to its target text.
fn resolve_link(
    path: &str,
    blobs: &BTreeMap<String, Oid>,
    dirs: &BTreeSet<String>,
    links: &BTreeMap<String, String>,
) -> Result<String, TreeError> {
    let target = links.get(path).cloned().unwrap_or_default();
    let escapes = |to: &str| TreeError::SymlinkEscapes {
        path: path.to_string(),
        target: to.to_string(),
    };
    let bad = |why| TreeError::BadSymlink {
        path: path.to_string(),
        target: target.clone(),
        why,
    };
    let mut at = path.to_string();
    for _ in 0..40 {
        let to = &links[&at];
        if to.starts_with('/') {
            return Err(escapes(to));
        }
        // The link's directory, then the target's components.
        let mut parts: Vec<&str> = at.split('/').collect();
        parts.pop();
        for c in to.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(escapes(to));
                    }
                }
                c => parts.push(c),
            }
        }
        let joined = parts.join("/");
        if blobs.contains_key(&joined) {
            return Ok(joined);
        }
        if joined.is_empty() || dirs.contains(&joined) {
            return Err(bad(
                "a symlink to a directory is not supported in a states tree",
            ));
        }
        if !links.contains_key(&joined) {
            return Err(bad("its target is not a file of the tree"));
        }
        at = joined;
    }
    Err(bad("too many levels of symlinks"))
}

/// A commit's files as a tree source: what [`read_tree`] let through is
/// all there is.
#[derive(Clone, Debug)]
pub struct GitSource {
    pub files: Arc<CommitFiles>,
    /// The commit id, the tree's id.
    pub commit: String,
}

impl GitSource {
    /// A source over a commit's files, the tree at the repository's root.
    pub fn new(files: Arc<CommitFiles>, commit: String) -> GitSource {
        GitSource { files, commit }
    }

    /// Reads `rev` (anything `git rev-parse` takes) of the repository at
    /// `repo` into a source; the tree is the directory `subdir` of it
    /// (`""` for the root).
    pub fn open(repo: &std::path::Path, rev: &str, subdir: &str) -> Result<GitSource, TreeError> {
        let git = |what: String| {
            move |e: git2::Error| TreeError::Git {
                what,
                message: e.message().to_string(),
            }
        };
        let r = Repository::open(repo).map_err(git(format!("repository {}", repo.display())))?;
        let commit = r
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(git(format!("revision `{rev}`")))?
            .id();
        let files = read_subtree(&r, commit, subdir, &Limits::default())?;
        Ok(GitSource::new(Arc::new(files), commit.to_string()))
    }
}

impl TreeSource for GitSource {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.files.read(rel))
    }

    fn list(&self, dir: &str) -> Listing {
        Listing {
            files: self.files.list(dir),
            problems: Vec::new(),
        }
    }

    fn id(&self) -> Option<String> {
        Some(self.commit.clone())
    }

    fn content_id(&self) -> Option<String> {
        Some(self.commit.clone())
    }
}
