//! Output for people and machines: colour decisions, diagnostics, and
//! writing to stdout without panicking on a closed pipe.

use cfgm_core::{Diagnostic, Sources};
use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub struct Ui {
    pub color_out: bool,
    pub color_err: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (o, e) = match choice {
            ColorChoice::Always => (true, true),
            ColorChoice::Never => (false, false),
            ColorChoice::Auto => (
                !no_color && std::io::stdout().is_terminal(),
                !no_color && std::io::stderr().is_terminal(),
            ),
        };
        Ui {
            color_out: o,
            color_err: e,
        }
    }

    /// Writes to stdout; a closed pipe (`cfgm … | head`) is not an error.
    pub fn out(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        if o.write_all(s.as_bytes()).and_then(|_| o.flush()).is_err() {
            std::process::exit(0);
        }
    }

    pub fn err(&self, s: &str) {
        let _ = std::io::stderr().lock().write_all(s.as_bytes());
    }

    pub fn error(&self, msg: &str) {
        if self.color_err {
            self.err(&format!("\x1b[1;31merror\x1b[0m: {msg}\n"));
        } else {
            self.err(&format!("error: {msg}\n"));
        }
    }

    pub fn warning(&self, msg: &str) {
        if self.color_err {
            self.err(&format!("\x1b[1;33mwarning\x1b[0m: {msg}\n"));
        } else {
            self.err(&format!("warning: {msg}\n"));
        }
    }

    /// Prints diagnostics to stderr, each with its source lines. A
    /// rendered diagnostic ends in a blank line, which separates it from
    /// the next: nothing is added.
    pub fn diagnostics(&self, sources: &Sources, diags: &[Diagnostic]) {
        for d in diags {
            self.err(&d.render(sources, self.color_err));
        }
    }

    pub fn green(&self, s: &str) -> String {
        if self.color_out {
            format!("\x1b[32m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        if self.color_out {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// The JSON form of a list of diagnostics.
pub fn diags_json(sources: &Sources, diags: &[Diagnostic]) -> serde_json::Value {
    serde_json::Value::Array(diags.iter().map(|d| d.to_json(sources)).collect())
}
