//! drydock's domain: what a stack declares (`config`), how secrets are referenced
//! (`secret`), what a backup records (`manifest`, `fingerprint`), which sources a run
//! touches and in what order (`plan`), the events core work reports (`events`), how a
//! running operation is cancelled (`cancel`) and how it ended (`verdict`), and the words
//! they all share (`vocabulary`).
//!
//! Nothing here talks to a server or a repository; adapters and the engine do.

pub mod cancel;
pub mod clock;
pub mod config;
pub mod events;
pub mod fingerprint;
pub mod manifest;
pub mod plan;
pub mod retention;
pub mod secret;
mod spans;
pub mod verdict;
pub mod vocabulary;

pub use cancel::{Cancel, CancelHook};
pub use config::{Config, ConfigError, ConfigErrors};
pub use events::{Event, EventSink, NoEvents};
pub use fingerprint::{Fingerprint, PartDigest, RowSetDigest};
pub use manifest::{BackupId, Manifest, SourceRecord, SourceStatus};
pub use secret::{Secret, SecretRef};
pub use verdict::Verdict;
pub use vocabulary::{Priority, Role, SourceKind};
