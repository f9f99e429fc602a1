//! `drydock package SERVICE [--rev REV]`: builds a release service's package (tar.zst
//! with build_info.json, and its SHA-256) under `state_dir/packages/SERVICE/`.

use clap::Args;
use drydock_domain::Verdict;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The service (with deploy = { kind = "release" }).
    pub service: String,
    /// The revision to build (a commit, branch or tag of the config's git repository).
    #[arg(long, default_value = "HEAD")]
    pub rev: String,
}

pub fn run(args: &PackageArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let package =
        drydock_engine::deploy::package_service(&config, &args.service, &args.rev, &context(g))?;
    Ok(finish(g, &package, Verdict::Ok, render::package))
}
