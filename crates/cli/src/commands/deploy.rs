//! `drydock deploy --plan`: the decision matrix's answer for this revision (what
//! changed in git since the last good deployment, how the infrastructure is) and every
//! step, changing nothing. Running the steps is not built yet, and `deploy` without
//! `--plan` says so rather than pretend.

use clap::Args;
use drydock_engine::deploy::DeployOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals, EXIT_REFUSED};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub options: DeployOptions,
}

pub fn run(args: &DeployArgs, g: &Globals) -> Result<u8, Failure> {
    if !args.options.plan {
        return Err(Failure {
            code: EXIT_REFUSED,
            message: "drydock deploy can only plan so far: run `drydock deploy --plan` to see the decision and its steps, and carry them out by hand (backup, recreate, restore, verify) until execution lands".to_string(),
        });
    }
    let config = load(g)?;
    let plan = drydock_engine::deploy::plan(&config, &args.options, &context(g))?;
    Ok(finish(g, &plan, plan.verdict(), render::deploy_plan))
}
