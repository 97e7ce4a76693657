//! Progress of `cfgm-agent apply` for people, from the engine's events.
//!
//! One line per resource as it finishes, on stderr (a pipe sees each line
//! when it happens, not the whole run at the end); on a terminal, a
//! spinner line below them names what is running and for how long
//! (`pkg ×3 (curl, nginx, redis-server)  12s`). The report with its diffs
//! still follows on stdout. `--quiet` and `--json` turn it off.

use cfgm_core::engine::{Event, EventSink};
use cfgm_core::{Mode, Outcome};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The progress view of one run.
pub struct Progress {
    /// stderr is a terminal: draw the spinner line.
    live: bool,
    color: bool,
    state: Mutex<State>,
    done: AtomicBool,
}

#[derive(Default)]
struct State {
    total: usize,
    finished: usize,
    mode: Option<Mode>,
    /// What runs now (`kind[name]`, kind, name) and since when.
    running: Vec<(String, String, String, Instant)>,
    frame: usize,
    /// The spinner line is on screen (and must be cleared before a line).
    drawn: bool,
}

impl Progress {
    /// A progress view writing to stderr; with a ticker thread redrawing
    /// the spinner when stderr is a terminal.
    pub fn start(color: bool) -> Arc<Progress> {
        let live = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let p = Arc::new(Progress {
            live,
            color,
            state: Mutex::new(State::default()),
            done: AtomicBool::new(false),
        });
        if live {
            let weak = Arc::downgrade(&p);
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                match weak.upgrade() {
                    Some(p) if !p.done.load(Ordering::SeqCst) => p.tick(),
                    _ => return,
                }
            });
        }
        p
    }

    /// Clears the spinner line; the run is over.
    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        let mut st = self.state.lock().expect("progress");
        let mut err = std::io::stderr().lock();
        clear(&mut err, &mut st);
    }

    fn tick(&self) {
        let mut st = self.state.lock().expect("progress");
        st.frame = st.frame.wrapping_add(1);
        let mut err = std::io::stderr().lock();
        self.draw(&mut err, &mut st);
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// The spinner line: what runs, grouped by kind, and for how long.
    fn draw(&self, w: &mut impl Write, st: &mut State) {
        if !self.live || st.running.is_empty() {
            clear(w, st);
            return;
        }
        let mut kinds: Vec<(&str, Vec<&str>)> = Vec::new();
        for (_, kind, name, _) in &st.running {
            match kinds.iter_mut().find(|(k, _)| k == kind) {
                Some((_, names)) => names.push(name),
                None => kinds.push((kind, vec![name])),
            }
        }
        let what: Vec<String> = kinds
            .iter()
            .map(|(k, names)| match names.as_slice() {
                [one] => format!("{k}[{one}]"),
                many => {
                    let shown: Vec<&str> = many.iter().take(3).copied().collect();
                    let more = if many.len() > 3 { ", …" } else { "" };
                    format!("{k} ×{} ({}{more})", many.len(), shown.join(", "))
                }
            })
            .collect();
        let since = st
            .running
            .iter()
            .map(|r| r.3)
            .min()
            .unwrap_or_else(Instant::now);
        let mut line = format!(
            "{} [{}/{}] {}  {}s",
            FRAMES[st.frame % FRAMES.len()],
            st.finished,
            st.total,
            what.join(", "),
            since.elapsed().as_secs()
        );
        if line.chars().count() > 100 {
            line = line.chars().take(99).collect::<String>() + "…";
        }
        let _ = write!(w, "\r\x1b[2K{}", self.paint("36", &line));
        let _ = w.flush();
        st.drawn = true;
    }
}

fn clear(w: &mut impl Write, st: &mut State) {
    if st.drawn {
        let _ = write!(w, "\r\x1b[2K");
        let _ = w.flush();
        st.drawn = false;
    }
}

impl EventSink for Progress {
    fn event(&self, e: &Event<'_>) {
        let mut st = self.state.lock().expect("progress");
        let mut err = std::io::stderr().lock();
        match e {
            Event::RunStarted { catalog, mode } => {
                st.total = catalog.resources.len();
                st.mode = Some(*mode);
            }
            Event::ResourceStarted { id } => {
                st.running.push((
                    id.to_string(),
                    id.kind.to_string(),
                    id.name.to_string(),
                    Instant::now(),
                ));
                self.draw(&mut err, &mut st);
            }
            Event::ResourceFinished { report } => {
                let id = report.id.to_string();
                st.running.retain(|r| r.0 != id);
                st.finished += 1;
                let (word, code) = match report.outcome {
                    Outcome::Unchanged => ("ok", "32"),
                    Outcome::Changed => ("changed", "33"),
                    Outcome::WouldChange => ("would change", "33"),
                    Outcome::Failed => ("failed", "31"),
                    Outcome::Skipped => ("skipped", "90"),
                };
                let why = match report.outcome {
                    Outcome::Failed | Outcome::Skipped => report
                        .error
                        .as_deref()
                        .and_then(|e| e.lines().next())
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let width = st.total.to_string().len();
                clear(&mut err, &mut st);
                let _ = writeln!(
                    err,
                    "[{:>width$}/{}] {:<12} {}{why}  {:.2}s",
                    st.finished,
                    st.total,
                    self.paint(code, word),
                    id,
                    report.seconds,
                );
                self.draw(&mut err, &mut st);
            }
            Event::RunFinished { .. } => {
                st.running.clear();
                clear(&mut err, &mut st);
            }
        }
    }
}
