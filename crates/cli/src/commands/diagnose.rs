//! `drydock diagnose`: explains why services are unhealthy, with evidence and a
//! suggested fix.

use clap::Args;
use drydock_engine::diagnose::DiagnoseOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub options: DiagnoseOptions,
}

pub fn run(args: &DiagnoseArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::diagnose::diagnose(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::diagnose))
}
