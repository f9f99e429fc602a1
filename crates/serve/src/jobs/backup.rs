//! `backup`: the selected sources into the local copy, then synced to every remote.

use drydock_domain::config::JobKind;
use drydock_domain::plan::Selection;
use drydock_domain::Config;
use drydock_engine::{EngineError, RunContext};

use super::job::{word, JobOutput, JobRequest, JobSpec};

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Backup,
    uses_repository: true,
    run,
};

fn run(config: &Config, req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    let selection = Selection {
        priorities: req.priority.clone(),
        all: false,
        services: req.services.clone(),
    };
    let report = drydock_engine::backup::backup(config, &selection, ctx)?;
    let verdict = report.verdict();
    Ok(JobOutput {
        verdict,
        summary: format!(
            "backup {} {}: {} source(s), {} copy(ies), {} warning(s)",
            report.id,
            word(verdict),
            report.sources.len(),
            report.copies.len(),
            report.warnings.len()
        ),
    })
}
