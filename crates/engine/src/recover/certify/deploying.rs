//! What certify's steps 1 and 3 ask of `drydock deploy`: whether the service can be
//! deployed at all (and if not, what to add), a deployment of the one service (told it
//! changed, or plain: change detection decides), and, when a second deploy was not
//! idempotent, what it changed.
//!
//! An app service (`role = "app"`) is deployed by its `deploy = { kind = ... }`; any
//! other service is infrastructure, recreated through its runtime's `recreate` with a
//! backup first and its data compared with that backup after.

use drydock_domain::config::{Config, Role};

use crate::deploy::{self, DeployOptions, DeployPlan, DeployReport, Outcome};
use crate::health::ServiceStatus;
use crate::{EngineError, RunContext};

/// Whether `service` is an app service (deployed by its `deploy` spec).
pub(super) fn is_app(config: &Config, service: &str) -> bool {
    config.services[service].role == Some(Role::App)
}

/// Why drydock cannot deploy `service`, and what to add; `None` when it can.
pub(super) fn cannot_deploy(config: &Config, service: &str) -> Option<String> {
    let svc = &config.services[service];
    let meanwhile = format!("`drydock drill {service}` proves its backups meanwhile");
    if is_app(config, service) {
        return svc.deploy.is_none().then(|| format!(
            "`{service}` is an app service without `deploy = {{ kind = ... }}`: drydock cannot deploy it, so it cannot be certified. Add `deploy = {{ kind = \"release\", ... }}` or `{{ kind = \"docker\", ... }}` to say how a version goes live (README: deploy); {meanwhile}"
        ));
    }
    let runtime = drydock_runtimes::build(service, &svc.runtime);
    // A deployment leaves an `external` service to its operator (a recreate that does
    // nothing): certify would claim a destroy and recreate nobody did.
    let refused = if runtime.kind() == "external" {
        Err(
            "its runtime `external` is its operator's: drydock neither stops nor recreates it"
                .to_string(),
        )
    } else {
        runtime.can_recreate()
    };
    refused
        .err()
        .map(|why| format!(
            "`{service}` is infrastructure that drydock cannot deploy from scratch: {why}, so it cannot be certified. Give it a runtime drydock recreates (`process` with `recreate`, or its stop and start; `compose`; `none`), or make it an app service with `deploy = {{ kind = ... }}`; {meanwhile}"
        ))
}

/// A deployment of `service` alone at HEAD: `forced` tells it the service changed
/// (its deployer runs, or its runtime recreates it), else git decides.
pub(super) fn plain(service: &str) -> DeployOptions {
    DeployOptions {
        services: vec![service.to_string()],
        ..DeployOptions::default()
    }
}

fn options(config: &Config, service: &str, forced: bool) -> DeployOptions {
    let app = is_app(config, service);
    DeployOptions {
        app_changed: forced && app,
        infra_changed: forced && !app,
        ..plain(service)
    }
}

/// Runs the deployment. Ok(Err(why)) when it ran and did not end ok, or was refused
/// (a config matter: the step fails with it); Err for what stops the step itself (a
/// cancellation, the deploy lock held, the state database).
pub(super) fn run(
    config: &Config,
    service: &str,
    forced: bool,
    ctx: &RunContext,
) -> Result<Result<DeployReport, String>, EngineError> {
    let report = match deploy::deploy(config, &options(config, service, forced), ctx) {
        Ok(r) => r,
        Err(EngineError::Refused(why)) => {
            return Ok(Err(format!("`drydock deploy` refused: {why}")))
        }
        Err(e) => return Err(e),
    };
    if report.outcome == Outcome::Ok {
        return Ok(Ok(report));
    }
    let why = match &report.failure {
        Some(f) => format!("{}: {}; {}", f.step, f.cause, f.fix),
        None => "no step says why".to_string(),
    };
    Ok(Err(format!(
        "deployment {} ended {}: {why}",
        report.deployment,
        report.outcome.as_str()
    )))
}

/// The steps a deployment did, in a few words (`backup, deploy-app`).
pub(super) fn steps_done(report: &DeployReport) -> String {
    let done: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.status == "done")
        .map(|s| s.action.as_str())
        .collect();
    if done.is_empty() {
        "nothing to do".to_string()
    } else {
        done.join(", ")
    }
}

/// What a second deploy that was expected to change nothing changed, and why: its
/// decision, the changed paths and unhealthy infrastructure its plan found (`expected`,
/// planned just before it), HEAD moving under the step, and each step it did.
pub(super) fn what_changed(second: &DeployReport, expected: &DeployPlan, before: &str) -> String {
    let mut parts = vec![format!(
        "deployment {} changed {} thing(s), decision `{}`: {}",
        second.deployment,
        second.changes,
        second.decision.as_str(),
        second.reason
    )];
    if second.commit != before {
        parts.push(format!(
            "HEAD moved from {} to {} during the step: something commits to the config's repository (a hook, the build?)",
            short(before),
            short(&second.commit)
        ));
    }
    let paths: Vec<String> = expected
        .changes
        .infra
        .iter()
        .map(|p| format!("{p} (infra)"))
        .chain(expected.changes.app.iter().map(|p| format!("{p} (app)")))
        .collect();
    if !paths.is_empty() {
        let more = paths.len().saturating_sub(5);
        parts.push(format!(
            "changed since the last deployment: {}{}",
            paths[..paths.len().min(5)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let sick: Vec<String> = expected
        .infra
        .iter()
        .filter(|s| s.status != ServiceStatus::Healthy)
        .map(|s| format!("{} ({})", s.service, s.status.as_str()))
        .collect();
    if !sick.is_empty() {
        parts.push(format!("infrastructure not healthy: {}", sick.join(", ")));
    }
    for s in second.steps.iter().filter(|s| s.status == "done") {
        parts.push(format!("{}: {}", s.action, s.detail));
    }
    parts.join("; ")
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
