//! The exit codes of both binaries, `cfgm` and `cfgm-agent`: one table, so
//! an orchestrator (CI, a rollout, systemd) can tell "retry later" from
//! "broken" from "nothing to do", whichever command it ran.
//!
//! | code | name | meaning |
//! |---|---|---|
//! | 0 | `OK` | success: converged (changed or not), valid, no changes |
//! | 1 | `FAILED` | something failed: a resource failed or was skipped, hosts were unreachable, a rollout halted, an I/O error |
//! | 2 | `CHANGES` | changes pending (only with `--detailed-exitcode`) |
//! | 3 | `REFUSED` | bad input, nothing applied: the tree does not compile, a config, facts file or commit was refused, an unknown host |
//! | 4 | `BUSY` | another run holds the lock: retry later |
//! | 5 | `STOPPED` | stopped by a signal before it finished (what ran is reported) |
//! | 64 | `USAGE` | bad arguments (the command line itself) |

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const CHANGES: u8 = 2;
pub const REFUSED: u8 = 3;
pub const BUSY: u8 = 4;
pub const STOPPED: u8 = 5;
pub const USAGE: u8 = 64;

/// The table for `--help` texts.
pub const HELP: &str = "Exit codes: 0 success (converged, valid, no changes); 1 failed (a resource failed or was skipped, hosts unreachable, I/O); 2 changes pending (--detailed-exitcode); 3 refused (does not compile, bad config/facts/commit, unknown host; nothing applied); 4 busy (another run holds the lock: retry later); 5 stopped by a signal; 64 usage (bad arguments).";
