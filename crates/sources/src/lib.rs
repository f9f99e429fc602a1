//! drydock's data sources: one adapter per engine, each behind [`DataSource`].
//!
//! A source knows how to take an application-consistent backup of its data, hand the
//! bytes to a [`Store`], and describe exactly what it stored (counts and a
//! [`Fingerprint`] taken from the same consistent view); how to restore from a
//! [`Fetch`]; and how to describe what is there now ([`DataSource::inspect`]), so the
//! engine can prove a restore exact. Adding an engine touches its own file and
//! [`registry::build`], nothing else.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use drydock_domain::config::SourceKind;
use drydock_domain::{EventSink, Fingerprint, SourceRecord};

mod common;
pub mod files;
pub mod mysql;
pub mod postgres;
pub mod process;
mod proof;
pub mod redis;
pub mod registry;
mod scratch;
pub mod sqlite;
pub mod testdata;
pub mod tree;
pub mod volume;

pub use registry::build;
pub use testdata::{TestData, TestMeasures};
pub use tree::{EntryKind, TreeEntry};

/// What the repository recorded for one stored stream or tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub snapshot_id: String,
    /// Path of the stream inside the snapshot (for `restic dump`); `None` for trees.
    pub path: Option<String>,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// SHA-256 of exactly the bytes stored (streams only).
    pub sha256: Option<String>,
}

/// A repository failure, already worded for the operator by the engine.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where a source's backup bytes go (the engine implements it over the repository).
pub trait Store {
    /// Stores one stream until `reader` reaches EOF. If the reader fails, nothing is
    /// kept. The stream is stored under the source's name and `extension`.
    fn put_stream(
        &self,
        reader: Box<dyn Read + Send>,
        extension: &str,
    ) -> Result<Stored, StoreError>;
    /// Stores the tree under `root` (excluding the glob patterns), handing `each` what
    /// each entry looked like as stored, with the SHA-256 of every file's stored bytes,
    /// as soon as it is stored (in any order; from another thread). When this fails,
    /// what `each` saw is no backup.
    fn put_tree(
        &self,
        root: &Path,
        excludes: &[String],
        each: &mut (dyn FnMut(TreeEntry) + Send),
    ) -> Result<Stored, StoreError>;
}

/// Where a restore reads from (the engine implements it over the repository).
pub trait Fetch {
    /// Writes the stored stream to `out`; returns the byte count.
    fn stream_into(&self, out: &mut dyn Write) -> Result<u64, StoreError>;
    /// Recreates the stored tree under `dest`, which must not exist yet.
    fn tree_into(&self, dest: &Path) -> Result<(), StoreError>;
}

/// What a backup of one source produced.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub stored: Stored,
    /// `pg_dump-custom`, `mysql-dump-sql`, `redis-rdb`, `sqlite-db`, `tree`.
    pub format: &'static str,
    pub counts: BTreeMap<String, u64>,
    pub fingerprint: Fingerprint,
    /// The moment the stored data was consistent at.
    pub consistent_at: jiff::Timestamp,
}

/// Counts and fingerprint of what a source holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub counts: BTreeMap<String, u64>,
    pub fingerprint: Fingerprint,
}

/// How a restore reaches the data, which decides what must happen to the owning service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Into a running server over its protocol (PostgreSQL, MariaDB, Redis RESTORE).
    Logical,
    /// Files replaced on disk: the owning service must be stopped (SQLite, directories).
    FileLevel,
}

/// What a source gets from the engine for one operation.
pub struct SourceContext<'a> {
    /// `service/source`, for messages.
    pub label: &'a str,
    /// A private (0700) scratch directory on drydock's state volume, emptied afterwards.
    pub scratch: &'a Path,
    pub events: &'a dyn EventSink,
    /// Called by [`DataSource::restore`] right before its first change to the live data
    /// (a rename, a drop, a flush, a file replaced), with what it is about to do. The
    /// engine records the restore as owed there, so an interrupted one is shown by
    /// `status` and `health`; an error means nothing may be changed. Operations other
    /// than a restore pass [`no_live_change`].
    pub replacing_live: &'a (dyn Fn(&str) -> Result<(), String> + Sync),
}

impl SourceContext<'_> {
    /// Announces the first destructive step of a restore (see
    /// [`SourceContext::replacing_live`]); an error aborts the restore before it.
    pub fn before_replacing_live(&self, step: &str) -> Result<(), SourceError> {
        (self.replacing_live)(step).map_err(|e| {
            SourceError::invalid(
                self.label,
                format!("the restore could not be recorded as owed before {step} ({e}); nothing was changed"),
            )
        })
    }
}

/// The [`SourceContext::replacing_live`] of operations that never replace live data.
pub fn no_live_change(_step: &str) -> Result<(), String> {
    Ok(())
}

/// Compares an inspection with what a backup recorded: (differences that fail
/// verification, notes that do not, such as Redis keys with an expiry that may have
/// expired since the backup).
pub fn compare_with_record(
    record: &SourceRecord,
    inspection: &Inspection,
) -> (Vec<String>, Vec<String>) {
    let mut differences = Vec::new();
    let mut notes = Vec::new();
    for (name, want) in &record.counts {
        let got = inspection.counts.get(name).copied().unwrap_or(0);
        if got != *want && !drydock_domain::fingerprint::is_advisory(name) {
            differences.push(format!("{name}: {want} in backup, {got} restored"));
        }
    }
    match &record.fingerprint {
        Some(expected) => {
            let unit = count_unit(record.kind);
            differences.extend(inspection.fingerprint.differences(expected, unit));
            notes = inspection
                .fingerprint
                .advisory_differences(expected, unit)
                .into_iter()
                .map(|d| format!("{d} (keys with an expiry may have expired since the backup)"))
                .collect();
        }
        None => differences.push(
            "the manifest has no fingerprint for this source; cannot prove the restore".into(),
        ),
    }
    (differences, notes)
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The server could not be reached or refused us.
    #[error("{location}: cannot connect: {cause}. {fix}")]
    Connect {
        location: String,
        cause: String,
        fix: String,
    },
    /// A dump/restore tool failed; `stderr` is its redacted tail.
    #[error("{tool} failed ({status}) for {location}: {stderr}")]
    Tool {
        tool: String,
        location: String,
        status: String,
        stderr: String,
    },
    #[error("{location}: {what}: {cause}")]
    Query {
        location: String,
        what: String,
        cause: String,
    },
    #[error("{location}: {context}: {source}")]
    Io {
        location: String,
        context: String,
        source: std::io::Error,
    },
    #[error("{location}: repository: {cause}")]
    Store { location: String, cause: StoreError },
    /// The source is not in a state drydock can work with.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    /// A dump tool exited 0, but the stream it wrote (the one that was stored) does not
    /// hold the snapshot's data; `problem` says what is missing or wrong.
    #[error("{location}: {tool} exited 0 but {problem}; this source's backup is not kept. Fix: check the {tool} drydock runs (the source's `bin_dir`, else PATH) and what could cut its output short (disk, pipes, wrappers), then back up again")]
    IncompleteDump {
        tool: String,
        location: String,
        problem: String,
    },
    /// A required program is missing.
    #[error("`{program}` not found: {fix}")]
    MissingTool { program: String, fix: String },
}

impl SourceError {
    pub fn io(location: &str, context: impl Into<String>, source: std::io::Error) -> Self {
        SourceError::Io {
            location: location.to_string(),
            context: context.into(),
            source,
        }
    }
    pub fn invalid(location: &str, message: impl Into<String>) -> Self {
        SourceError::Invalid {
            location: location.to_string(),
            message: message.into(),
        }
    }
    pub fn query(location: &str, what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        SourceError::Query {
            location: location.to_string(),
            what: what.into(),
            cause: cause.to_string(),
        }
    }
    pub fn store(location: &str, e: StoreError) -> Self {
        SourceError::Store {
            location: location.to_string(),
            cause: e,
        }
    }
}

/// One engine's adapter.
pub trait DataSource: Send + Sync {
    fn kind(&self) -> SourceKind;
    /// Where the data lives (`postgres 127.0.0.1:5432/app`); never contains a secret.
    fn location(&self) -> String;
    fn restore_mode(&self) -> RestoreMode;
    /// Fails with a clear error when the source cannot be reached (used before any work).
    fn check(&self) -> Result<(), SourceError>;
    /// Takes a consistent backup into `store`; counts and fingerprint describe exactly
    /// the stored data. On error the engine discards whatever was stored.
    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError>;
    /// Whether the target holds data a restore would replace.
    fn has_data(&self) -> Result<bool, SourceError>;
    /// Replaces the target's data with the backup described by `record`. The engine has
    /// already confirmed overwriting and stopped the owning service if needed.
    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError>;
    /// Counts and fingerprint of the data there now, comparable with a manifest's.
    fn inspect(&self, ctx: &SourceContext<'_>) -> Result<Inspection, SourceError>;

    /// [`DataSource::inspect`] computed the way `record`'s fingerprint was, to compare
    /// with it: a source whose fingerprint format changed computes the one an older
    /// backup holds, so that backups made before still verify. Every comparison with a
    /// backup goes through here.
    fn inspect_as(
        &self,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<Inspection, SourceError> {
        let _ = record;
        self.inspect(ctx)
    }

    /// Creates an empty, throwaway place of the same kind to restore a backup into for a
    /// drill: a scratch database on the same server when it can hold one, else a
    /// throwaway instance or path under `ctx.scratch`. It is removed when dropped.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError>;

    /// Writes a drill canary carrying `token` into the live data (replacing an earlier
    /// one): a row in a `_drydock_canary` table, a `_drydock:canary` key, a
    /// `.drydock-canary` file. The fingerprint includes it like any other data.
    fn write_canary(&self, token: &str) -> Result<(), SourceError>;

    /// The token of the canary in this data, if there is one.
    fn read_canary(&self) -> Result<Option<String>, SourceError>;

    /// Live data the backups leave out on purpose (excluded by config), one line each:
    /// a drill fails on it, because a restore would lose it.
    fn left_out(&self) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }

    /// Destroys the source's data as a disaster would, for destructive drills and
    /// certify's wipe step: drops the database (or, without the right to, every object
    /// the user owns), flushes the instance, deletes the file, empties the directory.
    /// The engine has made sure a verified backup exists, had it confirmed, and stopped
    /// the owning service when files are involved.
    fn wipe(&self) -> Result<(), SourceError>;

    /// Writes the test data set (`drydock populate`), replacing an earlier one, under
    /// names that cannot collide with the application's (see [`testdata`]).
    fn populate(&self, data: &TestData) -> Result<(), SourceError>;

    /// Reads the test data set back and measures it (the verification query set).
    /// Nothing populated measures as all zeros.
    fn measure_test_data(&self) -> Result<TestMeasures, SourceError>;

    /// Running containers, besides the service's own runtime, that use this data and
    /// must be stopped before a file-level restore (a Docker volume's users).
    fn running_users(&self) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
}

/// A throwaway restore target made by [`DataSource::sandbox`]; dropping it removes it
/// (drops the scratch database, stops the throwaway server, deletes the path), also when
/// the drill failed.
pub trait Sandbox: Send {
    /// The sandbox as a source: the drill restores into it and inspects it.
    fn target(&self) -> &dyn DataSource;
    /// What and where it is, for the drill report (`database _drydock_sandbox_x7k2 on
    /// 127.0.0.1:5432`); never a secret.
    fn describe(&self) -> String;
}

/// The unit a kind's fingerprint parts count (for difference messages).
pub fn count_unit(kind: SourceKind) -> &'static str {
    drydock_domain::config::sources::kind_spec(kind).count_unit()
}

/// Looks a program up on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
