//! `drydock deployments`: the recorded deployments and rollbacks, newest first.

use clap::Args;
use drydock_render as render;

use super::common::{finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct DeploymentsArgs {
    /// How many to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

pub fn run(args: &DeploymentsArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::deploy::deployments(&config, args.limit)?;
    Ok(finish(g, &report, report.verdict(), render::deployments))
}
