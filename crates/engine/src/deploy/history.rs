//! `drydock deployments`: the recorded deployments and rollbacks, newest first, each
//! with its outcome and the steps it reached. One that is still recorded as running
//! while nobody holds the deploy lock was cut short (`kill -9`, a crash): it shows as
//! `interrupted` here, and the next `deploy` records it so.

use drydock_domain::config::Config;
use drydock_domain::Verdict;
use drydock_state::StateDb;
use serde::Serialize;

use super::lock::DeployLock;
use crate::EngineError;

/// One deployment as `drydock deployments` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    pub id: i64,
    /// `deploy` or `rollback`.
    pub kind: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub rev: String,
    pub commit: String,
    pub decision: String,
    /// `ok`, `failed`, `rolled-back`, `needs-rollback`, `interrupted`, `running`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<i64>,
    /// The steps it recorded (action, status, detail, millis), as far as it got.
    pub steps: Vec<serde_json::Value>,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<serde_json::Value>,
}

/// `drydock deployments`.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentsReport {
    pub deployments: Vec<DeploymentView>,
}

impl DeploymentsReport {
    /// A listing is information: ok, unless one needs an operator.
    pub fn verdict(&self) -> Verdict {
        match self.deployments.first() {
            Some(d) if d.outcome == "needs-rollback" => Verdict::Critical,
            _ => Verdict::Ok,
        }
    }
}

/// The newest `limit` deployments.
pub fn deployments(config: &Config, limit: u32) -> Result<DeploymentsReport, EngineError> {
    let state_dir = &config.stack.state_dir;
    let db = StateDb::open(state_dir)?;
    // Whether a deployment is running now: its lock is held.
    let running = DeployLock::is_held(state_dir)?;
    let time = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let deployments = db
        .deployments(limit)?
        .into_iter()
        .map(|d| {
            let report: serde_json::Value = d
                .report_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let outcome = match d.outcome {
                Some(o) => o,
                None if running => "running".to_string(),
                None => "interrupted".to_string(),
            };
            DeploymentView {
                id: d.id,
                kind: d.kind,
                started_at: time(d.started_ms),
                finished_at: d.finished_ms.map(time),
                rev: d.rev,
                commit: d.commit,
                decision: d.decision,
                outcome,
                changes: d.changes,
                steps: report["steps"].as_array().cloned().unwrap_or_default(),
                failure: report.get("failure").filter(|f| !f.is_null()).cloned(),
            }
        })
        .collect();
    Ok(DeploymentsReport { deployments })
}
