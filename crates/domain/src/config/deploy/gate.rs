//! The health gate a new version must pass before it is switched to (an HTTP probe
//! repeated until it answers as expected or the deadline passes), and the check that
//! what is served after the switch is the new build. Defaults are kamal-proxy's:
//! `GET /up`, every 1 s, 5 s per probe, 30 s in all.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::config::errors::Collector;
use crate::spans::KeyPath;

/// `health = { path, status, host, interval, timeout, deadline }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGate {
    /// The path probed (with a leading `/`).
    #[serde(default = "HttpGate::default_path")]
    pub path: String,
    /// The status that means healthy; any other (including 3xx) does not.
    #[serde(default = "HttpGate::default_status")]
    pub status: u16,
    /// The Host header sent, for apps that route by name (default: the address probed).
    #[serde(default)]
    pub host: Option<String>,
    /// Time between probes.
    #[serde(default = "HttpGate::default_interval", with = "duration_text")]
    pub interval: Duration,
    /// How long one probe may take.
    #[serde(default = "HttpGate::default_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// How long the new version has to become healthy before the deploy gives up.
    #[serde(default = "HttpGate::default_deadline", with = "duration_text")]
    pub deadline: Duration,
}

impl Default for HttpGate {
    fn default() -> Self {
        HttpGate {
            path: Self::default_path(),
            status: Self::default_status(),
            host: None,
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            deadline: Self::default_deadline(),
        }
    }
}

impl HttpGate {
    fn default_path() -> String {
        "/up".to_string()
    }
    fn default_status() -> u16 {
        200
    }
    fn default_interval() -> Duration {
        Duration::from_secs(1)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(5)
    }
    fn default_deadline() -> Duration {
        Duration::from_secs(30)
    }

    pub(super) fn validate(&self, c: &mut Collector<'_>, at: &KeyPath) {
        if !self.path.starts_with('/') {
            c.push(
                &at.key("path"),
                format!(
                    "`{}` is not a path; write it with a leading '/', e.g. \"/up\"",
                    self.path
                ),
            );
        }
        if !(100..=599).contains(&self.status) {
            c.push(
                &at.key("status"),
                format!(
                    "{} is not an HTTP status; use 100-599, e.g. 200",
                    self.status
                ),
            );
        }
        if self.interval.is_zero() || self.timeout.is_zero() {
            c.push(
                at,
                "interval and timeout must be above zero, e.g. interval = \"1s\", timeout = \"5s\"",
            );
        }
        if self.deadline < self.timeout {
            c.push(
                &at.key("deadline"),
                "the deadline is shorter than one probe's timeout: no probe could finish; make it at least the timeout",
            );
        }
    }
}

/// `build_id = { path | header, expect }`: how the served build tells who it is. After
/// the switch, the served URL must answer with `expect` (`{rev}`: the deployed
/// commit), or the deployment is not a success.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuildIdCheck {
    /// A path whose body (trimmed) is the build id.
    #[serde(default)]
    pub path: Option<String>,
    /// Or a response header carrying it (on the health path).
    #[serde(default)]
    pub header: Option<String>,
    /// The id expected; `{rev}` is the deployed commit.
    #[serde(default = "BuildIdCheck::default_expect")]
    pub expect: String,
}

impl BuildIdCheck {
    fn default_expect() -> String {
        "{rev}".to_string()
    }

    pub(super) fn validate(&self, c: &mut Collector<'_>, at: &KeyPath) {
        match (&self.path, &self.header) {
            (Some(_), Some(_)) | (None, None) => c.push(
                at,
                "give one of `path` (a URL path whose body is the build id) or `header` (a response header carrying it)",
            ),
            (Some(p), None) if !p.starts_with('/') => c.push(
                &at.key("path"),
                format!("`{p}` is not a path; write it with a leading '/', e.g. \"/build\""),
            ),
            _ => {}
        }
    }
}
