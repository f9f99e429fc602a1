//! Docker volumes: a named volume (`volume = "NAME"`) or a bind-mounted directory
//! (`path = "/srv/data"`), backed up as a tree exactly like `files` (the same walk, the
//! same fingerprint: [`crate::files`] does the work on the volume's host directory).
//!
//! A named volume's host directory is its `Mountpoint`, or, for a local volume that
//! binds a host directory (`driver_opts: {type: none, o: bind, device: DIR}`, as
//! Compose stacks often declare them), that `device` directory (the mountpoint is only mounted while a container
//! uses it). Restore rebuilds the tree beside the volume's directory and swaps it in
//! once complete, like `files` (a missing volume is created first; an existing one is
//! never removed, which would empty it before the backup was read); the engine refuses
//! while a container using it runs unless told to stop it (`--stop`).
//!
//! Labels: `drydock.backup=critical|high|medium|low|none` (or the plain `backup` label many stacks already use)
//! gives the priority when the config does not; `drydock.description` describes it.

use std::path::PathBuf;

use drydock_domain::config::{
    FilesSource, SourceKind, VolumeSource, LABEL_BACKUP, LABEL_DESCRIPTION,
};
use drydock_domain::{Event, Priority, SourceRecord};
use drydock_runtimes::docker::{DockerClient, DockerError, DockerVolume};

use crate::files::Files;
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

pub struct Volume {
    config: VolumeSource,
}

/// What a volume's labels say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeLabels {
    pub priority: Option<Priority>,
    pub description: Option<String>,
    /// A label value drydock does not understand, for a warning.
    pub invalid: Option<String>,
}

/// Reads drydock's labels from a volume's label map.
pub fn parse_labels(labels: &std::collections::HashMap<String, String>) -> VolumeLabels {
    let mut out = VolumeLabels::default();
    let raw = labels.get(LABEL_BACKUP).or_else(|| labels.get("backup"));
    if let Some(raw) = raw {
        match raw.trim().to_lowercase().parse::<Priority>() {
            Ok(p) => out.priority = Some(p),
            Err(_) => out.invalid = Some(raw.clone()),
        }
    }
    out.description = labels
        .get(LABEL_DESCRIPTION)
        .or_else(|| labels.get("description"))
        .cloned();
    out
}

/// The labels of volume `name`; `Ok(None)` when it does not exist.
pub fn volume_labels(name: &str) -> Result<Option<VolumeLabels>, DockerError> {
    let client = DockerClient::connect()?;
    Ok(client.volume(name)?.map(|v| parse_labels(&v.labels)))
}

/// Where a volume's files are on this host.
struct Resolved {
    path: PathBuf,
    volume: Option<DockerVolume>,
}

impl Volume {
    pub fn new(config: VolumeSource) -> Self {
        Volume { config }
    }

    fn loc(&self) -> String {
        self.location()
    }

    fn docker_err(&self, e: DockerError) -> SourceError {
        SourceError::Connect {
            location: self.loc(),
            cause: e.to_string(),
            fix: "drydock reads volumes through the Docker daemon".into(),
        }
    }

    /// The volume's host directory; `Ok(None)` when the named volume does not exist.
    fn resolve(&self) -> Result<Option<Resolved>, SourceError> {
        let Some(name) = &self.config.volume else {
            let path = self.config.path.clone().expect("validated: volume or path");
            return Ok(Some(Resolved { path, volume: None }));
        };
        let client = DockerClient::connect().map_err(|e| self.docker_err(e))?;
        let Some(v) = client.volume(name).map_err(|e| self.docker_err(e))? else {
            return Ok(None);
        };
        let binds = v
            .options
            .get("o")
            .is_some_and(|o| o.split(',').any(|x| x == "bind"));
        // A local volume binding a host directory: the files are there.
        let path = match v.options.get("device") {
            Some(device) if binds => PathBuf::from(device),
            _ => PathBuf::from(&v.mountpoint),
        };
        Ok(Some(Resolved {
            path,
            volume: Some(v),
        }))
    }

    fn existing(&self) -> Result<Resolved, SourceError> {
        self.resolve()?.ok_or_else(|| {
            SourceError::invalid(
                &self.loc(),
                format!(
                    "Docker volume `{}` does not exist (`docker volume ls` lists them); create it, or fix `volume` in drydock.toml",
                    self.config.volume.as_deref().unwrap_or_default()
                ),
            )
        })
    }

    fn files(&self, path: PathBuf) -> Files {
        Files::new(FilesSource {
            name: self.config.name.clone(),
            priority: self.config.effective_priority(),
            path,
            exclude: self.config.exclude.clone(),
            // Docker's (or the bound) directory itself; a symlink there is refused.
            follow_symlink: false,
        })
    }

    /// Containers that mount this volume (or bind this directory), with whether each runs.
    pub fn users(&self) -> Result<Vec<(String, bool)>, SourceError> {
        let client = match DockerClient::connect() {
            Ok(c) => c,
            // A plain bind mount without Docker around: nobody can be using it.
            Err(_) if self.config.volume.is_none() => return Ok(Vec::new()),
            Err(e) => return Err(self.docker_err(e)),
        };
        let path = self
            .config
            .path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        client
            .users_of(self.config.volume.as_deref(), path.as_deref())
            .map_err(|e| self.docker_err(e))
    }
}

impl DataSource for Volume {
    fn kind(&self) -> SourceKind {
        SourceKind::Volume
    }

    fn location(&self) -> String {
        self.config.target()
    }

    fn restore_mode(&self) -> RestoreMode {
        RestoreMode::FileLevel
    }

    fn check(&self) -> Result<(), SourceError> {
        let r = self.existing()?;
        self.files(r.path).check()
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let r = self.existing()?;
        if let Some(desc) = r
            .volume
            .as_ref()
            .and_then(|v| parse_labels(&v.labels).description)
        {
            ctx.events.emit(Event::Step {
                message: format!("{}: {} ({desc})", ctx.label, self.loc()),
            });
        }
        self.files(r.path).backup(store, ctx)
    }

    fn has_data(&self) -> Result<bool, SourceError> {
        match self.resolve()? {
            None => Ok(false),
            Some(r) => self.files(r.path).has_data(),
        }
    }

    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let running: Vec<String> = self
            .users()?
            .into_iter()
            .filter(|(_, running)| *running)
            .map(|(n, _)| n)
            .collect();
        if !running.is_empty() {
            return Err(SourceError::invalid(
                &self.loc(),
                format!(
                    "in use by running container(s) {}; stop them first (or restore with --stop)",
                    running.join(", ")
                ),
            ));
        }
        let loc = self.loc();
        let r = match (self.resolve()?, &self.config.volume) {
            (Some(r), _) => r,
            (None, Some(name)) => {
                // Gone entirely: create it, then fill it.
                let client = DockerClient::connect().map_err(|e| self.docker_err(e))?;
                let v = DockerVolume {
                    name: name.clone(),
                    driver: "local".into(),
                    ..Default::default()
                };
                client
                    .create_volume(&v)
                    .map_err(|e| SourceError::invalid(&loc, e.to_string()))?;
                self.existing()?
            }
            (None, None) => unreachable!("a bind mount always resolves"),
        };
        // The contents are replaced like a `files` directory's: rebuilt beside the old
        // ones and swapped in once complete. The volume itself is never removed and
        // recreated first: that would empty it before the backup was read.
        self.files(r.path).restore(fetch, record, ctx)
    }

    fn inspect(&self, ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        let r = self.existing()?;
        self.files(r.path).inspect(ctx)
    }

    /// A directory sandbox, as for `files`.
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let r = self.existing()?;
        self.files(r.path).sandbox(ctx)
    }

    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        let r = self.existing()?;
        self.files(r.path).write_canary(token)
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let r = self.existing()?;
        self.files(r.path).read_canary()
    }

    /// Empties the volume's directory (the volume itself stays, like a mount point).
    fn wipe(&self) -> Result<(), SourceError> {
        match self.resolve()? {
            Some(r) => self.files(r.path).wipe(),
            None => Ok(()),
        }
    }

    fn populate(&self, data: &crate::TestData) -> Result<(), SourceError> {
        let r = self.existing()?;
        self.files(r.path).populate(data)
    }

    fn measure_test_data(&self) -> Result<crate::TestMeasures, SourceError> {
        let r = self.existing()?;
        self.files(r.path).measure_test_data()
    }

    fn running_users(&self) -> Result<Vec<String>, SourceError> {
        Ok(self
            .users()?
            .into_iter()
            .filter(|(_, running)| *running)
            .map(|(n, _)| n)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_priority_and_description() {
        let mut labels = std::collections::HashMap::new();
        labels.insert("drydock.backup".to_string(), "Critical".to_string());
        labels.insert("drydock.description".to_string(), "keys".to_string());
        let l = parse_labels(&labels);
        assert_eq!(l.priority, Some(Priority::Critical));
        assert_eq!(l.description.as_deref(), Some("keys"));

        // The plain, unprefixed labels many stacks already use, and a value drydock does not know.
        let mut labels = std::collections::HashMap::new();
        labels.insert("backup".to_string(), "sometimes".to_string());
        let l = parse_labels(&labels);
        assert_eq!(l.priority, None);
        assert_eq!(l.invalid.as_deref(), Some("sometimes"));
    }
}
