//! `[serve]`: how `drydock serve` listens, who may write to its HTTP API, when a
//! source counts as overdue, how many jobs run at once and how long a stop waits.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_text;
use super::errors::Collector;
use super::fields::resolve;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// `[serve]`, every field optional.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `ADDR:PORT` the HTTP API listens on; `--listen` overrides it.
    #[serde(default = "ServeConfig::default_listen")]
    pub listen: String,
    /// The bearer token every write to the API must carry (a secret reference).
    /// Required when `listen` is not a loopback address.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A source is overdue when its last good backup is older than this many times its
    /// schedule's period.
    #[serde(default = "ServeConfig::default_overdue_factor")]
    pub overdue_factor: f64,
    /// Jobs running at once, over every repository.
    #[serde(default = "ServeConfig::default_max_concurrent_jobs")]
    pub max_concurrent_jobs: usize,
    /// On SIGTERM/SIGINT, how long running jobs may go on before they are cancelled.
    #[serde(default = "ServeConfig::default_stop_timeout", with = "duration_text")]
    pub stop_timeout: Duration,
}

/// The address `drydock serve` listens on without `[serve] listen` or `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

impl ServeConfig {
    fn default_listen() -> String {
        DEFAULT_LISTEN.to_string()
    }
    fn default_overdue_factor() -> f64 {
        1.25
    }
    fn default_max_concurrent_jobs() -> usize {
        2
    }
    fn default_stop_timeout() -> Duration {
        Duration::from_secs(30)
    }

    /// `listen` as an address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .expect("[serve] listen was validated at load")
    }

    pub(super) fn validate(&mut self, c: &mut Collector<'_>) {
        let at = KeyPath::default().key("serve");
        if let Err(message) = parse_listen(&self.listen) {
            c.push(&at.key("listen"), message);
        }
        if let Some(token) = self.token.as_mut() {
            resolve(c, &at.key("token"), token);
        }
        if !(self.overdue_factor.is_finite() && self.overdue_factor >= 1.0) {
            c.push(
                &at.key("overdue_factor"),
                format!(
                    "overdue_factor {} is below 1: a source would be overdue before its next backup is due; use 1 or more (default 1.25)",
                    self.overdue_factor
                ),
            );
        }
        if self.max_concurrent_jobs == 0 {
            c.push(
                &at.key("max_concurrent_jobs"),
                "max_concurrent_jobs is 0: no job could ever run; use 1 or more (default 2)",
            );
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: Self::default_listen(),
            token: None,
            overdue_factor: Self::default_overdue_factor(),
            max_concurrent_jobs: Self::default_max_concurrent_jobs(),
            stop_timeout: Self::default_stop_timeout(),
        }
    }
}

/// `ADDR:PORT` (`127.0.0.1:8470`, `[::1]:8470`, `0.0.0.0:8470`), with a message that
/// says how to write it.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:8470 or [::1]:8470")
    })
}
