//! What a restore is asked and what it reports: which backup, which copy, which
//! services, and per source whether the restored data equals the manifest's.

use std::collections::BTreeMap;

use drydock_domain::config::SourceKind;
use drydock_domain::Priority;
use serde::{Deserialize, Serialize};

/// Which backup to restore from; as data, the text `latest` or a backup id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum BackupRef {
    /// Per source, the newest backup holding a good copy of it.
    #[default]
    Latest,
    Id(String),
}

impl TryFrom<String> for BackupRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<BackupRef> for String {
    fn from(b: BackupRef) -> String {
        match b {
            BackupRef::Latest => "latest".to_string(),
            BackupRef::Id(id) => id,
        }
    }
}

impl std::str::FromStr for BackupRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(BackupRef::Latest);
        }
        drydock_domain::BackupId::parse(s)
            .map(|id| BackupRef::Id(id.to_string()))
            .ok_or_else(|| format!("`{s}` is neither `latest` nor a backup id like 20261122-083000-ab3k9z (see `drydock backups`)"))
    }
}

/// What `restore` restores and how. The field docs are also the `--help` lines
/// (`clap` feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
// One of the two is required, as a group, so the error names both ways to say what to
// restore (`<--service <SERVICE>|--all>`), not only `--service`.
#[cfg_attr(
    feature = "clap",
    command(group(clap::ArgGroup::new("what").required(true).args(["services", "all"])))
)]
pub struct RestoreOptions {
    /// A backup id (see `drydock backups`) or `latest` (per source, its newest good backup).
    #[cfg_attr(feature = "clap", arg(value_parser = parse_backup_ref))]
    pub backup: BackupRef,
    /// Restore this service's sources (repeatable).
    // Empty with `all` for every service.
    #[cfg_attr(
        feature = "clap",
        arg(long = "service", short = 's', value_name = "SERVICE")
    )]
    pub services: Vec<String>,
    /// Restore every service.
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "services"))]
    pub all: bool,
    /// Replace existing data without asking.
    #[cfg_attr(feature = "clap", arg(long))]
    pub force: bool,
    /// Stop running containers that use a restored Docker volume (started again after);
    /// without it such a restore is refused.
    #[cfg_attr(feature = "clap", arg(long))]
    pub stop: bool,
    /// Of the services chosen, restore only these sources (`SERVICE/SOURCE`, repeatable).
    // Empty: every source of the services chosen.
    #[cfg_attr(feature = "clap", arg(long = "source", value_name = "SERVICE/SOURCE"))]
    #[serde(default)]
    pub sources: Vec<String>,
    /// Read only this copy: `local` or a `[[remote]]`'s name (default: local, then remotes).
    #[cfg_attr(feature = "clap", arg(long, value_name = "COPY"))]
    pub from: Option<String>,
}

#[cfg(feature = "clap")]
fn parse_backup_ref(s: &str) -> Result<BackupRef, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreStatus {
    /// Restored, and counts and fingerprint equal the manifest's.
    Verified,
    /// Restored, but the data differs from the manifest: see `differences`.
    Mismatch,
    /// The restore itself failed.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoredSource {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub backup_id: String,
    pub status: RestoreStatus,
    /// Which copy the data came from.
    pub copy: String,
    pub differences: Vec<String>,
    /// Differences that do not fail verification: data allowed to vanish after the
    /// backup (Redis keys with an expiry that have expired since).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub expected_counts: BTreeMap<String, u64>,
    pub restored_counts: BTreeMap<String, u64>,
    pub fingerprint: Option<String>,
    /// Restore start to verification end.
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What drydock did to the owning service (`stopped and started again`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_action: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub verified: bool,
    /// Wall time from the restore's start (repository opening included) to the last
    /// verification's end.
    pub rto_ms: u64,
    pub sources: Vec<RestoredSource>,
    pub warnings: Vec<String>,
}

impl RestoreReport {
    /// Ok when every source verified against the manifest, else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.verified {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Failed
        }
    }
}
