//! `drydock deploy`: with `--plan`, the decision matrix's answer for this revision and
//! every step, changing nothing; without, the same plan carried out under the stack's
//! deploy lock and recorded (`drydock deployments`).

use clap::Args;
use drydock_engine::deploy::DeployOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub options: DeployOptions,
}

pub fn run(args: &DeployArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    if args.options.plan {
        let plan = drydock_engine::deploy::plan(&config, &args.options, &context(g))?;
        return Ok(finish(g, &plan, plan.verdict(), render::deploy_plan));
    }
    let report = drydock_engine::deploy::deploy(&config, &args.options, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::deploy_report))
}
