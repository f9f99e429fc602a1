//! The command line: the top-level [`Cli`] with its global flags and the [`Command`]
//! enum, one variant per command. Each command's own arguments struct lives with its
//! `run` in `commands/NAME.rs` (see `commands/mod.rs` for how to add one). Parsing,
//! nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::backup::BackupArgs;
use crate::commands::certify::CertifyArgs;
use crate::commands::completions::CompletionsArgs;
use crate::commands::demo::DemoArgs;
use crate::commands::deploy::DeployArgs;
use crate::commands::deployments::DeploymentsArgs;
use crate::commands::diagnose::DiagnoseArgs;
use crate::commands::drill::DrillArgs;
use crate::commands::heal::HealArgs;
use crate::commands::health::HealthArgs;
use crate::commands::init::InitArgs;
use crate::commands::install::InstallArgs;
use crate::commands::package::PackageArgs;
use crate::commands::populate::PopulateArgs;
use crate::commands::prune::PruneArgs;
use crate::commands::restore::RestoreArgs;
use crate::commands::rollback::RollbackArgs;
use crate::commands::serve::ServeArgs;
use crate::commands::sync::SyncArgs;
use crate::commands::validate::ValidateArgs;
use crate::commands::verify::VerifyArgs;

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
 certify: 0 production ready, 2 a step failed (or a service drydock cannot deploy),
     3 refused (not confirmed, another deployment running)
 health: 0 healthy, 1 minor issues (a warning threshold), 2 critical (down or failing),
     3 missing (a service is not deployed)
 diagnose: 0 nothing wrong, 1 warnings, 2 critical issues
 heal: 0 fixed (or nothing to fix), 2 not fixable (needs recreation from backup);
     --dry-run: 0 nothing to do, 1 something would be tried, 2 not fixable by heal
 deploy --plan: 0 planned; 3 refused (no git repository, unknown revision)
 deploy, rollback: 0 done (or nothing to do), 1 warning, 2 failed (nothing changed, or
     rolled back), 3 refused (another deployment runs, a step drydock cannot carry out)
     or critical (a rollback is needed or failed)
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
    /// Deploy a revision: what changed in git since the last good deployment and how the
    /// infrastructure is decide (skip, app, infra, heal, recreate); --plan shows the
    /// decision and every step and changes nothing. One deployment at a time, recorded.
    Deploy(DeployArgs),
    /// The recorded deployments and rollbacks, newest first, with their steps and outcome.
    Deployments(DeploymentsArgs),
    /// Put the app back to an earlier good deployment (default: the one before the
    /// current); --with-data also restores the pre-deploy backup (asks first).
    Rollback(RollbackArgs),
    /// Build a release service's package: runs its build, packs the output with
    /// build_info.json (time, commit, build type, tool versions) and its SHA-256.
    Package(PackageArgs),
    /// Run unattended: the jobs on their schedules ([[schedule]], or the defaults), every
    /// run recorded, and an HTTP API (status, backups, runs, events, starting a job).
    Serve(ServeArgs),
    /// Write a drydock.toml (the --config path) for a Docker Compose stack: services,
    /// roles from profiles, health checks, dump sources guessed from images, volumes.
    Init(InitArgs),
    /// Install `drydock serve` as a hardened systemd service (--systemd): writes
    /// drydock.service for this config and prints the commands that enable it.
    Install(InstallArgs),
    /// Print a shell completion script: `drydock completions bash > /etc/bash_completion.d/drydock`.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `drydock man > /usr/local/share/man/man1/drydock.1`.
    Man,
}
