//! The exit codes of both binaries, `cfgm` and `cfgm-agent`: one table, so
//! an orchestrator (CI, a rollout, systemd) can tell "retry later" from
//! "broken" from "nothing to do", whichever command it ran.
//!
//! | code | name | meaning |
//! |---|---|---|
//! | 0 | `OK` | success: converged (changed or not), valid, no changes |
//! | 1 | `FAILED` | failed: a resource failed or was skipped; a command that changes nothing found an error (a tree that does not compile in `validate`/`plan`, a bad selector, a corrupt facts file, unreachable hosts, a halted rollout) |
//! | 2 | `CHANGES` | changes pending (only with `--detailed-exitcode`) |
//! | 3 | `REFUSED` | an apply refused its input, nothing applied: the catalog does not compile, the commit or the configuration was refused, the host is not in the inventory |
//! | 4 | `BUSY` | another run holds the lock: retry later |
//! | 5 | `STOPPED` | stopped by a signal before it finished (what ran is reported) |
//! | 64 | `USAGE` | bad arguments: the command line itself |

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const CHANGES: u8 = 2;
pub const REFUSED: u8 = 3;
pub const BUSY: u8 = 4;
pub const STOPPED: u8 = 5;
pub const USAGE: u8 = 64;

/// The table for `--help` texts.
pub const HELP: &str = "Exit codes (both cfgm and cfgm-agent): 0 success (converged, valid, no changes); 1 failed (a resource failed or was skipped; an error in a command that changes nothing: invalid tree, bad selector, corrupt facts, unreachable hosts, halted rollout); 2 changes pending (--detailed-exitcode); 3 an apply refused its input, nothing applied (does not compile, commit or config refused, unknown host); 4 busy: another run holds the lock, retry later; 5 stopped by a signal; 64 usage: bad arguments.";
