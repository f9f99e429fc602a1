//! `backup`: the selected sources into the local copy, then synced to every remote.

use drydock_domain::config::JobKind;
use drydock_domain::plan::Selection;
use drydock_domain::Config;
use drydock_engine::{EngineError, RunContext};

use drydock_domain::manifest::SourceStatus;
use drydock_domain::Verdict;

use super::job::{word, JobOutput, JobPart, JobRequest, JobSpec};

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
    let parts = report
        .sources
        .iter()
        .filter(|s| s.status != SourceStatus::Skipped)
        .map(|s| JobPart {
            subject: format!("{}/{}", s.service, s.source),
            verdict: match s.status {
                SourceStatus::Failed => Verdict::Failed,
                _ => Verdict::Ok,
            },
            problem: s.error.clone(),
        })
        .collect();
    Ok(JobOutput {
        verdict,
        parts,
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
