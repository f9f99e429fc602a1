//! `drill`: a fresh backup restored into a sandbox and checked (never in place).

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_engine::drill::DrillOptions;
use drydock_engine::{EngineError, RunContext};

use super::job::{word, JobOutput, JobRequest, JobSpec};

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Drill,
    uses_repository: true,
    run,
};

fn run(config: &Config, req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    let opts = DrillOptions {
        services: req.services.clone(),
        ..DrillOptions::default()
    };
    let report = drydock_engine::drill::drill(config, &opts, ctx)?;
    let verdict = report.verdict();
    Ok(JobOutput {
        verdict,
        parts: Vec::new(),
        summary: format!(
            "sandbox drill {}: passed {}, targets met {}",
            word(verdict),
            report.passed,
            report.targets_met
        ),
    })
}
