//! Getting the states from git: fetch, verify, anti-rollback, and reading a
//! commit's files.
//!
//! This module owns the agent's copy of the states repository (a bare
//! repository at `STATE_DIR/repo.git`), the record of the last applied
//! commit (`STATE_DIR/applied-commit`, written durably), and the decision
//! whether a fetched tip may be applied, as a [`PullVerdict`]: the tip must
//! carry a trusted SSH signature ([`crate::signers`]) and be the last
//! applied commit or descend from it, unless rollback is allowed. It also
//! reads a commit's files ([`CommitFiles`]) so the compiler can load a tree
//! from git objects, never from a checkout.
//!
//! It must not compile, apply or report: a verdict is data for the agent
//! loop. Nothing it fetches is trusted before [`crate::signers`] says so;
//! transport security adds nothing to that.
//!
//! Fetching is bounded in time: libgit2's connect and server timeouts (which
//! are process-wide settings; the agent is their only user) plus a deadline
//! checked in the transfer callbacks. Over `git://` and `https://` the fetch
//! is shallow and deepened until the last applied commit is reachable;
//! libgit2's local transport (paths, `file://`) cannot fetch shallow, and
//! `ssh://` is fetched whole.

use crate::signers::{self, AllowedSigners, Verdict};
pub use cfgm_core::gitsource::{read_tree, CommitFiles, Limits, TreeError};
use git2::{Direction, FetchOptions, Oid, RemoteCallbacks, Repository};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The ref the fetched tip is kept under in the agent's repository.
const FETCHED_REF: &str = "refs/cfgm/fetched";
/// The ref that keeps the last applied commit (and its history) alive.
const APPLIED_REF: &str = "refs/cfgm/applied";
/// libgit2's depth meaning "fetch everything, unshallow".
const UNSHALLOW: i32 = i32::MAX;

/// What a [`Puller`] fetches and how it decides.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The remote: a `git://`, `ssh://`, `https://`, `file://` URL or a path.
    pub url: String,
    /// The full ref to follow.
    pub refname: String,
    /// The allowed_signers file, read at each pull (a removed key stops
    /// being trusted at the next pull).
    pub allowed_signers: PathBuf,
    /// The agent's state directory.
    pub state_dir: PathBuf,
    pub allow_rollback: bool,
    /// The longest one fetch (connect and download) may take.
    pub timeout: Duration,
    /// The first depth of a shallow fetch (0: never shallow). Deepened ×8
    /// while the last applied commit is not reachable, then unshallowed.
    pub depth: u32,
}

impl PullOptions {
    /// The options of an agent configuration.
    pub fn from_config(c: &crate::config::AgentConfig) -> PullOptions {
        PullOptions {
            url: c.repo.clone(),
            refname: c.refname.clone(),
            allowed_signers: c.allowed_signers.clone(),
            state_dir: c.state_dir.clone(),
            allow_rollback: c.allow_rollback,
            timeout: c.fetch_timeout,
            depth: 16,
        }
    }
}

/// Why a fetched tip is not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its signature is not trusted.
    Signature(Verdict),
    /// It does not descend from the last applied commit.
    Rollback { last_applied: Oid },
    /// The allowed_signers file could not be read or is malformed: nothing
    /// is trusted.
    Signers(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Signature(v) => f.write_str(&v.reason()),
            Refusal::Rollback { last_applied } => write!(
                f,
                "it does not descend from the last applied commit {last_applied} (a rollback; set allow_rollback = true to allow it)"
            ),
            Refusal::Signers(e) => write!(f, "allowed_signers is unusable, nothing is trusted: {e}"),
        }
    }
}

/// The outcome of one pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullVerdict {
    /// A new commit, trusted and not a rollback (or rollback allowed): apply it.
    Fresh {
        commit: Oid,
        /// The last applied commit, if any.
        previous: Option<Oid>,
        /// The trusted signer (principal and key fingerprint).
        signer: String,
        /// It does not descend from `previous` and was allowed to.
        rollback: bool,
    },
    /// The tip is the last applied commit (still trusted).
    Unchanged { commit: Oid },
    /// The ref's tip is an ancestor of the last applied commit (a rollout
    /// took the host ahead of the ref): keep the applied commit. Not a
    /// refusal — nothing older is applied either way.
    Behind { tip: Oid, applied: Oid },
    /// The fetch failed: keep converging to `last_good`.
    Stale {
        reason: String,
        last_good: Option<Oid>,
    },
    /// The tip was fetched and refused: keep converging to `last_good`.
    Refused {
        commit: Oid,
        refusal: Refusal,
        last_good: Option<Oid>,
    },
}

impl PullVerdict {
    /// The commit to converge to after this pull, if any.
    pub fn target(&self) -> Option<Oid> {
        match self {
            PullVerdict::Fresh { commit, .. } | PullVerdict::Unchanged { commit } => Some(*commit),
            PullVerdict::Behind { applied, .. } => Some(*applied),
            PullVerdict::Stale { last_good, .. } | PullVerdict::Refused { last_good, .. } => {
                *last_good
            }
        }
    }

    /// A short stable name: `fresh`, `unchanged`, `stale`, `refused`.
    pub fn code(&self) -> &'static str {
        match self {
            PullVerdict::Fresh { .. } => "fresh",
            PullVerdict::Unchanged { .. } => "unchanged",
            PullVerdict::Behind { .. } => "behind",
            PullVerdict::Stale { .. } => "stale",
            PullVerdict::Refused { .. } => "refused",
        }
    }

    /// The verdict in one line, for people.
    pub fn reason(&self) -> String {
        let keep = |last: &Option<Oid>| match last {
            Some(c) => format!("; keeping {c}"),
            None => "; nothing applied yet".to_string(),
        };
        match self {
            PullVerdict::Fresh {
                commit,
                signer,
                rollback,
                ..
            } => format!(
                "{commit}: {}signed by {signer}",
                if *rollback {
                    "a rollback (allowed), "
                } else {
                    ""
                }
            ),
            PullVerdict::Unchanged { commit } => format!("{commit}: unchanged"),
            PullVerdict::Behind { tip, applied } => {
                format!("{applied}: kept; the followed ref is behind it (at {tip}, an ancestor)")
            }
            PullVerdict::Stale { reason, last_good } => {
                format!("stale: {reason}{}", keep(last_good))
            }
            PullVerdict::Refused {
                commit,
                refusal,
                last_good,
            } => format!("refused {commit}: {refusal}{}", keep(last_good)),
        }
    }
}

/// The pull could not even start (the state directory is unusable).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct PullError {
    pub what: String,
    #[source]
    pub source: git2::Error,
}

/// The agent's copy of the states repository and its pull logic.
pub struct Puller {
    opts: PullOptions,
    repo: Repository,
}

impl Puller {
    /// Opens (or creates) `STATE_DIR/repo.git`.
    pub fn open(opts: PullOptions) -> Result<Puller, PullError> {
        let path = opts.state_dir.join("repo.git");
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(|source| PullError {
                what: format!("create {}", path.display()),
                source,
            })?,
        };
        Ok(Puller { opts, repo })
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn options(&self) -> &PullOptions {
        &self.opts
    }

    /// The last applied commit, as recorded.
    pub fn last_applied(&self) -> Option<Oid> {
        read_applied(&self.opts.state_dir)
    }

    /// Records `commit` as applied (durably), and keeps its objects.
    pub fn record_applied(&self, commit: Oid) -> std::io::Result<()> {
        // Already so (every run after the first on a commit): nothing to
        // write, nothing to make durable again.
        if read_applied(&self.opts.state_dir) == Some(commit)
            && self.repo.refname_to_id(APPLIED_REF).ok() == Some(commit)
        {
            return Ok(());
        }
        self.repo
            .reference(APPLIED_REF, commit, true, "cfgm: applied")
            .map_err(std::io::Error::other)?;
        write_applied(&self.opts.state_dir, commit)
    }

    /// The files of a commit in this repository.
    pub fn files(&self, commit: Oid, limits: &Limits) -> Result<CommitFiles, TreeError> {
        read_tree(&self.repo, commit, limits)
    }

    /// One pull: fetch the ref, verify the tip, check descent.
    pub fn pull(&self) -> PullVerdict {
        let last = self.last_applied();
        let mut depth = self.first_depth();
        let tip = match self.fetch(depth) {
            Ok(t) => t,
            Err(reason) => {
                return PullVerdict::Stale {
                    reason,
                    last_good: last,
                }
            }
        };
        self.decide(tip, last, &mut depth, false)
    }

    /// A given commit (a rollout's target): fetch the followed ref, find
    /// `rev` (a full or abbreviated commit id) in its history — or, for a
    /// release not merged yet, in another branch's — then the same checks
    /// as a pull: a trusted signature, and descent from the last applied
    /// commit. A commit on no branch is not found.
    pub fn pull_commit(&self, rev: &str) -> PullVerdict {
        let last = self.last_applied();
        let mut depth = self.first_depth();
        let tip = match self.fetch(depth) {
            Ok(t) => t,
            Err(reason) => {
                return PullVerdict::Stale {
                    reason,
                    last_good: last,
                }
            }
        };
        let commit = loop {
            let found = self
                .repo
                .revparse_single(rev)
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
                .map(|c| c.id())
                .filter(|c| *c == tip || self.repo.graph_descendant_of(tip, *c).unwrap_or(false));
            match found {
                Some(c) => break c,
                None if self.can_deepen(depth) => {
                    depth = next_depth(depth);
                    if let Err(reason) = self.fetch(depth) {
                        return PullVerdict::Stale {
                            reason: format!("deepening to find {rev}: {reason}"),
                            last_good: last,
                        };
                    }
                }
                None => {
                    // Not on the followed ref (yet): a release branch. Its
                    // signature and descent are checked all the same.
                    match self.fetch_heads() {
                        Ok(heads) => {
                            let found = self
                                .repo
                                .revparse_single(rev)
                                .ok()
                                .and_then(|o| o.peel_to_commit().ok())
                                .map(|c| c.id())
                                .filter(|c| {
                                    heads.iter().any(|h| {
                                        h == c
                                            || self
                                                .repo
                                                .graph_descendant_of(*h, *c)
                                                .unwrap_or(false)
                                    })
                                });
                            if let Some(c) = found {
                                break c;
                            }
                        }
                        Err(reason) => {
                            return PullVerdict::Stale {
                                reason: format!("looking for {rev} on other branches: {reason}"),
                                last_good: last,
                            }
                        }
                    }
                    return PullVerdict::Stale {
                        reason: format!(
                            "commit {rev} is on no branch of {} (not in the history of {} nor of any other branch)",
                            self.opts.url, self.opts.refname
                        ),
                        last_good: last,
                    };
                }
            }
        };
        self.decide(commit, last, &mut depth, true)
    }

    fn first_depth(&self) -> i32 {
        if shallow_transport(&self.opts.url) && self.opts.depth > 0 {
            self.opts.depth as i32
        } else {
            0
        }
    }

    fn can_deepen(&self, depth: i32) -> bool {
        depth != 0 && depth != UNSHALLOW && self.repo.is_shallow()
    }

    /// Whether `commit` (fetched) may be applied after `last`: a trusted
    /// signature, and descent from `last` unless rollback is allowed.
    /// `explicit`: the commit was asked for (`apply --commit`), not the
    /// followed ref's tip.
    fn decide(&self, tip: Oid, last: Option<Oid>, depth: &mut i32, explicit: bool) -> PullVerdict {
        let refused = |refusal| PullVerdict::Refused {
            commit: tip,
            refusal,
            last_good: last,
        };
        let signers = match AllowedSigners::load(&self.opts.allowed_signers) {
            Ok(s) => s,
            Err(e) => return refused(Refusal::Signers(e.to_string())),
        };
        let verdict = match signers::verify_commit(&self.repo, tip, &signers) {
            Ok(v) => v,
            Err(e) => {
                return PullVerdict::Stale {
                    reason: format!("read commit {tip}: {}", e.message()),
                    last_good: last,
                }
            }
        };
        let signer = match &verdict {
            Verdict::Trusted {
                principal,
                key_fingerprint,
            } => format!("{principal} ({key_fingerprint})"),
            _ => return refused(Refusal::Signature(verdict)),
        };
        let Some(last) = last else {
            return PullVerdict::Fresh {
                commit: tip,
                previous: None,
                signer,
                rollback: false,
            };
        };
        if tip == last {
            return PullVerdict::Unchanged { commit: tip };
        }
        // Anti-rollback: the tip must descend from the last applied commit.
        // In a shallow repository the history may end before `last`:
        // deepen until it is reachable or the history is whole.
        let descends = loop {
            match self.repo.graph_descendant_of(tip, last) {
                Ok(true) => break true,
                Ok(false) | Err(_) if self.can_deepen(*depth) => {
                    *depth = next_depth(*depth);
                    if let Err(reason) = self.fetch(*depth) {
                        return PullVerdict::Stale {
                            reason: format!("deepening to check descent: {reason}"),
                            last_good: Some(last),
                        };
                    }
                }
                _ => break false,
            }
        };
        if !descends && !explicit && !self.opts.allow_rollback {
            // The followed ref is behind what was applied (a rollout took
            // this host to a newer commit, the ref has not caught up yet):
            // nothing to do, the applied commit stays.
            if self.repo.graph_descendant_of(last, tip).unwrap_or(false) {
                return PullVerdict::Behind { tip, applied: last };
            }
        }
        if descends || self.opts.allow_rollback {
            PullVerdict::Fresh {
                commit: tip,
                previous: Some(last),
                signer,
                rollback: !descends,
            }
        } else {
            refused(Refusal::Rollback { last_applied: last })
        }
    }

    /// Fetches every branch of the remote (whole history) under
    /// `refs/cfgm/heads/`, and returns their tips.
    fn fetch_heads(&self) -> Result<Vec<Oid>, String> {
        let deadline = Instant::now() + self.opts.timeout;
        let url = &self.opts.url;
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(|e| format!("remote {url}: {}", e.message()))?;
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(deadline));
        fo.download_tags(git2::AutotagOption::None);
        remote
            .fetch(&["+refs/heads/*:refs/cfgm/heads/*"], Some(&mut fo), None)
            .map_err(|e| {
                if Instant::now() >= deadline {
                    format!("fetch timed out after {:?}", self.opts.timeout)
                } else {
                    format!("fetch branches from {url}: {}", e.message())
                }
            })?;
        let refs = self
            .repo
            .references_glob("refs/cfgm/heads/*")
            .map_err(|e| e.message().to_string())?;
        Ok(refs.flatten().filter_map(|r| r.target()).collect())
    }

    /// Fetches the ref at `depth` (0: whole history) and returns its tip.
    /// The objects are downloaded only when the tip is not here yet (or a
    /// deeper history is asked for).
    fn fetch(&self, depth: i32) -> Result<Oid, String> {
        let deadline = Instant::now() + self.opts.timeout;
        let ms = self.opts.timeout.as_millis().min(i32::MAX as u128) as i32;
        let timed_out = || format!("fetch timed out after {:?}", self.opts.timeout);
        let url = &self.opts.url;
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(|e| format!("remote {url}: {}", e.message()))?;
        // libgit2's timeouts are process globals that a socket copies when
        // it is made, during the connect. Pullers of one process with other
        // timeouts (tests, a CLI fetching from several remotes) take turns
        // from the setting through the connect, so each socket gets its own.
        static TIMEOUTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let conn = {
            let _turn = TIMEOUTS.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: these set plain integers of libgit2, read when the
            // next socket is made; the turn above orders them with it.
            unsafe {
                let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
                let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
            }
            remote.connect_auth(Direction::Fetch, Some(callbacks(deadline)), None)
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(_) if Instant::now() >= deadline => return Err(timed_out()),
            Err(e) => return Err(format!("connect to {url}: {}", e.message())),
        };
        let heads = conn
            .list()
            .map_err(|e| format!("list refs of {url}: {}", e.message()))?;
        let Some(tip) = heads
            .iter()
            .find(|h| h.name() == self.opts.refname)
            .map(|h| h.oid())
        else {
            let mut names: Vec<&str> = heads
                .iter()
                .map(|h| h.name())
                .filter(|n| n.starts_with("refs/heads/"))
                .collect();
            names.truncate(5);
            return Err(format!(
                "{url} has no ref {} (its branches: {})",
                self.opts.refname,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        };
        let have = self.repo.find_commit(tip).is_ok();
        if !have || depth > self.opts.depth as i32 || depth == UNSHALLOW {
            let mut fo = FetchOptions::new();
            fo.remote_callbacks(callbacks(deadline));
            fo.download_tags(git2::AutotagOption::None);
            fo.depth(depth);
            let spec = format!("+{}:{FETCHED_REF}", self.opts.refname);
            if let Err(e) = conn.remote().download(&[spec.as_str()], Some(&mut fo)) {
                return Err(if Instant::now() >= deadline {
                    timed_out()
                } else {
                    format!("fetch {} from {url}: {}", self.opts.refname, e.message())
                });
            }
            drop(conn);
            if self.repo.find_commit(tip).is_err() {
                return Err(format!(
                    "fetch {} from {url}: the advertised tip {tip} did not arrive",
                    self.opts.refname
                ));
            }
        }
        if self.repo.refname_to_id(FETCHED_REF).ok() != Some(tip) {
            self.repo
                .reference(FETCHED_REF, tip, true, "cfgm: fetched")
                .map_err(|e| format!("update {FETCHED_REF}: {}", e.message()))?;
        }
        Ok(tip)
    }
}

/// The next depth when a shallow history is too short: ×8, then whole.
fn next_depth(depth: i32) -> i32 {
    if depth >= 4096 {
        UNSHALLOW
    } else {
        depth.saturating_mul(8)
    }
}

/// Transfer callbacks that abort once `deadline` passes.
fn callbacks<'a>(deadline: Instant) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.transfer_progress(move |_| Instant::now() < deadline);
    cb.sideband_progress(move |_| Instant::now() < deadline);
    cb.credentials(|_url, user, allowed| {
        // ssh://: the agent's identity comes from an ssh-agent or the
        // default key files of the user the agent runs as.
        let user = user.unwrap_or("git");
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            if let Ok(c) = git2::Cred::ssh_key_from_agent(user) {
                return Ok(c);
            }
            let home = std::env::var_os("HOME").map(PathBuf::from);
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                if let Some(p) = home.as_ref().map(|h| h.join(".ssh").join(name)) {
                    if p.exists() {
                        return git2::Cred::ssh_key(user, None, &p, None);
                    }
                }
            }
        }
        Err(git2::Error::from_str("no credentials for this remote"))
    });
    cb
}

/// Whether the URL's transport can fetch shallow (libgit2's local
/// transport cannot; ssh is fetched whole).
pub fn shallow_transport(url: &str) -> bool {
    url.starts_with("git://") || url.starts_with("https://")
}

/// The last applied commit recorded in `state_dir`, if any.
pub fn read_applied(state_dir: &Path) -> Option<Oid> {
    let text = std::fs::read_to_string(state_dir.join("applied-commit")).ok()?;
    Oid::from_str(text.trim()).ok()
}

/// Records the last applied commit durably (temporary file, fsync, rename,
/// fsync of the directory): after a crash it is the old or the new one.
pub fn write_applied(state_dir: &Path, commit: Oid) -> std::io::Result<()> {
    crate::debts::write_durable(
        &state_dir.join("applied-commit"),
        commit.to_string().as_bytes(),
    )
}
