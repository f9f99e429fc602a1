//! `kind = "sqlite"`: one SQLite database file, copied with the online backup API.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{SourceKindSpec, SourceSpec, SourceValidation};
use crate::config::health::{CheckSpec, SqliteCheck};
use crate::vocabulary::Priority;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    pub path: PathBuf,
    /// When `path` is a symlink, a restore replaces the file it points at (the link
    /// stays). Without it such a restore is refused, naming the link and its target.
    #[serde(default)]
    pub follow_symlink: bool,
}

/// The `sqlite` kind.
pub struct Sqlite;

impl SourceKindSpec for Sqlite {
    fn count_unit(&self) -> &'static str {
        "rows"
    }
}

impl SourceSpec for SqliteSource {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn priority(&self) -> Priority {
        self.priority
    }

    fn data_paths(&self) -> Vec<&Path> {
        vec![&self.path]
    }

    fn derived_check(&self) -> Option<CheckSpec> {
        Some(CheckSpec::Sqlite(SqliteCheck {
            path: self.path.clone(),
        }))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        v.absolute(&mut self.path);
    }
}
