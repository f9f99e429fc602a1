//! `drydock certify SERVICE`: the 9-step readiness routine, resumed at the first step
//! not passed, and its completion report.

use clap::Args;
use drydock_engine::certify::CertifyOptions;
use drydock_render as render;

use super::common::{confirming, finish, load, written, Failure, Globals};

#[derive(Debug, Args)]
pub struct CertifyArgs {
    #[command(flatten)]
    pub options: CertifyOptions,
}

pub fn run(args: &CertifyArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let report = drydock_engine::certify::certify(&config, &args.options, &confirming(g, &config))?;
    render::report_files::write_certify(&report).map_err(written)?;
    Ok(finish(g, &report, report.verdict(), |r| {
        format!(
            "{}\nreport written to {}\n",
            render::certify::markdown(r),
            r.report_files.join(" and ")
        )
    }))
}
