//! cfgm-cli as a library: what the `cfgm` binary's fleet commands are made
//! of, usable from tests and benchmarks. [`ssh`] is the SSH transport, [`rollout`] runs a rollout's waves through a transport.

pub mod rollout;
pub mod ssh;
