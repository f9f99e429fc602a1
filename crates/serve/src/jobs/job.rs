//! What every job kind shares: the request (plain data), the output, and the spec a
//! kind's file declares and the registry lists.

use drydock_domain::config::JobKind;
use drydock_domain::plan::Priority;
use drydock_domain::{Config, Verdict};
use drydock_engine::{EngineError, RunContext};
use serde::{Deserialize, Serialize};

/// What to run: the kind and its selection, as data (a schedule stores it, an HTTP
/// body carries it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    pub kind: JobKind,
    /// Backup: the priorities (empty: critical and high).
    #[serde(default)]
    pub priority: Vec<Priority>,
    /// Backup, drill, health: the services (empty: every one).
    #[serde(default)]
    pub services: Vec<String>,
}

impl JobRequest {
    pub fn new(kind: JobKind) -> JobRequest {
        JobRequest {
            kind,
            priority: Vec::new(),
            services: Vec::new(),
        }
    }
}

/// How a job ended: its report's verdict, one line for the run record, and what it
/// was about part by part (for notifications: a source that fails and one that
/// recovers in the same run are told apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    pub verdict: Verdict,
    pub summary: String,
    /// One entry per source, service or copy the job judged; empty when the job is
    /// judged as a whole.
    pub parts: Vec<JobPart>,
}

/// One subject of a job (`db/postgres`, `web`) and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPart {
    pub subject: String,
    pub verdict: Verdict,
    /// What went wrong, in one short line, when it did.
    pub problem: Option<String>,
}

/// One job kind: whether it works on the repository (one such job per repository at a
/// time) and the function that runs it.
pub struct JobSpec {
    pub kind: JobKind,
    pub uses_repository: bool,
    pub run: fn(&Config, &JobRequest, &RunContext) -> Result<JobOutput, EngineError>,
}

/// "ok", "warning", ... : the verdict's word, for summaries.
pub(super) fn word(v: Verdict) -> &'static str {
    drydock_state::RunOutcome::Verdict(v).as_str()
}
