//! (to be written) `deploy = { kind = "docker" }`.

use drydock_domain::config::DockerDeploy;

use crate::deploy::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

pub fn deploy(
    _spec: &DockerDeploy,
    target: &AppTarget<'_>,
    _ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    Err(not_yet(target))
}

pub fn rollback(
    _spec: &DockerDeploy,
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
        cause: "docker deploys are not built yet".to_string(),
        old_still_served: true,
        fix: "deploy this service by hand".to_string(),
        steps: Vec::new(),
    }
}
