//! The trait a check kind implements ([`CheckKindSpec`], see the `health` module doc
//! for how a new kind is added), [`CheckValidation`], the checks a kind's `validate`
//! calls, and the helpers several kinds share (URL rules, thresholds, endpoints).

use std::path::{Path, PathBuf};

use crate::config::errors::Collector;
use crate::config::fields::{absolute, resolve, url_without_password};
use crate::config::runtime::RuntimeConfig;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// What a check kind is and knows of one declared check: its name in `kind = "..."`,
/// its validation at load, and what `diagnose` (endpoints, paths) and `redact`
/// (password) need. Implemented by a type per kind (`TcpKind`) next to the kind's
/// config struct; two kinds may share a struct (`http`/`https`, `postgres`/`mysql`).
pub(super) trait CheckKindSpec {
    /// The keys of one declared check of the kind (`deny_unknown_fields`).
    type Config;

    /// The kind's name (`kind = "tcp"`, serialized configs, messages).
    const NAME: &'static str;

    /// Other names `kind = "..."` accepts (`mariadb` for `mysql`); not listed in
    /// messages.
    const ALIASES: &'static [&'static str] = &[];

    /// The semantic checks of one declared check, completing it (relative paths made
    /// absolute, secrets resolved).
    fn validate(check: &mut Self::Config, v: &mut CheckValidation<'_, '_>);

    /// The network endpoints (`host`, `port`) the check talks to, for `diagnose`'s
    /// port and conflict report.
    fn endpoints(_check: &Self::Config) -> Vec<(String, u16)> {
        Vec::new()
    }

    /// The password the check logs in with, for `redact`.
    fn password(_check: &Self::Config) -> Option<&Secret> {
        None
    }

    /// Files and folders the check reads, for `diagnose`'s disk report.
    fn paths(_check: &Self::Config) -> Vec<&Path> {
        Vec::new()
    }
}

/// Validation of one declared check: each problem is pushed with its key's path (so
/// its message has the file and line); relative paths are taken from the config's
/// folder.
pub(super) struct CheckValidation<'v, 'a> {
    collector: &'v mut Collector<'a>,
    at: &'v KeyPath,
    base: &'v Path,
    runtime: &'v RuntimeConfig,
}

impl<'v, 'a> CheckValidation<'v, 'a> {
    pub(super) fn new(
        collector: &'v mut Collector<'a>,
        at: &'v KeyPath,
        base: &'v Path,
        runtime: &'v RuntimeConfig,
    ) -> Self {
        CheckValidation {
            collector,
            at,
            base,
            runtime,
        }
    }

    /// A problem with the check as a whole.
    pub fn push_check(&mut self, message: impl Into<String>) {
        self.collector.push(self.at, message);
    }

    /// A problem with the check's `key`.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.collector.push(&self.at.key(key), message);
    }

    /// The runtime of the check's service.
    pub fn runtime(&self) -> &RuntimeConfig {
        self.runtime
    }

    /// `path`, made absolute from the config's folder.
    pub fn absolute(&self, path: &mut PathBuf) {
        *path = absolute(self.base, path);
    }

    /// The same for an optional path (`ca_file`).
    pub fn absolute_opt(&self, path: &mut Option<PathBuf>) {
        if let Some(p) = path {
            self.absolute(p);
        }
    }

    /// Resolves the secret at `key`, when one is given.
    pub fn secret(&mut self, key: &str, secret: &mut Option<Secret>) {
        if let Some(s) = secret {
            resolve(self.collector, &self.at.key(key), s);
        }
    }

    /// `raw` at `key` is a URL with one of `schemes`, a host and no password.
    pub fn url(&mut self, key: &str, raw: &str, schemes: &[&str]) {
        if let Err(message) = url_without_password(raw, schemes, "this check", "HOST:PORT/...") {
            self.push(key, message);
        }
    }

    /// `warn_KEY` and `critical_KEY` are percentages and critical is the worse one
    /// (`lower_is_worse` for free space).
    pub fn thresholds(&mut self, key: &str, warn: f64, critical: f64, lower_is_worse: bool) {
        for (k, v) in [
            (format!("warn_{key}"), warn),
            (format!("critical_{key}"), critical),
        ] {
            if !(0.0..=100.0).contains(&v) {
                self.push(&k, "a percentage from 0 to 100");
            }
        }
        let ordered = if lower_is_worse {
            critical <= warn
        } else {
            critical >= warn
        };
        if !ordered {
            self.push(
                &format!("critical_{key}"),
                format!(
                    "must be {} warn_{key} ({warn}); the critical threshold is the worse one",
                    if lower_is_worse {
                        "at most"
                    } else {
                        "at least"
                    }
                ),
            );
        }
    }
}

/// The (`host`, `port`) a URL names, its scheme's default port when it gives none.
pub(super) fn url_endpoint(u: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(u).ok()?;
    let host = url.host_str()?.trim_matches(['[', ']']).to_string();
    let port = url.port_or_known_default().or(match url.scheme() {
        "postgres" | "postgresql" => Some(5432),
        "mysql" | "mariadb" => Some(3306),
        "redis" => Some(6379),
        _ => None,
    })?;
    Some((host, port))
}

/// The one endpoint of a check with one URL, as a list.
pub(super) fn url_endpoints(u: &str) -> Vec<(String, u16)> {
    url_endpoint(u).into_iter().collect()
}

pub(super) fn default_warn_pct() -> f64 {
    80.0
}

pub(super) fn default_critical_pct() -> f64 {
    95.0
}
