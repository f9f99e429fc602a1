//! The manifest: what one backup holds and how to prove a restore of it is exact.
//!
//! One manifest per backup, stored in the repository next to the snapshots it names
//! (so a fresh machine with only the config can list and restore backups). Only sources
//! whose snapshot was stored completely and whose producer succeeded are `ok`; a failed
//! source is recorded with its error and no snapshot.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::vocabulary::{Priority, SourceKind};

pub const MANIFEST_FORMAT: u32 = 1;
/// Manifests are small; anything larger is not one of ours.
pub const MANIFEST_MAX_BYTES: usize = 64 << 20;

/// `YYYYMMDD-HHMMSS-xxxxxx` (UTC), sortable by time, unique by its random suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BackupId(String);

impl BackupId {
    pub fn new(at: Timestamp) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let suffix: String = (0..6)
            .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
            .collect();
        let stamp = at.strftime("%Y%m%d-%H%M%S");
        BackupId(format!("{stamp}-{suffix}"))
    }

    /// Accepts only the id shape, so an id can go into tags and paths safely.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let shape_ok = b.len() == 22
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'-'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'-'
            && b[16..]
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        shape_ok.then(|| BackupId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    /// Every selected source is stored.
    Ok,
    /// Some non-critical source failed or was skipped.
    Partial,
    /// A critical source failed.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: BackupId,
    pub stack: String,
    /// The host (or `[stack] host`) that took the backup: a stack's identity in a
    /// shared repository is its name and this host.
    pub host: String,
    /// The stack's own order of creation in the repository: one more than the highest
    /// `seq` of the stack's backups when this one was taken (absent in backups of
    /// older versions, which count as 0 and are ordered by time among themselves).
    /// `latest` is the highest `seq`, so a clock set back or ahead never changes which
    /// backup is the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub drydock_version: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: BackupStatus,
    pub sources: Vec<SourceRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub service: String,
    pub source: String,
    pub kind: SourceKind,
    pub priority: Priority,
    pub status: SourceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The repository snapshot holding this source's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// For streams, the path inside the snapshot (`restic dump SNAPSHOT PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_path: Option<String>,
    /// What the stored bytes are: `pg_dump-custom`, `mysql-dump-sql`, `redis-rdb`,
    /// `sqlite-db` or `tree`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Bytes of the logical stream or tree.
    pub logical_bytes: u64,
    /// Bytes this backup added to the repository after deduplication and compression.
    pub stored_bytes: u64,
    /// SHA-256 of the logical stream (streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// tables, rows, sequences, keys, files, dirs, symlinks, bytes ... by kind.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// The point in time the data was consistent at (the snapshot's moment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<Timestamp>,
    pub duration_ms: u64,
    /// When retention removed this source's data from the copy the manifest is in.
    /// The other sources of the backup may still be there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<Timestamp>,
}

impl SourceRecord {
    pub fn label(&self) -> String {
        format!("{}/{}", self.service, self.source)
    }

    /// Stored completely and not removed by retention: a restore can use it.
    pub fn is_restorable(&self) -> bool {
        self.status == SourceStatus::Ok && self.pruned_at.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "manifest is {0} bytes, over the {MANIFEST_MAX_BYTES}-byte limit: not a drydock manifest"
    )]
    TooLarge(usize),
    #[error("manifest is not valid: {0}")]
    Invalid(String),
    #[error("manifest format {0} is newer than this drydock understands ({MANIFEST_FORMAT}); upgrade drydock")]
    NewerFormat(u32),
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MANIFEST_MAX_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if m.format > MANIFEST_FORMAT {
            return Err(ManifestError::NewerFormat(m.format));
        }
        if BackupId::parse(m.id.as_str()).is_none() {
            return Err(ManifestError::Invalid(format!(
                "backup id `{}` has not the YYYYMMDD-HHMMSS-xxxxxx shape",
                m.id
            )));
        }
        Ok(m)
    }

    /// Whether any source can still be restored from this manifest's copy.
    pub fn has_restorable(&self) -> bool {
        self.sources.iter().any(SourceRecord::is_restorable)
    }

    /// The position in the stack's order of creation: (seq, start time, id).
    pub fn creation_order(&self) -> (u64, Timestamp, &str) {
        (self.seq.unwrap_or(0), self.started_at, self.id.as_str())
    }

    pub fn source(&self, service: &str, source: &str) -> Option<&SourceRecord> {
        self.sources
            .iter()
            .find(|s| s.service == service && s.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_shape() {
        let id = BackupId::new("2026-11-22T08:30:00Z".parse().unwrap());
        assert!(id.as_str().starts_with("20261122-083000-"), "{id}");
        assert_eq!(BackupId::parse(id.as_str()), Some(id));
        assert_eq!(BackupId::parse("20261122-083000"), None);
        assert_eq!(BackupId::parse("../../etc/passwd-xx-yyyyyy"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Manifest::from_json(b"{").is_err());
        assert!(Manifest::from_json(b"[]").is_err());
        assert!(Manifest::from_json(&[0xff; 100]).is_err());
    }
}
