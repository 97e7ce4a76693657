//! `cfgm apply --commit REV`: take a commit to the fleet in canary waves
//! (rollout.toml), over SSH, halting when a wave exceeds its budget;
//! `--resume ID` continues one that was interrupted.

use super::facts::SshArgs;
use super::live::View;
use crate::ui::Ui;
use cfgm_cli::rollout::{journals, now, HttpGates, Journal, Outcome, Runner, SshTransport};
use cfgm_core::gitsource::GitSource;
use cfgm_core::rollout::{resolve, HostState, Record, Replayed, ResolvedWave, RolloutConfig};
use cfgm_core::{exit, Selector, Tree};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The commit to roll out (the agents fetch and verify it themselves).
    #[arg(long, value_name = "REV", required_unless_present = "resume")]
    commit: Option<String>,
    /// Continue the interrupted rollout ID (see `cfgm rollouts`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["commit", "select", "all_at_once"])]
    resume: Option<String>,
    /// Only these hosts (`role:edge&dc:ams01`).
    #[arg(long, value_name = "SEL")]
    select: Option<String>,
    /// Run the agents' dry run on each wave instead (a live plan).
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before starting.
    #[arg(long)]
    yes: bool,
    /// One JSON event per line, for machines.
    #[arg(long)]
    json: bool,
    /// Without rollout.toml: every host in one wave.
    #[arg(long)]
    all_at_once: bool,
    /// Hosts at once with --all-at-once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    concurrency: usize,
    /// The git repository holding the tree (default: --tree); the waves
    /// and inventory are read from the commit itself.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Where the tree is inside the repository (default: its root).
    #[arg(long, default_value = "", value_name = "DIR")]
    subdir: String,
    /// Where rollout journals are kept.
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// The agent on the hosts.
    #[arg(long, default_value = "cfgm-agent", value_name = "PATH")]
    agent: String,
    /// Seconds one host's converge may take.
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    converge_timeout: u64,
    #[command(flatten)]
    ssh: SshArgs,
}

/// Where journals live by default: $XDG_STATE_HOME/cfgm/rollouts, else
/// ~/.local/state/cfgm/rollouts.
pub fn default_journal_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("cfgm/rollouts");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".local/state/cfgm/rollouts")
}

/// The tree at a commit (the repository's objects), else the directory.
pub fn tree_at(
    dir: &Path,
    repo: Option<&Path>,
    subdir: &str,
    rev: &str,
) -> anyhow::Result<(Tree, String)> {
    let repo = repo.unwrap_or(dir);
    match GitSource::open(repo, rev, subdir) {
        Ok(src) => {
            let commit = src.commit.clone();
            Ok((Tree::load_from(Box::new(src)).0, commit))
        }
        Err(e) if repo.join(".git").exists() || repo.join("HEAD").exists() => {
            Err(anyhow::anyhow!("{}: {e}", repo.display()))
        }
        // Not a repository: the directory is the tree, REV is sent as is.
        Err(_) => Ok((Tree::load(dir)?.0, rev.to_string())),
    }
}

pub fn run(ui: &Ui, dir: &Path, a: Args) -> anyhow::Result<u8> {
    let journal_dir = a.journal_dir.clone().unwrap_or_else(default_journal_dir);
    let (tree, commit, waves, select, dry_run, id, done, waves_done, prom) = match &a.resume {
        Some(id) => {
            let path = journal_dir.join(format!("{id}.jsonl"));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(_) => {
                    let known = journals(&journal_dir);
                    let hint =
                        cfgm_core::rollout::suggest_id(id, known.iter().map(|(i, _)| i.as_str()))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                    ui.error(&format!(
                        "no rollout `{id}` in {}{hint}",
                        journal_dir.display()
                    ));
                    return Ok(exit::FAILED);
                }
            };
            let r = Replayed::from_lines(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if let Some(o) = &r.finished {
                ui.error(&format!(
                    "rollout {id} already {o}; nothing to resume (a new commit is a new rollout)"
                ));
                return Ok(exit::FAILED);
            }
            if r.halted() {
                ui.error(&format!(
                    "rollout {id} halted; start a new rollout for a fixed commit"
                ));
                return Ok(exit::FAILED);
            }
            let (tree, _) = tree_at(dir, a.repo.as_deref(), &a.subdir, &r.commit)?;
            let done: BTreeMap<String, HostState> = r
                .hosts
                .iter()
                .filter(|(_, (s, _))| matches!(s, HostState::Converged | HostState::Planned))
                .map(|(h, (s, _))| (h.clone(), *s))
                .collect();
            let waves_done: Vec<usize> = r.done.keys().copied().collect();
            (
                tree,
                r.commit.clone(),
                r.waves.clone(),
                r.select.clone(),
                r.dry_run,
                r.id.clone(),
                done,
                waves_done,
                r.prometheus_url.clone(),
            )
        }
        None => {
            let rev = a.commit.clone().expect("clap requires --commit");
            let (tree, commit) = tree_at(dir, a.repo.as_deref(), &a.subdir, &rev)?;
            let cfg = if a.all_at_once {
                RolloutConfig::all_at_once(a.concurrency)
            } else {
                match RolloutConfig::load(&tree) {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        ui.error("the tree has no rollout.toml: declare the waves (see README), or pass --all-at-once to reach every selected host at once");
                        return Ok(exit::FAILED);
                    }
                    Err(diags) => {
                        ui.diagnostics(&tree.sources, &diags);
                        ui.error("rollout.toml is not valid; nothing was started");
                        return Ok(exit::FAILED);
                    }
                }
            };
            let sel = match &a.select {
                None => Selector::all(),
                Some(text) => match Selector::parse(text, &tree.hosts) {
                    Ok(s) => s,
                    Err(errors) => {
                        for e in errors {
                            ui.error(&format!("--select {text:?}: {e}"));
                        }
                        return Ok(exit::FAILED);
                    }
                },
            };
            let hosts = sel.select(&tree.hosts);
            if hosts.is_empty() {
                ui.error(&format!("--select {:?} matches no host", sel.text));
                return Ok(exit::FAILED);
            }
            let (waves, left) = resolve(&cfg, &tree.hosts, &hosts, &commit);
            if !left.is_empty() {
                ui.error(&format!(
                    "{} selected host{} in no wave ({}): add a `rest = true` wave",
                    left.len(),
                    if left.len() == 1 { " is" } else { "s are" },
                    cfgm_core::fleet::host_patterns(&left, 6)
                ));
                return Ok(exit::FAILED);
            }
            let stamp = chrono_stamp(now());
            let id = format!("{stamp}-{}", &commit[..12.min(commit.len())]);
            (
                tree,
                commit,
                waves,
                a.select.clone(),
                a.dry_run,
                id,
                BTreeMap::new(),
                Vec::new(),
                cfg.prometheus_url,
            )
        }
    };

    if !a.json {
        print_waves(ui, &tree, &waves, &commit, dry_run, &done);
    }
    if a.resume.is_none() && !a.yes {
        if !std::io::stdin().is_terminal() {
            ui.error("not a terminal: pass --yes to start without asking");
            return Ok(exit::USAGE);
        }
        ui.out(&format!(
            "{} [y/N] ",
            if dry_run {
                "Run the dry run on these waves?"
            } else {
                "Roll out to these waves?"
            }
        ));
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            ui.out("nothing started\n");
            return Ok(exit::OK);
        }
    }

    let journal = Journal::open(&journal_dir, &id)?;
    if a.resume.is_none() {
        journal.write(&Record::Start {
            id: id.clone(),
            commit: commit.clone(),
            select,
            dry_run,
            time: now(),
            waves: waves.clone(),
            prometheus_url: prom.clone(),
        })?;
    }
    // Ctrl-C: start no new host, finish the running ones, keep the journal.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let transport = SshTransport {
        ssh: a.ssh.options(),
        agent: a.agent.clone(),
        converge_timeout: Duration::from_secs(a.converge_timeout.max(1)),
    };
    let gates = HttpGates {
        timeout: Duration::from_secs(10),
    };
    let view = View::new(ui, &tree.hosts, &waves, a.json);
    let runner = Runner {
        id: id.clone(),
        commit: commit.clone(),
        dry_run,
        waves: waves.clone(),
        hosts: &tree.hosts,
        prometheus_url: prom,
        transport: &transport,
        gates: &gates,
        observer: &view,
        journal: &journal,
        stop,
        done,
        waves_done,
        gate_every: Duration::from_secs(2),
    };
    let outcome = runner.run();
    view.finish();
    if !a.json {
        summary(ui, &tree, &journal, &id, &outcome);
    }
    Ok(match outcome {
        Outcome::Completed => exit::OK,
        Outcome::Halted { .. } => exit::FAILED,
        Outcome::Interrupted => exit::STOPPED,
    })
}

/// `20261202T153000Z` from Unix seconds (UTC), for rollout ids.
pub fn chrono_stamp(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn print_waves(
    ui: &Ui,
    tree: &Tree,
    waves: &[ResolvedWave],
    commit: &str,
    dry_run: bool,
    done: &BTreeMap<String, HostState>,
) {
    ui.out(&ui.bold(&format!(
        "{} {} in {} wave{}:\n",
        if dry_run { "dry run of" } else { "rollout of" },
        &commit[..12.min(commit.len())],
        waves.len(),
        if waves.len() == 1 { "" } else { "s" }
    )));
    for (i, w) in waves.iter().enumerate() {
        let mut by_dc: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for h in &w.hosts {
            if let Some(host) = tree.hosts.get(h) {
                by_dc.entry(host.dc.as_str()).or_default().push(h.clone());
            }
        }
        let gates: Vec<&str> = [
            (!w.wave.health.command.is_empty()).then_some("command"),
            w.wave.health.http.as_ref().map(|_| "http"),
            w.wave.health.promql.as_ref().map(|_| "promql"),
        ]
        .into_iter()
        .flatten()
        .collect();
        ui.out(&format!(
            "  {}. {} — {} host{}, {} at once, max failures {}, bake {} s{}{}\n",
            i + 1,
            w.wave.name,
            w.hosts.len(),
            if w.hosts.len() == 1 { "" } else { "s" },
            w.wave.concurrency,
            w.wave.max_failures,
            w.wave.bake,
            if gates.is_empty() {
                String::new()
            } else {
                format!(", gates: {}", gates.join(", "))
            },
            {
                let n = w.hosts.iter().filter(|h| done.contains_key(*h)).count();
                if n > 0 {
                    format!(" ({n} already converged)")
                } else {
                    String::new()
                }
            }
        ));
        for (dc, hs) in &by_dc {
            ui.out(&format!(
                "       {dc}: {}\n",
                cfgm_core::fleet::host_patterns(hs, 6)
            ));
        }
    }
}

fn summary(ui: &Ui, tree: &Tree, journal: &Journal, id: &str, outcome: &Outcome) {
    let text = std::fs::read_to_string(journal.path()).unwrap_or_default();
    let Ok(r) = Replayed::from_lines(&text) else {
        return;
    };
    // Resources changed per host, from this run's host records (a resumed
    // rollout's earlier hosts included).
    let mut changes: BTreeMap<String, u64> = BTreeMap::new();
    for rec in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
    {
        if let Record::Host { host, changed, .. } = rec {
            changes.insert(host, changed);
        }
    }
    let mut per_dc: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (h, (state, _)) in &r.hosts {
        let dc = tree.hosts.get(h).map(|x| x.dc.clone()).unwrap_or_default();
        let e = per_dc.entry(dc).or_default();
        match state {
            HostState::Converged | HostState::Planned => e[0] += 1,
            HostState::Failed => e[1] += 1,
            _ => e[2] += 1,
        }
        e[3] += changes.get(h).copied().unwrap_or(0);
    }
    let changed_head = if r.dry_run { "would change" } else { "changed" };
    ui.out(&format!(
        "\n{:<12} {:>6} {:>6} {:>8} {:>12}\n",
        "datacenter", "ok", "failed", "pending", changed_head
    ));
    for (dc, [ok, failed, pending, changed]) in &per_dc {
        ui.out(&format!(
            "{dc:<12} {ok:>6} {failed:>6} {pending:>8} {changed:>12}\n"
        ));
    }
    let failed: Vec<(&String, &Option<String>)> = r
        .hosts
        .iter()
        .filter(|(_, (s, _))| *s == HostState::Failed)
        .map(|(h, (_, why))| (h, why))
        .collect();
    if !failed.is_empty() {
        ui.out("\nfailed hosts:\n");
        let lines = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Record>(l).ok());
        let mut resources: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rec in lines {
            if let Record::Host {
                host,
                failed_resources,
                ..
            } = rec
            {
                resources.insert(host, failed_resources);
            }
        }
        for (h, why) in failed {
            ui.out(&format!("  {h}: {}\n", why.as_deref().unwrap_or("failed")));
            for res in resources.get(h).into_iter().flatten() {
                ui.out(&format!("      {res}\n"));
            }
        }
    }
    let how = match outcome {
        Outcome::Completed => ui.green("completed"),
        Outcome::Halted { wave, reason } => format!(
            "halted in wave {} ({}): {reason}; later waves were not touched",
            wave + 1,
            r.waves
                .get(*wave)
                .map(|w| w.wave.name.as_str())
                .unwrap_or("?")
        ),
        Outcome::Interrupted => format!("interrupted; resume with `cfgm apply --resume {id}`"),
    };
    ui.out(&format!(
        "\nrollout {id}: {how}\njournal: {}\n",
        journal.path().display()
    ));
}
