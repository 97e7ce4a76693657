//! cfgm-cli as a library: what the `cfgm` binary's fleet commands are made
//! of, usable from tests and benchmarks. [`ssh`] is the SSH transport.

pub mod ssh;
