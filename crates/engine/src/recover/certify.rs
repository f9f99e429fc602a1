//! `drydock certify SERVICE`: the 9-step readiness routine, automated and resumable.
//! A service is PRODUCTION READY only when every step passed:
//!
//! (1) deployed from scratch and healthy; (2) external checks (HTTP(S)/TLS/DNS/OIDC)
//! pass; (3) destroyed and recreated, healthy again, a second deploy changes nothing;
//! (4) every data source has a backup plan; (5) test data populated; (6) backup taken
//! and verified; (7) baseline backup recorded; (8) wiped; (9) restored and verified
//! (counts, fingerprints, test data) with RTO and RPO within targets.
//!
//! Each step's outcome is kept in the state database; a run resumes at the first step
//! that has not passed, and a failed step stops the routine with its reason. Steps
//! that need deploying (1's "from scratch", 3) say "not available yet" instead of
//! pretending: drydock has no deploy capability yet, so the routine ends INCOMPLETE,
//! never READY, until it does. Step 8 destroys data: it needs the verified baseline
//! of step 6 and a confirmation (typed, or `--force`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::{Config, Role, LOCAL_COPY};
use drydock_domain::plan::Selection;
use drydock_domain::{Event, Priority};
use drydock_health::Status;
use drydock_state::{CertifyStepRecord, CopyState, StateDb};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::destructive::{restore_and_start, stop_and_wipe, test_data_check, Stopped};
use crate::drill::{ms, Step};
use crate::health;
use crate::RunContext;
use crate::{backup, copies, populate, EngineError};

/// The routine's steps, in order: (number, name, what it proves).
pub const STEPS: [(u32, &str, &str); 9] = [
    (1, "deploy", "deployed from scratch and healthy"),
    (
        2,
        "external-checks",
        "external checks (HTTP(S), TLS, DNS, OIDC) pass",
    ),
    (
        3,
        "recreate",
        "destroyed and recreated, healthy again; a second deploy changes nothing",
    ),
    (
        4,
        "backup-plan",
        "every data source has a backup plan (priority, retention)",
    ),
    (
        5,
        "populate",
        "test data populated (3 kinds with relationships, over 1 MB)",
    ),
    (6, "backup", "backup taken and verified"),
    (7, "baseline", "baseline backup recorded"),
    (8, "wipe", "service wiped"),
    (
        9,
        "restore",
        "restored and verified, RTO and RPO within targets",
    ),
];

const EXTERNAL_KINDS: [&str; 4] = ["http", "https", "dns", "oidc"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CertifyOptions {
    pub service: String,
    /// Forget earlier progress and start at step 1.
    pub restart: bool,
    /// Wipe (step 8) without asking.
    pub force: bool,
    /// Test data seed (step 5).
    pub seed: u64,
    /// Where to write FILE.md and FILE.json (default: state_dir/reports/certify-SERVICE-TIME).
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertifyStep {
    pub step: u32,
    pub name: String,
    pub description: String,
    /// `passed`, `failed`, `not-available` (needs a capability drydock does not have
    /// yet), or `pending` (not reached).
    pub status: String,
    pub detail: String,
    /// This run did it (rather than an earlier one).
    pub ran_now: bool,
    pub at: Option<Timestamp>,
    pub metrics: Value,
}

/// The completion report's metrics table.
#[derive(Debug, Clone, Serialize)]
pub struct CertifyMetrics {
    /// Deploy time (needs `drydock deploy`: not available yet).
    pub deploy_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub rto_target_ms: u64,
    pub rpo_ms: Option<u64>,
    pub rpo_target_ms: u64,
    pub backup_logical_bytes: Option<u64>,
    pub backup_stored_bytes: Option<u64>,
    /// Changes on the second deploy (needs `drydock deploy`: not available yet).
    pub idempotency_changes: Option<u64>,
    /// Share of external checks that passed (step 2), in percent.
    pub external_check_success_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertifyReport {
    pub stack: String,
    pub service: String,
    /// `production-ready` (every step passed), `incomplete` (every available step passed,
    /// some are not available yet), or `failed` (a step failed: see `steps`).
    pub verdict: &'static str,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The step this run started at (earlier ones had passed before).
    pub resumed_at: u32,
    pub steps: Vec<CertifyStep>,
    pub metrics: CertifyMetrics,
    pub report_files: Vec<String>,
}

impl CertifyReport {
    /// Ok when production ready, a warning when incomplete (steps not available
    /// yet), else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        match self.verdict {
            "production-ready" => drydock_domain::Verdict::Ok,
            "incomplete" => drydock_domain::Verdict::Warning,
            _ => drydock_domain::Verdict::Failed,
        }
    }
}

/// One step's result before it is recorded.
struct Outcome {
    status: &'static str,
    detail: String,
    metrics: Value,
}

fn passed(detail: impl Into<String>, metrics: Value) -> Outcome {
    Outcome {
        status: "passed",
        detail: detail.into(),
        metrics,
    }
}

fn failed(detail: impl Into<String>) -> Outcome {
    Outcome {
        status: "failed",
        detail: detail.into(),
        metrics: json!({}),
    }
}

fn not_available(detail: impl Into<String>, metrics: Value) -> Outcome {
    Outcome {
        status: "not-available",
        detail: detail.into(),
        metrics,
    }
}

pub fn certify(
    config: &Config,
    opts: &CertifyOptions,
    ctx: &RunContext,
) -> Result<CertifyReport, EngineError> {
    let events = Arc::clone(&ctx.events);
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
    let done = |r: Option<&CertifyStepRecord>| {
        r.is_some_and(|r| r.status == "passed" || r.status == "not-available")
    };
    let resumed_at = STEPS
        .iter()
        .map(|s| s.0)
        .find(|n| !done(recorded.get(n)))
        .unwrap_or(STEPS.len() as u32 + 1);

    let mut ran = Vec::new();
    for &(number, name, _) in STEPS.iter().filter(|s| s.0 >= resumed_at) {
        events.emit(Event::Step {
            message: format!("certify {service}: step {number} ({name})"),
        });
        let outcome = match run_step(config, service, number, opts, &recorded, &state, ctx) {
            Ok(o) => o,
            // A refusal (no confirmation) is not a failed step: it did not run.
            Err(EngineError::Refused(reason)) => {
                return Err(EngineError::Refused(format!(
                    "certify {service} stopped before step {number} ({name}): {reason}"
                )))
            }
            Err(e) => failed(e.to_string()),
        };
        let record = CertifyStepRecord {
            step: number,
            name: name.to_string(),
            status: outcome.status.to_string(),
            detail: outcome.detail,
            metrics: outcome.metrics.to_string(),
            at: Timestamp::now(),
        };
        state.record_certify_step(service, &record)?;
        let stop = record.status == "failed";
        recorded.insert(number, record);
        ran.push(number);
        if stop {
            break;
        }
    }

    let steps: Vec<CertifyStep> = STEPS
        .iter()
        .map(|&(number, name, description)| match recorded.get(&number) {
            Some(r) => CertifyStep {
                step: number,
                name: name.to_string(),
                description: description.to_string(),
                status: r.status.clone(),
                detail: r.detail.clone(),
                ran_now: ran.contains(&number),
                at: Some(r.at),
                metrics: serde_json::from_str(&r.metrics).unwrap_or(Value::Null),
            },
            None => CertifyStep {
                step: number,
                name: name.to_string(),
                description: description.to_string(),
                status: "pending".into(),
                detail: String::new(),
                ran_now: false,
                at: None,
                metrics: Value::Null,
            },
        })
        .collect();
    let verdict = if steps
        .iter()
        .any(|s| s.status == "failed" || s.status == "pending")
    {
        "failed"
    } else if steps.iter().any(|s| s.status == "not-available") {
        "incomplete"
    } else {
        "production-ready"
    };
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
    let metrics = CertifyMetrics {
        deploy_ms: metric(1, "deploy_ms"),
        rto_ms: metric(9, "rto_ms"),
        rto_target_ms: ms(rto_target),
        rpo_ms: metric(9, "rpo_ms"),
        rpo_target_ms: ms(rpo_target),
        backup_logical_bytes: metric(6, "logical_bytes"),
        backup_stored_bytes: metric(6, "stored_bytes"),
        idempotency_changes: metric(3, "changes"),
        external_check_success_pct: steps[1].metrics.get("success_pct").and_then(Value::as_f64),
    };
    let mut report = CertifyReport {
        stack: config.stack.name.clone(),
        service: service.to_string(),
        verdict,
        started_at,
        finished_at: Timestamp::now(),
        resumed_at,
        steps,
        metrics,
        report_files: vec![],
    };
    name_reports(config, opts.report.as_deref(), &mut report);
    Ok(report)
}

fn run_step(
    config: &Config,
    service: &str,
    number: u32,
    opts: &CertifyOptions,
    recorded: &BTreeMap<u32, CertifyStepRecord>,
    state: &StateDb,
    ctx: &RunContext,
) -> Result<Outcome, EngineError> {
    let events = &ctx.events;
    let svc = &config.services[service];
    let metrics_of = |step: u32| -> Value {
        recorded
            .get(&step)
            .and_then(|r| serde_json::from_str(&r.metrics).ok())
            .unwrap_or(Value::Null)
    };
    Ok(match number {
        1 => {
            // Starting what is there is possible; deploying from scratch is not yet.
            let runtime = drydock_runtimes::build(service, &svc.runtime);
            if runtime.can_stop() && runtime.state().ok() == Some(drydock_runtimes::State::Stopped) {
                runtime.start().map_err(EngineError::from)?;
            }
            // Its own checks; the external ones are step 2's.
            let internal = wait_internal_checks(config, service, std::time::Duration::from_secs(60));
            match internal {
                Ok(n) => not_available(
                    format!("running, {n} internal check(s) healthy; deploying it from scratch needs `drydock deploy`, not available yet"),
                    json!({ "internal_checks": n }),
                ),
                Err(failing) => failed(format!("not healthy: {failing} (see `drydock diagnose {service}`)")),
            }
        }
        2 => {
            let results = health::check_services(config, &[service.to_string()], None);
            let checks: Vec<_> = results
                .get(service)
                .map(|h| h.checks.iter().filter(|c| EXTERNAL_KINDS.contains(&c.kind.as_str())).collect())
                .unwrap_or_default();
            if checks.is_empty() {
                if svc.role == Some(Role::App) {
                    failed("an app service needs external checks (http/https/dns/oidc in its `health` list) to prove it is reachable")
                } else {
                    passed("no external checks configured (not an app service: nothing is exposed)", json!({ "checks": 0 }))
                }
            } else {
                let ok = checks.iter().filter(|c| c.status == Status::Healthy).count();
                let pct = 100.0 * ok as f64 / checks.len() as f64;
                let failing: Vec<String> = checks
                    .iter()
                    .filter(|c| c.status != Status::Healthy)
                    .map(|c| format!("{} ({}): {}", c.name, c.kind, c.message))
                    .collect();
                let metrics = json!({ "checks": checks.len(), "passed": ok, "success_pct": pct });
                if failing.is_empty() {
                    passed(format!("{ok} of {} external checks pass", checks.len()), metrics)
                } else {
                    Outcome { status: "failed", detail: failing.join("; "), metrics }
                }
            }
        }
        3 => not_available(
            "destroying and recreating the service and checking that a second deploy changes nothing needs `drydock deploy`, not available yet",
            json!({}),
        ),
        4 => {
            let mut plan = Vec::new();
            let mut missing = Vec::new();
            for d in &svc.data {
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
                    if config.remotes.is_empty() { "y (no [[remote]])" } else { "ies" }
                ));
            }
            if !missing.is_empty() {
                failed(format!("{}; give each source a priority", missing.join("; ")))
            } else if plan.is_empty() {
                passed("no data sources: nothing to back up (stateless)", json!({ "sources": 0 }))
            } else {
                passed(plan.join("; "), json!({ "sources": plan.len(), "copies": 1 + config.remotes.len() }))
            }
        }
        5 => {
            if svc.data.iter().all(|d| d.priority() == Priority::None) {
                return Ok(passed("no data sources to populate", json!({})));
            }
            let report = populate::populate(
                config,
                &populate::PopulateOptions {
                    service: service.to_string(),
                    seed: opts.seed,
                    min_bytes: populate::DEFAULT_MIN_BYTES,
                },
                ctx,
            )?;
            let errors: Vec<String> = report
                .sources
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.source)))
                .collect();
            let bytes: u64 = report.sources.iter().map(|s| s.expected.content_bytes).sum();
            if errors.is_empty() {
                passed(
                    format!("seed {}: users -> projects -> files in {} source(s), {bytes} bytes of content", opts.seed, report.sources.len()),
                    json!({ "seed": opts.seed, "content_bytes": bytes }),
                )
            } else {
                failed(errors.join("; "))
            }
        }
        6 => {
            if svc.data.iter().all(|d| d.priority() == Priority::None) {
                return Ok(passed("no data sources to back up", json!({})));
            }
            let selection = Selection {
                all: true,
                services: vec![service.to_string()],
                priorities: vec![],
            };
            let b = backup::backup(config, &selection, ctx)?;
            let local_ok = b.copies.iter().any(|c| c.name == LOCAL_COPY && c.status == "verified");
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
                "copies": b.copies.iter().map(|c| format!("{}:{}", c.name, c.status)).collect::<Vec<_>>(),
            });
            if b.recorded && local_ok && not_stored.is_empty() {
                Outcome { status: "passed", detail: format!("backup {} stored and read back", b.id), metrics }
            } else {
                failed(format!("backup {} is not complete and verified: {}", b.id, not_stored.join("; ")))
            }
        }
        7 => {
            let Some(id) = metrics_of(6).get("backup_id").and_then(Value::as_str).map(str::to_string) else {
                return Ok(passed("no data sources: no baseline needed", json!({})));
            };
            let verified = state
                .copy_records(LOCAL_COPY)?
                .get(&id)
                .is_some_and(|r| r.state == CopyState::Verified);
            if verified {
                passed(format!("baseline backup {id}"), json!({ "backup_id": id }))
            } else {
                failed(format!("backup {id} is not recorded as verified in the local copy; run `drydock verify` or `certify --restart`"))
            }
        }
        8 => {
            let Some(id) = metrics_of(7).get("backup_id").and_then(Value::as_str).map(str::to_string) else {
                return Ok(passed("no data sources to wipe", json!({})));
            };
            if !opts.force {
                let what = format!("certify step 8 stops `{service}` and DELETES its data, to restore it from baseline backup {id} in step 9.");
                match ctx.confirm(&what) {
                    Some(true) => {}
                    Some(false) => return Err(EngineError::Refused("not confirmed; nothing was changed".into())),
                    None => return Err(EngineError::Refused(format!("{what} Nothing was changed. Re-run on a terminal to confirm, or with --force"))),
                }
            }
            let (_, catalog) = copies::local_catalog(config, events.as_ref())?;
            let records: Vec<_> = catalog
                .manifest(&id)
                .map(|m| m.manifest.sources.iter().filter(|r| r.service == service && r.is_restorable()).cloned().collect())
                .unwrap_or_default();
            let mut steps = Vec::new();
            match stop_and_wipe(config, service, &id, &records, state, events.as_ref(), &mut steps) {
                Ok(w) => passed(
                    format!("wiped {} source(s)", records.len()),
                    json!({ "backup_id": id, "failure_point": w.failure_point.to_string(), "steps": steps_json(&steps) }),
                ),
                Err(Stopped { state: s, recover }) => failed(format!(
                    "{s}{}",
                    recover.map(|r| format!("; to recover: `{r}`")).unwrap_or_default()
                )),
            }
        }
        9 => {
            let wipe = metrics_of(8);
            let Some(id) = wipe.get("backup_id").and_then(Value::as_str).map(str::to_string) else {
                return Ok(passed("no data sources to restore", json!({})));
            };
            let failure_point: Option<Timestamp> = wipe.get("failure_point").and_then(Value::as_str).and_then(|t| t.parse().ok());
            let mut steps = Vec::new();
            let clock = Instant::now();
            let recovered = match restore_and_start(config, service, &id, ctx, &mut steps) {
                Ok(r) => r,
                Err(Stopped { state: s, recover }) => {
                    return Ok(failed(format!(
                        "{s}{}",
                        recover.map(|r| format!("; to recover: `{r}`")).unwrap_or_default()
                    )))
                }
            };
            let rto_ms = ms(clock.elapsed()).max(recovered.recovered_ms);
            let mut problems = Vec::new();
            let mut rpo_ms = None;
            for rs in &recovered.restore.sources {
                let live = svc.data.iter().find(|d| d.name() == rs.source).map(drydock_sources::build);
                if let Some(check) = test_data_check(state, service, &rs.source, live.as_deref()) {
                    if !check.matched {
                        problems.push(format!("{}/{} test data: {}", rs.service, rs.source, check.differences.join("; ")));
                    }
                }
            }
            let (_, catalog) = copies::local_catalog(config, events.as_ref())?;
            if let (Some(m), Some(fp)) = (catalog.manifest(&id), failure_point) {
                rpo_ms = m
                    .manifest
                    .sources
                    .iter()
                    .filter(|r| r.service == service)
                    .filter_map(|r| r.consistent_at)
                    .map(|c| fp.duration_since(c).as_millis().max(0) as u64)
                    .max();
            }
            let priority = svc.data.iter().map(|d| d.priority()).filter(|p| *p != Priority::None).min().unwrap_or(Priority::Critical);
            let (rto_target, rpo_target) = config.drill.targets_for(priority);
            if rto_ms > ms(rto_target) {
                problems.push(format!("RTO {} ms is over the target {} ms", rto_ms, ms(rto_target)));
            }
            if rpo_ms.is_some_and(|r| r > ms(rpo_target)) {
                problems.push(format!("RPO {} ms is over the target {} ms", rpo_ms.unwrap_or(0), ms(rpo_target)));
            }
            let metrics = json!({ "backup_id": id, "rto_ms": rto_ms, "rpo_ms": rpo_ms, "health": recovered.health.as_str(), "steps": steps_json(&steps) });
            if problems.is_empty() {
                Outcome {
                    status: "passed",
                    detail: format!("restored from {id}, counts, fingerprints and test data verified, {}; RTO {rto_ms} ms, RPO {} ms", recovered.health.as_str(), rpo_ms.unwrap_or(0)),
                    metrics,
                }
            } else {
                Outcome { status: "failed", detail: problems.join("; "), metrics }
            }
        }
        _ => unreachable!("certify has nine steps"),
    })
}

/// Waits up to `wait` for the service's checks other than the external ones to pass;
/// the number of them, or what still fails.
fn wait_internal_checks(
    config: &Config,
    service: &str,
    wait: std::time::Duration,
) -> Result<usize, String> {
    let until = Instant::now() + wait;
    loop {
        let results = health::check_services(config, &[service.to_string()], Some(0));
        let checks: Vec<_> = results
            .get(service)
            .map(|h| {
                h.checks
                    .iter()
                    .filter(|c| !EXTERNAL_KINDS.contains(&c.kind.as_str()))
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
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn steps_json(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| json!({ "name": s.name, "ms": s.ms }))
            .collect(),
    )
}

/// Names the report's files; the caller writes them (`drydock_render::report_files`).
fn name_reports(config: &Config, file: Option<&Path>, report: &mut CertifyReport) {
    let name = format!("certify-{}", report.service);
    let base = crate::reports::base(config, file, &name, report.started_at);
    report.report_files = crate::reports::files(&base);
}
