//! The jobs a schedule (or `POST /api/v1/jobs/{kind}`) runs: one file per kind, each
//! calling one engine operation with plain-data options and the run's
//! [`RunContext`], all listed once in [`REGISTRY`]. Adding a kind is one file plus one
//! line there (and its name in `drydock_domain::config::JobKind`).

mod backup;
mod drill;
mod health;
mod prune;
mod sync;
mod verify;

use drydock_domain::config::JobKind;
use drydock_domain::plan::Priority;
use drydock_domain::{Config, Verdict};
use drydock_engine::{EngineError, RunContext};
use serde::{Deserialize, Serialize};

/// What to run: the kind and its selection, as data (a schedule stores it, an HTTP
/// body carries it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    pub kind: JobKind,
    /// Backup: the priorities (empty: critical and high).
    #[serde(default)]
    pub priority: Vec<Priority>,
    /// Backup, drill, health: the services (empty: every one).
    #[serde(default)]
    pub services: Vec<String>,
}

impl JobRequest {
    pub fn new(kind: JobKind) -> JobRequest {
        JobRequest {
            kind,
            priority: Vec::new(),
            services: Vec::new(),
        }
    }
}

/// How a job ended: its report's verdict and one line for the run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    pub verdict: Verdict,
    pub summary: String,
}

/// One job kind: whether it works on the repository (one such job per repository at a
/// time) and the function that runs it.
pub struct JobSpec {
    pub kind: JobKind,
    pub uses_repository: bool,
    pub run: fn(&Config, &JobRequest, &RunContext) -> Result<JobOutput, EngineError>,
}

/// Every job kind, one line each.
pub const REGISTRY: &[JobSpec] = &[
    backup::SPEC,
    sync::SPEC,
    prune::SPEC,
    verify::SPEC,
    drill::SPEC,
    health::SPEC,
];

/// The spec of `kind`.
pub fn spec(kind: JobKind) -> &'static JobSpec {
    REGISTRY
        .iter()
        .find(|s| s.kind == kind)
        .expect("every JobKind is in the registry")
}

/// "ok", "warning", ... : the verdict's word, for summaries.
fn word(v: Verdict) -> &'static str {
    drydock_state::RunOutcome::Verdict(v).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once() {
        for kind in JobKind::ALL {
            assert_eq!(
                REGISTRY.iter().filter(|s| s.kind == kind).count(),
                1,
                "{kind}"
            );
            assert_eq!(spec(kind).kind, kind);
        }
        assert!(!spec(JobKind::Health).uses_repository);
        assert!(spec(JobKind::Backup).uses_repository);
    }
}
