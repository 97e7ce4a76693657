//! `cfgm-agent`: the host agent. Today it converges this machine (or a host
//! root mounted elsewhere) to its catalog: `cfgm-agent apply`.
//!
//! `main` parses arguments, calls the command, exits with its code: 0 the
//! host converged (changed or not); 1 any failure (compile error, a failed
//! or skipped resource, the lock held by another run, bad arguments).

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = "Exit codes: 0 converged (changed or not); 1 failure (compile error, failed or skipped resource, lock held, bad arguments).";

#[derive(Parser)]
#[command(name = "cfgm-agent", version, about = "The cfgm host agent: compile this host's catalog and converge it.", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile this host's catalog from a states tree and converge the host to it.
    #[command(after_help = EXIT_CODES)]
    Apply(commands::apply::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Apply(a) => commands::apply::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cfgm-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
