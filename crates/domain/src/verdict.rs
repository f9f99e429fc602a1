//! The one answer every operation's report gives: did it work, and if not, how badly.
//! The CLI turns it into the process's exit code ([`Verdict::exit_code`], the table in
//! `drydock --help` and the README), a daemon into a job status and a notification's
//! severity, an HTTP API into a status code. Reports keep their own detailed fields
//! (and their JSON); `verdict()` is the summary of them.

use serde::{Deserialize, Serialize, Serializer};

/// How an operation ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything asked for was done and proven.
    Ok,
    /// Done, but something needs a look (a non-critical source skipped, a remote not
    /// updated, a target missed, live data changed).
    Warning,
    /// Something that matters failed (a critical source, a restore that did not
    /// verify, damage found, a service down).
    Failed,
    /// Nothing was changed: not confirmed, not allowed, no such backup.
    Refused,
    /// The operation could not run at all (a drill without a backup or sandbox).
    CouldNotRun,
    /// What the operation is about is not there (a service not deployed).
    Missing,
    /// Something failed and the previous state could not be put back: an operator is
    /// needed now (a deployment whose rollback failed).
    Critical,
}

impl Verdict {
    /// The process exit code: 0 ok, 1 warning, 2 failed, 3 refused, could not run,
    /// missing or critical. The one mapping; reports whose JSON carries an `exit_code` use it too.
    pub const fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Failed => 2,
            Verdict::Refused | Verdict::CouldNotRun | Verdict::Missing | Verdict::Critical => 3,
        }
    }

    /// The worse of two verdicts on the ok < warning < failed ladder (what a run of
    /// several parts reports); the other verdicts are not ranked against each other
    /// here, each command says how they combine.
    pub fn worse(self, other: Verdict) -> Verdict {
        let rank = |v: Verdict| match v {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            _ => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Serializes a verdict as its exit code, for reports whose JSON has always carried
/// `exit_code` (health, diagnose, heal): `#[serde(rename = "exit_code", serialize_with
/// = "drydock_domain::verdict::as_exit_code")]`.
pub fn as_exit_code<S: Serializer>(verdict: &Verdict, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i32(i32::from(verdict.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let codes: Vec<u8> = [
            Verdict::Ok,
            Verdict::Warning,
            Verdict::Failed,
            Verdict::Refused,
            Verdict::CouldNotRun,
            Verdict::Missing,
            Verdict::Critical,
        ]
        .into_iter()
        .map(Verdict::exit_code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 3, 3, 3]);
        assert_eq!(Verdict::Ok.worse(Verdict::Warning), Verdict::Warning);
        assert_eq!(Verdict::Failed.worse(Verdict::Warning), Verdict::Failed);
    }
}
