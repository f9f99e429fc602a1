//! `drydock health`: runs every health check and records the results.

use clap::Args;
use drydock_engine::health::HealthOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub options: HealthOptions,
}

pub fn run(args: &HealthArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::health::health(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), |r| {
        render::health(&config.stack.name, r)
    }))
}
