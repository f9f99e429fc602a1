//! The command line: clap derive structs only. Parsing, nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use drydock_domain::Priority;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (backup stored in every copy / restore verified / repository ok)
  1  warning: the run finished but something needs a look (a non-critical source
     skipped, a remote copy not updated, live data changed since the last backup,
     prune held back by a guard or refused for a copy)
  2  failure: a critical source failed, a restore did not verify, a check found damage,
     or the config/repository could not be used
  3  refused: nothing was changed (overwrite not confirmed, service cannot be stopped,
     no such backup); for drill: could not run (no backup, no sandbox)
 drill: 0 passed, 1 passed but an RTO/RPO target missed, 2 failed, 3 could not run
 certify: 0 production ready, 1 incomplete (steps not available yet), 2 a step failed,
     3 refused (not confirmed)
 health: 0 healthy, 1 minor issues (a warning threshold), 2 critical (down or failing),
     3 missing (a service is not deployed)
 diagnose: 0 nothing wrong, 1 warnings, 2 critical issues
 heal: 0 fixed (or nothing to fix), 2 not fixable (needs recreation from backup);
     --dry-run: 0 nothing to do, 1 something would be tried, 2 not fixable by heal
 64  usage error on the command line";

/// drydock keeps a small stack of services recoverable, and proves it.
///
/// Declare your services and their data in drydock.toml, then `drydock backup` and
/// `drydock restore latest --all`: every restore is checked against the backup's
/// counts and fingerprints. New here? Run `drydock demo`.
#[derive(Debug, Parser)]
#[command(name = "drydock", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// The stack's config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "DRYDOCK_CONFIG",
        default_value = "drydock.toml"
    )]
    pub config: PathBuf,

    /// Print the result as JSON on stdout (stable shape, documented in README); no progress.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More log output (-v info, -vv debug).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check drydock.toml: every error at once, with file:line; secrets must be references.
    /// Also warns (exit 0) about data paths that do not exist and servers it cannot reach.
    Validate(ValidateArgs),
    /// Back up data sources (default: critical and high priority) into the repository.
    Backup(BackupArgs),
    /// One screen: restores owed, health, per source the last backup and its copies, the
    /// current RPO against its target, the last drill, retention.
    Status,
    /// List backups, what each holds and where its copies are.
    Backups,
    /// Bring every remote copy up to date with the local repository and verify it.
    Sync(SyncArgs),
    /// Apply [retention] to every copy: delete what no rule keeps (see --dry-run).
    Prune(PruneArgs),
    /// Restore from a backup and verify the result against the backup's fingerprints.
    Restore(RestoreArgs),
    /// Check repository integrity, a backup's checksums, or live data against the latest backup.
    Verify(VerifyArgs),
    /// Prove recovery without touching production: canary, backup, restore into a sandbox,
    /// verify, measure RTO and RPO, write a report.
    Drill(DrillArgs),
    /// Build a throwaway stack (SQLite + files), back it up, wipe it, restore it, prove it.
    Demo(DemoArgs),
    /// The 9-step readiness routine: deploy, external checks, recreate, backup plan,
    /// populate, backup, baseline, wipe, restore + verify with RTO/RPO.
    /// Resumes at the first step not passed; writes a completion report.
    Certify(CertifyArgs),
    /// Write a deterministic test data set (users -> projects -> files, over 1 MB) into a
    /// service's data sources, so drills and certify have something real to prove.
    Populate(PopulateArgs),
    /// Run every health check (concurrently, with timeouts and retries); exit 0 healthy,
    /// 1 minor, 2 critical, 3 missing. Results are recorded in the state database.
    Health(HealthArgs),
    /// Explain why services are unhealthy: logs, resources, ports and conflicts, known
    /// failure patterns with evidence and a suggested fix.
    Diagnose(DiagnoseArgs),
    /// Fix what can be fixed safely: start or restart unhealthy services (at most 3
    /// attempts, with backoff) and re-check; never deletes or recreates anything.
    Heal(HealArgs),
    /// Write a drydock.toml (the --config path) for a Docker Compose stack: services,
    /// roles from profiles, health checks, dump sources guessed from images, volumes.
    Init(InitArgs),
    /// Print a shell completion script: `drydock completions bash > /etc/bash_completion.d/drydock`.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `drydock man > /usr/local/share/man/man1/drydock.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Do not try to reach the database servers (paths are still checked).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Compose file to read.
    #[arg(long, value_name = "FILE")]
    pub from_compose: PathBuf,
    /// The Compose project name (default: the compose file's folder name, as Compose).
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Replace an existing config.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Services to check (default: every service).
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Services to diagnose (default: every service that is not healthy).
    pub services: Vec<String>,
    /// Log lines to show per service.
    #[arg(long, default_value_t = 100)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct HealArgs {
    /// Services to heal (default: every unhealthy service).
    pub services: Vec<String>,
    /// Only show what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the checks to pass after each start, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: std::time::Duration,
    /// Pause after the first failed attempt (doubled after each further one), e.g. 2s.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub backoff: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Every source with a priority (all but `none`).
    #[arg(long, conflicts_with = "priority")]
    pub all: bool,
    /// Only these priorities, e.g. `--priority critical,high`.
    #[arg(long, value_delimiter = ',', value_parser = parse_priority)]
    pub priority: Vec<Priority>,
    /// Only this service (repeatable).
    #[arg(long = "service", short = 's')]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
// One of the two is required, as a group, so the error names both ways to say what to
// restore (`<--service <SERVICE>|--all>`), not only `--service`.
#[command(group(clap::ArgGroup::new("what").required(true).args(["services", "all"])))]
pub struct RestoreArgs {
    /// A backup id (see `drydock backups`) or `latest` (per source, its newest good backup).
    pub backup: String,
    /// Restore this service's sources (repeatable).
    #[arg(long = "service", short = 's', value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Restore every service.
    #[arg(long, conflicts_with = "services")]
    pub all: bool,
    /// Replace existing data without asking.
    #[arg(long)]
    pub force: bool,
    /// Stop running containers that use a restored Docker volume (started again after);
    /// without it such a restore is refused.
    #[arg(long)]
    pub stop: bool,
    /// Read only this copy: `local` or a [[remote]]'s name (default: local, then remotes).
    #[arg(long, value_name = "COPY")]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this remote.
    #[arg(long, value_name = "NAME")]
    pub copy: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show exactly what would be deleted and why; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this copy: `local` or a [[remote]]'s name.
    #[arg(long, value_name = "NAME")]
    pub copy: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check this backup's snapshots (default: every backup).
    pub backup: Option<String>,
    /// Read every pack and re-check every stream's SHA-256 (slow; reads all data).
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read a random share of the packs, e.g. `10%`.
    #[arg(long, value_name = "N%", value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
    /// Only this copy: `local` or a [[remote]]'s name (default: every copy).
    #[arg(long, value_name = "NAME")]
    pub copy: Option<String>,
    /// Compare live data with the latest backup instead.
    #[arg(long, conflicts_with_all = ["read_data", "read_data_subset", "backup", "copy"])]
    pub live: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Services to drill (default: every service).
    pub services: Vec<String>,
    /// Every service (the default; for scripts that want to say so).
    #[arg(long, conflicts_with = "services")]
    pub all: bool,
    /// Restore this backup (an id or `latest`) instead of taking a new one with canaries.
    #[arg(long, value_name = "ID|latest")]
    pub use_backup: Option<String>,
    /// Write the report to FILE.md and FILE.json (default: STATE_DIR/reports/drill-TIME).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The real thing (staging!): stop each service, WIPE its data, restore it in place
    /// from a verified backup, start it, wait for health, verify. Asks first.
    #[arg(long)]
    pub destructive: bool,
    /// With --destructive: wipe without asking (scripts).
    #[arg(long, requires = "destructive")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// The service to certify.
    pub service: String,
    /// Forget earlier progress and start again at step 1.
    #[arg(long)]
    pub restart: bool,
    /// Wipe the service's data in step 8 without asking (staging scripts).
    #[arg(long)]
    pub force: bool,
    /// Seed of the test data written in step 5.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report to FILE.md and FILE.json (default: STATE_DIR/reports/certify-SERVICE-TIME).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PopulateArgs {
    /// The service whose data sources get the test data set.
    pub service: String,
    /// The same seed always writes the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// At least this much file content per source, e.g. `2MB`, `512KB` (default 2 MiB).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Build the demo stack here and keep it (default: a temp folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 2MB or 512KB"))?;
    let factor = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{s}` has no known unit; write e.g. 2MB or 512KB")),
    };
    Ok(n * factor)
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. 10%"))?;
    if n > 0.0 && n <= 100.0 {
        Ok(n)
    } else {
        Err(format!("`{s}` is not between 0% and 100%"))
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    drydock_domain::config::duration_text::parse(s)
}
