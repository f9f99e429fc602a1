//! `drydock backup`: backs up the selected data sources into the repository.

use clap::Args;
use drydock_domain::plan::Selection;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub selection: Selection,
}

pub fn run(args: &BackupArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::backup::backup(&config, &args.selection, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::backup))
}
