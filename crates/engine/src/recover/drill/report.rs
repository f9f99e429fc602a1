//! What a drill is asked and what it reports: the options, each source's outcome with
//! its steps, RTO and RPO against the targets, and (destructive drills) each service's.
//! Shared by the sandbox and the destructive drill and by `certify`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use drydock_domain::config::SourceKind;
use drydock_domain::Priority;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::backup::BackupReport;
use crate::restore::BackupRef;

/// What `drill` drills and how. The field docs are also the `--help` lines (`clap`
/// feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct DrillOptions {
    /// Services to drill (default: every service).
    pub services: Vec<String>,
    /// Restore this backup (an id or `latest`) instead of taking a new one with canaries.
    // No canary is written then.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ID|latest", value_parser = parse_backup_ref)
    )]
    pub use_backup: Option<BackupRef>,
    /// Write the report to FILE.md and FILE.json (default: STATE_DIR/reports/drill-TIME).
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub report: Option<PathBuf>,
    /// The real thing (staging!): stop each service, WIPE its data, restore it in place
    /// from a verified backup, start it, wait for health, verify. Asks first.
    #[cfg_attr(feature = "clap", arg(long))]
    pub destructive: bool,
    /// With --destructive: wipe without asking (scripts).
    #[cfg_attr(feature = "clap", arg(long, requires = "destructive"))]
    pub force: bool,
}

#[cfg(feature = "clap")]
fn parse_backup_ref(s: &str) -> Result<BackupRef, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillStatus {
    /// Restored in the sandbox, counts, fingerprint and canary as expected.
    Passed,
    /// A verification mismatch, a restore error, a missing canary.
    Failed,
    /// No backup to restore, or the sandbox could not be created.
    CouldNotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Canary {
    pub status: CanaryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Whether the drill's canary came back with the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanaryStatus {
    /// The restored data holds the canary.
    Present,
    /// Written before the backup but not restored: a failure.
    Missing,
    /// The live canary was written after the backup's consistent point: expected, the
    /// RPO covers it.
    NotInBackup,
    /// No canary to check.
    None,
}

impl Canary {
    /// No canary to check.
    pub fn none() -> Canary {
        Canary {
            status: CanaryStatus::None,
            detail: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrilledSource {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub status: DrillStatus,
    pub backup_id: Option<String>,
    pub sandbox: Option<String>,
    pub canary: Canary,
    pub differences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub counts: BTreeMap<String, u64>,
    pub fingerprint_matched: bool,
    /// Restore start to verification passed (None when it did not get that far).
    pub rto_ms: Option<u64>,
    /// The backup's consistent point to the simulated failure.
    pub rpo_ms: Option<u64>,
    /// This source's targets (its priority class's, or `[drill]`'s).
    pub rto_target_ms: u64,
    pub rpo_target_ms: u64,
    pub rto_met: Option<bool>,
    pub rpo_met: Option<bool>,
    pub steps: Vec<Step>,
    /// Destructive drills: the test data `populate` wrote, measured after the restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_data: Option<TestDataCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The verification query set of a populated source, after the restore.
#[derive(Debug, Clone, Serialize)]
pub struct TestDataCheck {
    pub matched: bool,
    pub differences: Vec<String>,
}

/// Which drill ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillKind {
    /// Restored beside production, into a throwaway sandbox.
    Sandbox,
    /// Stopped, wiped, restored in place, started (staging).
    Destructive,
}

impl DrillKind {
    /// The stable name stored in the state database and used in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillKind::Sandbox => "sandbox",
            DrillKind::Destructive => "destructive",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub kind: DrillKind,
    pub stack: String,
    pub passed: bool,
    pub targets_met: bool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The backup the drill took (absent with `--use-backup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupReport>,
    /// Whole stack: first restore start to last verification end.
    pub rto_ms: u64,
    /// Worst RPO over the sources.
    pub rpo_ms: Option<u64>,
    pub rto_target_ms: u64,
    pub rpo_target_ms: u64,
    pub sources: Vec<DrilledSource>,
    /// Destructive drills: what happened to each service (stopped, wiped, restored,
    /// started, healthy) and, after a failure, the state it is in and how to recover.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceOutcome>,
    pub report_files: Vec<String>,
}

impl DrillReport {
    /// Failed when a source failed, could not run when one could not, a warning when
    /// an RTO/RPO target was missed, else ok.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        use drydock_domain::Verdict;
        let any = |s: DrillStatus| self.sources.iter().any(|x| x.status == s);
        if any(DrillStatus::Failed) {
            Verdict::Failed
        } else if any(DrillStatus::CouldNotRun) {
            Verdict::CouldNotRun
        } else if !self.targets_met {
            Verdict::Warning
        } else {
            Verdict::Ok
        }
    }
}

pub(crate) fn new_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let random: String = (0..16)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!(
        "drill-{}-{random}",
        Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    )
}

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// What happened to one service, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub backup_id: String,
    pub status: ServiceDrillStatus,
    pub steps: Vec<Step>,
    /// After a failure: the state the service was left in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// After a failure: what the operator runs to recover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// How far a destructive drill got with one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceDrillStatus {
    /// Restored, verified, healthy.
    Recovered,
    /// See `state` and `recover`.
    Failed,
    /// An earlier service failed, so this one was left untouched.
    NotReached,
}
