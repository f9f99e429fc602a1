//! One module per command: its clap arguments struct (when it takes any) and its
//! `run`, which loads the config, makes the one engine call and prints the result
//! through [`common`], returning the exit code (or a [`common::Failure`]).
//!
//! Adding a command = one module (with its `pub mod` line here) + one variant line + one
//! dispatch line:
//! 1. `pub mod NAME;` here, and `crates/cli/src/commands/NAME.rs` with `NameArgs` and
//!    `pub fn run(args: &NameArgs, g: &Globals) -> Result<u8, Failure>`;
//! 2. one variant in `Command` (`cli.rs`), whose doc comment is the command's `--help`
//!    line: `Name(NameArgs)` (with its `use crate::commands::NAME::NameArgs;`; a
//!    command without arguments is a unit variant, `Name`);
//! 3. one dispatch line in `main.rs`: `Command::Name(a) => NAME::run(a, g),`.
//!
//! The layering, so that no two files import each other: `main.rs` uses `cli.rs` and
//! the commands; `cli.rs` names the commands' argument structs; the commands use
//! [`common`] only, never `cli.rs` (the global flags they need reach them as
//! [`common::Globals`], and `man`/`completions` get `Cli::command()` as an argument).

pub mod backup;
pub mod backups;
pub mod certify;
pub mod common;
pub mod completions;
pub mod demo;
pub mod deploy;
pub mod deployments;
pub mod diagnose;
pub mod drill;
pub mod heal;
pub mod health;
pub mod init;
pub mod install;
pub mod man;
pub mod package;
pub mod populate;
pub mod prune;
pub mod restore;
pub mod rollback;
pub mod serve;
pub mod status;
pub mod sync;
pub mod validate;
pub mod verify;
