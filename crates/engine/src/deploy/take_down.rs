//! Taking an app service down, for `drydock certify`'s destroy-and-recreate step:
//! under the deploy lock like a deployment, its runtime stopped (when drydock may stop
//! it and it runs), then its deployer's live version taken away (`kinds::take_down`: a
//! release's `current` and its folder, a docker service's running containers). Its
//! data is never touched. The next deploy has to put it back from its package or image.

use drydock_domain::config::Config;
use drydock_runtimes::State;
use serde::Serialize;

use super::app::AppTarget;
use super::kinds;
use super::lock::DeployLock;
use crate::{EngineError, RunContext};

/// What taking a service down did.
#[derive(Debug, Clone, Serialize)]
pub struct TakenDown {
    pub service: String,
    /// What was done, in order.
    pub done: Vec<String>,
    /// Things changed (a runtime stop, links and releases removed, containers stopped).
    pub changes: u32,
}

/// Takes `service` (an app service with `deploy = { kind = ... }`) down.
pub fn take_down(
    config: &Config,
    service: &str,
    ctx: &RunContext,
) -> Result<TakenDown, EngineError> {
    let Some(svc) = config.services.get(service) else {
        return Err(EngineError::Refused(format!("no service `{service}`")));
    };
    let Some(spec) = &svc.deploy else {
        return Err(EngineError::Refused(format!(
            "`{service}` has no `deploy = {{ kind = ... }}`: drydock deployed no version of it to take down"
        )));
    };
    let state_dir = &config.stack.state_dir;
    let _lock = DeployLock::take(state_dir, &format!("take down {service}"))?;
    let mut taken = TakenDown {
        service: service.to_string(),
        done: Vec::new(),
        changes: 0,
    };
    let runtime = drydock_runtimes::build(service, &svc.runtime);
    if runtime.can_stop() && runtime.state()? == State::Running {
        runtime.stop()?;
        taken
            .done
            .push(format!("stopped by its runtime `{}`", runtime.kind()));
        taken.changes += 1;
    }
    // The deployers find the live version themselves; the commit is the one recorded.
    let commit = drydock_state::StateDb::open(state_dir)?
        .last_good_deployment()?
        .map(|d| d.commit)
        .unwrap_or_default();
    let target = AppTarget {
        stack: &config.stack.name,
        service,
        commit: &commit,
        config_dir: config.dir(),
        state_dir,
    };
    let (changes, what) = kinds::take_down(spec, &target, ctx).map_err(|cause| {
        EngineError::Deploy(format!(
            "taking `{service}` down: {cause}; {}`drydock deploy --app-changed --service {service}` puts it back",
            if taken.changes > 0 { "it was stopped; " } else { "" }
        ))
    })?;
    taken.done.push(what);
    taken.changes += changes;
    Ok(taken)
}
