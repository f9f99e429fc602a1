//! `kind = "volume"`: a Docker named volume or a bind-mounted directory, backed up as a
//! tree; its priority may come from the volume's `drydock.backup` label.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{SourceKindSpec, SourceSpec, SourceValidation};
use crate::config::fields::valid_docker_name;
use crate::config::health::{CheckSpec, DiskCheck};
use crate::vocabulary::Priority;

/// The label on a Docker volume giving its backup priority (the plain `backup`
/// label many stacks already use is read too).
pub const LABEL_BACKUP: &str = "drydock.backup";
/// The label on a Docker volume describing it.
pub const LABEL_DESCRIPTION: &str = "drydock.description";
/// The container label asking drydock to stop it while its volumes are read.
pub const LABEL_STOP_DURING_BACKUP: &str = "drydock.stop-during-backup";

/// A Docker named volume or a bind-mounted directory, backed up as a tree.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSource {
    #[serde(default)]
    pub name: Option<String>,
    /// Optional when the volume's `drydock.backup` label gives it.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// A Docker named volume.
    #[serde(default)]
    pub volume: Option<String>,
    /// A bind-mounted directory on the host.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The volume's `drydock.backup` label, filled by drydock when it reads the volume.
    #[serde(skip_deserializing)]
    pub label_priority: Option<Priority>,
}

impl VolumeSource {
    /// The priority in force: the config's, else the label's, else `medium` (a volume
    /// whose label could not be read).
    pub fn effective_priority(&self) -> Priority {
        self.priority
            .or(self.label_priority)
            .unwrap_or(Priority::Medium)
    }

    /// The Docker volume's name, or the bind mount's path, for messages.
    pub fn target(&self) -> String {
        match (&self.volume, &self.path) {
            (Some(v), _) => format!("volume {v}"),
            (None, Some(p)) => format!("bind mount {}", p.display()),
            (None, None) => "volume ?".into(),
        }
    }
}

/// The `volume` kind.
pub struct Volume;

impl SourceKindSpec for Volume {
    fn count_unit(&self) -> &'static str {
        "bytes"
    }
}

impl SourceSpec for VolumeSource {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn priority(&self) -> Priority {
        self.effective_priority()
    }

    // No `data_paths`: `diagnose`'s disk report lists the files of `sqlite` and
    // `files` sources; a volume's disk is Docker's (or its derived disk check's).

    fn derived_check(&self) -> Option<CheckSpec> {
        // A named volume lives in Docker's data root; the container's state is checked
        // through its runtime.
        let path = self.path.as_ref()?;
        Some(CheckSpec::Disk(DiskCheck::derived(path.clone())))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        if let Some(path) = self.path.as_mut() {
            v.absolute(path);
        }
        match (&self.volume, &self.path) {
            (Some(_), Some(_)) => v.push_source("give either `volume` (a Docker named volume) or `path` (a bind-mounted directory), not both"),
            (None, None) => v.push_source("missing `volume` or `path`; name the Docker volume (volume = \"NAME\") or the bind-mounted directory (path = \"/srv/data\")"),
            (Some(name), None) if !valid_docker_name(name) => v.push("volume", format!("invalid Docker volume name `{name}`: use letters, digits, '_', '.' or '-', starting with a letter or digit")),
            (None, Some(_)) if self.priority.is_none() => v.push_source("a bind mount has no labels to take its priority from; add `priority`"),
            _ => {}
        }
        v.excludes(&self.exclude);
    }
}
