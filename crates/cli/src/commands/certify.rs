//! `drydock certify SERVICE`: the 9-step readiness routine, resumed at the first step
//! not passed, and its completion report.

use std::path::PathBuf;

use clap::Args;
use drydock_engine::certify::CertifyOptions;
use drydock_render as render;

use super::common::{confirming, finish, load, written, Failure, Globals};

#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// The service to certify.
    pub service: String,
    /// Forget earlier progress and start again at step 1.
    #[arg(long)]
    pub restart: bool,
    /// Wipe the service's data in step 8 without asking (staging scripts).
    #[arg(long)]
    pub force: bool,
    /// Seed of the test data written in step 5.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report to FILE.md and FILE.json (default: STATE_DIR/reports/certify-SERVICE-TIME).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(args: &CertifyArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let opts = CertifyOptions {
        service: args.service.clone(),
        restart: args.restart,
        force: args.force,
        seed: args.seed,
        report: args.report.clone(),
    };
    let report = drydock_engine::certify::certify(&config, &opts, &confirming(g, &config))?;
    render::report_files::write_certify(&report).map_err(written)?;
    Ok(finish(g, &report, report.verdict(), |r| {
        format!(
            "{}\nreport written to {}\n",
            render::certify::markdown(r),
            r.report_files.join(" and ")
        )
    }))
}
