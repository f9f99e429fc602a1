//! `drydock populate SERVICE`: writes a deterministic test data set into a service's
//! data sources.

use clap::Args;
use drydock_engine::populate::PopulateOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct PopulateArgs {
    #[command(flatten)]
    pub options: PopulateOptions,
}

pub fn run(args: &PopulateArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::populate::populate(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::populate))
}
