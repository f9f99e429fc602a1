//! `drydock health`: runs every health check and records the results.

use clap::Args;
use drydock_engine::health::HealthOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Services to check (default: every service).
    pub services: Vec<String>,
}

pub fn run(args: &HealthArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = HealthOptions {
        services: args.services.clone(),
        record: true,
    };
    let report = drydock_engine::health::health(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), |r| {
        render::health(&config.stack.name, r)
    }))
}
