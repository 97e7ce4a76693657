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
//! A no-op run reads the file every time, so it is made to be read fast:
//! MessagePack, not JSON (a catalog is mostly file contents, which JSON
//! makes the reader scan for escapes; MessagePack copies them by length),
//! the key and catalog id first (looked at before any resource is decoded), the resources in
//! pieces decoded on threads of their own, and the file mapped rather than
//! copied. Structs are written as maps (field names kept), so an optional
//! field a newer build skips still reads.

use cfgm_core::{Catalog, Tree};
use serde_json::Value;
use std::path::{Path, PathBuf};

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

/// The file's first bytes: its format.
const MAGIC: &[u8; 8] = b"cfgmcat1";

/// How many pieces the resources are cut into, each decoded on its own
/// thread.
const PIECES: usize = 2;

/// The cache file: [`MAGIC`]; the key (u32 length, bytes); how many pieces
/// follow (u32) and each one's length (u64); then the pieces: the first
/// the catalog's id and host, the others the resources in order, cut in
/// [`PIECES`] (MessagePack each). The reader looks at the key and the id
/// before it decodes any resource.
fn encode(key: &str, catalog: &Catalog) -> Option<Vec<u8>> {
    let n = catalog.resources.len();
    let cut = n.div_ceil(PIECES).max(1);
    let mut pieces = vec![rmp_serde::to_vec_named(&(&catalog.id, &catalog.host)).ok()?];
    for chunk in catalog.resources.chunks(cut) {
        pieces.push(rmp_serde::to_vec_named(chunk).ok()?);
    }
    let mut out = Vec::with_capacity(pieces.iter().map(Vec::len).sum::<usize>() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32::try_from(key.len()).ok()?.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&u32::try_from(pieces.len()).ok()?.to_le_bytes());
    for p in &pieces {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    }
    for p in &pieces {
        out.extend_from_slice(p);
    }
    Some(out)
}

/// Reads a cache file's pieces; `None` when it is not one whole (torn,
/// another format), or when `accept` refuses its key and catalog id (then
/// no resource is decoded).
fn decode(
    bytes: &[u8],
    accept: impl Fn(&str, &cfgm_core::CatalogId) -> bool,
) -> Option<(String, Catalog)> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(MAGIC.len())? != MAGIC {
        return None;
    }
    let key_len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let file_key = std::str::from_utf8(take(key_len)?).ok()?;
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    if !(1..=PIECES + 1).contains(&count) {
        return None;
    }
    let mut lens = Vec::with_capacity(count);
    for _ in 0..count {
        lens.push(usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?);
    }
    let mut pieces = Vec::with_capacity(count);
    for len in lens {
        pieces.push(take(len)?);
    }
    if at != bytes.len() {
        return None;
    }
    let (id, host): (cfgm_core::CatalogId, String) = rmp_serde::from_slice(pieces[0]).ok()?;
    if !accept(file_key, &id) {
        return None;
    }
    // Decoding is most of reading the cache: the pieces at once.
    let parts: Vec<Option<Vec<cfgm_core::Resource>>> = std::thread::scope(|s| {
        let later: Vec<_> = pieces
            .iter()
            .skip(2)
            .map(|p| s.spawn(move || rmp_serde::from_slice(p).ok()))
            .collect();
        let first = pieces.get(1).map(|p| rmp_serde::from_slice(p).ok());
        first
            .into_iter()
            .chain(later.into_iter().map(|h| h.join().ok().flatten()))
            .collect()
    });
    let mut resources = Vec::new();
    for p in parts {
        resources.extend(p?);
    }
    Some((
        file_key.to_string(),
        Catalog {
            id,
            host,
            resources,
        },
    ))
}

/// The cache file's bytes, mapped (not copied: a no-op run reads it every
/// time), handed to `f`.
fn with_file<T>(state_dir: &Path, host: &str, f: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
    let (file, meta) = crate::state::open_state_file(&path(state_dir, host)).ok()?;
    let len = usize::try_from(meta.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: a private, read-only mapping of a file only this agent
    // writes, and only ever by renaming a whole new file over it (see
    // `state::write_state_bytes`): the mapped file is never written or
    // truncated while mapped. It is unmapped before this returns.
    unsafe {
        let map = rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            &file,
            0,
        )
        .ok()?;
        let out = f(std::slice::from_raw_parts(map.cast::<u8>(), len));
        let _ = rustix::mm::munmap(map, len);
        out
    }
}

/// The kept catalog of `host` with the key it was compiled under, to be
/// compared with the key once it is known.
pub fn read(state_dir: &Path, host: &str) -> Option<(String, Catalog)> {
    with_file(state_dir, host, |b| decode(b, |_, _| true))
}

/// Keeps `catalog` under `key` (best effort: a cache that cannot be
/// written only costs a compile); whether it is kept.
pub fn put(state_dir: &Path, host: &str, key: &str, catalog: &Catalog) -> bool {
    match encode(key, catalog) {
        Some(bytes) => crate::state::write_state_bytes(&path(state_dir, host), &bytes),
        None => false,
    }
}

/// The catalog kept for `host` when it is catalog `id`, whatever its key:
/// the one its last apply ran (the cache is written only by an apply
/// holding the run lock), to put back what that run's report left out
/// (see `cfgm_core::schema::AS_CATALOG_KEY`). Another catalog's resources
/// are not decoded.
pub fn last_applied(state_dir: &Path, host: &str, id: &str) -> Option<Catalog> {
    with_file(state_dir, host, |b| decode(b, |_, c| c.0 == id)).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfgm_core::catalog::Origin;
    use cfgm_core::{Resource, ResourceId};
    use serde_json::json;

    fn catalog(n: usize) -> Catalog {
        let resources = (0..n)
            .map(|i| Resource {
                id: ResourceId::new("file", format!("/etc/f{i}")),
                attrs: [("content".to_string(), json!(format!("{i}\n")))].into(),
                deps: [(
                    ResourceId::new("directory", "/etc"),
                    cfgm_core::DepKind::Auto,
                )]
                .into(),
                origin: Origin {
                    file: "states/a.toml".into(),
                    line: i + 1,
                    column: 1,
                },
                hidden: Vec::new(),
                error: None,
            })
            .collect();
        Catalog::new("h", resources)
    }

    /// What was kept comes back whole under its key, and only under it; a
    /// file cut anywhere reads as no cache, never as a shorter catalog.
    #[test]
    fn a_kept_catalog_reads_back_whole_and_a_torn_one_not_at_all() {
        for n in [0, 1, 2, 7] {
            let c = catalog(n);
            let bytes = encode("k1", &c).unwrap();
            let whole = Some(("k1".to_string(), c.clone()));
            assert_eq!(decode(&bytes, |k, _| k == "k1"), whole, "{n} resources");
            assert_eq!(decode(&bytes, |_, id| *id == c.id), whole);
            assert!(decode(&bytes, |k, _| k == "k2").is_none());
            for cut in 0..bytes.len() {
                assert!(
                    decode(&bytes[..cut], |_, _| true).is_none(),
                    "cut at {cut} of {n}"
                );
            }
        }
    }
}
