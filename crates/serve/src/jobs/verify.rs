//! `verify`: every copy's structure, and a random subset of its data read back.

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_engine::verify::VerifyOptions;
use drydock_engine::{EngineError, RunContext};
use drydock_storage::ReadData;

use super::job::{word, JobOutput, JobRequest, JobSpec};

/// The share of packs a scheduled verify reads: over weeks it touches most of the
/// data without reading the whole repository each time.
const READ_DATA_PERCENT: f64 = 10.0;

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Verify,
    uses_repository: true,
    run,
};

fn run(config: &Config, _req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    let opts = VerifyOptions {
        read_data: ReadData::Percent(READ_DATA_PERCENT),
        ..VerifyOptions::default()
    };
    let report = drydock_engine::verify::verify_repository(config, &opts, ctx)?;
    let verdict = report.verdict();
    Ok(JobOutput {
        verdict,
        parts: Vec::new(),
        summary: format!(
            "verify {}: {} copy(ies), read {}",
            word(verdict),
            report.copies.len(),
            report.read_data
        ),
    })
}
