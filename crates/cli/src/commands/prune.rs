//! `drydock prune`: applies `[retention]` to every copy (or shows what it would delete).

use clap::Args;
use drydock_engine::prune::PruneOptions;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show exactly what would be deleted and why; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this copy: `local` or a [[remote]]'s name.
    #[arg(long, value_name = "NAME")]
    pub copy: Option<String>,
}

pub fn run(args: &PruneArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = PruneOptions {
        copy: args.copy.clone(),
        dry_run: args.dry_run,
    };
    let report = drydock_engine::prune::prune(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::prune))
}
