//! `drydock backup`: backs up the selected data sources into the repository.

use clap::Args;
use drydock_domain::plan::Selection;
use drydock_domain::Priority;
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Every source with a priority (all but `none`).
    #[arg(long, conflicts_with = "priority")]
    pub all: bool,
    /// Only these priorities, e.g. `--priority critical,high`.
    #[arg(long, value_delimiter = ',', value_parser = parse_priority)]
    pub priority: Vec<Priority>,
    /// Only this service (repeatable).
    #[arg(long = "service", short = 's')]
    pub services: Vec<String>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
}

pub fn run(args: &BackupArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let selection = Selection {
        priorities: args.priority.clone(),
        all: args.all,
        services: args.services.clone(),
    };
    let report = drydock_engine::backup::backup(&config, &selection, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::backup))
}
