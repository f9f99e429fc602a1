//! What every command shares: the global flags a command needs ([`Globals`]), the
//! failure type with its exit code, loading the config, the run context (progress,
//! cancellation, confirmation), and printing a result as text or JSON, with
//! [`finish`], the one place a verdict becomes an exit code.
//!
//! It depends on nothing of the command line's definition (`cli.rs`): `main` builds
//! [`Globals`] from the parsed flags, so the commands, which `cli.rs` names, never
//! reach back into it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use drydock_domain::{Cancel, Config, EventSink, Verdict};
use drydock_engine::{EngineError, RunContext};
use drydock_render as render;
use serde::Serialize;

use crate::{progress, signals};

// Failures before or outside a report; a report's code is its verdict's (see `finish`).
pub const EXIT_FAILURE: u8 = Verdict::Failed.exit_code();
pub const EXIT_REFUSED: u8 = Verdict::Refused.exit_code();
pub const EXIT_USAGE: u8 = 64;

/// The global flags a command uses, and the process's cancellation (signals).
pub struct Globals {
    /// The config file (`--config`).
    pub config: PathBuf,
    /// `--json`: the result as JSON on stdout, no progress.
    pub json: bool,
    /// Cancelled by SIGINT/SIGTERM.
    pub cancel: Cancel,
}

/// A failure with its exit code, printed once by `main`.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Cancelled { .. } => signals::exit_code(),
            EngineError::Refused(_)
            | EngineError::NoBackup(_)
            | EngineError::ChangeDetection { .. }
            | EngineError::DeployLocked { .. } => EXIT_REFUSED,
            EngineError::UnknownCopy(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// A usage error found after parsing (exit 64), e.g. a backup reference that is neither
/// an id nor `latest`.
pub fn usage(message: String) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message,
    }
}

fn events(g: &Globals) -> Arc<dyn EventSink> {
    if !g.json && std::io::stderr().is_terminal() {
        Arc::new(progress::TerminalProgress::new())
    } else {
        Arc::new(progress::LogOnly)
    }
}

/// A command's run context: its events, the process's cancellation (signals), and no
/// one to confirm.
pub fn context(g: &Globals) -> RunContext {
    RunContext::new(events(g)).with_cancel(g.cancel.clone())
}

/// The same, confirming by the stack's name typed on the terminal when there is one
/// (without a terminal, nobody can be asked: steps that replace data need --force).
pub fn confirming(g: &Globals, config: &Config) -> RunContext {
    let ctx = context(g);
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let stack = config.stack.name.clone();
        ctx.with_confirm(move |what| confirm(what, &stack))
    } else {
        ctx
    }
}

/// Asks for the stack's name to be typed before data is replaced.
fn confirm(what: &str, stack: &str) -> bool {
    eprint!("{what}\nType the stack name `{stack}` to continue, anything else to stop: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == stack
}

pub fn load(g: &Globals) -> Result<Config, Failure> {
    Config::load(&g.config).map_err(|e| Failure {
        code: EXIT_FAILURE,
        message: format!("invalid config:\n{e}"),
    })
}

/// A report file that could not be written fails the command: the run is recorded,
/// but its proof on disk is missing.
pub fn written(e: render::report_files::ReportFileError) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        message: e.to_string(),
    }
}

pub fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// Prints `report`: as JSON with `--json`, else as `text` renders it.
pub fn output<T: Serialize>(g: &Globals, report: &T, text: impl FnOnce(&T) -> String) {
    if g.json {
        print_json(report);
    } else {
        print!("{}", text(report));
    }
}

/// Prints `report` and returns the exit code of its verdict: the one place a verdict
/// becomes an exit code.
pub fn finish<T: Serialize>(
    g: &Globals,
    report: &T,
    verdict: Verdict,
    text: impl FnOnce(&T) -> String,
) -> u8 {
    output(g, report, text);
    verdict.exit_code()
}

/// Writes bytes rendered into memory to stdout, ignoring a reader that stops early
/// (`drydock completions bash | head`).
pub fn write_stdout(bytes: &[u8]) {
    let _ = std::io::stdout().write_all(bytes);
}
