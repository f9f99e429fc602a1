//! What diagnose reports (the documented JSON shape) and the findings it gathers per
//! service on the way: one issue per known pattern, evidence appended.

use std::collections::BTreeMap;

use drydock_domain::Verdict;
use drydock_runtimes::Details;
use serde::Serialize;

use super::super::failure_patterns::{Pattern, Severity};
use crate::health::{CheckReport, ServiceStatus};

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    pub service: String,
    pub severity: Severity,
    /// Stable id of the pattern: `out_of_memory`, `disk_full`, `port_in_use`, ...
    pub pattern: String,
    /// What is wrong, in a few words.
    pub issue: String,
    /// The first piece of evidence, as a sentence.
    pub details: String,
    /// Every line or fact that shows it (log lines redacted).
    pub evidence: Vec<String>,
    pub suggested_fix: String,
}

/// Host-wide usage, as the diagnose JSON shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HostUsage {
    pub cpu: String,
    pub memory: String,
    pub disk: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    pub path: String,
    pub exists: bool,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub free_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub processes: usize,
    pub pids: Vec<u32>,
    pub cpu_pct: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub disks: Vec<DiskUsage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortReport {
    pub host: String,
    pub port: u16,
    pub listening: bool,
    pub pid: Option<u32>,
    pub command: Option<String>,
    /// Whether the listener is one of the service's processes (`None`: cannot tell).
    pub owned_by_service: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceDiagnosis {
    pub status: ServiceStatus,
    pub runtime: RuntimeView,
    pub checks: Vec<CheckReport>,
    pub log_source: Option<String>,
    pub resources: Resources,
    pub ports: Vec<PortReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeView {
    pub kind: String,
    #[serde(flatten)]
    pub details: Option<Details>,
    pub uptime_secs: Option<u64>,
    pub error: Option<String>,
}

/// What `drydock diagnose` reports.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnoseReport {
    pub timestamp: String,
    pub status: ServiceStatus,
    /// The verdict; in JSON the exit code it maps to, as always.
    #[serde(
        rename = "exit_code",
        serialize_with = "drydock_domain::verdict::as_exit_code"
    )]
    pub verdict: Verdict,
    pub summary: String,
    pub issues: Vec<Issue>,
    pub resource_usage: HostUsage,
    pub logs: BTreeMap<String, Vec<String>>,
    pub services: BTreeMap<String, ServiceDiagnosis>,
}

/// Issues of one service, one per pattern, evidence appended.
#[derive(Default)]
pub(super) struct Findings {
    pub(super) service: String,
    /// The runtime's kind: an `external` (or `none`) service is not drydock's to start.
    pub(super) runtime: String,
    pub(super) issues: Vec<Issue>,
}

/// The fix for a service that is down but not drydock's to start; heal says the same.
pub(crate) fn start_it_yourself(runtime: &str) -> String {
    format!("Start it yourself; drydock cannot start {runtime} services. If it stops again, its log says why")
}

impl Findings {
    pub(super) fn add(
        &mut self,
        id: &str,
        title: &str,
        severity: Severity,
        evidence: String,
        fix: &str,
    ) {
        // A fix names the service itself, never a placeholder to fill in.
        let mut fix = fix.replace("{service}", &self.service);
        if matches!(id, "not_running" | "connection_refused")
            && matches!(self.runtime.as_str(), "external" | "none")
        {
            fix = start_it_yourself(&self.runtime);
        }
        if let Some(i) = self.issues.iter_mut().find(|i| i.pattern == id) {
            if i.evidence.len() < 5 && !i.evidence.contains(&evidence) {
                i.evidence.push(evidence);
            }
            i.severity = i.severity.max(severity);
            return;
        }
        self.issues.push(Issue {
            service: self.service.clone(),
            severity,
            pattern: id.to_string(),
            issue: title.to_string(),
            details: evidence.clone(),
            evidence: vec![evidence],
            suggested_fix: fix,
        });
    }

    pub(super) fn pattern(&mut self, p: &Pattern, evidence: String) {
        self.add(p.id, p.title, p.severity, evidence, p.fix);
    }
}
