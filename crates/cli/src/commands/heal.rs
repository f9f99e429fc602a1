//! `drydock heal`: starts or restarts unhealthy services (bounded attempts, with
//! backoff) and re-checks; never deletes or recreates anything.

use clap::Args;
use drydock_engine::heal::HealOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct HealArgs {
    #[command(flatten)]
    pub options: HealOptions,
}

pub fn run(args: &HealArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::heal::heal(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::heal))
}
