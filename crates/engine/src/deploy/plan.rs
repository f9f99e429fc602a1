//! The plan of a deployment: what changed since the last good deployment (`changes.rs`),
//! how the infrastructure is (its health checks), and the decision matrix's answer
//! (`decision.rs`) with every step. `--plan` prints it; `execute.rs` follows it.

use drydock_domain::config::{Config, Role};
use drydock_domain::Verdict;
use serde::{Deserialize, Serialize};

use super::changes::{self, Changes};
use super::decision::{decide, Changed, Decision, InfraState, Step};
use crate::health::{self, HealthOptions, ServiceStatus};
use crate::{EngineError, RunContext};

/// What `deploy` is asked. The field docs are also the `--help` lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct DeployOptions {
    /// Print the decision and every step without doing anything.
    #[cfg_attr(feature = "clap", arg(long))]
    pub plan: bool,
    /// The revision to deploy (a commit, branch or tag of the config's git repository).
    #[cfg_attr(feature = "clap", arg(long, default_value = "HEAD"))]
    pub rev: String,
    /// Deploy only these services (default: all).
    #[cfg_attr(feature = "clap", arg(long = "service", value_name = "SERVICE"))]
    pub services: Vec<String>,
    /// Treat the infrastructure as changed whatever git says (CI that knows better).
    #[cfg_attr(feature = "clap", arg(long))]
    pub infra_changed: bool,
    /// Treat the app as changed whatever git says.
    #[cfg_attr(feature = "clap", arg(long))]
    pub app_changed: bool,
    /// After recreating infrastructure, restore data that differs from the pre-deploy
    /// backup without asking (writes made since that backup are then lost).
    #[cfg_attr(feature = "clap", arg(long))]
    pub force: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            plan: false,
            rev: "HEAD".to_string(),
            services: Vec::new(),
            infra_changed: false,
            app_changed: false,
            force: false,
        }
    }
}

/// The plan: the decision, why, what decided it, and the steps in order.
#[derive(Debug, Clone, Serialize)]
pub struct DeployPlan {
    pub decision: Decision,
    pub reason: String,
    pub changes: Changes,
    /// Infrastructure services covered, and their state before the deploy.
    pub infra: Vec<ServiceBefore>,
    /// App services covered.
    pub app: Vec<String>,
    pub steps: Vec<Step>,
}

/// An infrastructure service as the health checks found it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceBefore {
    pub service: String,
    pub status: ServiceStatus,
}

impl DeployPlan {
    /// A plan is information: ok.
    pub fn verdict(&self) -> Verdict {
        Verdict::Ok
    }
}

/// Decides what a deployment of `opts.rev` would do; changes nothing.
pub fn plan(
    config: &Config,
    opts: &DeployOptions,
    ctx: &RunContext,
) -> Result<DeployPlan, EngineError> {
    let names = health::select(config, &opts.services)?;
    let (app, infra): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| config.services[n].role == Some(Role::App));
    let changes = detect(config, opts)?;
    let changed = Changed {
        infra: opts.infra_changed || !changes.infra.is_empty(),
        app: opts.app_changed || !changes.app.is_empty(),
    };
    let before = if infra.is_empty() {
        Vec::new()
    } else {
        let report = health::health(
            config,
            &HealthOptions {
                services: infra.clone(),
                record: false,
            },
            ctx,
        )?;
        report
            .services
            .into_iter()
            .map(|(service, h)| ServiceBefore {
                service,
                status: h.status,
            })
            .collect()
    };
    let with = |status| -> Vec<String> {
        before
            .iter()
            .filter(|s| s.status == status)
            .map(|s| s.service.clone())
            .collect()
    };
    let state = InfraState {
        unhealthy: with(ServiceStatus::Unhealthy),
        missing: with(ServiceStatus::Missing),
    };
    let mut decided = decide(changed, &state, &infra, &app);
    // An app deployment backs the stack's data up first: what `rollback --with-data`
    // restores if the new version damaged it.
    if decided.decision == Decision::App {
        let with_data: Vec<String> = infra
            .iter()
            .chain(&app)
            .filter(|n| !config.services[*n].data.is_empty())
            .cloned()
            .collect();
        if !with_data.is_empty() {
            decided.steps.insert(
                0,
                Step {
                    action: "backup",
                    services: with_data,
                    when: None,
                },
            );
        }
    }
    Ok(DeployPlan {
        decision: decided.decision,
        reason: decided.reason,
        changes,
        infra: before,
        app,
        steps: decided.steps,
    })
}

/// What changed since the last good deployment. Without one, everything counts as
/// changed (a first deploy deploys all), and the plan says so.
fn detect(config: &Config, opts: &DeployOptions) -> Result<Changes, EngineError> {
    let forced = opts.infra_changed || opts.app_changed;
    let dir = config.dir();
    let repo = match changes::GitRepo::at(dir) {
        Ok(repo) => repo,
        // Told what changed, the plan needs no git.
        Err(_) if forced => {
            return Ok(Changes {
                to: opts.rev.clone(),
                assumed: Some(forced_note(opts)),
                ..Changes::default()
            })
        }
        Err(e) => return Err(e),
    };
    let to = repo.commit(&opts.rev)?;
    if forced {
        return Ok(Changes {
            to,
            assumed: Some(forced_note(opts)),
            ..Changes::default()
        });
    }
    let last = drydock_state::StateDb::open(&config.stack.state_dir)?.last_good_deployment()?;
    let Some(last) = last else {
        return Ok(everything(
            to,
            "no deployment recorded yet: everything is deployed",
        ));
    };
    if repo.commit(&last.commit).is_err() {
        let note = format!(
            "the last deployed commit {} is not in this repository (history rewritten?): everything is deployed",
            last.commit
        );
        return Ok(everything(to, &note));
    }
    let paths = repo.changed_paths(&last.commit, &to)?;
    Ok(changes::classify(
        &config.deploy,
        Some(last.commit),
        to,
        &paths,
    ))
}

/// Changes that could not be diffed: both sides count as changed.
fn everything(to: String, note: &str) -> Changes {
    Changes {
        to,
        infra: vec!["*".to_string()],
        app: vec!["*".to_string()],
        assumed: Some(note.to_string()),
        ..Changes::default()
    }
}

fn forced_note(opts: &DeployOptions) -> String {
    let mut told = Vec::new();
    if opts.infra_changed {
        told.push("--infra-changed");
    }
    if opts.app_changed {
        told.push("--app-changed");
    }
    format!("told by {}", told.join(" and "))
}
