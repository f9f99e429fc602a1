//! `drydock rollback [SERVICE] [--to DEPLOYMENT] [--with-data]`: the app put back to an
//! earlier good deployment, with its data too when asked (confirmed, or `--force`).

use clap::Args;
use drydock_engine::deploy::RollbackOptions;
use drydock_render as render;

use super::common::{confirming, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub options: RollbackOptions,
}

pub fn run(args: &RollbackArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let ctx = confirming(g, &config);
    let report = drydock_engine::deploy::rollback(&config, &args.options, &ctx)?;
    Ok(finish(
        g,
        &report,
        report.verdict(),
        render::rollback_report,
    ))
}
