//! `drydock init --from-compose FILE`: writes a drydock.toml (the `--config` path) for
//! a Docker Compose stack.

use std::path::PathBuf;

use clap::Args;
use drydock_engine::init::InitOptions;
use drydock_render as render;

use super::common::{output, Failure, Globals};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Compose file to read.
    #[arg(long, value_name = "FILE")]
    pub from_compose: PathBuf,
    /// The Compose project name (default: the compose file's folder name, as Compose).
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Replace an existing config.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &InitArgs, g: &Globals) -> Result<u8, Failure> {
    let report = drydock_engine::init::from_compose(&InitOptions {
        compose: args.from_compose.clone(),
        output: g.config.clone(),
        project: args.project.clone(),
        force: args.force,
    })?;
    output(g, &report, render::init);
    Ok(0)
}
