//! `drydock init --from-compose FILE`: writes a drydock.toml (the `--config` path) for
//! a Docker Compose stack.

use clap::Args;
use drydock_engine::init::InitOptions;
use drydock_render as render;

use super::common::{output, Failure, Globals};

#[derive(Debug, Args)]
pub struct InitArgs {
    // `output` is not a flag of its own: it is the global `--config` path.
    #[command(flatten)]
    pub options: InitOptions,
}

pub fn run(args: &InitArgs, g: &Globals) -> Result<u8, Failure> {
    let report = drydock_engine::init::from_compose(&InitOptions {
        output: g.config.clone(),
        ..args.options.clone()
    })?;
    output(g, &report, render::init);
    Ok(0)
}
