//! The two traits a source kind implements (see the `sources` module doc for how a
//! new kind is added), and [`SourceValidation`], the checks a kind's `validate` calls.

use std::path::{Path, PathBuf};

use crate::config::errors::Collector;
use crate::config::fields::{absolute, resolve, url_without_password};
use crate::config::health::CheckSpec;
use crate::config::runtime::{ExecTarget, RuntimeConfig};
use crate::secret::Secret;
use crate::spans::KeyPath;
use crate::vocabulary::Priority;

/// What a kind is, whatever is declared: its aliases, what its fingerprints count, its
/// server's default port and the container images that run it. Implemented by a unit
/// struct (`Postgres`) next to the kind's config struct; its stable name is the
/// [`SourceKind`](crate::vocabulary::SourceKind) that `source_kinds!` writes
/// (`SourceKind::spec` leads back here).
pub trait SourceKindSpec: Sync {
    /// Other names `kind = "..."` accepts (`mariadb` for `mysql`); not listed in
    /// messages.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// What the parts of this kind's fingerprint count, for difference messages
    /// (`rows`, `keys`, `bytes`).
    fn count_unit(&self) -> &'static str;

    /// The port the server listens on when a URL names none: `diagnose`'s port report
    /// and the URL `drydock init` writes. `None` for kinds without a server.
    fn default_port(&self) -> Option<u16> {
        None
    }

    /// Words in a container image's name (registry, owner and tag removed) that say the
    /// image runs this kind (`postgis`, `timescaledb`), for `drydock init`.
    fn image_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The dump source `drydock init` writes for a container whose image runs this
    /// kind: its URL and password reference, guessed from the container's environment.
    /// `None`: the kind has no dump to guess.
    fn guess_from_container(&self, _container: &mut dyn ContainerFacts) -> Option<DumpGuess> {
        None
    }
}

/// What one declared source of the kind holds: implemented by the kind's config struct
/// (`PostgresSource`).
pub trait SourceSpec {
    /// `name = "..."`, when given (the source is otherwise named after its kind).
    fn name(&self) -> Option<&str>;

    /// The priority in force.
    fn priority(&self) -> Priority;

    /// The server's URL (without password), for `diagnose`'s port report.
    fn url(&self) -> Option<&str> {
        None
    }

    /// Every secret the source holds, resolved at load; `redact` removes their values
    /// from what drydock shows.
    fn secrets(&self) -> Vec<&Secret> {
        Vec::new()
    }

    /// Files and folders of the source for `diagnose`'s disk report.
    fn data_paths(&self) -> Vec<&Path> {
        Vec::new()
    }

    /// The health check `drydock health` runs for the source when its service declares
    /// none (`health = [...]`); named after the source by the caller.
    fn derived_check(&self) -> Option<CheckSpec> {
        None
    }

    /// The semantic checks of the source at load, after its keys parsed: URLs, paths
    /// (made absolute), secrets (resolved), the kind's own rules. Each problem goes to
    /// `v`, which names the key and line.
    fn validate(&mut self, v: &mut SourceValidation<'_, '_>);
}

/// What `drydock init` knows of one Compose service, for a kind's
/// [`SourceKindSpec::guess_from_container`].
pub trait ContainerFacts {
    /// The service's name, for notes.
    fn service(&self) -> &str;
    /// Its image, as written in the compose file.
    fn image(&self) -> Option<&str>;
    /// The host port drydock reaches the server on (the published one, or else the
    /// default port, with a note to publish it).
    fn port(&self) -> u16;
    /// `${env:KEY}` for the first of `keys` in the container's environment, and
    /// records that drydock reads KEY; a value is never copied.
    fn secret(&mut self, keys: &[&str]) -> Option<String>;
    /// The value of the first of `keys` set in the container's environment (Compose
    /// interpolation resolved), else `default`; for names, never for credentials.
    fn literal(&self, keys: &[&str], default: &str) -> String;
    /// The word after `flag` in the container's command (`--requirepass X`).
    fn command_arg(&self, flag: &str) -> Option<String>;
    /// Records that drydock reads the environment variable `name`.
    fn reads_variable(&mut self, name: &str);
    /// Something the operator should check, shown in init's report.
    fn note(&mut self, text: String);
}

/// A guessed dump source: `{ kind, priority = "critical", exec = true, url, password }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpGuess {
    pub url: String,
    /// A `${env:KEY}` reference, never a value.
    pub password: Option<String>,
}

/// The checks a kind's [`SourceSpec::validate`] runs on one source, each error pushed
/// with the source's key path (`services.db.data[0].url`) and line.
pub struct SourceValidation<'v, 'a> {
    collector: &'v mut Collector<'a>,
    at: KeyPath,
    base: &'v Path,
    service: &'v str,
    runtime: &'v RuntimeConfig,
    /// The kind's name, for messages.
    kind: &'static str,
}

impl<'v, 'a> SourceValidation<'v, 'a> {
    /// The source at `at` of `service` (whose runtime is `runtime`), of the kind named
    /// `kind`; relative paths are taken from `base`, the config file's folder.
    pub(in crate::config) fn new(
        collector: &'v mut Collector<'a>,
        at: KeyPath,
        base: &'v Path,
        service: &'v str,
        runtime: &'v RuntimeConfig,
        kind: &'static str,
    ) -> Self {
        SourceValidation {
            collector,
            at,
            base,
            service,
            runtime,
            kind,
        }
    }

    /// A problem with the source as a whole.
    pub fn push_source(&mut self, message: impl Into<String>) {
        self.collector.push(&self.at, message);
    }

    /// A problem with the source's `key`.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.collector.push(&self.at.key(key), message);
    }

    /// A problem with item `index` of the source's list `key`.
    pub fn push_item(&mut self, key: &str, index: usize, message: impl Into<String>) {
        self.collector.push(&self.at.key(key).index(index), message);
    }

    /// Checks `url`: it parses, has one of `schemes` (the first is the one suggested),
    /// a host and no password. The parsed URL, for the kind's own rules; `None` after an
    /// error was pushed.
    pub fn url(&mut self, raw: &str, schemes: &[&str]) -> Option<url::Url> {
        match url_without_password(
            raw,
            schemes,
            &format!("a {} source", self.kind),
            "USER@HOST:PORT/...",
        ) {
            Ok(url) => Some(url),
            Err(message) => {
                self.push("url", message);
                None
            }
        }
    }

    /// Resolves the secret at `key` (a literal is refused).
    pub fn secret(&mut self, key: &str, secret: Option<&mut Secret>) {
        if let Some(secret) = secret {
            resolve(self.collector, &self.at.key(key), secret);
        }
    }

    /// Makes `path` absolute against the config file's folder.
    pub fn absolute(&self, path: &mut PathBuf) {
        *path = absolute(self.base, path);
    }

    /// `exec = true`: the tools run in the service's container, so its runtime must be
    /// one; fills `exec_in` with it.
    pub fn exec(&mut self, exec: bool, exec_in: &mut Option<ExecTarget>) {
        if !exec {
            return;
        }
        if self.runtime.is_container() {
            *exec_in = Some(ExecTarget {
                service: self.service.to_string(),
                runtime: self.runtime.clone(),
            });
        } else {
            self.push(
                "exec",
                "exec = true runs the tools inside the service's container, but the service's runtime is not `docker` or `compose`; declare its container runtime or remove `exec`",
            );
        }
    }

    /// `exclude = [...]` glob patterns: none empty.
    pub fn excludes(&mut self, patterns: &[String]) {
        for (j, pattern) in patterns.iter().enumerate() {
            if pattern.trim().is_empty() {
                self.push_item("exclude", j, "empty exclude pattern; remove it");
            }
        }
    }

    /// `bin_dir`, the folder of the dump and restore tools: absolute.
    pub fn bin_dir(&mut self, bin_dir: Option<&PathBuf>) {
        if let Some(dir) = bin_dir.filter(|d| !d.is_absolute()) {
            self.push(
                "bin_dir",
                format!("`{}` is not an absolute path; name the folder holding the tools, e.g. \"/usr/pgsql-16/bin\"", dir.display()),
            );
        }
    }
}

/// The database a URL names (its path without the leading `/`).
pub fn url_database(url: &url::Url) -> &str {
    url.path().trim_start_matches('/')
}
