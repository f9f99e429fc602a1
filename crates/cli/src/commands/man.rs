//! `drydock man`: the man page (roff) generated from the clap definitions, so it never
//! drifts from `--help`.

use super::common::{write_stdout, Failure};

/// `command` is the whole command line's definition (`Cli::command()`), passed in so
/// that this module does not depend on `cli.rs`, which names it.
pub fn run(command: clap::Command) -> Result<u8, Failure> {
    // Rendered into memory first, like the completions: a closed pipe is fine.
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .expect("rendering into memory does not fail");
    write_stdout(&page);
    Ok(0)
}
