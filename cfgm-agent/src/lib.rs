//! cfgm-agent as a library: the host agent's work, which the binary's
//! commands (and, later, the daemon loop and tests) call.
//!
//! [`converge::converge_once`] is one run: take the lock, compile this
//! host's catalog, converge it through the engine, keep the report. It
//! owns the agent's state directory (lock, refresh debts, reports); it does
//! not print — callers subscribe to the engine's events and render the
//! returned report.
//!
//! The building blocks of the daemon, each data in and data out:
//! [`config`] reads `agent.toml`; [`git`] fetches the states repository
//! and decides whether its tip may be applied (a [`git::PullVerdict`]),
//! with [`signers`] verifying SSH commit signatures in-process; [`facts`]
//! gathers what the host is; [`metrics`] renders and publishes the
//! Prometheus view. None of them compiles, applies or loops: the daemon
//! loop composes them.

pub mod cache;
pub mod config;
pub mod converge;
pub mod daemon;
pub mod debts;
pub mod facts;
pub mod git;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod signers;
pub mod state;

pub use converge::{converge_once, Config, RunError};
