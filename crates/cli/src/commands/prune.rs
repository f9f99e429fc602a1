//! `drydock prune`: applies `[retention]` to every copy (or shows what it would delete).

use clap::Args;
use drydock_engine::prune::PruneOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub options: PruneOptions,
}

pub fn run(args: &PruneArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::prune::prune(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::prune))
}
