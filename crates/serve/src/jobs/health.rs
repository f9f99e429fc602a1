//! `health`: every check of the selected services, recorded in the state database.

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_domain::Verdict;
use drydock_engine::health::{HealthOptions, ServiceStatus};
use drydock_engine::{EngineError, RunContext};
use drydock_health::Status;

use super::job::{word, JobOutput, JobPart, JobRequest, JobSpec};

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
    let parts = report
        .services
        .iter()
        .map(|(name, service)| JobPart {
            subject: name.clone(),
            verdict: match service.status {
                ServiceStatus::Healthy | ServiceStatus::Degraded => Verdict::Ok,
                ServiceStatus::Unhealthy => Verdict::Failed,
                ServiceStatus::Missing => Verdict::Missing,
            },
            // The first check that is not healthy says what is wrong.
            problem: (service.status != ServiceStatus::Healthy).then(|| {
                service
                    .checks
                    .iter()
                    .find(|c| c.status != Status::Healthy)
                    .map(|c| format!("{}: {}", c.name, c.message))
                    .unwrap_or_else(|| "not deployed".to_string())
            }),
        })
        .collect();
    Ok(JobOutput {
        verdict,
        parts,
        summary: format!(
            "health {}: {} service(s)",
            word(verdict),
            report.services.len()
        ),
    })
}
