//! The compiled catalog, kept between runs: an unchanged tree is not
//! compiled again.
//!
//! The agent runs every few minutes and its no-op cost is the fleet's
//! cost; compiling was ~40 % of a no-op. The cache holds one catalog per
//! host in `STATE_DIR/catalog-cache/<host>.json`, under a key of
//! everything the compile depends on: the tree's content (its commit, or a
//! hash of every file the loader and compiler read), the template facts,
//! the host's name and this binary (a new build may compile differently).
//! Only a catalog that compiled without any problem is kept. A cache file
//! that is missing, torn, or from another key is simply not used.

use cfgm_core::{Catalog, Tree};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    catalog: Catalog,
}

/// Identifies this binary: path, size and modification time of the
/// running executable, and the crate version.
fn binary_id() -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/exe").ok();
    format!(
        "{}:{}:{}:{}",
        env!("CARGO_PKG_VERSION"),
        meta.as_ref().map(|m| m.ino()).unwrap_or(0),
        meta.as_ref().map(|m| m.size()).unwrap_or(0),
        meta.as_ref()
            .map(|m| m.mtime_nsec() + m.mtime() * 1_000_000_000)
            .unwrap_or(0)
    )
}

/// The cache key of a host's compile.
pub fn key(tree: &Tree, host: &str, facts: Option<&Value>) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        tree.content_key(),
        host.to_string(),
        binary_id(),
        facts.map(|f| f.to_string()).unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex().to_string()
}

fn path(state_dir: &Path, host: &str) -> PathBuf {
    state_dir.join("catalog-cache").join(format!("{host}.json"))
}

/// The cached catalog of `host`, if it was compiled under `key`.
pub fn get(state_dir: &Path, host: &str, key: &str) -> Option<Catalog> {
    let bytes = std::fs::read(path(state_dir, host)).ok()?;
    let e: Entry = serde_json::from_slice(&bytes).ok()?;
    (e.key == key).then_some(e.catalog)
}

/// Keeps `catalog` under `key` (best effort: a cache that cannot be
/// written only costs a compile).
pub fn put(state_dir: &Path, host: &str, key: &str, catalog: &Catalog) {
    #[derive(Serialize)]
    struct EntryRef<'a> {
        key: &'a str,
        catalog: &'a Catalog,
    }
    if let Ok(text) = serde_json::to_string(&EntryRef { key, catalog }) {
        crate::state::write_state_file(&path(state_dir, host), &text);
    }
}
