//! `prune`: retention applied to every copy.

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_engine::prune::PruneOptions;
use drydock_engine::{EngineError, RunContext};

use super::job::{word, JobOutput, JobPart, JobRequest, JobSpec};

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Prune,
    uses_repository: true,
    run,
};

fn run(config: &Config, _req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    let report = drydock_engine::prune::prune(config, &PruneOptions::default(), ctx)?;
    let verdict = report.verdict();
    // Each copy's outcome is kept with the run, so a failed prune says why.
    let parts = report
        .copies
        .iter()
        .map(|c| JobPart {
            subject: format!("copy {}", c.name),
            verdict: c.verdict(),
            problem: c.problem(),
        })
        .collect();
    Ok(JobOutput {
        verdict,
        parts,
        summary: format!("prune {}: {} copy(ies)", word(verdict), report.copies.len()),
    })
}
