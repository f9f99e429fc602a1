//! `drydock sync`: brings every remote copy up to date with the local repository and
//! verifies it.

use clap::Args;
use drydock_engine::sync::SyncOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub options: SyncOptions,
}

pub fn run(args: &SyncArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::sync::sync(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::sync))
}
