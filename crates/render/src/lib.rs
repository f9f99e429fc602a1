//! drydock's render layer: what people read of the engine's reports.
//!
//! The engine returns data (serializable reports); this crate turns them into text
//! for a terminal or a log, and into Markdown for the report files. The CLI prints
//! what it renders, and the daemon, its dashboard and its notifications will use the
//! same functions, so a report reads the same wherever it is read. JSON output is not
//! here: it is the reports' serde shape, stable and documented in the README.
//!
//! # Layout
//!
//! One module per report, named after the command that produces it:
//! [`backup`](mod@backup), [`list`](mod@list) (`drydock backups`),
//! [`restore`](mod@restore), [`verify`](mod@verify) (also `verify --live`),
//! [`sync`](mod@sync), [`prune`](mod@prune), [`status`](mod@status), [`drill`],
//! [`certify`], [`populate`](mod@populate), [`demo`](mod@demo),
//! [`health`](mod@health), [`diagnose`](mod@diagnose), [`heal`](mod@heal) and
//! [`init`](mod@init), and [`deploy`](mod@deploy) (`deploy --plan`). Each exposes a function named
//! like the report that returns a `String`; the most used ones are re-exported at the
//! crate root (`drydock_render::backup(&report)`). Shared layout (sizes, durations,
//! ages, tables) is in [`layout`] (public: the dashboard formats with it too), the words for the engine's status enums in [`words`].
//!
//! # Rules
//!
//! - Users read words, never Rust names: every status enum is turned into text by an
//!   exhaustive `match` in [`words`] (`could not run`, not `CouldNotRun`); no `{:?}`
//!   of anything shown to a user.
//! - Every duration says what it measures when one output shows more than one (a
//!   source's restore TIME, the whole restore's RTO).
//! - Plain text only: no colour codes, so output piped to a file or a cron log reads
//!   the same as on a terminal.
//! - A library: nothing here prints, exits or reads the environment.
//!
//! # Report files: the caller writes them
//!
//! Drill and certify reports are also written as `FILE.json` + `FILE.md`. The engine
//! decides where (it names the paths in the report's `report_files` and records them
//! in the state database) but does not write: writing the Markdown would need this
//! crate, which depends on the engine. Rather than hand the engine a renderer, the
//! caller writes both files with [`report_files::write_drill`] or
//! [`report_files::write_certify`] after the operation returns. The CLI does so now;
//! the daemon will call the same functions, so both write the same bytes, and the
//! engine stays free of presentation.

pub mod backup;
pub mod certify;
pub mod demo;
pub mod deploy;
pub mod diagnose;
pub mod drill;
pub mod heal;
pub mod health;
pub mod init;
pub mod layout;
pub mod list;
pub mod populate;
pub mod prune;
pub mod report_files;
pub mod restore;
pub mod status;
pub mod sync;
pub mod verify;
pub mod words;

pub use backup::backup;
pub use demo::demo;
pub use deploy::{deploy_plan, deploy_report, deployments, package, rollback_report};
pub use diagnose::diagnose;
pub use heal::heal;
pub use health::health;
pub use init::init;
pub use layout::{bytes, seconds};
pub use list::backups;
pub use populate::populate;
pub use prune::prune;
pub use restore::restore;
pub use status::status;
pub use sync::sync;
pub use verify::{live, verify};
