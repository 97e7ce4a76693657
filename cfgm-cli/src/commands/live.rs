//! The live view of a rollout: a progress bar per wave on a terminal
//! (counts ok / failed / running / pending, progress per datacenter, the
//! gate waited on and the bake time left), one line per event over a pipe,
//! one JSON event per line with `--json`.

use crate::ui::Ui;
use cfgm_cli::rollout::{Event, Observer};
use cfgm_core::rollout::{HostState, ResolvedWave};
use cfgm_core::tree::Host;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

#[derive(Default, Clone)]
struct Counts {
    ok: usize,
    failed: usize,
    running: usize,
    pending: usize,
    /// Per datacenter: (done, total).
    dcs: BTreeMap<String, (usize, usize)>,
    note: String,
}

pub struct View {
    json: bool,
    color: bool,
    bars: Option<MultiProgress>,
    state: Mutex<(BTreeMap<usize, ProgressBar>, BTreeMap<usize, Counts>)>,
    totals: BTreeMap<usize, Counts>,
}

impl View {
    pub fn new(
        ui: &Ui,
        hosts: &BTreeMap<String, Host>,
        waves: &[ResolvedWave],
        json: bool,
    ) -> View {
        let live = !json && std::io::stderr().is_terminal();
        let totals = waves
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut c = Counts {
                    pending: w.hosts.len(),
                    ..Counts::default()
                };
                for h in &w.hosts {
                    let dc = hosts.get(h).map(|x| x.dc.clone()).unwrap_or_default();
                    c.dcs.entry(dc).or_default().1 += 1;
                }
                (i, c)
            })
            .collect();
        View {
            json,
            color: ui.color_err,
            bars: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            state: Mutex::new((BTreeMap::new(), BTreeMap::new())),
            totals,
        }
    }

    fn line(&self, s: &str) {
        match &self.bars {
            Some(mp) => {
                let _ = mp.println(s);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{s}");
            }
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn message(c: &Counts) -> String {
        let dcs: Vec<String> = c
            .dcs
            .iter()
            .map(|(dc, (d, t))| format!("{dc} {d}/{t}"))
            .collect();
        let mut m = format!(
            "ok {} · failed {} · running {} · pending {}  [{}]",
            c.ok,
            c.failed,
            c.running,
            c.pending,
            dcs.join(" ")
        );
        if !c.note.is_empty() {
            m.push_str("  ");
            m.push_str(&c.note);
        }
        m
    }

    fn update(&self, wave: usize, f: impl FnOnce(&mut Counts)) {
        let mut st = self.state.lock().expect("view");
        let (bars, counts) = &mut *st;
        let c = counts
            .entry(wave)
            .or_insert_with(|| self.totals.get(&wave).cloned().unwrap_or_default());
        f(c);
        if let Some(b) = bars.get(&wave) {
            b.set_message(Self::message(c));
        }
    }

    /// Leaves the bars as they are on the screen.
    pub fn finish(&self) {
        let st = self.state.lock().expect("view");
        for b in st.0.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}

impl Observer for View {
    fn event(&self, e: &Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, e);
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            return;
        }
        match e {
            Event::Started { id, journal, .. } => {
                self.line(&format!("rollout {id} (journal {journal})"));
            }
            Event::WaveStarted {
                wave,
                name,
                hosts,
                concurrency,
                max_failures,
            } => {
                let head = format!(
                    "wave {} · {name}: {hosts} host{}, {concurrency} at once, max failures {max_failures}",
                    wave + 1,
                    if *hosts == 1 { "" } else { "s" }
                );
                match &self.bars {
                    Some(mp) => {
                        let pb = mp.add(ProgressBar::new(*hosts as u64));
                        pb.set_style(
                            ProgressStyle::with_template(
                                "{prefix:.bold} [{bar:24.green/red}] {pos}/{len} {msg}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        pb.set_prefix(format!("wave {} {name}", wave + 1));
                        pb.enable_steady_tick(std::time::Duration::from_millis(200));
                        self.state.lock().expect("view").0.insert(*wave, pb);
                        self.update(*wave, |_| {});
                    }
                    None => self.line(&self.paint("1", &head)),
                }
            }
            Event::HostStarted { wave, .. } => self.update(*wave, |c| {
                c.running += 1;
                c.pending = c.pending.saturating_sub(1);
            }),
            Event::HostDone {
                wave,
                host,
                dc,
                state,
                reason,
                changed,
                failed_resources,
                seconds,
                ..
            } => {
                let ok = *state != HostState::Failed;
                self.update(*wave, |c| {
                    c.running = c.running.saturating_sub(1);
                    if ok {
                        c.ok += 1;
                    } else {
                        c.failed += 1;
                    }
                    c.dcs.entry(dc.clone()).or_default().0 += 1;
                });
                if let Some(b) = self.state.lock().expect("view").0.get(wave) {
                    b.inc(1);
                }
                let what = match state {
                    HostState::Planned => format!("would change {changed}"),
                    HostState::Failed => reason.clone().unwrap_or_default(),
                    _ => format!("converged, changed {changed}"),
                };
                let mark = if ok {
                    self.paint("32", "✓")
                } else {
                    self.paint("31", "✗")
                };
                if !ok || self.bars.is_none() {
                    self.line(&format!("  {mark} {host} ({dc}) {what} in {seconds:.1} s"));
                    for r in failed_resources {
                        self.line(&format!("      {r}"));
                    }
                }
            }
            Event::Gate {
                wave,
                what,
                ok,
                detail,
            } => {
                let note = format!(
                    "gate {what}: {}{}",
                    if *ok { "ok" } else { "FAILED" },
                    detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                );
                if !ok || self.bars.is_none() {
                    self.line(&format!("  {note}"));
                }
                self.update(*wave, |c| c.note = note);
            }
            Event::Baking { wave, left_seconds } => {
                self.update(*wave, |c| c.note = format!("baking, {left_seconds} s left"));
                if self.bars.is_none() && left_seconds % 10 == 0 {
                    self.line(&format!(
                        "  baking wave {}: {left_seconds} s left",
                        wave + 1
                    ));
                }
            }
            Event::WaveDone {
                wave,
                ok,
                failed,
                halted,
                reason,
            } => {
                if let Some(b) = self.state.lock().expect("view").0.get(wave) {
                    b.finish();
                }
                let text = if *halted {
                    self.paint(
                        "1;31",
                        &format!(
                            "wave {} halted: {}",
                            wave + 1,
                            reason.as_deref().unwrap_or("over budget")
                        ),
                    )
                } else {
                    format!("wave {} done: {ok} ok, {failed} failed", wave + 1)
                };
                self.line(&text);
            }
            Event::Finished { .. } => {}
        }
    }
}
