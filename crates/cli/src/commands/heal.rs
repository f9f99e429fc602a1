//! `drydock heal`: starts or restarts unhealthy services (bounded attempts, with
//! backoff) and re-checks; never deletes or recreates anything.

use std::time::Duration;

use clap::Args;
use drydock_engine::heal::{HealOptions, MAX_ATTEMPTS};
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct HealArgs {
    /// Services to heal (default: every unhealthy service).
    pub services: Vec<String>,
    /// Only show what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the checks to pass after each start, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Pause after the first failed attempt (doubled after each further one), e.g. 2s.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub backoff: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    drydock_domain::config::duration_text::parse(s)
}

pub fn run(args: &HealArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = HealOptions {
        services: args.services.clone(),
        dry_run: args.dry_run,
        attempts: MAX_ATTEMPTS,
        backoff: args.backoff,
        wait: args.wait,
    };
    let report = drydock_engine::heal::heal(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::heal))
}
