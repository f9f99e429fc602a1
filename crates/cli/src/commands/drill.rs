//! `drydock drill`: proves recovery without touching production (or, `--destructive`,
//! in place on staging) and writes the drill report.

use std::path::PathBuf;

use clap::Args;
use drydock_engine::drill::DrillOptions;
use drydock_engine::restore::BackupRef;
use drydock_render as render;

use super::common::{confirming, finish, load, usage, written, Failure, Globals};

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

pub fn run(args: &DrillArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let use_backup = match &args.use_backup {
        Some(b) => Some(b.parse::<BackupRef>().map_err(usage)?),
        None => None,
    };
    let opts = DrillOptions {
        services: args.services.clone(),
        use_backup,
        report: args.report.clone(),
        destructive: args.destructive,
        force: args.force,
    };
    let report = drydock_engine::drill::drill(&config, &opts, &confirming(g, &config))?;
    render::report_files::write_drill(&report).map_err(written)?;
    Ok(finish(g, &report, report.verdict(), |r| {
        format!(
            "{}\nreport written to {}\n",
            render::drill::markdown(r),
            r.report_files.join(" and ")
        )
    }))
}
