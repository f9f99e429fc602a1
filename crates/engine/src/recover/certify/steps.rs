//! The nine steps of the readiness routine, one function each, over the [`Certify`]
//! run they share. A step returns its [`Outcome`]; `Err` only for what did not let it
//! run (a refusal, a cancellation, an error the caller records as a failed step).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drydock_domain::config::{Config, Role, ServiceConfig, LOCAL_COPY};
use drydock_domain::plan::Selection;
use drydock_domain::Priority;
use drydock_health::Status;
use drydock_state::{CertifyStepRecord, CopyState, StateDb};
use jiff::Timestamp;
use serde_json::{json, Value};

use super::deploying;
use super::report::{CertifyOptions, StepStatus};
use crate::drill::in_place::{restore_and_start, stop_and_wipe, test_data_check, Stopped};
use crate::drill::{ms, Step};
use crate::health;
use crate::RunContext;
use crate::{backup, copies, populate, EngineError};

/// Check kinds that prove the service reachable from outside (step 2's).
const EXTERNAL_KINDS: [&str; 4] = ["http", "https", "dns", "oidc"];

/// How long a deployed or recreated service has to pass its checks.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// One step's result before it is recorded.
pub(super) struct Outcome {
    pub(super) status: StepStatus,
    pub(super) detail: String,
    pub(super) metrics: Value,
}

fn passed(detail: impl Into<String>, metrics: Value) -> Outcome {
    outcome(StepStatus::Passed, detail, metrics)
}

pub(super) fn failed(detail: impl Into<String>) -> Outcome {
    outcome(StepStatus::Failed, detail, json!({}))
}

fn outcome(status: StepStatus, detail: impl Into<String>, metrics: Value) -> Outcome {
    Outcome {
        status,
        detail: detail.into(),
        metrics,
    }
}

/// One certify run of one service: what every step reads.
pub(super) struct Certify<'a> {
    pub(super) config: &'a Config,
    pub(super) service: &'a str,
    pub(super) opts: &'a CertifyOptions,
    pub(super) state: &'a StateDb,
    pub(super) ctx: &'a RunContext,
}

impl Certify<'_> {
    fn svc(&self) -> &ServiceConfig {
        &self.config.services[self.service]
    }

    fn has_data(&self) -> bool {
        self.svc()
            .data
            .iter()
            .any(|d| d.priority() != Priority::None)
    }

    /// Runs step `number`, given what earlier steps recorded.
    pub(super) fn run_step(
        &self,
        number: u32,
        recorded: &BTreeMap<u32, CertifyStepRecord>,
    ) -> Result<Outcome, EngineError> {
        let metrics_of = |step: u32| -> Value {
            recorded
                .get(&step)
                .and_then(|r| serde_json::from_str(&r.metrics).ok())
                .unwrap_or(Value::Null)
        };
        let backup_id_of = |step: u32| {
            metrics_of(step)
                .get("backup_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match number {
            1 => self.deploy(),
            2 => Ok(self.external_checks()),
            3 => self.recreate(&metrics_of(1)),
            4 => Ok(self.backup_plan()),
            5 => self.populate(),
            6 => self.back_up(),
            7 => self.baseline(backup_id_of(6)),
            8 => self.wipe(backup_id_of(7)),
            9 => self.restore(&metrics_of(8)),
            _ => unreachable!("certify has nine steps"),
        }
    }

    /// Step 1: a deployment of the service (told it changed: an app's deployer runs,
    /// infrastructure is recreated by its runtime after a backup and its data compared
    /// with that backup), what it left stopped started, then its own checks healthy.
    /// Deploy time runs from the deployment's start until then.
    fn deploy(&self) -> Result<Outcome, EngineError> {
        let service = self.service;
        if let Some(why) = deploying::cannot_deploy(self.config, service) {
            return Ok(failed(why));
        }
        let clock = Instant::now();
        let report = match deploying::run(self.config, service, true, self.ctx)? {
            Ok(r) => r,
            Err(why) => return Ok(failed(why)),
        };
        self.start_if_stopped()?;
        // Its own checks; the external ones are step 2's.
        Ok(
            match wait_checks(self.config, service, false, HEALTHY_WITHIN) {
                Ok(n) => {
                    let deploy_ms = ms(clock.elapsed());
                    passed(
                        format!(
                            "deployment {} of {} ({}: {}, {} change(s)); {n} internal check(s) healthy after {deploy_ms} ms",
                            report.deployment,
                            short(&report.commit),
                            report.decision.as_str(),
                            deploying::steps_done(&report),
                            report.changes
                        ),
                        json!({
                            "deploy_ms": deploy_ms,
                            "deployment": report.deployment,
                            "commit": report.commit,
                            "decision": report.decision.as_str(),
                            "changes": report.changes,
                            "internal_checks": n,
                        }),
                    )
                }
                Err(failing) => failed(format!(
                    "deployment {} ended ok, but `{service}` is not healthy: {failing} (see `drydock diagnose {service}`)",
                    report.deployment
                )),
            },
        )
    }

    /// Step 3: destroyed and recreated, healthy again, and a second, plain deploy of
    /// the same revision changes nothing. An app service is taken down (its runtime
    /// stopped, its deployer's live version taken away) and deployed again; an
    /// infrastructure service is destroyed and put back by its runtime's `recreate`
    /// inside a deployment (stopping a database server first would leave the
    /// deployment's backup nothing to read). Nothing is destroyed until change
    /// detection answers, since the second deploy needs it.
    fn recreate(&self, deployed: &Value) -> Result<Outcome, EngineError> {
        let (config, service, ctx) = (self.config, self.service, self.ctx);
        if let Some(why) = deploying::cannot_deploy(config, service) {
            return Ok(failed(why));
        }
        if let Err(e) = crate::deploy::plan(config, &deploying::plain(service), ctx) {
            if matches!(e, EngineError::Cancelled { .. }) {
                return Err(e);
            }
            return Ok(failed(format!("nothing was destroyed: {e}")));
        }
        let clock = Instant::now();
        let destroyed = if deploying::is_app(config, service) {
            let taken = crate::deploy::take_down(config, service, ctx)?;
            taken.done.join("; ")
        } else {
            let runtime = drydock_runtimes::build(service, &self.svc().runtime);
            match runtime.kind() {
                "none" => "nothing runs (runtime `none`): its data was compared with the pre-deploy backup".to_string(),
                kind => format!("stopped, put back from its definition and started by its runtime `{kind}`"),
            }
        };
        let recreated = match deploying::run(config, service, true, ctx)? {
            Ok(r) => r,
            Err(why) => return Ok(failed(format!("destroyed ({destroyed}), then {why}"))),
        };
        self.start_if_stopped()?;
        if let Err(failing) = wait_checks(config, service, true, HEALTHY_WITHIN) {
            return Ok(failed(format!(
                "destroyed ({destroyed}) and recreated by deployment {}, but not healthy again: {failing} (see `drydock diagnose {service}`)",
                recreated.deployment
            )));
        }
        let recreate_ms = ms(clock.elapsed());
        // What the second deploy will find, to name it if it changes something.
        let expected = crate::deploy::plan(config, &deploying::plain(service), ctx)?;
        let second = match deploying::run(config, service, false, ctx)? {
            Ok(r) => r,
            Err(why) => return Ok(failed(format!("the second deploy: {why}"))),
        };
        let metrics = json!({
            "recreate_ms": recreate_ms,
            "destroyed": destroyed,
            "recreate_deployment": recreated.deployment,
            "deployment": second.deployment,
            "decision": second.decision.as_str(),
            "changes": second.changes,
            "first_deployment": deployed.get("deployment"),
        });
        if second.changes > 0 {
            return Ok(outcome(
                StepStatus::Failed,
                format!(
                    "the second deploy is not idempotent: {}",
                    deploying::what_changed(&second, &expected, &recreated.commit)
                ),
                metrics,
            ));
        }
        Ok(passed(
            format!(
                "destroyed ({destroyed}); recreated by deployment {} ({}, {} change(s)) and healthy again after {recreate_ms} ms; the second deploy (deployment {}, {}) changed nothing",
                recreated.deployment,
                deploying::steps_done(&recreated),
                recreated.changes,
                second.deployment,
                second.decision.as_str()
            ),
            metrics,
        ))
    }

    /// Starts the service if drydock may and its runtime says stopped (a deployer that
    /// restarts nothing, a recreate that left it down).
    fn start_if_stopped(&self) -> Result<(), EngineError> {
        let runtime = drydock_runtimes::build(self.service, &self.svc().runtime);
        if runtime.can_stop() && runtime.state().ok() == Some(drydock_runtimes::State::Stopped) {
            runtime.start().map_err(EngineError::from)?;
        }
        Ok(())
    }

    /// Step 2: the external checks pass (an app service must have some).
    fn external_checks(&self) -> Outcome {
        let results = health::check_services(self.config, &[self.service.to_string()], None);
        let checks: Vec<_> = results
            .get(self.service)
            .map(|h| {
                h.checks
                    .iter()
                    .filter(|c| EXTERNAL_KINDS.contains(&c.kind.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        if checks.is_empty() {
            return if self.svc().role == Some(Role::App) {
                failed("an app service needs external checks (http/https/dns/oidc in its `health` list) to prove it is reachable")
            } else {
                passed(
                    "no external checks configured (not an app service: nothing is exposed)",
                    json!({ "checks": 0 }),
                )
            };
        }
        let ok = checks
            .iter()
            .filter(|c| c.status == Status::Healthy)
            .count();
        let pct = 100.0 * ok as f64 / checks.len() as f64;
        let failing: Vec<String> = checks
            .iter()
            .filter(|c| c.status != Status::Healthy)
            .map(|c| format!("{} ({}): {}", c.name, c.kind, c.message))
            .collect();
        let metrics = json!({ "checks": checks.len(), "passed": ok, "success_pct": pct });
        if failing.is_empty() {
            passed(
                format!("{ok} of {} external checks pass", checks.len()),
                metrics,
            )
        } else {
            outcome(StepStatus::Failed, failing.join("; "), metrics)
        }
    }

    /// Step 4: every data source has a priority, so a retention and copies.
    fn backup_plan(&self) -> Outcome {
        let config = self.config;
        let mut plan = Vec::new();
        let mut missing = Vec::new();
        for d in &self.svc().data {
            if d.priority() == Priority::None {
                missing.push(format!("{} has priority none (never backed up)", d.name()));
                continue;
            }
            let r = config.retention.rules_for(d.priority());
            plan.push(format!(
                "{} ({}): keep {} daily, {} weekly, {} monthly on {} cop{}",
                d.name(),
                d.priority(),
                r.daily,
                r.weekly,
                r.monthly,
                1 + config.remotes.len(),
                if config.remotes.is_empty() {
                    "y (no [[remote]])"
                } else {
                    "ies"
                }
            ));
        }
        if !missing.is_empty() {
            failed(format!(
                "{}; give each source a priority",
                missing.join("; ")
            ))
        } else if plan.is_empty() {
            passed(
                "no data sources: nothing to back up (stateless)",
                json!({ "sources": 0 }),
            )
        } else {
            passed(
                plan.join("; "),
                json!({ "sources": plan.len(), "copies": 1 + config.remotes.len() }),
            )
        }
    }

    /// Step 5: test data written with the run's seed.
    fn populate(&self) -> Result<Outcome, EngineError> {
        if !self.has_data() {
            return Ok(passed("no data sources to populate", json!({})));
        }
        let seed = self.opts.seed;
        let report = populate::populate(
            self.config,
            &populate::PopulateOptions {
                service: self.service.to_string(),
                seed,
                min_bytes: populate::DEFAULT_MIN_BYTES,
            },
            self.ctx,
        )?;
        let errors: Vec<String> = report
            .sources
            .iter()
            .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.source)))
            .collect();
        let bytes: u64 = report
            .sources
            .iter()
            .map(|s| s.expected.content_bytes)
            .sum();
        Ok(if errors.is_empty() {
            passed(
                format!("seed {seed}: users -> projects -> files in {} source(s), {bytes} bytes of content", report.sources.len()),
                json!({ "seed": seed, "content_bytes": bytes }),
            )
        } else {
            failed(errors.join("; "))
        })
    }

    /// Step 6: a backup taken, stored whole and read back from the local copy.
    fn back_up(&self) -> Result<Outcome, EngineError> {
        if !self.has_data() {
            return Ok(passed("no data sources to back up", json!({})));
        }
        let selection = Selection {
            all: true,
            services: vec![self.service.to_string()],
            priorities: vec![],
        };
        let b = backup::backup(self.config, &selection, self.ctx)?;
        let not_stored: Vec<String> = b
            .sources
            .iter()
            .filter(|s| !s.is_restorable())
            .map(|s| format!("{}: {}", s.label(), s.error.clone().unwrap_or_default()))
            .collect();
        let metrics = json!({
            "backup_id": b.id,
            "logical_bytes": b.sources.iter().map(|s| s.logical_bytes).sum::<u64>(),
            "stored_bytes": b.sources.iter().map(|s| s.stored_bytes).sum::<u64>(),
            "copies": b.copies.iter().map(|c| format!("{}:{}", c.name, c.status.as_str())).collect::<Vec<_>>(),
        });
        Ok(
            if b.recorded && b.local_copy_verified() && not_stored.is_empty() {
                outcome(
                    StepStatus::Passed,
                    format!("backup {} stored and read back", b.id),
                    metrics,
                )
            } else {
                failed(format!(
                    "backup {} is not complete and verified: {}",
                    b.id,
                    not_stored.join("; ")
                ))
            },
        )
    }

    /// Step 7: step 6's backup is recorded verified in the local copy.
    fn baseline(&self, backup_id: Option<String>) -> Result<Outcome, EngineError> {
        let Some(id) = backup_id else {
            return Ok(passed("no data sources: no baseline needed", json!({})));
        };
        let verified = self
            .state
            .copy_records(LOCAL_COPY)?
            .get(&id)
            .is_some_and(|r| r.state == CopyState::Verified);
        Ok(if verified {
            passed(format!("baseline backup {id}"), json!({ "backup_id": id }))
        } else {
            failed(format!("backup {id} is not recorded as verified in the local copy; run `drydock verify` or `certify --restart`"))
        })
    }

    /// Step 8: confirmed, then the service stopped and its data wiped.
    fn wipe(&self, baseline: Option<String>) -> Result<Outcome, EngineError> {
        let Some(id) = baseline else {
            return Ok(passed("no data sources to wipe", json!({})));
        };
        let service = self.service;
        self.confirm_wipe(&id)?;
        // Nothing is wiped after a cancellation.
        self.ctx.check_cancelled()?;
        let (_, catalog) = copies::local_catalog(self.config, self.ctx.events())?;
        let records: Vec<_> = catalog
            .manifest(&id)
            .map(|m| {
                m.manifest
                    .sources
                    .iter()
                    .filter(|r| r.service == service && r.is_restorable())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut steps = Vec::new();
        Ok(
            match stop_and_wipe(
                self.config,
                service,
                &id,
                &records,
                self.state,
                self.ctx.events(),
                &mut steps,
            ) {
                Ok(w) => passed(
                    format!("wiped {} source(s)", records.len()),
                    json!({ "backup_id": id, "failure_point": w.failure_point.to_string(), "steps": steps_json(&steps) }),
                ),
                Err(stopped) => stopped_outcome(stopped)?,
            },
        )
    }

    fn confirm_wipe(&self, id: &str) -> Result<(), EngineError> {
        if self.opts.force {
            return Ok(());
        }
        let service = self.service;
        let what = format!("certify step 8 stops `{service}` and DELETES its data, to restore it from baseline backup {id} in step 9.");
        match self.ctx.confirm(&what) {
            Some(true) => Ok(()),
            Some(false) => Err(EngineError::Refused(
                "not confirmed; nothing was changed".into(),
            )),
            None => Err(EngineError::Refused(format!(
                "{what} Nothing was changed. Re-run on a terminal to confirm, or with --force"
            ))),
        }
    }

    /// Step 9: restored in place, verified (counts, fingerprints, test data), healthy,
    /// RTO and RPO within the targets.
    fn restore(&self, wipe: &Value) -> Result<Outcome, EngineError> {
        let Some(id) = wipe
            .get("backup_id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Ok(passed("no data sources to restore", json!({})));
        };
        let failure_point: Option<Timestamp> = wipe
            .get("failure_point")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok());
        let mut steps = Vec::new();
        let clock = Instant::now();
        let recovered =
            match restore_and_start(self.config, self.service, &id, self.ctx, &mut steps) {
                Ok(r) => r,
                Err(stopped) => return stopped_outcome(stopped),
            };
        let rto_ms = ms(clock.elapsed()).max(recovered.recovered_ms);
        let mut problems = self.test_data_problems(&recovered.restore);
        let rpo_ms = self.rpo_ms(&id, failure_point)?;
        problems.extend(self.missed_targets(rto_ms, rpo_ms));
        let health = recovered.health.as_str();
        let metrics = json!({ "backup_id": id, "rto_ms": rto_ms, "rpo_ms": rpo_ms, "health": health, "steps": steps_json(&steps) });
        Ok(if problems.is_empty() {
            outcome(
                StepStatus::Passed,
                format!("restored from {id}, counts, fingerprints and test data verified, {health}; RTO {rto_ms} ms, RPO {} ms", rpo_ms.unwrap_or(0)),
                metrics,
            )
        } else {
            outcome(StepStatus::Failed, problems.join("; "), metrics)
        })
    }

    /// The restored sources whose test data (step 5's) did not come back.
    fn test_data_problems(&self, restored: &crate::restore::RestoreReport) -> Vec<String> {
        let mut problems = Vec::new();
        for rs in &restored.sources {
            let live = self
                .svc()
                .data
                .iter()
                .find(|d| d.name() == rs.source)
                .map(drydock_sources::build);
            if let Some(check) =
                test_data_check(self.state, self.service, &rs.source, live.as_deref())
            {
                if !check.matched {
                    problems.push(format!(
                        "{}/{} test data: {}",
                        rs.service,
                        rs.source,
                        check.differences.join("; ")
                    ));
                }
            }
        }
        problems
    }

    /// The backup's consistent points to the wipe: the worst over the sources.
    fn rpo_ms(
        &self,
        id: &str,
        failure_point: Option<Timestamp>,
    ) -> Result<Option<u64>, EngineError> {
        let (_, catalog) = copies::local_catalog(self.config, self.ctx.events())?;
        let (Some(m), Some(fp)) = (catalog.manifest(id), failure_point) else {
            return Ok(None);
        };
        Ok(m.manifest
            .sources
            .iter()
            .filter(|r| r.service == self.service)
            .filter_map(|r| r.consistent_at)
            .map(|c| fp.duration_since(c).as_millis().max(0) as u64)
            .max())
    }

    /// RTO and RPO against the targets of the service's most important priority.
    fn missed_targets(&self, rto_ms: u64, rpo_ms: Option<u64>) -> Vec<String> {
        let priority = self
            .svc()
            .data
            .iter()
            .map(|d| d.priority())
            .filter(|p| *p != Priority::None)
            .min()
            .unwrap_or(Priority::Critical);
        let (rto_target, rpo_target) = self.config.drill.targets_for(priority);
        let mut problems = Vec::new();
        if rto_ms > ms(rto_target) {
            problems.push(format!(
                "RTO {} ms is over the target {} ms",
                rto_ms,
                ms(rto_target)
            ));
        }
        if rpo_ms.is_some_and(|r| r > ms(rpo_target)) {
            problems.push(format!(
                "RPO {} ms is over the target {} ms",
                rpo_ms.unwrap_or(0),
                ms(rpo_target)
            ));
        }
        problems
    }
}

/// A wipe or recovery that stopped is a failed step, with how to recover; a cancelled
/// one is not a step's outcome at all.
fn stopped_outcome(stopped: Stopped) -> Result<Outcome, EngineError> {
    if let Some(cancelled) = stopped.cancellation() {
        return Err(cancelled);
    }
    Ok(failed(format!(
        "{}{}",
        stopped.state,
        stopped
            .recover
            .map(|r| format!("; to recover: `{r}`"))
            .unwrap_or_default()
    )))
}

/// Waits up to `wait` for the service's checks to pass (warnings allowed), the
/// external ones too when `external`; the number of them, or what still fails.
fn wait_checks(
    config: &Config,
    service: &str,
    external: bool,
    wait: Duration,
) -> Result<usize, String> {
    let until = Instant::now() + wait;
    loop {
        let results = health::check_services(config, &[service.to_string()], Some(0));
        let checks: Vec<_> = results
            .get(service)
            .map(|h| {
                h.checks
                    .iter()
                    .filter(|c| external || !EXTERNAL_KINDS.contains(&c.kind.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let failing: Vec<String> = checks
            .iter()
            .filter(|c| c.status == Status::Critical)
            .map(|c| format!("{} ({}): {}", c.name, c.kind, c.message))
            .collect();
        if failing.is_empty() {
            return Ok(checks.len());
        }
        if Instant::now() >= until {
            return Err(failing.join("; "));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn steps_json(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| json!({ "name": s.name, "ms": s.ms }))
            .collect(),
    )
}
