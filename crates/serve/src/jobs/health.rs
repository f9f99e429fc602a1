//! `health`: every check of the selected services, recorded in the state database.

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_engine::health::HealthOptions;
use drydock_engine::{EngineError, RunContext};

use super::job::{word, JobOutput, JobRequest, JobSpec};

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Health,
    uses_repository: false,
    run,
};

fn run(config: &Config, req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    let opts = HealthOptions {
        services: req.services.clone(),
        record: true,
    };
    let report = drydock_engine::health::health(config, &opts, ctx)?;
    let verdict = report.verdict();
    Ok(JobOutput {
        verdict,
        summary: format!(
            "health {}: {} service(s)",
            word(verdict),
            report.services.len()
        ),
    })
}
