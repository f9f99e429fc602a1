//! `kind = "files"`: a directory tree on the host, backed up file by file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{SourceKindSpec, SourceSpec, SourceValidation};
use crate::config::health::{CheckSpec, DiskCheck};
use crate::vocabulary::Priority;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    pub path: PathBuf,
    /// Glob patterns relative to `path`, e.g. `cache/**` or `*.tmp`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// When `path` is a symlink, a restore replaces the directory it points at (the
    /// link stays). Without it such a restore is refused, naming the link and its target.
    #[serde(default)]
    pub follow_symlink: bool,
}

/// The `files` kind.
pub struct Files;

impl SourceKindSpec for Files {
    fn count_unit(&self) -> &'static str {
        "bytes"
    }
}

impl SourceSpec for FilesSource {
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
        Some(CheckSpec::Disk(DiskCheck::derived(self.path.clone())))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        v.absolute(&mut self.path);
        v.excludes(&self.exclude);
    }
}
