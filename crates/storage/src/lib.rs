//! drydock's repository adapter: a small, typed, synchronous API over a
//! restic-format repository, implemented with `rustic_core` 0.13: a local directory
//! (the local backend of `rustic_backend` 0.7, writing through `durable_local`:
//! temp file, fsync, rename, directory fsync) or a copy in an S3-compatible bucket
//! (drydock's own S3 backend, `s3` + `s3_backend`: checksummed, retried uploads).
//!
//! Everything drydock stores goes through here: byte streams (database
//! dumps) with [`Repository::backup_stream`], directory trees with
//! [`Repository::backup_tree`]. Both return the SHA-256 of exactly the bytes
//! stored, computed in the same pass that feeds the engine.
//!
//! The storage engine's known pitfalls are each handled in one place:
//! - slow streams (short reads starve the chunker) and failed producers
//!   (rustic saves a snapshot without the file): `reader`, checked by
//!   `backup_stream` / `backup_tree`, which delete such a snapshot;
//! - stale parents (a stream "matching" the previous snapshot is not read):
//!   every backup runs with `ParentOptions::force(true)`;
//! - no locking in rustic: [`Repository::lock`] (`lock` module: a flock for drydock
//!   on this host, restic-format lock files for restic and other hosts);
//! - no create-if-absent in S3: hosts creating one copy at once settle on one
//!   repository (`s3_create`);
//! - memory that grows with the tree: rustic's restore plans every file before
//!   writing one (~1 KiB per file) and queues blobs without bound, so trees are
//!   restored by `tree_restore`, which streams the snapshot's nodes once; a tree
//!   backup hands its entries on as they are stored (`backup_tree_each`) instead of
//!   collecting them;
//! - a rolling-hash set-up per file (~0.25 ms, half the CPU of a backup of small
//!   files): rustic_cdc is patched to compute its tables once
//!   (`vendor/rustic_cdc/README.drydock.md`);
//! - a read-data check that never reads the packs of snapshots' root trees (it
//!   follows the blobs trees name; a root is named by a snapshot): `copy`'s
//!   `unproved_root_tree_packs` reads and hashes them after rustic's check;
//! - cache: none (`RepositoryOptions::no_cache`), never `~/.cache/rustic`;
//! - privacy: the process umask is set to 077 on open/init/lock/backup
//!   (`repo::private_umask` says why), so repository files are 0600 and
//!   directories 0700 whatever the caller's umask.
//!
//! Readability without drydock: `restic -r REPO snapshots` lists drydock's
//! snapshots with their tags; a tree snapshot restores with
//! `restic -r REPO restore ID --target DIR`; a stream snapshot must be read
//! with `restic -r REPO dump ID /<path>` (rustic stores a stream's size as 0,
//! so `restic restore` writes an empty file for it).
//!
//! Logging: rustic_core reports warnings (and some errors) only through the
//! `log` crate. This crate installs no logger; the binary must install one
//! (e.g. `tracing-log`) or those messages vanish. Problems that matter are
//! returned as errors or in [`CheckReport`] regardless.
//!
//! Secrets: the password is used to decrypt the key and then dropped; no
//! error, log line or `Debug` output of this crate contains it.

mod copy;
mod durable_local;
mod error;
mod host;
mod key_file;
mod lock;
mod prune;
mod reader;
mod repair;
mod repo;
mod restic_lock;
pub mod s3;
mod s3_backend;
mod s3_create;
mod sealed;
mod stored;
mod stream;
mod tree;
mod tree_restore;
mod types;

pub use copy::{CopiedSnapshot, ReadData, MISSING_FROM_INDEX};
pub use error::StorageError;
pub use lock::{LockMode, RepoLock, LOCK_WAIT};
pub use prune::PruneOutcome;
pub use repair::{Damage, DamagedFile};
pub use repo::Repository;
pub use s3::{S3Options, S3Tuning};
pub use types::{CheckReport, EntryKind, SnapshotMeta, SnapshotSummary, StoredSnapshot, TreeEntry};
