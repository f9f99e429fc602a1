//! `drydock verify`: checks repository integrity, a backup's checksums, or (`--live`)
//! live data against the latest backup.

use clap::Args;
use drydock_domain::plan::Selection;
use drydock_engine::verify::VerifyOptions;
use drydock_render as render;
use drydock_storage::ReadData;

use super::common::{context, finish, load, Failure, Globals};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    // The backup and the copy; `read_data` is the two flags below, as one value.
    #[command(flatten)]
    pub options: VerifyOptions,
    /// Read every pack and re-check every stream's SHA-256 (slow; reads all data).
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read a random share of the packs, e.g. `10%`.
    #[arg(long, value_name = "N%", value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
    /// Compare live data with the latest backup instead.
    #[arg(long, conflicts_with_all = ["read_data", "read_data_subset", "backup", "copy"])]
    pub live: bool,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. 10%"))?;
    if n > 0.0 && n <= 100.0 {
        Ok(n)
    } else {
        Err(format!("`{s}` is not between 0% and 100%"))
    }
}

pub fn run(args: &VerifyArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    if args.live {
        let report = drydock_engine::verify::verify_live(&config, &Selection::all(), &context(g))?;
        return Ok(finish(g, &report, report.verdict(), render::live));
    }
    let read_data = match (args.read_data, args.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(p)) => ReadData::Percent(p),
        (false, None) => ReadData::None,
    };
    let opts = VerifyOptions {
        read_data,
        ..args.options.clone()
    };
    let report = drydock_engine::verify::verify_repository(&config, &opts, &context(g))?;
    Ok(finish(g, &report, report.verdict(), render::verify))
}
