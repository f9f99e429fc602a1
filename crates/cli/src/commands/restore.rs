//! `drydock restore`: restores from a backup and verifies the result against the
//! backup's fingerprints, asking first when data would be replaced.

use clap::Args;
use drydock_engine::restore::RestoreOptions;
use drydock_render as render;

use super::common::{confirming, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub options: RestoreOptions,
}

pub fn run(args: &RestoreArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::restore::restore(&config, &args.options, &confirming(g, &config))?;
    Ok(finish(g, &report, report.verdict(), render::restore))
}
