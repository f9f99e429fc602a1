//! What every deployer shares, whatever its kind: the shape of what it did
//! (`AppDeployed`) or why it stopped (`AppFailure`), where it finds what it needs
//! (`AppTarget`), and its timed steps. `kinds.rs` picks the deployer.

use serde::Serialize;

/// What deploying (or rolling back) one service did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppDeployed {
    pub service: String,
    /// The version now live: an image reference, or a release id.
    pub version: String,
    /// The version live before, if any (the rollback target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// How many things changed (containers started or stopped, releases written,
    /// proxy files rewritten). A second deploy of the same revision reports 0.
    pub changes: u32,
    /// What was done, in order, with timings.
    pub steps: Vec<AppStep>,
}

/// One step of a service's deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppStep {
    /// `start`, `health-gate`, `switch`, `drain`, `stop-old`, `upload`, `verify-checksum`,
    /// `extract`, `restart`, `build-id`, `prune`, ...
    pub action: String,
    /// What it acted on and how it went, in a few words.
    pub detail: String,
    pub millis: u64,
}

/// Why a service's deployment stopped, and what state it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{service}: {step}: {cause}")]
pub struct AppFailure {
    pub service: String,
    /// The step that failed.
    pub step: String,
    pub cause: String,
    /// The old version is still (or again) what is served.
    pub old_still_served: bool,
    /// What the operator can do.
    pub fix: String,
    /// The steps done before the failure, including the clean-up.
    pub steps: Vec<AppStep>,
}

/// Where a deployer finds what it needs besides its spec.
#[derive(Debug, Clone)]
pub struct AppTarget<'a> {
    /// The stack's name (labels, container names).
    pub stack: &'a str,
    pub service: &'a str,
    /// The full commit being deployed (`{rev}`).
    pub commit: &'a str,
    /// The config file's folder (builds run there).
    pub config_dir: &'a std::path::Path,
    /// drydock's state folder (packages, per-service bookkeeping).
    pub state_dir: &'a std::path::Path,
}

/// Times one step and records it.
pub(crate) fn timed<T>(
    steps: &mut Vec<AppStep>,
    action: &str,
    f: impl FnOnce() -> Result<(T, String), String>,
) -> Result<T, String> {
    let started = std::time::Instant::now();
    let result = f();
    let millis = started.elapsed().as_millis() as u64;
    match result {
        Ok((value, detail)) => {
            steps.push(AppStep {
                action: action.to_string(),
                detail,
                millis,
            });
            Ok(value)
        }
        Err(cause) => {
            steps.push(AppStep {
                action: action.to_string(),
                detail: format!("failed: {cause}"),
                millis,
            });
            Err(cause)
        }
    }
}
