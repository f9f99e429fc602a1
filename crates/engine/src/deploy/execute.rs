//! `drydock deploy` without `--plan`: the plan carried out, step by step, under the
//! stack's deploy lock, with a record in the state database written before the first
//! step and after every one, so a deployment cut short (`kill -9`) is found by the
//! next `deploy` (and shown by `drydock deployments`) with the step it reached.
//!
//! The order of a run: take the lock (or fail at once naming its holder); close the
//! records of deployments that were cut short (`interrupted`, reported); plan; record
//! the deployment; run the `pre_deploy` hook; then each step of the plan:
//!
//! - `backup`: a backup of the covered sources, which must be ok (stored and read back)
//!   before anything is stopped; a failed backup ends the deployment with nothing
//!   changed;
//! - `diagnose`, `heal`: the bounded heal of `drydock heal`; whether it fixed the
//!   service decides whether the conditional rebuild steps run;
//! - `deploy-app`: each app service's deployer (`app.rs`); if one fails after others
//!   went live, those are rolled back to the commit deployed before;
//! - `recreate`, `verify`, `restore` of infrastructure (`infra.rs`): a pre-flight
//!   (runtimes answer, a good backup of every source, free space for twice the largest
//!   source), the services recreated and health-gated, their live data compared with the
//!   pre-deploy backup, and only what is missing or differs restored (verified,
//!   retried). Data that exists but differs is replaced only when confirmed or with
//!   `--force` (writes since the backup would be lost). A runtime that cannot be
//!   recreated (a bare `docker` container) refuses the plan before anything changes.
//!   A failure after the first service was recreated puts the services back on the
//!   last good deployment's definition (their compose file at that commit) and checks
//!   their data against the backup again (`rolled-back`); where that cannot be done
//!   (no earlier deployment, a runtime without a definition file) it is
//!   `needs-rollback`, with the commands that recover.
//!
//! then `post_deploy` or `on_failure`, and the record's outcome.

use std::path::Path;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::Selection;
use drydock_domain::Verdict;
use drydock_state::{NewDeployment, StateDb};
use serde::Serialize;

use super::app::{AppDeployed, AppTarget};
use super::decision::{Decision, Step, IF_DATA_DIFFERS, IF_HEAL_FAILED};
use super::hooks::{self, HookRun};
use super::infra::{self, InfraFailure, SourceCheck};
use super::kinds;
use super::lock::{DeployLock, Holder};
use super::plan::{plan, DeployOptions, DeployPlan};
use crate::heal::HealOptions;
use crate::{EngineError, RunContext};

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step done; the new version is live (or nothing needed doing).
    Ok,
    /// A step failed and nothing was changed, or what was changed was put back: the
    /// previous version is what is served.
    Failed,
    /// A step failed after something went live, and that was rolled back.
    RolledBack,
    /// A step failed and the previous state could not be put back: an operator is
    /// needed (the report says what to run).
    NeedsRollback,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::NeedsRollback => "needs-rollback",
        }
    }

    /// 0 ok; 2 failed with the previous state kept or put back; 3 a rollback needed.
    pub fn verdict(self) -> Verdict {
        match self {
            Outcome::Ok => Verdict::Ok,
            Outcome::Failed | Outcome::RolledBack => Verdict::Failed,
            Outcome::NeedsRollback => Verdict::Critical,
        }
    }
}

/// One step as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub action: String,
    pub services: Vec<String>,
    /// `done`, `failed`, `skipped` (a conditional step whose condition did not hold).
    pub status: &'static str,
    pub detail: String,
    pub millis: u64,
}

/// Why a deployment stopped.
#[derive(Debug, Clone, Serialize)]
pub struct DeployFailure {
    pub step: String,
    pub cause: String,
    /// What the operator can do now.
    pub fix: String,
}

/// A deployment found cut short when this one started.
#[derive(Debug, Clone, Serialize)]
pub struct Interrupted {
    pub deployment: i64,
    pub rev: String,
    pub decision: String,
    /// The last step it finished, if any.
    pub last_step: Option<String>,
    /// The holder line its process left in the lock file, if it was still there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// What `drydock deploy` did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// The deployment's id in `drydock deployments`.
    pub deployment: i64,
    pub rev: String,
    pub commit: String,
    pub decision: Decision,
    pub reason: String,
    pub outcome: Outcome,
    /// Things changed (containers, releases, proxy files, backups taken). A second
    /// deploy of the same revision reports 0.
    pub changes: u32,
    pub steps: Vec<StepRun>,
    /// Each app service's deployment (its version now live, the one before).
    pub apps: Vec<AppDeployed>,
    /// The backup taken before anything changed, if any: `rollback --with-data`
    /// restores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Recreated infrastructure's data as last compared with its backup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<SourceCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
    /// Deployments that were cut short before this one (now recorded `interrupted`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<Interrupted>,
    pub millis: u64,
}

impl DeployReport {
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict()
    }
}

/// Runs a deployment of `opts.rev`.
pub fn deploy(
    config: &Config,
    opts: &DeployOptions,
    ctx: &RunContext,
) -> Result<DeployReport, EngineError> {
    let started = Instant::now();
    let state_dir = &config.stack.state_dir;
    let db = StateDb::open(state_dir)?;
    let lock = DeployLock::take(state_dir, &format!("deploy {}", opts.rev))?;
    let interrupted = close_interrupted(&db, lock.left_by_dead.as_ref())?;
    let plan = plan(config, opts, ctx)?;
    refuse_what_cannot_run(config, &plan)?;

    let holder = lock_holder(state_dir);
    let plan_json = serde_json::to_string(&plan).expect("a plan serializes");
    let id = db.deployment_started(&NewDeployment {
        kind: "deploy",
        holder: &holder,
        started_ms: jiff::Timestamp::now().as_millisecond(),
        rev: &opts.rev,
        commit: &plan.changes.to,
        decision: plan.decision.as_str(),
        plan_json: &plan_json,
    })?;
    let mut run = Run {
        config,
        ctx,
        db: &db,
        report: DeployReport {
            deployment: id,
            rev: opts.rev.clone(),
            commit: plan.changes.to.clone(),
            decision: plan.decision,
            reason: plan.reason.clone(),
            outcome: Outcome::Ok,
            changes: 0,
            steps: Vec::new(),
            apps: Vec::new(),
            backup: None,
            data: Vec::new(),
            failure: None,
            interrupted,
            millis: 0,
        },
        opts,
        decision: plan.decision,
        largest: 0,
        checks: None,
        recreated: false,
        restored: false,
    };
    let hooks = &config.deploy.hooks;
    let result = match run.hook("pre-deploy", hooks.pre_deploy.as_deref(), &[]) {
        Err(failure) => Err(failure),
        Ok(()) => run.steps(&plan),
    };
    if result.is_err() && run.report.outcome == Outcome::Ok {
        run.report.outcome = Outcome::Failed;
    }
    match result {
        Ok(()) => {
            let outcome = [("DRYDOCK_OUTCOME", "ok")];
            if let Err(f) = run.hook("post-deploy", hooks.post_deploy.as_deref(), &outcome) {
                // The deployment is done; a failing post hook is reported, not undone.
                warn(run.ctx, format!("{}: {}", f.step, f.cause));
            }
        }
        Err(failure) => {
            let outcome = run.report.outcome.as_str();
            let env = [
                ("DRYDOCK_OUTCOME", outcome),
                ("DRYDOCK_FAILED_STEP", failure.step.as_str()),
                ("DRYDOCK_ERROR", failure.cause.as_str()),
            ];
            if let Err(f) = run.hook("on-failure", hooks.on_failure.as_deref(), &env) {
                warn(run.ctx, format!("{}: {}", f.step, f.cause));
            }
            run.report.failure = Some(failure);
        }
    }
    run.report.millis = started.elapsed().as_millis() as u64;
    run.save()?;
    db.deployment_finished(
        id,
        run.report.outcome.as_str(),
        jiff::Timestamp::now().as_millisecond(),
        Some(i64::from(run.report.changes)),
    )?;
    drop(lock);
    Ok(run.report)
}

/// The deployment's state while it runs.
struct Run<'a> {
    config: &'a Config,
    ctx: &'a RunContext,
    db: &'a StateDb,
    report: DeployReport,
    opts: &'a DeployOptions,
    decision: Decision,
    /// The largest source in the pre-deploy backup, in bytes (the free-space check).
    largest: u64,
    /// The live data's comparison with the backup since the last change to it.
    checks: Option<Vec<SourceCheck>>,
    /// Whether a service was recreated (from then on a failure needs a rollback).
    recreated: bool,
    /// Whether data was restored in this deployment.
    restored: bool,
}

impl Run<'_> {
    /// The plan's steps in order; Err: the failure, with `report.outcome` set.
    fn steps(&mut self, plan: &DeployPlan) -> Result<(), DeployFailure> {
        // Whether the heal fixed every sick service (the conditional steps' condition).
        let mut healed = true;
        for step in &plan.steps {
            if self.ctx.cancel.is_cancelled() {
                self.report.outcome = Outcome::Failed;
                return Err(DeployFailure {
                    step: step.action.to_string(),
                    cause:
                        "cancelled before this step; nothing after the last done step was changed"
                            .into(),
                    fix: "run `drydock deploy` again".into(),
                });
            }
            let services = step.services.clone();
            if step.when == Some(IF_HEAL_FAILED) && healed {
                self.record(step.action, &services, "skipped", "heal fixed it".into(), 0);
                continue;
            }
            // Rebuilding what is missing or broken: back up what can be read; each
            // source then comes back from its newest good backup.
            let readable_only =
                step.when == Some(IF_HEAL_FAILED) || self.decision == Decision::Recreate;
            let started = Instant::now();
            let result = match step.action {
                "backup" if readable_only => Ok(self.backup_readable(&services)),
                "backup" => self.backup(&services),
                "diagnose" => self.diagnose(&services),
                "heal" => self.heal(&services).map(|(fixed, detail)| {
                    healed = fixed;
                    detail
                }),
                "recreate" => self.recreate(&services),
                "verify" => self.verify(&services),
                "restore" => self.restore(&services, step.when == Some(IF_DATA_DIFFERS)),
                "deploy-app" => self.deploy_apps(&services),
                other => unreachable!("the plan has no `{other}` step"),
            };
            let millis = started.elapsed().as_millis() as u64;
            match result {
                Ok(detail) => self.record(step.action, &services, "done", detail, millis),
                Err(failure) => {
                    let detail = format!("failed: {}", failure.cause);
                    self.record(step.action, &services, "failed", detail, millis);
                    return Err(failure);
                }
            }
        }
        Ok(())
    }

    /// Records a finished step, in the report and in the state database.
    fn record(
        &mut self,
        action: &str,
        services: &[String],
        status: &'static str,
        detail: String,
        millis: u64,
    ) {
        self.report.steps.push(StepRun {
            action: action.to_string(),
            services: services.to_vec(),
            status,
            detail,
            millis,
        });
        if let Err(e) = self.save() {
            warn(
                self.ctx,
                format!("the deployment's progress could not be recorded: {e}"),
            );
        }
    }

    fn save(&self) -> Result<(), EngineError> {
        let json = serde_json::to_string(&self.report).expect("a report serializes");
        self.db.deployment_progress(self.report.deployment, &json)?;
        Ok(())
    }

    /// The pre-deploy backup of `services`' sources: ok (stored and read back) or the
    /// deployment ends here, before anything is stopped.
    fn backup(&mut self, services: &[String]) -> Result<String, DeployFailure> {
        let selection = Selection {
            all: true,
            services: services.to_vec(),
            ..Selection::default()
        };
        let fail = |cause: String| {
            DeployFailure {
            step: "backup".into(),
            cause,
            fix: "nothing was changed; fix the backup (`drydock backup --all --service ...` shows why) and deploy again".into(),
        }
        };
        let report = crate::backup::backup(self.config, &selection, self.ctx).map_err(|e| {
            self.report.outcome = Outcome::Failed;
            fail(e.to_string())
        })?;
        if report.verdict() != Verdict::Ok {
            self.report.outcome = Outcome::Failed;
            let why = report
                .sources
                .iter()
                .filter_map(|s| {
                    s.error
                        .as_deref()
                        .map(|e| format!("{}/{}: {e}", s.service, s.source))
                })
                .chain(report.warnings.iter().cloned())
                .collect::<Vec<_>>();
            return Err(fail(format!(
                "backup {} is not ok ({:?}){}",
                report.id,
                report.verdict(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join("; "))
                }
            )));
        }
        self.report.changes += 1;
        self.report.backup = Some(report.id.clone());
        self.largest = largest_source(&report.sources);
        Ok(format!(
            "backup {} of {} source(s), stored and read back",
            report.id,
            report.sources.len()
        ))
    }

    /// The backup before rebuilding what is missing or broken: whatever can be read is
    /// backed up; what cannot comes back from its newest good backup (the pre-flight
    /// makes sure there is one).
    fn backup_readable(&mut self, services: &[String]) -> String {
        let selection = Selection {
            all: true,
            services: services.to_vec(),
            ..Selection::default()
        };
        match crate::backup::backup(self.config, &selection, self.ctx) {
            Ok(report) => {
                self.largest = largest_source(&report.sources);
                self.report.changes += 1;
                if report.verdict() == Verdict::Ok {
                    self.report.backup = Some(report.id.clone());
                    format!(
                        "backup {} of {} source(s), stored and read back",
                        report.id,
                        report.sources.len()
                    )
                } else {
                    let unread: Vec<String> = report
                        .sources
                        .iter()
                        .filter(|s| s.error.is_some())
                        .map(|s| format!("{}/{}", s.service, s.source))
                        .collect();
                    format!(
                        "backup {} could not read {}: each comes back from its newest good backup",
                        report.id,
                        unread.join(", ")
                    )
                }
            }
            Err(e) => format!(
                "nothing could be backed up ({e}): each source comes back from its newest good backup"
            ),
        }
    }

    /// Pre-flight, then each service recreated and health-gated.
    fn recreate(&mut self, services: &[String]) -> Result<String, DeployFailure> {
        // Checked here for a recreate that runs only because the heal failed.
        if let Err(why) = infra::can_recreate(self.config, services) {
            let failure = InfraFailure {
                cause: format!("drydock cannot recreate {why}"),
                fix: rebuild_by_hand(services),
            };
            return Err(self.infra_failed("recreate", failure));
        }
        let pre = infra::preflight(self.config, services, self.largest, self.ctx)
            .map_err(|f| self.infra_failed("recreate", f))?;
        self.recreated = true;
        self.checks = None;
        let done = infra::recreate(self.config, services, self.ctx)
            .map_err(|f| self.roll_back_infra("recreate", f, services))?;
        // A service without a process (runtime none) or an external one had nothing
        // recreated: not a change.
        self.report.changes += services
            .iter()
            .filter(|n| {
                !matches!(
                    self.config.services[*n].runtime,
                    drydock_domain::config::RuntimeConfig::None
                        | drydock_domain::config::RuntimeConfig::External
                )
            })
            .count() as u32;
        Ok(format!("pre-flight: {pre}; {done}"))
    }

    /// The live data compared with the backup. After a restore in this deployment any
    /// difference is a failure; before one it is what the restore step restores.
    fn verify(&mut self, services: &[String]) -> Result<String, DeployFailure> {
        let checks = infra::compare(self.config, services, self.ctx)
            .map_err(|f| self.infra_failed("verify", f))?;
        let detail = infra::describe(&checks);
        let differ = checks.iter().any(SourceCheck::needs_restore);
        self.report.data = checks.clone();
        self.checks = Some(checks);
        if differ && self.restored {
            let failure = InfraFailure {
                cause: format!("after the restore the live data still differs: {detail}"),
                fix: infra::recover_by_hand(services, self.report.backup.as_deref()),
            };
            return Err(self.roll_back_infra("verify", failure, services));
        }
        Ok(detail)
    }

    /// Restores what is missing or differs from the backup (comparing first if that
    /// was not done since the last change). Replacing data that is there but differs
    /// needs a confirmation or `--force`.
    fn restore(
        &mut self,
        services: &[String],
        only_if_differs: bool,
    ) -> Result<String, DeployFailure> {
        let checks = match self.checks.take() {
            Some(checks) => checks,
            None => infra::compare(self.config, services, self.ctx)
                .map_err(|f| self.infra_failed("restore", f))?,
        };
        let changed: Vec<&SourceCheck> = checks.iter().filter(|c| c.status == "changed").collect();
        if !changed.is_empty() && !self.opts.force {
            let what = infra::describe(&changed.iter().map(|c| (*c).clone()).collect::<Vec<_>>());
            let question = format!(
                "after recreating, live data differs from the pre-deploy backup ({what}); restoring loses what was written since that backup. Restore it?"
            );
            if self.ctx.confirm(&question) != Some(true) {
                let backup = changed[0].backup.clone();
                let sources: String = changed
                    .iter()
                    .map(|c| format!(" --source {}", c.source))
                    .collect();
                self.report.data = checks.clone();
                return Err(self.infra_failed(
                    "restore",
                    InfraFailure {
                        cause: format!("live data differs from the backup and restoring it was not confirmed: {what}"),
                        fix: format!(
                            "if the differences are a loss, `drydock restore {} --all{sources} --force`; if they are writes to keep, nothing to do; then `drydock verify --live`. `drydock deploy --force` restores without asking",
                            backup.as_deref().unwrap_or("latest")
                        ),
                    },
                ));
            }
        }
        let to_restore = checks.iter().filter(|c| c.needs_restore()).count();
        if to_restore == 0 && only_if_differs {
            self.report.data = checks;
            return Ok("nothing to restore: the live data equals the backup".into());
        }
        let detail = infra::restore(self.config, &checks, self.ctx)
            .map_err(|f| self.roll_back_infra("restore", f, services))?;
        self.report.changes += to_restore as u32;
        self.restored = to_restore > 0;
        self.report.data = checks;
        Ok(detail)
    }

    /// A rebuild step's failure after services were recreated: they are put back on the
    /// last good deployment's definition and their data checked against the backup
    /// (`rolled-back`), or, where that cannot be done, `needs-rollback` with what to run.
    fn roll_back_infra(
        &mut self,
        step: &str,
        f: InfraFailure,
        services: &[String],
    ) -> DeployFailure {
        if !self.recreated {
            return self.infra_failed(step, f);
        }
        let previous = self
            .db
            .last_good_deployment()
            .ok()
            .flatten()
            .map(|d| d.commit);
        let rolled = infra::roll_back(
            self.config,
            services,
            previous.as_deref(),
            self.report.backup.as_deref(),
            self.opts.force,
            self.ctx,
        );
        match rolled {
            Ok(done) => {
                self.report.changes += 1;
                self.report.outcome = Outcome::RolledBack;
                DeployFailure {
                    step: step.to_string(),
                    cause: format!("{}; rolled back: {done}", f.cause),
                    fix: "the previous infrastructure is live again with its data checked; fix the cause and deploy again".into(),
                }
            }
            Err(back) => {
                self.report.outcome = Outcome::NeedsRollback;
                DeployFailure {
                    step: step.to_string(),
                    cause: format!("{}; rolling back failed: {}", f.cause, back.cause),
                    fix: back.fix,
                }
            }
        }
    }

    /// A rebuild step's failure: `failed` while nothing was recreated, else
    /// `needs-rollback`.
    fn infra_failed(&mut self, step: &str, f: InfraFailure) -> DeployFailure {
        self.report.outcome = if self.recreated {
            Outcome::NeedsRollback
        } else {
            Outcome::Failed
        };
        DeployFailure {
            step: step.to_string(),
            cause: f.cause,
            fix: f.fix,
        }
    }

    fn diagnose(&mut self, services: &[String]) -> Result<String, DeployFailure> {
        let opts = crate::diagnose::DiagnoseOptions {
            services: services.to_vec(),
            ..Default::default()
        };
        match crate::diagnose::diagnose(self.config, &opts, self.ctx) {
            Ok(report) => Ok(format!("{} service(s) diagnosed", report.services.len())),
            // A diagnosis that cannot run does not stop the heal that follows.
            Err(e) => Ok(format!("could not diagnose: {e}")),
        }
    }

    /// Ok((fixed, detail)).
    fn heal(&mut self, services: &[String]) -> Result<(bool, String), DeployFailure> {
        let opts = HealOptions {
            services: services.to_vec(),
            ..HealOptions::default()
        };
        let report = crate::heal::heal(self.config, &opts, self.ctx).map_err(|e| {
            self.report.outcome = Outcome::Failed;
            DeployFailure {
                step: "heal".into(),
                cause: e.to_string(),
                fix: "run `drydock diagnose` and `drydock heal` by hand".into(),
            }
        })?;
        if report.fixed {
            self.report.changes += 1;
        }
        Ok((
            report.fixed,
            if report.fixed {
                format!("fixed: {}", services.join(", "))
            } else {
                format!("not fixed: {}", services.join(", "))
            },
        ))
    }

    /// Each app service's new version; a failure rolls back the ones already live.
    fn deploy_apps(&mut self, services: &[String]) -> Result<String, DeployFailure> {
        let before = self
            .db
            .last_good_deployment()
            .ok()
            .flatten()
            .map(|d| d.commit);
        let config_dir = config_dir(self.config);
        let mut live: Vec<String> = Vec::new();
        for service in services {
            let spec = self.config.services[service]
                .deploy
                .as_ref()
                .expect("refuse_what_cannot_run checked every app service has a deploy spec");
            let target = AppTarget {
                stack: &self.config.stack.name,
                service,
                commit: &self.report.commit,
                config_dir,
                state_dir: &self.config.stack.state_dir,
            };
            match kinds::deploy(spec, &target, self.ctx) {
                Ok(done) => {
                    self.report.changes += done.changes;
                    if done.changes > 0 {
                        live.push(service.clone());
                    }
                    self.report.apps.push(done);
                    let _ = self.save();
                }
                Err(failure) => {
                    let rolled = self.roll_back_apps(&live, before.as_deref());
                    self.report.outcome = match (&rolled, failure.old_still_served) {
                        (Ok(_), true) if live.is_empty() => Outcome::Failed,
                        (Ok(_), true) => Outcome::RolledBack,
                        _ => Outcome::NeedsRollback,
                    };
                    let mut cause = failure.to_string();
                    if let Err(e) = rolled {
                        cause.push_str(&format!("; rolling back {}: {e}", live.join(", ")));
                    } else if !live.is_empty() {
                        cause.push_str(&format!("; {} rolled back", live.join(", ")));
                    }
                    return Err(DeployFailure {
                        step: "deploy-app".into(),
                        cause,
                        fix: failure.fix,
                    });
                }
            }
        }
        let versions: Vec<String> = self
            .report
            .apps
            .iter()
            .map(|a| format!("{} {}", a.service, a.version))
            .collect();
        Ok(format!("live: {}", versions.join(", ")))
    }

    fn roll_back_apps(&mut self, live: &[String], to: Option<&str>) -> Result<(), String> {
        let config_dir = config_dir(self.config);
        for service in live {
            let spec = self.config.services[service]
                .deploy
                .as_ref()
                .expect("checked");
            let target = AppTarget {
                stack: &self.config.stack.name,
                service,
                commit: to.unwrap_or(&self.report.commit),
                config_dir,
                state_dir: &self.config.stack.state_dir,
            };
            let done = kinds::rollback(spec, &target, to, self.ctx).map_err(|e| e.to_string())?;
            self.report.changes += done.changes;
        }
        Ok(())
    }

    /// Runs a hook, if configured; Err when it exits non-zero (or cannot run).
    fn hook(
        &self,
        name: &str,
        command: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<(), DeployFailure> {
        let r = &self.report;
        let run = HookRun {
            deployment: r.deployment,
            kind: "deploy",
            rev: &r.rev,
            commit: &r.commit,
            decision: r.decision.as_str(),
        };
        hooks::run(self.config, name, command, &run, extra).map_err(|f| DeployFailure {
            step: f.step,
            cause: f.cause,
            fix: f.fix,
        })
    }
}

/// Records deployments cut short before this one as `interrupted`, and says what each
/// reached.
fn close_interrupted(db: &StateDb, left: Option<&Holder>) -> Result<Vec<Interrupted>, EngineError> {
    let mut found = Vec::new();
    for d in db.unfinished_deployments()? {
        let last_step = d
            .report_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| {
                v["steps"].as_array().and_then(|s| s.last()).map(|s| {
                    format!(
                        "{} ({})",
                        s["action"].as_str().unwrap_or("?"),
                        s["status"].as_str().unwrap_or("?")
                    )
                })
            });
        db.deployment_finished(
            d.id,
            "interrupted",
            jiff::Timestamp::now().as_millisecond(),
            None,
        )?;
        found.push(Interrupted {
            deployment: d.id,
            rev: d.rev,
            decision: d.decision,
            last_step,
            // The holder its record names; else the line its process left in the lock.
            holder: d
                .holder
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok())
                .or_else(|| left.cloned()),
        });
    }
    Ok(found)
}

/// Refuses, before anything changes, a plan drydock cannot carry out: an app service
/// without `deploy`, or infrastructure to recreate whose runtime cannot be recreated.
/// (A recreate that runs only if the heal fails is checked there: the heal may fix it.)
fn refuse_what_cannot_run(config: &Config, plan: &DeployPlan) -> Result<(), EngineError> {
    let recreate: Option<&Step> = plan
        .steps
        .iter()
        .find(|s| s.when.is_none() && s.action == "recreate");
    if let Some(step) = recreate {
        if let Err(why) = infra::can_recreate(config, &step.services) {
            return Err(EngineError::Refused(format!(
                "the plan ({}) recreates infrastructure, but drydock cannot recreate {why}; nothing was changed. Or do it by hand: {}",
                plan.decision.as_str(),
                rebuild_by_hand(&step.services)
            )));
        }
    }
    let deploys_app = plan.steps.iter().any(|s| s.action == "deploy-app");
    if deploys_app {
        let without: Vec<&String> = plan
            .app
            .iter()
            .filter(|s| config.services[*s].deploy.is_none())
            .collect();
        if !without.is_empty() {
            return Err(EngineError::Refused(format!(
                "app service(s) {} have no `deploy = {{ kind = ... }}`: add one (docker or release) to say how a new version goes live",
                without.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

fn rebuild_by_hand(services: &[String]) -> String {
    let s: String = services.iter().map(|s| format!(" --service {s}")).collect();
    format!(
        "`drydock backup --all{s}`, recreate the service(s) with their runtime (e.g. `docker compose up -d --force-recreate`), `drydock restore latest{s}` if their data is missing, `drydock verify`, then `drydock deploy` again"
    )
}

/// The largest source of a backup, in bytes.
fn largest_source(sources: &[drydock_domain::SourceRecord]) -> u64 {
    sources.iter().map(|s| s.logical_bytes).max().unwrap_or(0)
}

fn warn(ctx: &RunContext, message: String) {
    ctx.events()
        .emit(drydock_domain::Event::Warning { message });
}

fn config_dir(config: &Config) -> &Path {
    config.dir()
}

/// The holder line as the lock wrote it (for the record).
fn lock_holder(state_dir: &Path) -> String {
    std::fs::read_to_string(DeployLock::path(state_dir)).unwrap_or_default()
}
