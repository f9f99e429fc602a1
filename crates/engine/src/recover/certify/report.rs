//! What `certify` is asked and what it reports: the routine's nine steps, each one's
//! status and figures, the completion metrics and the readiness they add up to.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// What `certify` runs. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct CertifyOptions {
    /// The service to certify.
    pub service: String,
    /// Forget earlier progress and start again at step 1.
    #[cfg_attr(feature = "clap", arg(long))]
    pub restart: bool,
    /// Wipe the service's data in step 8 without asking (staging scripts).
    #[cfg_attr(feature = "clap", arg(long))]
    pub force: bool,
    /// Seed of the test data written in step 5.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub seed: u64,
    /// Write the report to FILE.md and FILE.json (default: STATE_DIR/reports/certify-SERVICE-TIME).
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub report: Option<PathBuf>,
}

impl Default for CertifyOptions {
    /// No service (one must be named), test data seed 1, as the command line's.
    fn default() -> Self {
        CertifyOptions {
            service: String::new(),
            restart: false,
            force: false,
            seed: 1,
            report: None,
        }
    }
}

/// Where one step of the routine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// Not reached.
    Pending,
}

impl StepStatus {
    /// The stable name kept in the state database (as in the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Pending => "pending",
        }
    }

    /// A status read back from the state database. Any other name counts as not
    /// reached, so the step runs again: a newer drydock's, or the `not-available` an
    /// older one recorded for steps 1 and 3 before certify could deploy.
    pub fn from_stored(name: &str) -> StepStatus {
        [StepStatus::Passed, StepStatus::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(StepStatus::Pending)
    }
}

/// What the routine concludes about the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// Every step passed.
    ProductionReady,
    /// A step failed (see `steps`), or steps remain.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertifyStep {
    pub step: u32,
    pub name: String,
    pub description: String,
    pub status: StepStatus,
    pub detail: String,
    /// This run did it (rather than an earlier one).
    pub ran_now: bool,
    pub at: Option<Timestamp>,
    pub metrics: Value,
}

/// The completion report's metrics table.
#[derive(Debug, Clone, Serialize)]
pub struct CertifyMetrics {
    /// Deploy time: step 1's deployment, from its start until the service's own
    /// checks pass.
    pub deploy_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub rto_target_ms: u64,
    pub rpo_ms: Option<u64>,
    pub rpo_target_ms: u64,
    pub backup_logical_bytes: Option<u64>,
    pub backup_stored_bytes: Option<u64>,
    /// What the second deploy of step 3 changed (0 when idempotent).
    pub idempotency_changes: Option<u64>,
    /// Share of external checks that passed (step 2), in percent.
    pub external_check_success_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertifyReport {
    pub stack: String,
    pub service: String,
    /// The routine's conclusion (`verdict` in the JSON); [`CertifyReport::verdict`] is
    /// derived from it.
    #[serde(rename = "verdict")]
    pub readiness: Readiness,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The step this run started at (earlier ones had passed before).
    pub resumed_at: u32,
    pub steps: Vec<CertifyStep>,
    pub metrics: CertifyMetrics,
    pub report_files: Vec<String>,
}

impl CertifyReport {
    /// Ok when production ready, else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        match self.readiness {
            Readiness::ProductionReady => drydock_domain::Verdict::Ok,
            Readiness::Failed => drydock_domain::Verdict::Failed,
        }
    }
}
