//! `drydock certify SERVICE`: the 9-step readiness routine, automated and resumable.
//! A service is PRODUCTION READY only when every step passed:
//!
//! (1) deployed from scratch and healthy; (2) external checks (HTTP(S)/TLS/DNS/OIDC)
//! pass; (3) destroyed and recreated, healthy again, a second deploy changes nothing;
//! (4) every data source has a backup plan; (5) test data populated; (6) backup taken
//! and verified; (7) baseline backup recorded; (8) wiped; (9) restored and verified
//! (counts, fingerprints, test data) with RTO and RPO within targets.
//!
//! Steps 1 and 3 drive `drydock deploy` for the one service at HEAD (`deploying.rs`):
//! step 1 deploys it told it changed (an app service through its `deploy = { kind }`,
//! with the pre-deploy backup of its data; infrastructure recreated by its runtime
//! after a proven backup, its data compared with that backup) and waits for its own
//! checks; step 3 destroys it (an app: its runtime stopped and its live version taken
//! away, `deploy::take_down`; infrastructure: its runtime's `recreate`, which stops it
//! and puts it back from its definition), deploys it again, waits for every check, and
//! then runs a plain deploy, which must change nothing (`changes: 0`; otherwise the
//! step fails naming what changed). The config's folder must be a git repository:
//! step 3 checks change detection before destroying anything. A service drydock
//! cannot deploy (an app without `deploy`; infrastructure it cannot recreate: an
//! `external` one, which a deployment leaves to its operator, or a bare `docker`
//! container) fails step 1 saying what to add: it cannot be shown production ready,
//! and `drydock drill` proves its backups alone.
//!
//! Each step's outcome is kept in the state database; a run resumes at the first step
//! that has not passed, and a failed step stops the routine with its reason (a step an
//! older drydock recorded "not available" runs again). Step 8 destroys data: it needs
//! the verified baseline of step 6 and a confirmation (typed, or `--force`).
//!
//! [`certify`] reads as its steps: select the service and find where to resume, run
//! the steps from there (`steps.rs`, one function each), and report. A safe point
//! before each step and inside the wipe and restore: a cancelled run records nothing
//! for the step it was in (it runs again next time) and returns
//! [`EngineError::Cancelled`]; a restore cancelled after the wipe leaves the service's
//! owed restore, which `status` shows.

mod deploying;
mod report;
mod steps;

pub use report::*;

use std::collections::BTreeMap;
use std::path::Path;

use drydock_domain::config::Config;
use drydock_domain::{Event, Priority};
use drydock_state::{CertifyStepRecord, StateDb};
use jiff::Timestamp;
use serde_json::Value;

use crate::drill::ms;
use crate::health;
use crate::EngineError;
use crate::RunContext;
use steps::{failed, Certify};

pub fn certify(
    config: &Config,
    opts: &CertifyOptions,
    ctx: &RunContext,
) -> Result<CertifyReport, EngineError> {
    let started_at = Timestamp::now();
    let service = opts.service.as_str();
    health::select(config, &[service.to_string()])?;
    let state = StateDb::open(&config.stack.state_dir)?;
    if opts.restart {
        state.reset_certify(service)?;
    }
    let mut recorded: BTreeMap<u32, CertifyStepRecord> = state
        .certify_steps(service)?
        .into_iter()
        .map(|r| (r.step, r))
        .collect();
    let resumed_at = resume_point(&recorded);
    let run = Certify {
        config,
        service,
        opts,
        state: &state,
        ctx,
    };
    let ran = run_steps(&run, resumed_at, &mut recorded)?;
    let steps = step_list(&recorded, &ran);
    let mut report = CertifyReport {
        stack: config.stack.name.clone(),
        service: service.to_string(),
        readiness: readiness(&steps),
        started_at,
        finished_at: Timestamp::now(),
        resumed_at,
        metrics: metrics(config, service, &steps),
        steps,
        report_files: vec![],
    };
    name_reports(config, opts.report.as_deref(), &mut report);
    Ok(report)
}

/// The first step that has not passed.
fn resume_point(recorded: &BTreeMap<u32, CertifyStepRecord>) -> u32 {
    let done = |r: Option<&CertifyStepRecord>| {
        r.is_some_and(|r| StepStatus::from_stored(&r.status) == StepStatus::Passed)
    };
    STEPS
        .iter()
        .map(|s| s.0)
        .find(|n| !done(recorded.get(n)))
        .unwrap_or(STEPS.len() as u32 + 1)
}

/// Runs the steps from `resumed_at` on, recording each outcome, until one fails; the
/// numbers of those that ran. A safe point before each.
fn run_steps(
    run: &Certify<'_>,
    resumed_at: u32,
    recorded: &mut BTreeMap<u32, CertifyStepRecord>,
) -> Result<Vec<u32>, EngineError> {
    let service = run.service;
    let mut ran = Vec::new();
    for &(number, name, _) in STEPS.iter().filter(|s| s.0 >= resumed_at) {
        run.ctx.check_cancelled()?;
        run.ctx.events().emit(Event::Step {
            message: format!("certify {service}: step {number} ({name})"),
        });
        let outcome = match run.run_step(number, recorded) {
            Ok(o) => o,
            // A refusal (no confirmation) is not a failed step: it did not run.
            Err(EngineError::Refused(reason)) => {
                return Err(EngineError::Refused(format!(
                    "certify {service} stopped before step {number} ({name}): {reason}"
                )))
            }
            // Nor is a cancellation, nor a deployment running (steps 1 and 3 deploy):
            // the step runs again next time.
            Err(e @ (EngineError::Cancelled { .. } | EngineError::DeployLocked { .. })) => {
                return Err(e)
            }
            Err(e) => failed(e.to_string()),
        };
        let record = CertifyStepRecord {
            step: number,
            name: name.to_string(),
            status: outcome.status.as_str().to_string(),
            detail: outcome.detail,
            metrics: outcome.metrics.to_string(),
            at: Timestamp::now(),
        };
        run.state.record_certify_step(service, &record)?;
        recorded.insert(number, record);
        ran.push(number);
        if outcome.status == StepStatus::Failed {
            break;
        }
    }
    Ok(ran)
}

/// Every step, as recorded (now or by an earlier run) or pending.
fn step_list(recorded: &BTreeMap<u32, CertifyStepRecord>, ran: &[u32]) -> Vec<CertifyStep> {
    STEPS
        .iter()
        .map(|&(number, name, description)| match recorded.get(&number) {
            Some(r) => CertifyStep {
                step: number,
                name: name.to_string(),
                description: description.to_string(),
                status: StepStatus::from_stored(&r.status),
                detail: r.detail.clone(),
                ran_now: ran.contains(&number),
                at: Some(r.at),
                metrics: serde_json::from_str(&r.metrics).unwrap_or(Value::Null),
            },
            None => CertifyStep {
                step: number,
                name: name.to_string(),
                description: description.to_string(),
                status: StepStatus::Pending,
                detail: String::new(),
                ran_now: false,
                at: None,
                metrics: Value::Null,
            },
        })
        .collect()
}

/// Production ready when every step passed; else failed.
fn readiness(steps: &[CertifyStep]) -> Readiness {
    if steps.iter().all(|s| s.status == StepStatus::Passed) {
        Readiness::ProductionReady
    } else {
        Readiness::Failed
    }
}

/// The completion report's figures, from the steps' metrics and the targets of the
/// service's most important priority.
fn metrics(config: &Config, service: &str, steps: &[CertifyStep]) -> CertifyMetrics {
    let metric = |step: u32, key: &str| {
        steps[step as usize - 1]
            .metrics
            .get(key)
            .and_then(Value::as_u64)
    };
    let priority = config.services[service]
        .data
        .iter()
        .map(|d| d.priority())
        .filter(|p| *p != Priority::None)
        .min()
        .unwrap_or(Priority::Critical);
    let (rto_target, rpo_target) = config.drill.targets_for(priority);
    CertifyMetrics {
        deploy_ms: metric(1, "deploy_ms"),
        rto_ms: metric(9, "rto_ms"),
        rto_target_ms: ms(rto_target),
        rpo_ms: metric(9, "rpo_ms"),
        rpo_target_ms: ms(rpo_target),
        backup_logical_bytes: metric(6, "logical_bytes"),
        backup_stored_bytes: metric(6, "stored_bytes"),
        idempotency_changes: metric(3, "changes"),
        external_check_success_pct: steps[1].metrics.get("success_pct").and_then(Value::as_f64),
    }
}

/// Names the report's files; the caller writes them (`drydock_render::report_files`).
fn name_reports(config: &Config, file: Option<&Path>, report: &mut CertifyReport) {
    let name = format!("certify-{}", report.service);
    let base = crate::reports::base(config, file, &name, report.started_at);
    report.report_files = crate::reports::files(&base);
}
