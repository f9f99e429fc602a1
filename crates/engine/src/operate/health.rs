//! `drydock health`: runs every check of the selected services at once and rolls the
//! results up into a status per service and for the stack, in the documented shape
//! (`status`, `services{name: {status, checks[]}}`, `timestamp`), and records the run
//! in the state database.
//!
//! It also reports a clock problem: when the stack's newest backup in the local copy is
//! dated after now (beyond `clock::FUTURE_TOLERANCE`), ages and RPO cannot be trusted,
//! so the run says so in `warnings` and is at least degraded (exit 1).
//!
//! A service without a `health` list is checked by what drydock already knows of it:
//! its `process` runtime, and a check per data source (connect to the database,
//! `quick_check` the SQLite file, free space where the files are).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::health::{CheckSpec, ProcessCheck};
use drydock_domain::config::{Config, HealthCheckConfig, RuntimeConfig, ServiceConfig};
use drydock_domain::{Event, Verdict};
use drydock_health::{CheckContext, CheckResult, Planned, RunPolicy, Status};
use drydock_runtimes::Runtime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EngineError;
use crate::RunContext;

/// A service's (or the stack's) health, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    /// Every check healthy.
    Healthy,
    /// A warning threshold crossed (slow, certificate expiring, disk filling up).
    Degraded,
    /// A check critical: down, failing, wrong.
    Unhealthy,
    /// Not deployed: the runtime knows no such service.
    Missing,
}

impl ServiceStatus {
    /// Healthy ok, degraded a warning, unhealthy failed, missing missing.
    pub fn verdict(self) -> Verdict {
        match self {
            ServiceStatus::Healthy => Verdict::Ok,
            ServiceStatus::Degraded => Verdict::Warning,
            ServiceStatus::Unhealthy => Verdict::Failed,
            ServiceStatus::Missing => Verdict::Missing,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Healthy => "healthy",
            ServiceStatus::Degraded => "degraded",
            ServiceStatus::Unhealthy => "unhealthy",
            ServiceStatus::Missing => "missing",
        }
    }
}

/// What `drydock health` reports.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: ServiceStatus,
    /// The verdict; in JSON the exit code it maps to, as always.
    #[serde(
        rename = "exit_code",
        serialize_with = "drydock_domain::verdict::as_exit_code"
    )]
    pub verdict: Verdict,
    /// When the run started (RFC 3339, UTC).
    pub timestamp: String,
    pub duration_ms: u64,
    pub services: BTreeMap<String, ServiceHealth>,
    /// Problems around the run itself (results not recorded).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceHealth {
    pub status: ServiceStatus,
    /// Whether the checks come from the service's `health` list (or were derived from
    /// its runtime and data).
    pub declared: bool,
    pub checks: Vec<CheckReport>,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub latency_ms: f64,
    pub attempts: u32,
    pub message: String,
    pub details: Map<String, Value>,
}

impl From<CheckResult> for CheckReport {
    fn from(r: CheckResult) -> Self {
        CheckReport {
            name: r.name,
            kind: r.kind,
            status: r.status,
            latency_ms: r.latency_ms,
            attempts: r.attempts,
            message: r.message,
            details: r.details,
        }
    }
}

/// What `health` runs. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct HealthOptions {
    /// Services to check (default: every service).
    pub services: Vec<String>,
    // Record the results in the state database: what `drydock health` and a scheduled
    // run do (`status` and `diagnose` read them); not a command-line flag.
    #[cfg_attr(feature = "clap", arg(skip = true))]
    pub record: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            services: Vec::new(),
            record: true,
        }
    }
}

/// The selected service names, or a refusal naming the unknown one and the choices.
pub(crate) fn select(config: &Config, wanted: &[String]) -> Result<Vec<String>, EngineError> {
    if wanted.is_empty() {
        return Ok(config.services.keys().cloned().collect());
    }
    for name in wanted {
        if !config.services.contains_key(name) {
            let known: Vec<&str> = config.services.keys().map(String::as_str).collect();
            return Err(EngineError::Refused(format!(
                "no service `{name}` in {} (services: {})",
                config.file.display(),
                known.join(", ")
            )));
        }
    }
    let mut names = wanted.to_vec();
    names.dedup();
    Ok(names)
}

/// The checks of a service: its `health` list, or derived from runtime and data.
pub fn checks_of(service: &ServiceConfig) -> (bool, Vec<HealthCheckConfig>) {
    if !service.health.is_empty() {
        return (true, service.health.clone());
    }
    let mut derived = Vec::new();
    if matches!(
        service.runtime,
        RuntimeConfig::Process(_) | RuntimeConfig::Docker(_) | RuntimeConfig::Compose(_)
    ) {
        derived.push(HealthCheckConfig::new(CheckSpec::Process(
            ProcessCheck::default(),
        )));
    }
    for source in &service.data {
        let Some(spec) = source.spec().derived_check() else {
            continue;
        };
        let mut check = HealthCheckConfig::new(spec);
        check.name = source.name().to_string();
        derived.push(check);
    }
    (false, derived)
}

/// The runtime of a service, shared by its checks.
pub(crate) fn runtime_of(name: &str, service: &ServiceConfig) -> Arc<dyn Runtime> {
    Arc::from(drydock_runtimes::build(name, &service.runtime))
}

/// Plans the checks of `services` for the runner (`retries` overrides each check's).
pub(crate) fn plan(
    config: &Config,
    services: &[String],
    retries: Option<u32>,
) -> (BTreeMap<String, bool>, Vec<Planned>) {
    let mut declared = BTreeMap::new();
    let mut planned = Vec::new();
    for name in services {
        let service = &config.services[name];
        let (is_declared, checks) = checks_of(service);
        declared.insert(name.clone(), is_declared);
        let ctx = CheckContext {
            service: name.clone(),
            runtime: runtime_of(name, service),
        };
        for check in checks {
            planned.push(Planned {
                service: name.clone(),
                name: check.name.clone(),
                kind: check.kind(),
                check: drydock_health::build(&check, &ctx),
                timeout: check.timeout,
                retries: retries.unwrap_or(check.retries),
            });
        }
    }
    (declared, planned)
}

/// A service's status from its check results.
pub(crate) fn roll_up(checks: &[CheckReport]) -> ServiceStatus {
    let missing = checks
        .iter()
        .any(|c| c.kind == "process" && c.details.get("missing") == Some(&Value::Bool(true)));
    if missing {
        return ServiceStatus::Missing;
    }
    match checks.iter().map(|c| c.status).max() {
        Some(Status::Critical) => ServiceStatus::Unhealthy,
        Some(Status::Warning) => ServiceStatus::Degraded,
        _ => ServiceStatus::Healthy,
    }
}

/// Runs the checks of `services` once and groups the results by service.
pub(crate) fn check_services(
    config: &Config,
    services: &[String],
    retries: Option<u32>,
) -> BTreeMap<String, ServiceHealth> {
    let (declared, planned) = plan(config, services, retries);
    let mut by_service: BTreeMap<String, Vec<CheckReport>> =
        services.iter().map(|s| (s.clone(), Vec::new())).collect();
    for r in drydock_health::run_all(planned, RunPolicy::default()) {
        by_service
            .entry(r.service.clone())
            .or_default()
            .push(r.into());
    }
    for (service, check) in owed_restores(config) {
        if let Some(checks) = by_service.get_mut(&service) {
            checks.push(check);
        }
    }
    by_service
        .into_iter()
        .map(|(name, checks)| {
            let status = roll_up(&checks);
            (
                name.clone(),
                ServiceHealth {
                    status,
                    declared: declared.get(&name).copied().unwrap_or(false),
                    checks,
                },
            )
        })
        .collect()
}

/// A service owed a restore (an interrupted restore, or a destructive drill's wipe not
/// restored yet) is critical whatever its checks say: its data is not what the backup
/// holds. Read from the state database; a stack without one owes nothing.
fn owed_restores(config: &Config) -> Vec<(String, CheckReport)> {
    if !config
        .stack
        .state_dir
        .join(drydock_state::FILE_NAME)
        .exists()
    {
        return Vec::new();
    }
    let pending = drydock_state::StateDb::open(&config.stack.state_dir)
        .and_then(|state| state.pending_restores());
    let pending = match pending {
        Ok(p) => p,
        Err(e) => {
            return config
                .services
                .keys()
                .map(|s| {
                    (
                        s.clone(),
                        owed_check(
                            Status::Warning,
                            format!("cannot tell whether a restore is owed: {e}"),
                            None,
                        ),
                    )
                })
                .collect()
        }
    };
    pending
        .into_iter()
        .map(|p| {
            let message = format!(
                "restore owed since {}: {}; run `drydock restore {} --service {} --force`",
                p.since.strftime("%Y-%m-%d %H:%M:%S UTC"),
                p.reason,
                p.backup_id,
                p.service
            );
            (
                p.service.clone(),
                owed_check(Status::Critical, message, Some(&p.backup_id)),
            )
        })
        .collect()
}

fn owed_check(status: Status, message: String, backup_id: Option<&str>) -> CheckReport {
    let mut details = Map::new();
    if let Some(id) = backup_id {
        details.insert("backup_id".into(), Value::String(id.to_string()));
    }
    CheckReport {
        name: "restore-owed".into(),
        kind: "restore".into(),
        status,
        latency_ms: 0.0,
        attempts: 1,
        message,
        details,
    }
}

/// Runs `drydock health`.
pub fn health(
    config: &Config,
    opts: &HealthOptions,
    ctx: &RunContext,
) -> Result<HealthReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let services = select(config, &opts.services)?;
    let timestamp = jiff::Timestamp::now();
    let began = Instant::now();
    events.emit(Event::Step {
        message: format!("checking {} service(s)", services.len()),
    });
    let results = check_services(config, &services, None);
    let status = results
        .values()
        .map(|s| s.status)
        .max()
        .unwrap_or(ServiceStatus::Healthy);
    let mut report = HealthReport {
        status,
        verdict: status.verdict(),
        timestamp: timestamp
            .round(jiff::Unit::Second)
            .unwrap_or(timestamp)
            .to_string(),
        duration_ms: began.elapsed().as_millis() as u64,
        services: results,
        warnings: Vec::new(),
    };
    for (name, svc) in &report.services {
        for c in svc.checks.iter().filter(|c| c.status != Status::Healthy) {
            tracing::info!(service = %name, check = %c.name, status = %c.status, "{}", c.message);
        }
    }
    if let Some(problem) = clock_problem(config) {
        events.emit(Event::Warning {
            message: problem.clone(),
        });
        report.warnings.push(problem);
        report.status = report.status.max(ServiceStatus::Degraded);
        report.verdict = report.status.verdict();
    }
    if opts.record {
        if let Err(e) = record(config, &report) {
            report.warnings.push(format!("results not recorded: {e}"));
            events.emit(Event::Warning {
                message: format!("health results not recorded: {e}"),
            });
        }
    }
    Ok(report)
}

/// The stack's newest local backup, when it is dated after now (see the module doc).
fn clock_problem(config: &Config) -> Option<String> {
    if !config.repository.path.join("config").exists() {
        return None;
    }
    let (_, catalog) = crate::copies::local_catalog(config, &drydock_domain::NoEvents).ok()?;
    let newest = catalog.newest()?;
    let now = drydock_domain::clock::now();
    drydock_domain::clock::is_future(newest.started_at, now).then(|| {
        format!(
            "clock problem: the newest backup {} is dated {}, after now ({now}): the clock is wrong now or was when it was taken, so backup ages and the RPO cannot be trusted and the RPO may be breached; fix the clock (`timedatectl`, NTP) and run `drydock backup`",
            newest.id, newest.started_at
        )
    })
}

fn record(config: &Config, report: &HealthReport) -> Result<i64, drydock_state::StateError> {
    use drydock_state::health::{CheckRecord, HealthRun, ServiceHealth as Recorded};
    let run = HealthRun {
        at: report.timestamp.clone(),
        status: report.status.as_str().to_string(),
        exit_code: i32::from(report.verdict.exit_code()),
        duration_ms: report.duration_ms,
        services: report
            .services
            .iter()
            .map(|(name, s)| Recorded {
                service: name.clone(),
                status: s.status.as_str().to_string(),
                checks: s
                    .checks
                    .iter()
                    .map(|c| CheckRecord {
                        name: c.name.clone(),
                        kind: c.kind.clone(),
                        status: c.status.as_str().to_string(),
                        latency_ms: c.latency_ms,
                        attempts: c.attempts,
                        message: c.message.clone(),
                        details: Value::Object(c.details.clone()),
                    })
                    .collect(),
            })
            .collect(),
    };
    drydock_state::StateDb::open(&config.stack.state_dir)?.record_health(&run)
}

/// Polls the checks of `service` (no retries) until none is critical, `wait` passes,
/// or `gave_up` says to stop (the process died). Returns the last results.
pub(crate) fn wait_healthy(
    config: &Config,
    service: &str,
    wait: Duration,
    mut gave_up: impl FnMut() -> Option<String>,
) -> (ServiceHealth, Option<String>) {
    let until = Instant::now() + wait;
    loop {
        let mut results = check_services(config, &[service.to_string()], Some(0));
        let health = results.remove(service).expect("the service was checked");
        if health.status <= ServiceStatus::Degraded {
            return (health, None);
        }
        if let Some(reason) = gave_up() {
            return (health, Some(reason));
        }
        if Instant::now() >= until {
            return (health, None);
        }
        std::thread::sleep(
            Duration::from_millis(300).min(until.saturating_duration_since(Instant::now())),
        );
    }
}

impl HealthReport {
    /// The verdict (also in the JSON, as `exit_code`).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_without_checks_get_them_from_runtime_and_data() {
        let text = r#"
[stack]
name = "t"
state_dir = "state"
[repository]
path = "repo"
password = "${env:DRYDOCK_TEST_HEALTH_PW}"
[services.app]
runtime = { kind = "process", start = "true", stop = "true", status = "true" }
data = [
  { kind = "postgres", priority = "critical", url = "postgres://app@127.0.0.1:5432/app" },
  { kind = "redis", name = "cache", priority = "low", url = "redis://127.0.0.1:6379" },
  { kind = "sqlite", priority = "high", path = "app.db" },
  { kind = "files", name = "uploads", priority = "medium", path = "uploads" },
]
[services.web]
runtime = { kind = "external" }
health = [{ kind = "tcp", address = "127.0.0.1:80" }]
"#;
        std::env::set_var("DRYDOCK_TEST_HEALTH_PW", "x");
        let config = Config::from_text(std::path::Path::new("/srv/drydock.toml"), text).unwrap();
        let (declared, checks) = checks_of(&config.services["app"]);
        assert!(!declared);
        let got: Vec<(&str, &str)> = checks.iter().map(|c| (c.name.as_str(), c.kind())).collect();
        assert_eq!(
            got,
            [
                ("process", "process"),
                ("postgres", "postgres"),
                ("cache", "redis"),
                ("sqlite", "sqlite"),
                ("uploads", "disk")
            ]
        );
        let (declared, checks) = checks_of(&config.services["web"]);
        assert!(declared);
        assert_eq!(checks.len(), 1);
    }

    #[test]
    fn the_worst_check_decides_and_missing_beats_everything() {
        let check = |kind: &str, status: Status, missing: bool| {
            let mut details = Map::new();
            if missing {
                details.insert("missing".into(), Value::Bool(true));
            }
            CheckReport {
                name: kind.into(),
                kind: kind.into(),
                status,
                latency_ms: 0.0,
                attempts: 1,
                message: String::new(),
                details,
            }
        };
        assert_eq!(roll_up(&[]), ServiceStatus::Healthy);
        let warn = check("disk", Status::Warning, false);
        assert_eq!(
            roll_up(&[check("tcp", Status::Healthy, false), warn.clone()]),
            ServiceStatus::Degraded
        );
        assert_eq!(
            roll_up(&[check("tcp", Status::Critical, false), warn]),
            ServiceStatus::Unhealthy
        );
        assert_eq!(
            roll_up(&[
                check("process", Status::Critical, true),
                check("tcp", Status::Critical, false)
            ]),
            ServiceStatus::Missing
        );
        // A missing data file is not a missing service.
        assert_eq!(
            roll_up(&[check("sqlite", Status::Critical, true)]),
            ServiceStatus::Unhealthy
        );
        assert_eq!(ServiceStatus::Missing.verdict().exit_code(), 3);
    }
}
