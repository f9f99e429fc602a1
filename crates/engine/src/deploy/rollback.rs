//! `drydock rollback [SERVICE] [--to DEPLOYMENT] [--with-data]`: the app services put
//! back to the version of an earlier good deployment (default: the good one before the
//! current), under the deploy lock and recorded like a deployment (`kind = rollback`),
//! so the next `deploy` diffs against what is live again.
//!
//! `--with-data` also restores the backup taken before the first deployment being
//! undone (the pre-deploy backup), verified like every restore. Before it replaces live
//! data it says what is lost: every write since that backup was taken (the window, as a
//! time, and what differs now from the backup, table by table, by the engines'
//! fingerprints), and asks, or needs `--force` where nobody can be asked. When no
//! schema changed since the backup (the DDL parts of PostgreSQL, MariaDB and SQLite
//! fingerprints are equal), the new version did not migrate anything: it says so and
//! offers the app-only rollback, which keeps those writes.

use std::time::Instant;

use drydock_domain::config::{Config, Role};
use drydock_domain::plan::Selection;
use drydock_domain::Verdict;
use drydock_state::{DeploymentRecord, NewDeployment, StateDb};
use serde::{Deserialize, Serialize};

use super::app::{AppDeployed, AppTarget};
use super::execute::{DeployFailure, Outcome};
use super::hooks::{self, HookRun};
use super::kinds;
use super::lock::DeployLock;
use crate::restore::{BackupRef, RestoreOptions};
use crate::verify::verify_live_against;
use crate::{EngineError, RunContext};

/// What `rollback` is asked. The field docs are also the `--help` lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct RollbackOptions {
    /// The app service to roll back (default: every app service with a `deploy`).
    pub service: Option<String>,
    /// The deployment to go back to, by its id in `drydock deployments` (default: the
    /// good deployment before the current one).
    #[cfg_attr(feature = "clap", arg(long, value_name = "DEPLOYMENT"))]
    pub to: Option<i64>,
    /// Also restore the data backup taken before the deployments being undone (every
    /// write since is lost; asks first).
    #[cfg_attr(feature = "clap", arg(long))]
    pub with_data: bool,
    /// Do not ask before restoring data.
    #[cfg_attr(feature = "clap", arg(long))]
    pub force: bool,
}

/// The data side of a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct DataRollback {
    /// The pre-deploy backup restored.
    pub backup: String,
    /// When it was taken (the start of the deployment it belongs to), RFC 3339.
    pub taken_at: String,
    /// Writes after this moment are lost: how long ago it was, in seconds.
    pub write_loss_secs: u64,
    pub services: Vec<String>,
    /// What differed from the backup just before it was restored, per source: the
    /// writes the window lost.
    pub lost: Vec<LostWrites>,
    /// Whether any schema changed since the backup (`None`: no source has a schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_changed: Option<bool>,
    /// Restored, and counts and fingerprints equal to the backup's.
    pub verified: bool,
}

/// One source's differences from the pre-deploy backup before a data rollback.
#[derive(Debug, Clone, Serialize)]
pub struct LostWrites {
    /// `service/source`.
    pub source: String,
    /// By fingerprint part (`public.orders: 3000 rows in backup, 3050 now`); empty when
    /// nothing was written.
    pub differences: Vec<String>,
}

/// What `drydock rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The rollback's own record in `drydock deployments`.
    pub deployment: i64,
    /// The deployment gone back to, and its commit.
    pub to_deployment: i64,
    pub to_commit: String,
    /// The commit that was live before.
    pub from_commit: String,
    pub apps: Vec<AppDeployed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataRollback>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
    pub changes: u32,
    pub millis: u64,
}

impl RollbackReport {
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict()
    }
}

/// Runs a rollback.
pub fn rollback(
    config: &Config,
    opts: &RollbackOptions,
    ctx: &RunContext,
) -> Result<RollbackReport, EngineError> {
    let started = Instant::now();
    let state_dir = &config.stack.state_dir;
    let db = StateDb::open(state_dir)?;
    let services = app_services(config, opts.service.as_deref())?;
    let _lock = DeployLock::take(
        state_dir,
        &format!("rollback {}", opts.service.as_deref().unwrap_or("app")),
    )?;
    let history = db.deployments(1000)?;
    let good: Vec<&DeploymentRecord> = history
        .iter()
        .filter(|d| d.outcome.as_deref() == Some("ok"))
        .collect();
    let current = *good.first().ok_or_else(|| {
        EngineError::Refused("no good deployment is recorded: there is nothing to roll back".into())
    })?;
    let target = match opts.to {
        Some(id) => *good.iter().find(|d| d.id == id).ok_or_else(|| {
            EngineError::Refused(format!(
                "deployment {id} is not a good deployment of this stack; `drydock deployments` lists them (outcome ok)"
            ))
        })?,
        None => *good
            .iter()
            .find(|d| d.commit != current.commit)
            .ok_or_else(|| {
                EngineError::Refused(format!(
                    "no good deployment of another commit than the live {} is recorded: there is nothing to roll back to",
                    short(&current.commit)
                ))
            })?,
    };
    // The data to put back: the backup the first deployment after the target took.
    let data = if opts.with_data {
        Some(data_to_restore(config, &good, target, opts, ctx)?)
    } else {
        None
    };

    let holder = std::fs::read_to_string(DeployLock::path(state_dir)).unwrap_or_default();
    let id = db.deployment_started(&NewDeployment {
        kind: "rollback",
        holder: &holder,
        started_ms: jiff::Timestamp::now().as_millisecond(),
        rev: &format!("rollback to deployment {}", target.id),
        commit: &target.commit,
        decision: if data.is_some() { "app+data" } else { "app" },
        plan_json: "{}",
    })?;
    let mut report = RollbackReport {
        deployment: id,
        to_deployment: target.id,
        to_commit: target.commit.clone(),
        from_commit: current.commit.clone(),
        apps: Vec::new(),
        data: None,
        outcome: Outcome::Ok,
        failure: None,
        changes: 0,
        millis: 0,
    };
    let rev = format!("rollback to deployment {}", target.id);
    let decision = if data.is_some() { "app+data" } else { "app" };
    let hook_run = HookRun {
        deployment: id,
        kind: "rollback",
        rev: &rev,
        commit: &target.commit,
        decision,
    };
    let hooks_config = &config.deploy.hooks;
    let pre = hooks::run(
        config,
        "pre-deploy",
        hooks_config.pre_deploy.as_deref(),
        &hook_run,
        &[],
    );
    let config_dir = config.dir();
    let services = if let Err(f) = pre {
        report.outcome = Outcome::Failed;
        report.failure = Some(DeployFailure {
            step: f.step,
            cause: f.cause,
            fix: f.fix,
        });
        Vec::new()
    } else {
        services
    };
    for service in &services {
        let spec = config.services[service]
            .deploy
            .as_ref()
            .expect("app_services checked");
        let app_target = AppTarget {
            stack: &config.stack.name,
            service,
            commit: &target.commit,
            config_dir,
            state_dir,
        };
        match kinds::rollback(spec, &app_target, Some(&target.commit), ctx) {
            Ok(done) => {
                report.changes += done.changes;
                report.apps.push(done);
            }
            Err(failure) => {
                report.outcome = if failure.old_still_served && report.apps.is_empty() {
                    Outcome::Failed
                } else {
                    Outcome::NeedsRollback
                };
                report.failure = Some(DeployFailure {
                    step: format!("rollback {service}"),
                    cause: failure.to_string(),
                    fix: failure.fix,
                });
                break;
            }
        }
    }
    if let (Some(mut data), None) = (data, &report.failure) {
        let backup = data.backup.clone();
        let restored = crate::restore::restore(
            config,
            &RestoreOptions {
                backup: BackupRef::Id(backup.clone()),
                services: data.services.clone(),
                all: false,
                force: true,
                stop: true,
                from: None,
                sources: Vec::new(),
            },
            ctx,
        );
        let verified = matches!(&restored, Ok(r) if r.verified);
        report.changes += 1;
        data.verified = verified;
        report.data = Some(data);
        if !verified {
            report.outcome = Outcome::NeedsRollback;
            report.failure = Some(DeployFailure {
                step: "restore".into(),
                cause: match restored {
                    Ok(_) => format!("backup {backup} was restored but did not verify"),
                    Err(e) => e.to_string(),
                },
                fix: format!("the app is rolled back; restore the data by hand: `drydock restore {backup} --all --force`, then `drydock verify`"),
            });
        }
    }
    let after = match &report.failure {
        None => hooks::run(
            config,
            "post-deploy",
            hooks_config.post_deploy.as_deref(),
            &hook_run,
            &[("DRYDOCK_OUTCOME", "ok")],
        ),
        Some(f) => hooks::run(
            config,
            "on-failure",
            hooks_config.on_failure.as_deref(),
            &hook_run,
            &[
                ("DRYDOCK_OUTCOME", report.outcome.as_str()),
                ("DRYDOCK_FAILED_STEP", f.step.as_str()),
                ("DRYDOCK_ERROR", f.cause.as_str()),
            ],
        ),
    };
    if let Err(f) = after {
        // The rollback is done (or failed already); a failing hook is reported, not undone.
        ctx.events().emit(drydock_domain::Event::Warning {
            message: format!("{}: {}", f.step, f.cause),
        });
    }
    report.millis = started.elapsed().as_millis() as u64;
    db.deployment_progress(id, &serde_json::to_string(&report).expect("serializes"))?;
    db.deployment_finished(
        id,
        report.outcome.as_str(),
        jiff::Timestamp::now().as_millisecond(),
        Some(i64::from(report.changes)),
    )?;
    Ok(report)
}

/// The app services a rollback covers: the one named (which must be an app service
/// with a `deploy`), or all of them.
fn app_services(config: &Config, named: Option<&str>) -> Result<Vec<String>, EngineError> {
    let deployable = |name: &str| {
        config
            .services
            .get(name)
            .is_some_and(|s| s.deploy.is_some() && s.role == Some(Role::App))
    };
    match named {
        Some(name) if deployable(name) => Ok(vec![name.to_string()]),
        Some(name) => Err(EngineError::Refused(format!(
            "`{name}` is not an app service with a `deploy` (role = \"app\" and deploy = {{ kind = ... }}); only those can be rolled back"
        ))),
        None => {
            let all: Vec<String> =
                config.services.keys().filter(|n| deployable(n)).cloned().collect();
            if all.is_empty() {
                return Err(EngineError::Refused(
                    "no service has role = \"app\" and a `deploy`: there is nothing to roll back".into(),
                ));
            }
            Ok(all)
        }
    }
}

/// The data side of `--with-data` (not yet restored), after asking.
fn data_to_restore(
    config: &Config,
    good: &[&DeploymentRecord],
    target: &DeploymentRecord,
    opts: &RollbackOptions,
    ctx: &RunContext,
) -> Result<DataRollback, EngineError> {
    // Good deployments newer than the target, oldest first: the first with a backup
    // holds the data as it was when the target was live.
    let undone = good.iter().rev().filter(|d| d.id > target.id);
    let found = undone.filter_map(|d| {
        let report: serde_json::Value = serde_json::from_str(d.report_json.as_deref()?).ok()?;
        Some((report["backup"].as_str()?.to_string(), d.started_ms))
    });
    let Some((backup, taken_ms)) = found.into_iter().next() else {
        return Err(EngineError::Refused(format!(
            "no pre-deploy backup is recorded for the deployments after {}: roll back the app alone (without --with-data), or restore a backup by hand (`drydock backups`)",
            target.id
        )));
    };
    let services: Vec<String> = config
        .services
        .iter()
        .filter(|(_, s)| !s.data.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    let now = jiff::Timestamp::now().as_millisecond();
    let loss = u64::try_from((now - taken_ms).max(0) / 1000).unwrap_or(0);
    let taken_at = jiff::Timestamp::from_millisecond(taken_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    // What the window holds, by the engines' own fingerprints.
    let selection = Selection {
        all: true,
        services: services.clone(),
        ..Selection::default()
    };
    let live = verify_live_against(config, &selection, &BackupRef::Id(backup.clone()), ctx)?;
    let lost: Vec<LostWrites> = live
        .sources
        .iter()
        .map(|s| LostWrites {
            source: s.source.clone(),
            differences: s.differences.clone(),
        })
        .collect();
    let schemas: Vec<bool> = live
        .sources
        .iter()
        .filter_map(|s| s.schema_changed)
        .collect();
    let schema_changed = (!schemas.is_empty()).then(|| schemas.iter().any(|c| *c));
    let written: Vec<String> = lost
        .iter()
        .filter(|l| !l.differences.is_empty())
        .map(|l| format!("{}: {}", l.source, l.differences.join(", ")))
        .collect();
    let window = if written.is_empty() {
        "nothing differs from it now".to_string()
    } else {
        format!("lost: {}", written.join("; "))
    };
    let app_only = if schema_changed == Some(false) {
        " No schema changed since that backup, so the new version migrated nothing: `drydock rollback` without --with-data puts the app back and keeps these writes."
    } else {
        ""
    };
    let data = DataRollback {
        backup: backup.clone(),
        taken_at: taken_at.clone(),
        write_loss_secs: loss,
        services: services.clone(),
        lost,
        schema_changed,
        verified: false,
    };
    if !opts.force {
        let question = format!(
            "restore backup {backup} (taken {taken_at}, {loss} s ago) over the live data of {}? Every write since then is lost ({window}).{app_only}",
            services.join(", ")
        );
        match ctx.confirm(&question) {
            Some(true) => {}
            Some(false) => {
                return Err(EngineError::Refused(
                    "not confirmed; nothing was changed".into(),
                ))
            }
            None => {
                return Err(EngineError::Refused(format!(
                    "restoring backup {backup} loses every write of the last {loss} s ({window}) and nobody can be asked here; nothing was changed. Run again with --force, or roll back the app alone.{app_only}"
                )))
            }
        }
    }
    Ok(data)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
