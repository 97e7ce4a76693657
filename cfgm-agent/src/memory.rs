//! The daemon's memory between runs: it sleeps most of its life, so what a
//! run allocated must go back to the kernel when the run ends, not stay
//! resident until the next one.
//!
//! The binary's allocator is mimalloc. It returns freed pages to the kernel
//! only when it runs again (after a purge delay), and a sleeping daemon does
//! not allocate: [`release`] makes it purge now. It also asks for
//! transparent huge pages for its arenas, so one live object keeps 2 MiB
//! resident: [`no_huge_pages`] turns them off for this process.
//!
//! Measured by `make bench` (benches/idle.rs): 1,000 file resources, idle
//! RSS ~70 MB without these, under 20 MB with them.

use std::ffi::{c_int, c_long};

// mimalloc's C library, also where it is not the global allocator (this
// library's own tests).
extern crate mimalloc as _;

extern "C" {
    /// mimalloc's `mi_collect`: free what it can, purge freed pages now.
    /// Linked from the mimalloc the binary uses as its global allocator; in
    /// a program that never allocated through mimalloc it does nothing.
    fn mi_collect(force: bool);
    fn mi_option_set_default(option: c_int, value: c_long);
    fn mi_option_get_size(option: c_int) -> usize;
}

/// `mi_option_arena_reserve` (the same number in mimalloc v2 and v3): how
/// much address space an arena reserves, in KiB.
const ARENA_RESERVE: c_int = 23;

/// Arenas of 32 MiB instead of 1 GiB: an arena's bookkeeping is touched
/// when it is made and sized by it, ~2 MB resident for nothing in a process
/// that needs a few MB between runs; a process that needs more gets more
/// (and larger) arenas. It must run before the first allocation, which
/// Rust's runtime makes before `main`: the binary calls it from
/// `.init_array`. `MIMALLOC_ARENA_RESERVE` in the environment still wins.
pub extern "C" fn small_arenas() {
    // SAFETY: a plain store into mimalloc's option table, read when it
    // reserves its next arena; unlike mi_option_set it leaves a value from
    // the environment alone.
    unsafe { mi_option_set_default(ARENA_RESERVE, 32 * 1024) }
}

/// The arena reservation in bytes (what [`small_arenas`] changed).
pub fn arena_reserve() -> usize {
    // SAFETY: reads an option.
    unsafe { mi_option_get_size(ARENA_RESERVE) }
}

/// Gives the memory freed by the last run back to the kernel: mimalloc's
/// pages belong to the thread that allocated them, so every thread of
/// rayon's global pool (the compiler's workers, alive between runs)
/// collects its own, then this thread.
pub fn release() {
    // SAFETY: mi_collect takes no pointers and may be called at any time
    // from any thread.
    rayon::broadcast(|_| unsafe { mi_collect(true) });
    unsafe { mi_collect(true) }
}

/// No transparent huge pages for this process (`prctl(PR_SET_THP_DISABLE)`).
pub fn no_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!("prctl(PR_SET_THP_DISABLE): {e}");
    }
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's arena reservation (its default is
    /// 1 GiB), and [`super::small_arenas`] changes it.
    #[test]
    fn the_option_is_the_arena_reservation() {
        if std::env::var_os("MIMALLOC_ARENA_RESERVE").is_some() {
            return;
        }
        assert_eq!(super::arena_reserve(), 1 << 30);
        super::small_arenas();
        assert_eq!(super::arena_reserve(), 32 << 20);
        super::release();
    }
}
