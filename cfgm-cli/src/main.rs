//! `cfgm`: the command engineers and CI run against a states tree.
//!
//! `main` parses arguments, calls one command function, and exits with its
//! code — one table for both binaries, `cfgm_core::exit` (0 success, 1
//! failed, 2 changes pending, 3 refused input, 4 busy, 5 stopped, 64
//! usage). Each command lives in `commands/` and renders its own output;
//! the work itself is in cfgm-core.

mod commands;
mod ui;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// Compiling allocates many small strings and maps; mimalloc is markedly
// faster than glibc malloc at that (see `make bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = cfgm_core::exit::HELP;

#[derive(Parser)]
#[command(name = "cfgm", version, about = "Declarative configuration for server fleets: validate, inspect and graph the catalogs a states tree compiles to.", after_help = EXIT_CODES)]
struct Cli {
    /// The states tree (a directory, normally a git checkout).
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    tree: PathBuf,
    /// Colour in human output: auto (when writing to a terminal and NO_COLOR is unset), always, never.
    #[arg(long, global = true, default_value = "auto", value_name = "WHEN")]
    color: ui::ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile the catalog of every inventory host and report every problem.
    #[command(after_help = EXIT_CODES)]
    Validate(commands::validate::Args),
    /// Show one host's compiled catalog: id, resources in apply order, attributes, dependencies.
    #[command(after_help = EXIT_CODES)]
    Catalog(commands::catalog::Args),
    /// Show one host's dependency graph as Graphviz dot or JSON.
    #[command(after_help = EXIT_CODES)]
    Graph(commands::graph::Args),
    /// Take a commit to the fleet in canary waves (rollout.toml) over SSH, halting when a wave fails.
    #[command(after_help = EXIT_CODES)]
    Apply(commands::apply::Args),
    /// Past rollouts and their outcomes.
    #[command(after_help = EXIT_CODES)]
    Rollouts(commands::rollouts::ListArgs),
    /// One rollout: `cfgm rollout show ID`.
    #[command(subcommand, after_help = EXIT_CODES)]
    Rollout(commands::rollouts::Rollout),
    /// Put the agent on hosts over SSH (binary, allowed_signers, systemd service).
    #[command(after_help = EXIT_CODES)]
    Bootstrap(commands::bootstrap::Args),
    /// What the tree would change on each host, from the facts hosts reported (no host is contacted).
    #[command(after_help = EXIT_CODES)]
    Plan(commands::plan::Args),
    /// What a commit range changes in every host's catalog (no facts needed): added, removed, modified.
    #[command(after_help = EXIT_CODES)]
    Diff(commands::diff::Args),
    /// Hosts' facts: `cfgm facts fetch --select SEL --out DIR` copies them over SSH.
    #[command(subcommand, after_help = EXIT_CODES)]
    Facts(commands::facts::Facts),
    /// List the inventory's hosts, or those a selector picks (`--select role:edge&dc:ams01`).
    #[command(after_help = EXIT_CODES)]
    Hosts(commands::hosts::Args),
}

/// Transparent huge pages off for this process: mimalloc's arenas on
/// 2 MiB pages made the kernel zero far more memory than a run touches
/// (over a quarter of a fleet plan's time, and a bimodal no-op apply).
/// The allocator is built without THP (`no_thp`); this also covers hosts
/// whose THP setting is `always`.
fn no_huge_pages() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

fn main() -> ExitCode {
    no_huge_pages();
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
    let ui = ui::Ui::new(cli.color);
    let result = match cli.command {
        Command::Validate(a) => commands::validate::run(&ui, &cli.tree, a),
        Command::Catalog(a) => commands::catalog::run(&ui, &cli.tree, a),
        Command::Graph(a) => commands::graph::run(&ui, &cli.tree, a),
        Command::Hosts(a) => commands::hosts::run(&ui, &cli.tree, a),
        Command::Diff(a) => commands::diff::run(&ui, &cli.tree, a),
        Command::Plan(a) => commands::plan::run(&ui, &cli.tree, a),
        Command::Apply(a) => commands::apply::run(&ui, &cli.tree, a),
        Command::Rollouts(a) => commands::rollouts::list(&ui, a),
        Command::Rollout(r) => commands::rollouts::show(&ui, r),
        Command::Bootstrap(a) => commands::bootstrap::run(&ui, &cli.tree, a),
        Command::Facts(f) => commands::facts::run(&ui, &cli.tree, f),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            ui.error(&format!("{e:#}"));
            ExitCode::from(cfgm_core::exit::FAILED)
        }
    }
}
