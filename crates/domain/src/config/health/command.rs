//! `kind = "command"`: a shell command's exit code (0 healthy, the listed ones a
//! warning, any other critical).

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// A shell command (`sh -c`): exit 0 is healthy.
    pub run: String,
    /// Exit codes that mean a warning rather than critical (e.g. `[1]`, the Nagios
    /// convention).
    #[serde(default)]
    pub warn_exit_codes: Vec<i32>,
}

/// The `command` kind.
pub(super) enum CommandKind {}

impl CheckKindSpec for CommandKind {
    type Config = CommandCheck;
    const NAME: &'static str = "command";

    fn validate(cmd: &mut CommandCheck, v: &mut CheckValidation<'_, '_>) {
        if cmd.run.trim().is_empty() {
            v.push("run", "empty command; give the shell command to run");
        }
    }
}
