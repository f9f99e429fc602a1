//! The `drydock` binary: parses the command line, loads the config, calls the engine,
//! prints the result as text or JSON and exits with the documented code. No
//! operational logic lives here.

mod cli;
mod progress;
mod signals;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use drydock_domain::plan::Selection;
use drydock_domain::{Cancel, Config, EventSink, Verdict};
use drydock_engine::drill::DrillOptions;
use drydock_engine::restore::{BackupRef, RestoreOptions};
use drydock_engine::{EngineError, RunContext};
use drydock_render as render;
use drydock_storage::ReadData;
use serde::Serialize;

use crate::cli::{Cli, Command, LogFormat};

// Failures before or outside a report; a report's code is its verdict's (see `finish`).
const EXIT_FAILURE: u8 = Verdict::Failed.exit_code();
const EXIT_REFUSED: u8 = Verdict::Refused.exit_code();
const EXIT_USAGE: u8 = 64;

/// A failure with its exit code, printed once by `main`.
struct Failure {
    code: u8,
    message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Cancelled { .. } => signals::exit_code(),
            EngineError::Refused(_) | EngineError::NoBackup(_) => EXIT_REFUSED,
            EngineError::UnknownCopy(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

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
    match run(&cli, &cancel) {
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

fn events(cli: &Cli) -> Arc<dyn EventSink> {
    if !cli.json && std::io::stderr().is_terminal() {
        Arc::new(progress::TerminalProgress::new())
    } else {
        Arc::new(progress::LogOnly)
    }
}

/// A command's run context: its events, the process's cancellation (signals), and no
/// one to confirm.
fn context(cli: &Cli, cancel: &Cancel) -> RunContext {
    RunContext::new(events(cli)).with_cancel(cancel.clone())
}

/// The same, confirming by the stack's name typed on the terminal when there is one
/// (without a terminal, nobody can be asked: steps that replace data need --force).
fn confirming(cli: &Cli, cancel: &Cancel, config: &Config) -> RunContext {
    let ctx = context(cli, cancel);
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let stack = config.stack.name.clone();
        ctx.with_confirm(move |what| confirm(what, &stack))
    } else {
        ctx
    }
}

fn load(cli: &Cli) -> Result<Config, Failure> {
    Config::load(&cli.config).map_err(|e| Failure {
        code: EXIT_FAILURE,
        message: format!("invalid config:\n{e}"),
    })
}

/// A report file that could not be written fails the command: the run is recorded,
/// but its proof on disk is missing.
fn written(e: render::report_files::ReportFileError) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        message: e.to_string(),
    }
}

fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

fn output<T: Serialize>(cli: &Cli, report: &T, text: impl FnOnce(&T) -> String) {
    if cli.json {
        print_json(report);
    } else {
        print!("{}", text(report));
    }
}

/// Prints `report` and returns the exit code of its verdict: the one place a verdict
/// becomes an exit code.
fn finish<T: Serialize>(
    cli: &Cli,
    report: &T,
    verdict: Verdict,
    text: impl FnOnce(&T) -> String,
) -> u8 {
    output(cli, report, text);
    verdict.exit_code()
}

fn run(cli: &Cli, cancel: &Cancel) -> Result<u8, Failure> {
    match &cli.command {
        // Both generated from the clap definitions, so they never drift from `--help`.
        // Rendered into memory first: clap_complete panics on a closed pipe
        // (`drydock completions bash | head`), and a reader that stops early is fine.
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "drydock", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(0)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .expect("rendering into memory does not fail");
            let _ = std::io::stdout().write_all(&page);
            Ok(0)
        }
        Command::Validate(args) => {
            let config = load(cli)?;
            #[derive(Serialize)]
            struct Valid {
                ok: bool,
                file: String,
                services: usize,
                sources: usize,
                warnings: Vec<String>,
            }
            let v = Valid {
                ok: true,
                file: cli.config.display().to_string(),
                services: config.services.len(),
                sources: config.sources().count(),
                warnings: drydock_engine::validate::warnings(&config, args.offline),
            };
            output(cli, &v, |v| {
                let mut text: String = v
                    .warnings
                    .iter()
                    .map(|w| format!("warning: {w}\n"))
                    .collect();
                text += &format!(
                    "{}: valid ({} services, {} data sources)\n",
                    v.file, v.services, v.sources
                );
                text
            });
            Ok(0)
        }
        Command::Backup(args) => {
            let config = load(cli)?;
            let selection = Selection {
                priorities: args.priority.clone(),
                all: args.all,
                services: args.services.clone(),
            };
            let report =
                drydock_engine::backup::backup(&config, &selection, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::backup))
        }
        Command::Status => {
            let config = load(cli)?;
            let report = drydock_engine::status::status(&config, &context(cli, cancel))?;
            output(cli, &report, render::status);
            Ok(0)
        }
        Command::Backups => {
            let config = load(cli)?;
            let list = drydock_engine::list::list(&config, &context(cli, cancel))?;
            output(cli, &list, render::backups);
            Ok(0)
        }
        Command::Sync(args) => {
            let config = load(cli)?;
            let report =
                drydock_engine::sync::sync(&config, args.copy.as_deref(), &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::sync))
        }
        Command::Prune(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::prune::PruneOptions {
                copy: args.copy.clone(),
                dry_run: args.dry_run,
            };
            let report = drydock_engine::prune::prune(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::prune))
        }
        Command::Restore(args) => {
            let config = load(cli)?;
            let backup: BackupRef = args.backup.parse().map_err(|message| Failure {
                code: EXIT_USAGE,
                message,
            })?;
            let opts = RestoreOptions {
                backup,
                from: args.from.clone(),
                services: args.services.clone(),
                all: args.all,
                force: args.force,
                stop: args.stop,
            };
            let report = drydock_engine::restore::restore(
                &config,
                &opts,
                &confirming(cli, cancel, &config),
            )?;
            Ok(finish(cli, &report, report.verdict(), render::restore))
        }
        Command::Verify(args) => {
            let config = load(cli)?;
            if args.live {
                let report = drydock_engine::verify::verify_live(
                    &config,
                    &Selection::all(),
                    &context(cli, cancel),
                )?;
                return Ok(finish(cli, &report, report.verdict(), render::live));
            }
            let read_data = match (args.read_data, args.read_data_subset) {
                (true, _) => ReadData::All,
                (false, Some(p)) => ReadData::Percent(p),
                (false, None) => ReadData::None,
            };
            let opts = drydock_engine::verify::VerifyOptions {
                backup: args.backup.clone(),
                copy: args.copy.clone(),
                read_data,
            };
            let report =
                drydock_engine::verify::verify_repository(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::verify))
        }
        Command::Drill(args) => {
            let config = load(cli)?;
            let use_backup = match &args.use_backup {
                Some(b) => Some(b.parse::<BackupRef>().map_err(|message| Failure {
                    code: EXIT_USAGE,
                    message,
                })?),
                None => None,
            };
            let opts = DrillOptions {
                services: args.services.clone(),
                use_backup,
                report: args.report.clone(),
                destructive: args.destructive,
                force: args.force,
            };
            let report =
                drydock_engine::drill::drill(&config, &opts, &confirming(cli, cancel, &config))?;
            render::report_files::write_drill(&report).map_err(written)?;
            Ok(finish(cli, &report, report.verdict(), |r| {
                format!(
                    "{}\nreport written to {}\n",
                    render::drill::markdown(r),
                    r.report_files.join(" and ")
                )
            }))
        }
        Command::Certify(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::certify::CertifyOptions {
                service: args.service.clone(),
                restart: args.restart,
                force: args.force,
                seed: args.seed,
                report: args.report.clone(),
            };
            let report = drydock_engine::certify::certify(
                &config,
                &opts,
                &confirming(cli, cancel, &config),
            )?;
            render::report_files::write_certify(&report).map_err(written)?;
            Ok(finish(cli, &report, report.verdict(), |r| {
                format!(
                    "{}\nreport written to {}\n",
                    render::certify::markdown(r),
                    r.report_files.join(" and ")
                )
            }))
        }
        Command::Populate(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::populate::PopulateOptions {
                service: args.service.clone(),
                seed: args.seed,
                min_bytes: args
                    .size
                    .unwrap_or(drydock_engine::populate::DEFAULT_MIN_BYTES),
            };
            let report = drydock_engine::populate::populate(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::populate))
        }
        Command::Init(args) => {
            let report = drydock_engine::init::from_compose(&drydock_engine::init::InitOptions {
                compose: args.from_compose.clone(),
                output: cli.config.clone(),
                project: args.project.clone(),
                force: args.force,
            })?;
            output(cli, &report, render::init);
            Ok(0)
        }
        Command::Demo(args) => {
            let temp;
            let dir = match &args.dir {
                Some(d) => d.clone(),
                None => {
                    temp = tempfile::Builder::new()
                        .prefix("drydock-demo-")
                        .tempdir()
                        .map_err(|e| Failure {
                            code: EXIT_FAILURE,
                            message: format!("cannot create a temp folder: {e}"),
                        })?;
                    temp.path().join("stack")
                }
            };
            let report = drydock_engine::demo::run(&dir, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::demo))
        }
        Command::Health(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::health::HealthOptions {
                services: args.services.clone(),
                record: true,
            };
            let report = drydock_engine::health::health(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), |r| {
                render::health(&config.stack.name, r)
            }))
        }
        Command::Diagnose(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::diagnose::DiagnoseOptions {
                services: args.services.clone(),
                lines: args.lines,
            };
            let report = drydock_engine::diagnose::diagnose(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::diagnose))
        }
        Command::Heal(args) => {
            let config = load(cli)?;
            let opts = drydock_engine::heal::HealOptions {
                services: args.services.clone(),
                dry_run: args.dry_run,
                attempts: drydock_engine::heal::MAX_ATTEMPTS,
                backoff: args.backoff,
                wait: args.wait,
            };
            let report = drydock_engine::heal::heal(&config, &opts, &context(cli, cancel))?;
            Ok(finish(cli, &report, report.verdict(), render::heal))
        }
    }
}

/// Asks for the stack's name to be typed before data is replaced.
fn confirm(what: &str, stack: &str) -> bool {
    eprint!("{what}\nType the stack name `{stack}` to continue, anything else to stop: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == stack
}
