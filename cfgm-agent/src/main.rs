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

/// mimalloc's arena size, set before anything is allocated (Rust's runtime
/// allocates before `main`; constructors in `.init_array` run before it):
/// see cfgm_agent::memory.
#[used]
#[link_section = ".init_array"]
static SMALL_ARENAS: extern "C" fn() = cfgm_agent::memory::small_arenas;

#[derive(Parser)]
#[command(name = "cfgm-agent", version, about = "The cfgm host agent: compile this host's catalog and converge it.", after_help = cfgm_core::exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile this host's catalog from a states tree (or a commit) and converge the host to it.
    #[command(after_help = cfgm_core::exit::HELP)]
    Apply(commands::apply::Args),
    /// The daemon: pull the signed states repository, converge, report; again every interval.
    #[command(after_help = cfgm_core::exit::HELP)]
    Run(commands::run::Args),
    /// What this host is: system facts, inventories, the last run's observed resources.
    #[command(after_help = cfgm_core::exit::HELP)]
    Facts(commands::facts::Args),
    /// Install the agent as a systemd service (binary, configuration, unit) and start it.
    #[command(after_help = cfgm_core::exit::HELP)]
    Install(commands::install::Args),
}

/// Logs go to stderr (journald picks them up under systemd): one line per
/// run at info, per resource at debug (`RUST_LOG=debug`).
fn logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn main() -> ExitCode {
    // mimalloc's arenas on 2 MiB pages cost more in page zeroing than a
    // run touches (see cfgm_agent::memory).
    cfgm_agent::memory::no_huge_pages();
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
    logging();
    let result = match cli.command {
        Command::Apply(a) => commands::apply::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Facts(a) => commands::facts::run(a),
        Command::Install(a) => commands::install::run(a),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cfgm-agent: error: {e}");
            e.exit_code()
        }
    };
    quick_exit(code)
}

/// Ends the process once the command is done and its output flushed:
/// `_exit`, not `exit`. What `exit` adds here is mimalloc's collection of
/// every page it holds (madvise per arena: ~4 % of a no-op run), work the
/// kernel does anyway when the process goes; no handler of this program
/// has anything else to do at exit.
fn quick_exit(code: u8) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: ends the process; nothing runs after it.
    unsafe { libc::_exit(code.into()) }
}
