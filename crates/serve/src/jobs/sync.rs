//! `sync`: every remote brought up to the local copy (what a backup could not copy).

use drydock_domain::config::JobKind;
use drydock_domain::{Config, Verdict};
use drydock_engine::{EngineError, RunContext};

use super::job::{word, JobOutput, JobRequest, JobSpec};

pub(super) const SPEC: JobSpec = JobSpec {
    kind: JobKind::Sync,
    uses_repository: true,
    run,
};

fn run(config: &Config, _req: &JobRequest, ctx: &RunContext) -> Result<JobOutput, EngineError> {
    // The default schedules sync daily; a stack without remotes has nothing to do,
    // which is not a refusal worth a red run every day.
    if config.remotes.is_empty() {
        return Ok(JobOutput {
            verdict: Verdict::Ok,
            parts: Vec::new(),
            summary: "no [[remote]] configured: nothing to sync".into(),
        });
    }
    let report =
        drydock_engine::sync::sync(config, &drydock_engine::sync::SyncOptions::default(), ctx)?;
    let verdict = report.verdict();
    Ok(JobOutput {
        verdict,
        parts: Vec::new(),
        summary: format!("sync {}: {} remote(s)", word(verdict), report.copies.len()),
    })
}
