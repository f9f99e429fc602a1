//! `drydock completions SHELL`: a shell completion script generated from the clap
//! definitions, so it never drifts from `--help`.

use clap::Args;

use super::common::{write_stdout, Failure};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `command` is the whole command line's definition (`Cli::command()`), passed in so
/// that this module does not depend on `cli.rs`, which names it.
pub fn run(args: &CompletionsArgs, mut command: clap::Command) -> Result<u8, Failure> {
    // Rendered into memory first: clap_complete panics on a closed pipe
    // (`drydock completions bash | head`), and a reader that stops early is fine.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "drydock", &mut script);
    write_stdout(&script);
    Ok(0)
}
