//! `drydock demo`: builds a throwaway stack, backs it up, wipes it, restores it and
//! proves it.

use std::path::PathBuf;

use clap::Args;
use drydock_render as render;

use super::common::{context, finish, Failure, Globals, EXIT_FAILURE};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Build the demo stack here and keep it (default: a temp folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: &DemoArgs, g: &Globals) -> Result<u8, Failure> {
    // Lives until the end of the run: dropping it removes the demo stack.
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("drydock-demo-")
                .tempdir()
                .map_err(|e| Failure {
                    code: EXIT_FAILURE,
                    message: format!("cannot create a temp folder: {e}"),
                })?;
            temp.path().join("stack")
        }
    };
    let report = drydock_engine::demo::run(&dir, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::demo))
}
