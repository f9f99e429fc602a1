//! The `drydock` binary: parses the command line, sets up logging and signals,
//! dispatches to the command's module (`commands/NAME.rs`, which calls the engine and
//! prints the result as text or JSON) and exits with the documented code. No
//! operational logic lives here.

// The argument structs' doc comments are the `--help` text, where `[retention]` and
// `[[remote]]` name config sections, not Rust items.
#![allow(rustdoc::broken_intra_doc_links)]

mod cli;
mod commands;
#[cfg(test)]
mod options_tests;
mod progress;
mod signals;
mod systemd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use drydock_domain::Cancel;
use serde::Serialize;

use crate::cli::{Cli, Command, LogFormat};
use crate::commands::common::{print_json, Failure, Globals, EXIT_FAILURE, EXIT_USAGE};

fn main() -> ExitCode {
    // Everything drydock creates (repository, state, scratch files) is private, even
    // under a permissive umask: set it before any file is made.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    let cancel = Cancel::new();
    if let Err(e) = signals::install(cancel.clone()) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    let globals = Globals {
        config: cli.config.clone(),
        json: cli.json,
        cancel,
    };
    match run(&cli.command, &globals) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if cli.json {
                #[derive(Serialize)]
                struct JsonError<'a> {
                    ok: bool,
                    exit_code: u8,
                    error: &'a str,
                }
                print_json(&JsonError {
                    ok: false,
                    exit_code: f.code,
                    error: &f.message,
                });
            } else {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// One line per command: its module's `run` (see `commands/mod.rs`).
fn run(command: &Command, g: &Globals) -> Result<u8, Failure> {
    use crate::commands::*;
    match command {
        Command::Validate(a) => validate::run(a, g),
        Command::Backup(a) => backup::run(a, g),
        Command::Status => status::run(g),
        Command::Backups => backups::run(g),
        Command::Sync(a) => sync::run(a, g),
        Command::Prune(a) => prune::run(a, g),
        Command::Restore(a) => restore::run(a, g),
        Command::Verify(a) => verify::run(a, g),
        Command::Drill(a) => drill::run(a, g),
        Command::Demo(a) => demo::run(a, g),
        Command::Certify(a) => certify::run(a, g),
        Command::Populate(a) => populate::run(a, g),
        Command::Health(a) => health::run(a, g),
        Command::Diagnose(a) => diagnose::run(a, g),
        Command::Heal(a) => heal::run(a, g),
        Command::Deploy(a) => deploy::run(a, g),
        Command::Deployments(a) => deployments::run(a, g),
        Command::Rollback(a) => rollback::run(a, g),
        Command::Package(a) => package::run(a, g),
        Command::Init(a) => init::run(a, g),
        Command::Install(a) => install::run(a, g),
        Command::Serve(a) => serve::run(a, g),
        Command::Completions(a) => completions::run(a, Cli::command()),
        Command::Man => man::run(Cli::command()),
    }
}

fn init_logging(cli: &Cli) {
    // rustic_core logs through `log`; bridge it so its warnings are not lost.
    let _ = tracing_log::LogTracer::init();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRYDOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_target(false);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.without_time().try_init(),
    };
}

/// Colour only for a person at a terminal: a pipe or a cron log gets plain text, and
/// `NO_COLOR` (any non-empty value, <https://no-color.org>) turns it off everywhere.
fn colour_on_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}
