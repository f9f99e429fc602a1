//! `drydock populate SERVICE`: writes a deterministic test data set into a service's
//! data sources.

use clap::Args;
use drydock_engine::populate::{PopulateOptions, DEFAULT_MIN_BYTES};
use drydock_render as render;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct PopulateArgs {
    /// The service whose data sources get the test data set.
    pub service: String,
    /// The same seed always writes the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// At least this much file content per source, e.g. `2MB`, `512KB` (default 2 MiB).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 2MB or 512KB"))?;
    let factor = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{s}` has no known unit; write e.g. 2MB or 512KB")),
    };
    Ok(n * factor)
}

pub fn run(args: &PopulateArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = PopulateOptions {
        service: args.service.clone(),
        seed: args.seed,
        min_bytes: args.size.unwrap_or(DEFAULT_MIN_BYTES),
    };
    let report = drydock_engine::populate::populate(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::populate))
}
