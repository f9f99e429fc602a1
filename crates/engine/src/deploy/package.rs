//! `drydock package SERVICE`: a release service's package built at a revision of the
//! config's git repository (the work itself is `release/package.rs`).

use drydock_domain::config::{Config, ServiceDeploy};

use super::app::AppTarget;
use super::changes;
use super::release::{self, Package};
use crate::{EngineError, RunContext};

/// `drydock package SERVICE`: the release package of `service` at `rev` (built, or an
/// earlier one of the same commit reused when its checksum verifies).
pub fn package_service(
    config: &Config,
    service: &str,
    rev: &str,
    ctx: &RunContext,
) -> Result<Package, EngineError> {
    let svc = config.services.get(service).ok_or_else(|| {
        EngineError::Refused(format!(
            "no service `{service}` in {}; `drydock validate` lists them",
            config.file.display()
        ))
    })?;
    let Some(ServiceDeploy::Release(spec)) = &svc.deploy else {
        return Err(EngineError::Refused(format!(
            "`{service}` has no deploy = {{ kind = \"release\", ... }}: only release services are packaged (docker services deploy an image)"
        )));
    };
    let commit = changes::GitRepo::at(config.dir())?.commit(rev)?;
    let target = AppTarget {
        stack: &config.stack.name,
        service,
        commit: &commit,
        config_dir: config.dir(),
        state_dir: &config.stack.state_dir,
    };
    release::package(spec, &target, ctx).map_err(|e| EngineError::Deploy(e.to_string()))
}
