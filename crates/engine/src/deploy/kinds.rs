//! The one place a service's `deploy = { kind = ... }` picks its deployer. Each kind is
//! one module: `docker/` (swap behind nginx, or recreate), `release/` (release
//! directories, local or over ssh); adding a kind is its module and one arm here each.

use drydock_domain::config::ServiceDeploy;

use super::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

/// Deploys `target.commit` of one service by its kind.
pub fn deploy(
    spec: &ServiceDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    match spec {
        ServiceDeploy::Docker(d) => super::docker::deploy(d, target, ctx),
        ServiceDeploy::Release(r) => super::release::deploy(r, target, ctx),
    }
}

/// Puts the version before the live one (or `to`) back, by the service's kind.
pub fn rollback(
    spec: &ServiceDeploy,
    target: &AppTarget<'_>,
    to: Option<&str>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    match spec {
        ServiceDeploy::Docker(d) => super::docker::rollback(d, target, to, ctx),
        ServiceDeploy::Release(r) => super::release::rollback(r, target, to, ctx),
    }
}

/// Takes the live version away (certify's destroy step), by the service's kind: the
/// next deploy has to put it back. Ok: (changes, what was done).
pub fn take_down(
    spec: &ServiceDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<(u32, String), String> {
    match spec {
        ServiceDeploy::Docker(d) => super::docker::take_down(d, target, ctx),
        ServiceDeploy::Release(r) => super::release::take_down(r, target, ctx),
    }
}
