//! The jobs a schedule (or `POST /api/v1/jobs/{kind}`) runs: one file per kind, each
//! calling one engine operation with plain-data options and the run's
//! `RunContext`, all listed once in [`REGISTRY`]. Adding a kind is one file plus one
//! line there (and its name in `drydock_domain::config::JobKind`).

mod backup;
mod drill;
mod health;
mod prune;
mod sync;
mod verify;

mod job;

use drydock_domain::config::JobKind;

pub use job::{JobOutput, JobPart, JobRequest, JobSpec};

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
