//! `[deploy]`: how `drydock deploy` tells an infrastructure change from an app change.
//! The config's folder is a git repository; the paths changed between the last
//! deployed revision and the one to deploy are matched against these globs (relative
//! to the config's folder). A path matching both counts as infrastructure: the safer
//! reading, since an infra change takes a backup first.
//!
//! A service's own `deploy = { kind = ... }` says how its new version goes live:
//! `docker` (a container swapped behind a reverse proxy, or recreated) in `docker.rs`,
//! `release` (a release directory switched atomically, local or over ssh) in
//! `release.rs`; the health gate and build-id check both share are in `gate.rs`.

use serde::{Deserialize, Serialize};

use super::errors::Collector;

mod docker;
mod gate;
mod infra;
mod release;

use crate::spans::KeyPath;
pub use docker::{DockerDeploy, NginxProxy, ProxyConfig, Strategy};
pub use gate::{BuildIdCheck, HttpGate};
pub use infra::InfraRecreate;
pub use release::{ReleaseDeploy, ReleaseTarget};

/// A service's `deploy = { kind = ... }`: how its new version goes live.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ServiceDeploy {
    /// A container image, started beside the old one and switched to behind a proxy
    /// (`strategy = "swap"`), or put in its place (`strategy = "recreate"`).
    Docker(DockerDeploy),
    /// A built release directory, uploaded, extracted and switched to atomically.
    Release(ReleaseDeploy),
}

impl ServiceDeploy {
    /// How many earlier versions are kept for rollback.
    pub fn keep(&self) -> usize {
        match self {
            ServiceDeploy::Docker(d) => d.keep,
            ServiceDeploy::Release(r) => r.keep,
        }
    }

    /// The checks of the service at `service_at`; `base` is the config file's folder.
    pub(super) fn validate(
        &mut self,
        c: &mut Collector<'_>,
        service_at: &KeyPath,
        base: &std::path::Path,
    ) {
        let at = service_at.key("deploy");
        match self {
            ServiceDeploy::Docker(d) => d.validate(c, &at, base),
            ServiceDeploy::Release(r) => r.validate(c, &at, base),
        }
    }
}

/// `{rev}` in `template` replaced by the commit being deployed (image tags, build ids).
pub fn expand_rev(template: &str, rev: &str) -> String {
    template.replace("{rev}", rev)
}

/// `[deploy]`, every field optional.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// Paths whose change is an infrastructure change (backup, recreate, verify).
    #[serde(default = "DeployConfig::default_infra")]
    pub infra: Vec<String>,
    /// Paths whose change is an app change (a zero-downtime swap).
    #[serde(default = "DeployConfig::default_app")]
    pub app: Vec<String>,
    /// Commands run around every deployment and rollback.
    #[serde(default)]
    pub hooks: DeployHooks,
    /// How infrastructure is recreated: health polling and restore attempts.
    #[serde(default)]
    pub recreate: InfraRecreate,
}

/// `[deploy.hooks]`: shell commands (`sh -c`, in the config's folder) run around a
/// deployment. Each gets `DRYDOCK_DEPLOYMENT` (the record's id), `DRYDOCK_KIND`
/// (`deploy` or `rollback`), `DRYDOCK_REV`, `DRYDOCK_COMMIT`, `DRYDOCK_DECISION` and
/// `DRYDOCK_STACK`; `post_deploy` and `on_failure` also get `DRYDOCK_OUTCOME`, and
/// `on_failure` gets `DRYDOCK_FAILED_STEP` and `DRYDOCK_ERROR`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployHooks {
    /// Before anything changes; failing (non-zero exit) stops the deployment there.
    #[serde(default)]
    pub pre_deploy: Option<String>,
    /// After a deployment that ended well; failing makes it a warning.
    #[serde(default)]
    pub post_deploy: Option<String>,
    /// After a deployment that failed (after its clean-up or rollback).
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// What changes the infrastructure when `[deploy] infra` is not given: the Compose
/// file, the infrastructure's own folders and Dockerfiles, and schema migrations.
pub const DEFAULT_INFRA: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
    "infra/**",
    "**/Dockerfile.infra",
    "**/migrations/**",
    "drydock.toml",
];

/// What changes the app when `[deploy] app` is not given: its sources, its Dockerfile
/// and the lock files of the usual package managers.
pub const DEFAULT_APP: &[&str] = &[
    "src/**",
    "app/**",
    "Dockerfile",
    "**/Cargo.lock",
    "**/package-lock.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/poetry.lock",
    "**/composer.lock",
    "**/Gemfile.lock",
    "**/go.sum",
];

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            infra: Self::default_infra(),
            app: Self::default_app(),
            hooks: DeployHooks::default(),
            recreate: InfraRecreate::default(),
        }
    }
}

impl DeployConfig {
    fn default_infra() -> Vec<String> {
        DEFAULT_INFRA.iter().map(|s| s.to_string()).collect()
    }
    fn default_app() -> Vec<String> {
        DEFAULT_APP.iter().map(|s| s.to_string()).collect()
    }

    /// The globs of `infra` (`app`: false) as one matcher (validated at load).
    pub fn matcher(&self, infra: bool) -> globset::GlobSet {
        build(if infra { &self.infra } else { &self.app })
            .expect("[deploy] globs were validated at load")
    }

    pub(super) fn validate(&self, c: &mut Collector<'_>) {
        let at = KeyPath::default().key("deploy");
        for (key, globs) in [("infra", &self.infra), ("app", &self.app)] {
            for (i, glob) in globs.iter().enumerate() {
                if let Err(e) = glob_of(glob) {
                    c.push(
                        &at.key(key).index(i),
                        format!("`{glob}` is not a glob ({e}); write paths relative to the config's folder, e.g. \"src/**\""),
                    );
                }
            }
        }
        self.recreate.validate(c, &at);
    }
}

/// A glob as `[deploy]` means it: `*` stays within one path segment, `**` spans them.
fn glob_of(glob: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
}

fn build(globs: &[String]) -> Result<globset::GlobSet, globset::Error> {
    let mut set = globset::GlobSetBuilder::new();
    for glob in globs {
        set.add(glob_of(glob)?);
    }
    set.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_sort_the_usual_paths() {
        let d = DeployConfig::default();
        let (infra, app) = (d.matcher(true), d.matcher(false));
        for path in [
            "compose.yaml",
            "db/migrations/0001_init.sql",
            "infra/nginx.conf",
        ] {
            assert!(infra.is_match(path), "{path} is infra");
        }
        for path in [
            "src/main.rs",
            "src/api/handlers.py",
            "Cargo.lock",
            "web/package-lock.json",
        ] {
            assert!(app.is_match(path) && !infra.is_match(path), "{path} is app");
        }
        for path in ["README.md", "docs/src.md"] {
            assert!(
                !infra.is_match(path) && !app.is_match(path),
                "{path} is neither"
            );
        }
    }
}
