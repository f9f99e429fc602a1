//! (to be written) `deploy = { kind = "release" }`.

use drydock_domain::config::ReleaseDeploy;

use crate::deploy::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

pub fn deploy(
    _spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    _ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    Err(not_yet(target))
}

pub fn rollback(
    _spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    _to: Option<&str>,
    _ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    Err(not_yet(target))
}

fn not_yet(target: &AppTarget<'_>) -> AppFailure {
    AppFailure {
        service: target.service.to_string(),
        step: "start".to_string(),
        cause: "release deploys are not built yet".to_string(),
        old_still_served: true,
        fix: "deploy this service by hand".to_string(),
        steps: Vec::new(),
    }
}
