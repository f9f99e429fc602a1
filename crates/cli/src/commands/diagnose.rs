//! `drydock diagnose`: explains why services are unhealthy, with evidence and a
//! suggested fix.

use clap::Args;
use drydock_engine::diagnose::DiagnoseOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Services to diagnose (default: every service that is not healthy).
    pub services: Vec<String>,
    /// Log lines to show per service.
    #[arg(long, default_value_t = 100)]
    pub lines: usize,
}

pub fn run(args: &DiagnoseArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = DiagnoseOptions {
        services: args.services.clone(),
        lines: args.lines,
    };
    let report = drydock_engine::diagnose::diagnose(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::diagnose))
}
