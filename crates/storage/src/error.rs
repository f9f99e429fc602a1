//! The one error type of the storage crate.
//!
//! Every message names the thing (usually the repository path), the cause and
//! what the operator can do about it, because these strings reach the
//! terminal unchanged. No variant carries the repository password or key: the
//! password is never stored by this crate, so it cannot leak through here.

use rustic_core::RusticError;

/// What can go wrong while using a repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The path holds no repository (no `config` file).
    #[error(
        "{location}: not a repository ({reason}); check the configured location ([repository].path or the [[remote]]), or initialise a new repository there"
    )]
    NotARepository { location: String, reason: String },

    /// `init` was asked to create a repository where one already exists.
    #[error(
        "{location}: already a repository (its config file exists); open it instead of initialising, or choose another [repository].path"
    )]
    AlreadyARepository { location: String },

    /// No key file of the repository decrypts with the given password.
    #[error(
        "repository at {location}: wrong password (the key did not decrypt); check [repository].password"
    )]
    WrongPassword { location: String },

    /// Another drydock process (or thread) holds the repository lock.
    #[error(
        "repository at {location}: locked by {holder}; wait until it finishes or stop it (a lock of a process that died is detected and removed, no manual unlock is needed)"
    )]
    Locked { location: String, holder: String },

    /// A file-system operation failed.
    #[error("{what}: {source}; {fix}")]
    Io {
        what: String,
        fix: String,
        #[source]
        source: std::io::Error,
    },

    /// No snapshot has the given id (or id prefix).
    #[error(
        "repository at {location}: no snapshot with id {id}; list the snapshots (`drydock backups`, or `restic snapshots`) and use one of their ids"
    )]
    SnapshotNotFound { location: String, id: String },

    /// An id prefix matches more than one snapshot.
    #[error(
        "repository at {location}: snapshot id {id} is ambiguous ({count} snapshots start with it); use the full id"
    )]
    AmbiguousSnapshotId {
        location: String,
        id: String,
        count: usize,
    },

    /// The producer of a stream (or a file of a tree) could not be read to
    /// its end; whatever was saved has been removed again.
    #[error(
        "reading {what} failed: {cause}; no snapshot was kept; fix the cause and run the backup again"
    )]
    ReadFailed { what: String, cause: String },

    /// The caller passed something this crate cannot work with.
    #[error("{what}: {problem}; {fix}")]
    InvalidInput {
        what: String,
        problem: String,
        fix: String,
    },

    /// A remote copy failed after retries; the text names the remote, the request and
    /// the fix (see `s3::S3Error`).
    #[error("{0}")]
    Remote(String),

    /// rustic_core reported an error; the string is its message with context.
    #[error("repository engine: {0}")]
    Engine(String),

    /// The file system holding the repository ran out of space while writing.
    #[error(
        "repository at {location}: no space left on its file system ({free} free) while {doing}; the objects this run wrote are not counted (the next prune removes them). Free space there: `drydock prune` drops backups retention no longer keeps, or delete other files, or enlarge the file system; then run it again"
    )]
    DiskFull {
        location: String,
        doing: String,
        /// Free space now, e.g. `120 KiB`, or `unknown`.
        free: String,
    },
}

/// Whether rustic's error comes from a write that found the file system full
/// (ENOSPC, or EDQUOT: a quota is as full as a disk to a backup).
pub(crate) fn is_disk_full(err: &RusticError) -> bool {
    let text = err.display_log();
    text.contains("os error 28") || text.contains("os error 122")
}

/// `bytes` as a short human figure (`512 B`, `3.4 MiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl StorageError {
    /// Wraps a rustic error, prefixed by what drydock was doing.
    pub(crate) fn engine(context: impl std::fmt::Display, err: &RusticError) -> Self {
        // `display_log` is the one-line form; the multi-line `Display` adds
        // bug-report boilerplate that misleads operators.
        let msg = err.display_log();
        let msg = msg.strip_prefix("Error: ").unwrap_or(&msg);
        Self::Engine(format!("{context}: {}", condense(msg)))
    }

    pub(crate) fn io(
        what: impl Into<String>,
        fix: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            what: what.into(),
            fix: fix.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        what: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::InvalidInput {
            what: what.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// One line from rustic's error text: its messages are kept, the trailing sections
/// (documentation link, context, cause chain, backtrace) that read as a crash report
/// to an operator are dropped.
pub(crate) fn condense(text: &str) -> String {
    const TRAILERS: [&str; 5] = [
        "For more information",
        "Some additional details",
        "Context:",
        "Caused by:",
        "Backtrace:",
    ];
    let mut kept = Vec::new();
    for line in text.lines().map(str::trim) {
        if TRAILERS.iter().any(|t| line.starts_with(t)) {
            break;
        }
        if !line.is_empty() && line != "Message:" {
            kept.push(line);
        }
    }
    kept.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::condense;

    #[test]
    fn rustic_error_text_becomes_one_line_without_backtrace() {
        let text = "listing a snapshot: error processing Pack:5b67 (kind: crypto): caused by: `rustic_core` failed.\n\nMessage:\nData decryption failed, MAC check failed.\n\nFor more information, see: https://x\n\nContext:\n- nonce: [1, 2]\n\nCaused by:\naead::Error\n\nBacktrace:\n   0: rustic_core::error::RusticError::new\n";
        assert_eq!(
            condense(text),
            "listing a snapshot: error processing Pack:5b67 (kind: crypto): caused by: `rustic_core` failed. Data decryption failed, MAC check failed."
        );
    }
}
