//! `[stack]` (the stack's name, state folder and host) and `[repository]` (where the
//! local copy of the backups lives and its password).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::errors::Collector;
use super::fields::{absolute, resolve, validate_host, validate_name};
use crate::secret::Secret;
use crate::spans::KeyPath;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    pub name: String,
    /// drydock's own state (history, temporary work). Relative paths are taken from the
    /// config file's folder.
    pub state_dir: PathBuf,
    /// The host name this stack's backups are recorded under (default: the machine's).
    /// Set it where the machine's name is not stable (a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The host this stack was moved from: lets the first backup from this host follow
    /// backups that host took into a shared repository (see README, "Shared
    /// repositories"). Without it such a backup is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    pub path: PathBuf,
    pub password: Secret,
}

impl StackConfig {
    /// Names checked, `state_dir` made absolute against the config's folder `base`.
    pub(super) fn validate(&mut self, c: &mut Collector<'_>, base: &Path) {
        let at = KeyPath::default().key("stack");
        validate_name(c, &at.key("name"), &self.name, "stack");
        for (key, value) in [("host", &self.host), ("moved_from", &self.moved_from)] {
            if let Some(host) = value {
                validate_host(c, &at.key(key), host);
            }
        }
        self.state_dir = absolute(base, &self.state_dir);
    }
}

impl RepositoryConfig {
    /// `path` made absolute against the config's folder `base`, the password resolved.
    pub(super) fn validate(&mut self, c: &mut Collector<'_>, base: &Path) {
        self.path = absolute(base, &self.path);
        resolve(
            c,
            &KeyPath::default().key("repository").key("password"),
            &mut self.password,
        );
    }
}
