//! `drydock diagnose`: for each service that is not healthy (or that was named), what
//! an operator would gather by hand: the runtime's view, the last log lines (secrets
//! redacted), CPU and memory of its processes, disk of its data paths, who listens on
//! its ports (and conflicts: a port held by another process, with its PID), and the
//! known failure patterns matched against logs, check results and state, each an
//! issue with severity, evidence and a suggested fix. The JSON has the documented
//! diagnose shape (README) (`timestamp`, `issues[]`, `resource_usage`, `logs`) plus per-service
//! detail and a readable `summary`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::config::Config;
use drydock_domain::{Event, Verdict};
use drydock_health::Status;
use drydock_runtimes::procinfo::{self, Listener};
use drydock_runtimes::{Details, Runtime, State};
use serde::{Deserialize, Serialize};

mod report;
mod resources;

pub(crate) use report::start_it_yourself;
use report::Findings;
pub use report::{
    DiagnoseReport, DiskUsage, HostUsage, Issue, PortReport, Resources, RuntimeView,
    ServiceDiagnosis,
};

use resources::{data_paths, disk_report, host_usage, port_report};

// `Severity` has always been named from here.
pub use super::failure_patterns::Severity;
use super::failure_patterns::{compiled, PATTERNS};
use crate::health::{self, ServiceHealth, ServiceStatus};
use crate::redact::Redactor;
use crate::EngineError;
use crate::RunContext;

/// What `diagnose` looks at. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct DiagnoseOptions {
    /// Services to diagnose (default: every service that is not healthy).
    // Named services are diagnosed even when healthy.
    pub services: Vec<String>,
    /// Log lines to show per service.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 100))]
    pub lines: usize,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            services: Vec::new(),
            lines: 100,
        }
    }
}

/// Runs `drydock diagnose`.
pub fn diagnose(
    config: &Config,
    opts: &DiagnoseOptions,
    ctx: &RunContext,
) -> Result<DiagnoseReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let selected = health::select(config, &opts.services)?;
    let timestamp = jiff::Timestamp::now();
    events.emit(Event::Step {
        message: "checking health".into(),
    });
    let health = health::check_services(config, &selected, None);
    let explicit = !opts.services.is_empty();
    let targets: Vec<String> = health
        .iter()
        .filter(|(_, h)| explicit || h.status != ServiceStatus::Healthy)
        .map(|(name, _)| name.clone())
        .collect();
    let redactor = Redactor::new(config);
    let listeners = procinfo::listeners();
    let mut report = DiagnoseReport {
        timestamp: timestamp
            .round(jiff::Unit::Second)
            .unwrap_or(timestamp)
            .to_string(),
        status: health
            .values()
            .map(|h| h.status)
            .max()
            .unwrap_or(ServiceStatus::Healthy),
        verdict: Verdict::Ok,
        summary: String::new(),
        issues: Vec::new(),
        resource_usage: host_usage(config),
        logs: BTreeMap::new(),
        services: BTreeMap::new(),
    };
    // Services are looked at one after another; each samples CPU for a moment.
    for name in &targets {
        events.emit(Event::Step {
            message: format!("diagnosing {name}"),
        });
        let (diagnosis, lines, findings) = diagnose_service(
            config,
            name,
            &health[name],
            opts.lines,
            &redactor,
            &listeners,
        );
        report.logs.insert(name.clone(), lines);
        report.issues.extend(findings);
        report.services.insert(name.clone(), diagnosis);
    }
    report
        .issues
        .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.service.cmp(&b.service)));
    let worst_issue = report.issues.iter().map(|i| i.severity).max();
    report.verdict = match worst_issue {
        Some(Severity::Critical) => Verdict::Failed,
        Some(Severity::Warning) => Verdict::Warning,
        // A missing service with no finding is as bad as a critical one here.
        _ => match report.status.verdict() {
            Verdict::Missing => Verdict::Failed,
            v => v,
        },
    };
    report.summary = summary(&report, &health);
    Ok(report)
}

fn diagnose_service(
    config: &Config,
    name: &str,
    health: &ServiceHealth,
    lines: usize,
    redactor: &Redactor,
    listeners: &[Listener],
) -> (ServiceDiagnosis, Vec<String>, Vec<Issue>) {
    let service = &config.services[name];
    let runtime = health::runtime_of(name, service);
    let mut findings = Findings {
        service: name.to_string(),
        runtime: runtime.kind().to_string(),
        ..Findings::default()
    };
    let (details, runtime_error) = match runtime.details() {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(redactor.line(&e.to_string()))),
    };
    let (log_source, log_lines) = read_log(runtime.as_ref(), lines, redactor);

    find_in_log(&mut findings, &log_lines);
    find_in_checks(&mut findings, health, redactor);
    let pids = details
        .as_ref()
        .map(|d| procinfo::tree(&d.pids))
        .unwrap_or_default();
    // A `none` runtime never runs anything: "stopped" is its normal state.
    if let Some(d) = details.as_ref().filter(|_| runtime.kind() != "none") {
        find_in_runtime_state(&mut findings, runtime.kind(), d, &log_lines);
    }
    if let Some(evidence) = failed_heals(config, name) {
        findings.add(
            "crash_loop",
            "Crash loop",
            Severity::Critical,
            evidence,
            "Starting it again will not help: fix the cause the log names (configuration, port, disk, data), or recreate the service and restore its data from the latest verified backup",
        );
    }
    if let Some(e) = &runtime_error {
        findings.add(
            "runtime_error",
            "Runtime cannot be asked",
            Severity::Warning,
            e.clone(),
            "Check the runtime's status command and permissions",
        );
    }
    let stopped = details
        .as_ref()
        .is_some_and(|d| matches!(d.state, State::Stopped | State::Missing));
    let ports = port_report(&mut findings, config, name, listeners, &pids, stopped);
    let disks = disk_report(
        &mut findings,
        data_paths(config, name, runtime.data_paths()),
    );
    let usage = (!pids.is_empty()).then(|| procinfo::usage(&pids, Duration::from_millis(200)));
    let resources = Resources {
        processes: usage.as_ref().map_or(0, |u| u.processes),
        pids: pids.clone(),
        cpu_pct: usage.as_ref().map(|u| u.cpu_pct),
        memory_bytes: usage.as_ref().map(|u| u.memory_bytes),
        disks,
    };
    demote_refused_when_cause_known(&mut findings);
    let uptime_secs = details.as_ref().and_then(Details::uptime_secs);
    let diagnosis = ServiceDiagnosis {
        status: health.status,
        runtime: RuntimeView {
            kind: runtime.kind().to_string(),
            details,
            uptime_secs,
            error: runtime_error,
        },
        checks: health.checks.clone(),
        log_source,
        resources,
        ports,
    };
    (diagnosis, log_lines, findings.issues)
}

/// The service's log tail (redacted) and where it came from; a log that cannot be read
/// is one line saying why.
fn read_log(
    runtime: &dyn Runtime,
    lines: usize,
    redactor: &Redactor,
) -> (Option<String>, Vec<String>) {
    match runtime.logs(lines) {
        Ok(Some(tail)) => (
            Some(tail.source),
            tail.lines.iter().map(|l| redactor.line(l)).collect(),
        ),
        Ok(None) => (None, Vec::new()),
        Err(e) => (
            None,
            vec![format!(
                "(cannot read the log: {})",
                redactor.line(&e.to_string())
            )],
        ),
    }
}

/// Known failure patterns in the log: the newest line of each is the best evidence.
fn find_in_log(findings: &mut Findings, log_lines: &[String]) {
    for (p, re) in compiled() {
        let hits: Vec<&String> = log_lines
            .iter()
            .rev()
            .filter(|l| re.is_match(l))
            .take(3)
            .collect();
        for line in hits {
            findings.pattern(p, format!("log: {line}"));
        }
    }
}

/// Failing checks: a known pattern in the message, else a generic issue.
fn find_in_checks(findings: &mut Findings, health: &ServiceHealth, redactor: &Redactor) {
    // `process` checks repeat the runtime's state, reported by find_in_runtime_state.
    for c in health
        .checks
        .iter()
        .filter(|c| c.status != Status::Healthy && c.kind != "process")
    {
        let text = format!(
            "check `{}` ({}): {}",
            c.name,
            c.kind,
            redactor.line(&c.message)
        );
        let matched = compiled().iter().find(|(_, re)| re.is_match(&c.message));
        match matched {
            Some((p, _)) => findings.pattern(p, text),
            None => {
                let (id, title, severity) = match c.status {
                    Status::Critical => ("check_failed", "Check failing", Severity::Critical),
                    _ => (
                        "check_warning",
                        "Check above a warning threshold",
                        Severity::Warning,
                    ),
                };
                findings.add(id, title, severity, text, "See the check's message and details; `drydock health --json` shows every value");
            }
        }
    }
}

/// What the runtime says: stopped, not deployed, killed for memory, restarting, notes.
fn find_in_runtime_state(
    findings: &mut Findings,
    runtime_kind: &str,
    d: &Details,
    log_lines: &[String],
) {
    match d.state {
        State::Stopped => {
            let fix =
                "Start it (`drydock heal` does, with retries); if it stops again, the log says why";
            findings.add(
                "not_running",
                "Service is not running",
                Severity::Critical,
                format!(
                    "runtime {runtime_kind}: stopped{}",
                    d.exit_code
                        .map(|c| format!(" (exit code {c})"))
                        .unwrap_or_default()
                ),
                fix,
            );
            for note in &d.notes {
                findings.add("not_running", "", Severity::Critical, note.clone(), fix);
            }
            if let Some(last) = log_lines.iter().rev().find(|l| !l.trim().is_empty()) {
                findings.add(
                    "not_running",
                    "",
                    Severity::Critical,
                    format!("last log line: {last}"),
                    fix,
                );
            }
        }
        State::Missing => findings.add(
            "not_deployed",
            "Service is not deployed",
            Severity::Critical,
            format!("runtime {runtime_kind}: no such service"),
            "Deploy the service, then restore its data from the latest verified backup",
        ),
        _ => {}
    }
    if d.oom_killed == Some(true) {
        let p = &PATTERNS[0];
        findings.pattern(
            p,
            "runtime: the last run was killed for lack of memory".into(),
        );
    }
    if let Some(n) = d.restart_count.filter(|n| *n >= 3) {
        findings.add(
            "crash_loop",
            "Crash loop",
            Severity::Critical,
            format!("runtime {runtime_kind}: restarted {n} times"),
            "Read the log lines above for the cause of each crash; restarting again will not help until it is fixed",
        );
    }
    for note in d.notes.iter().filter(|_| d.state != State::Stopped) {
        findings.add(
            "runtime_note",
            "Runtime reports a problem",
            Severity::Warning,
            note.clone(),
            "See the note; a stale PID file is removed when the service starts cleanly",
        );
    }
}

/// The bare "connection refused" adds nothing when the cause is already known: it
/// becomes information.
fn demote_refused_when_cause_known(findings: &mut Findings) {
    let has_cause = findings.issues.iter().any(|i| {
        matches!(
            i.pattern.as_str(),
            "not_running"
                | "port_in_use"
                | "configuration_error"
                | "data_corrupted"
                | "disk_full"
                | "not_deployed"
        )
    });
    if has_cause {
        if let Some(i) = findings
            .issues
            .iter_mut()
            .find(|i| i.pattern == "connection_refused")
        {
            i.severity = Severity::Info;
        }
    }
}

/// Three or more failed `heal` attempts in the last hour, with none succeeding after
/// them: the service does not stay up however often it is started.
fn failed_heals(config: &Config, service: &str) -> Option<String> {
    // Only read an existing database: diagnosing must not create drydock's state.
    if !config
        .stack
        .state_dir
        .join(drydock_state::FILE_NAME)
        .is_file()
    {
        return None;
    }
    let db = drydock_state::StateDb::open(&config.stack.state_dir).ok()?;
    let since = jiff::Timestamp::now().as_millisecond() - 3_600_000;
    let attempts = db.heal_attempts_since(service, since).ok()?;
    let failed: Vec<_> = attempts.iter().rev().take_while(|a| !a.ok).collect();
    let last = failed.first()?;
    (failed.len() >= 3).then(|| {
        format!(
            "heal: {} failed {} attempts in the last hour (last at {}: {})",
            failed.len(),
            last.action,
            last.at,
            last.message
        )
    })
}

fn summary(report: &DiagnoseReport, health: &BTreeMap<String, ServiceHealth>) -> String {
    if report.services.is_empty() {
        return format!(
            "all {} service(s) healthy; nothing to diagnose",
            health.len()
        );
    }
    let mut parts = Vec::new();
    for (name, d) in &report.services {
        let issues: Vec<&Issue> = report
            .issues
            .iter()
            .filter(|i| &i.service == name && i.severity != Severity::Info)
            .collect();
        if issues.is_empty() {
            parts.push(format!(
                "{name} is {}: no known failure pattern found",
                d.status.as_str()
            ));
        } else {
            let list: Vec<String> = issues.iter().map(|i| i.issue.to_lowercase()).collect();
            parts.push(format!(
                "{name} is {}: {}",
                d.status.as_str(),
                list.join(", ")
            ));
        }
    }
    parts.join("; ")
}

impl DiagnoseReport {
    /// The verdict (also in the JSON, as `exit_code`).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_matches_the_lines_real_servers_print() {
        let samples = [
            ("out_of_memory", "2026-01-01 FATAL:  out of memory"),
            ("disk_full", "PANIC:  could not write to file \"pg_wal/xlogtemp.123\": No space left on device"),
            ("port_in_use", "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"),
            ("port_in_use", "# Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use"),
            ("permission_denied", "FATAL:  data directory \"/var/lib/pg\" has invalid permissions"),
            ("authentication_failed", "FATAL:  password authentication failed for user \"app\""),
            ("too_many_connections", "FATAL:  sorry, too many clients already"),
            ("data_corrupted", "FATAL:  \"/srv/pg\" is not a valid data directory; does not appear to be a PostgreSQL database cluster"),
            ("configuration_error", "FATAL:  configuration file \"/srv/pg/postgresql.conf\" contains errors"),
            ("connection_refused", "connection refused at 127.0.0.1:5432 (nothing listens there)"),
        ];
        for (id, line) in samples {
            let hit = compiled()
                .iter()
                .find(|(_, re)| re.is_match(line))
                .map(|(p, _)| p.id);
            if id == "permission_denied" {
                // PostgreSQL's wording differs from the generic one; it is caught by the
                // "has group or world access" line that follows it.
                assert!(compiled().iter().any(|(p, re)| p.id == id && re.is_match("DETAIL:  Permissions should be u=rwx (0700). has group or world access")));
                continue;
            }
            assert_eq!(hit, Some(id), "{line}");
        }
    }
}
