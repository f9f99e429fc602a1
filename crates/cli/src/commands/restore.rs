//! `drydock restore`: restores from a backup and verifies the result against the
//! backup's fingerprints, asking first when data would be replaced.

use clap::Args;
use drydock_engine::restore::{BackupRef, RestoreOptions};
use drydock_render as render;

use super::common::{confirming, finish, load, usage, Failure, Globals};

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

pub fn run(args: &RestoreArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let backup: BackupRef = args.backup.parse().map_err(usage)?;
    let opts = RestoreOptions {
        backup,
        from: args.from.clone(),
        services: args.services.clone(),
        all: args.all,
        force: args.force,
        stop: args.stop,
    };
    let report = drydock_engine::restore::restore(&config, &opts, &confirming(g, &config))?;
    Ok(finish(g, &report, report.verdict(), render::restore))
}
