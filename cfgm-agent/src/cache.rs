//! The compiled catalog, kept between runs: an unchanged tree is not
//! compiled again.
//!
//! The agent runs every few minutes and its no-op cost is the fleet's
//! cost; compiling was ~40 % of a no-op. The cache holds one catalog per
//! host in `STATE_DIR/catalog-cache/<host>.msgpack`, under a key of
//! everything the compile depends on: the tree's content (its commit, or a
//! hash of every file the loader and compiler read), the template facts,
//! the host's name and this binary (a new build may compile differently).
//! Only a catalog that compiled without any problem is kept. A cache file
//! that is missing, torn, or from another key is simply not used.
//!
//! The file is MessagePack, not JSON: a no-op run reads it every time,
//! and a catalog is mostly file contents, which JSON makes the reader scan
//! for escapes (MessagePack copies them by length). Structs are written as
//! maps (field names kept), so an optional field a newer build skips still
//! reads.

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
    state_dir
        .join("catalog-cache")
        .join(format!("{host}.msgpack"))
}

/// The cached catalog of `host`, if it was compiled under `key`.
pub fn get(state_dir: &Path, host: &str, key: &str) -> Option<Catalog> {
    let bytes = std::fs::read(path(state_dir, host)).ok()?;
    let e: Entry = rmp_serde::from_slice(&bytes).ok()?;
    (e.key == key).then_some(e.catalog)
}

/// Keeps `catalog` under `key` (best effort: a cache that cannot be
/// written only costs a compile); whether it is kept.
pub fn put(state_dir: &Path, host: &str, key: &str, catalog: &Catalog) -> bool {
    #[derive(Serialize)]
    struct EntryRef<'a> {
        key: &'a str,
        catalog: &'a Catalog,
    }
    match rmp_serde::to_vec_named(&EntryRef { key, catalog }) {
        Ok(bytes) => crate::state::write_state_bytes(&path(state_dir, host), &bytes),
        Err(_) => false,
    }
}

/// The catalog kept for `host`, whatever its key: the one its last apply
/// ran (the cache is written by applies only), to put back what that
/// run's report left out (see `cfgm_core::schema::AS_CATALOG_KEY`).
pub fn last_applied(state_dir: &Path, host: &str) -> Option<Catalog> {
    let bytes = std::fs::read(path(state_dir, host)).ok()?;
    rmp_serde::from_slice::<Entry>(&bytes)
        .ok()
        .map(|e| e.catalog)
}
