//! `drydock drill`: proves recovery without touching production (or, `--destructive`,
//! in place on staging) and writes the drill report.

use clap::Args;
use drydock_engine::drill::DrillOptions;
use drydock_render as render;

use super::common::{confirming, finish, load, written, Failure, Globals};

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub options: DrillOptions,
    /// Every service (the default; for scripts that want to say so).
    #[arg(long, conflicts_with = "services")]
    pub all: bool,
}

pub fn run(args: &DrillArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::drill::drill(&config, &args.options, &confirming(g, &config))?;
    render::report_files::write_drill(&report).map_err(written)?;
    Ok(finish(g, &report, report.verdict(), |r| {
        format!(
            "{}\nreport written to {}\n",
            render::drill::markdown(r),
            r.report_files.join(" and ")
        )
    }))
}
