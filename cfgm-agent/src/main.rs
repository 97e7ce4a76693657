//! `cfgm-agent`: the host agent. It converges this machine (or a host root
//! mounted elsewhere) to its catalog: `cfgm-agent apply`.
//!
//! `main` parses arguments, calls the command, exits with its code (one
//! table for both binaries: `cfgm_core::exit`).

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cfgm-agent", version, about = "The cfgm host agent: compile this host's catalog and converge it.", after_help = cfgm_core::exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile this host's catalog from a states tree and converge the host to it.
    #[command(after_help = cfgm_core::exit::HELP)]
    Apply(commands::apply::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    cfgm_core::exit::OK
                }
                _ => cfgm_core::exit::USAGE,
            });
        }
    };
    let result = match cli.command {
        Command::Apply(a) => commands::apply::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cfgm-agent: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
