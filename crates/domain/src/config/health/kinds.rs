//! The keys of each check kind, one struct per kind (`http` and `https` share
//! [`HttpCheck`], `postgres` and `mysql` [`SqlCheck`]), each with
//! `deny_unknown_fields` and its defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// `HOST:PORT`.
    pub address: String,
}

/// `http` and `https`: one request, judged by status, latency, body and (for https)
/// the certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    /// Accepted statuses (`200` or `[200, 302]`); default any 2xx. Redirects are not
    /// followed, so a 302 is seen as a 302.
    #[serde(default)]
    pub expect_status: Option<OneOrMany>,
    /// Slower answers are a warning.
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// A field of a JSON body, as a JSON pointer (`/status`) or dotted path (`status`,
    /// `checks.db.status`); with `json_equals`.
    #[serde(default)]
    pub json_field: Option<String>,
    #[serde(default)]
    pub json_equals: Option<serde_json::Value>,
    /// PEM file with the CA(s) to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Fewer days until the certificate expires is a warning ...
    #[serde(default = "HttpCheck::default_cert_warn_days")]
    pub cert_warn_days: u32,
    /// ... and this few is critical (an expired certificate always is).
    #[serde(default = "HttpCheck::default_cert_critical_days")]
    pub cert_critical_days: u32,
    /// Require a `Strict-Transport-Security` header.
    #[serde(default)]
    pub hsts: bool,
}

impl HttpCheck {
    fn default_cert_warn_days() -> u32 {
        14
    }
    fn default_cert_critical_days() -> u32 {
        3
    }

    /// Whether `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        match &self.expect_status {
            None => (200..300).contains(&status),
            Some(OneOrMany::One(s)) => *s == status,
            Some(OneOrMany::Many(list)) => list.contains(&status),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve.
    pub host: String,
    /// Addresses it must resolve to (at least one of them); default: any.
    #[serde(default)]
    pub expect: Vec<std::net::IpAddr>,
    /// `IP` or `IP:PORT` of the DNS server to ask; default: the system resolver.
    #[serde(default)]
    pub resolver: Option<String>,
    /// `A` (default) or `AAAA`, when asking a `resolver`.
    #[serde(default)]
    pub record: DnsRecord,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecord {
    #[default]
    A,
    Aaaa,
}

/// `postgres` and `mysql`: connect, `SELECT 1`, database size, connections vs max.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    /// `postgres://USER@HOST:PORT/DB` or `mysql://USER@HOST:PORT/DB`, no password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default = "default_warn_pct")]
    pub warn_connections_pct: f64,
    #[serde(default = "default_critical_pct")]
    pub critical_connections_pct: f64,
}

impl SqlCheck {
    /// The check `drydock health` derives for a database source: connection thresholds
    /// at their defaults.
    pub fn derived(url: &str, password: Option<Secret>) -> Self {
        SqlCheck {
            url: url.to_string(),
            password,
            warn_connections_pct: default_warn_pct(),
            critical_connections_pct: default_critical_pct(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCheck {
    /// `redis://[USER@]HOST:PORT`, no password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `master` or `replica`: the role the server must have.
    #[serde(default)]
    pub expect_role: Option<String>,
    #[serde(default = "default_warn_pct")]
    pub warn_memory_pct: f64,
    #[serde(default = "default_critical_pct")]
    pub critical_memory_pct: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteCheck {
    pub path: PathBuf,
}

/// The service's runtime: running, restart count, uptime.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessCheck {
    /// More restarts than this (when the runtime counts them) is a warning.
    #[serde(default)]
    pub max_restarts: Option<u32>,
    /// Running for less than this is a warning (a crash loop looks like that).
    #[serde(default, with = "duration_text::option")]
    pub min_uptime: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskCheck {
    /// A file or folder on the filesystem to check.
    pub path: PathBuf,
    /// Less free space (percent of the filesystem) is a warning ...
    #[serde(default = "DiskCheck::default_warn_free_pct")]
    pub warn_free_pct: f64,
    /// ... or critical.
    #[serde(default = "DiskCheck::default_critical_free_pct")]
    pub critical_free_pct: f64,
    /// Less free space than this (`"2 GiB"`, bytes as a number) is a warning ...
    #[serde(default)]
    pub warn_free_bytes: Option<bytesize::ByteSize>,
    /// ... or critical.
    #[serde(default)]
    pub critical_free_bytes: Option<bytesize::ByteSize>,
}

impl DiskCheck {
    fn default_warn_free_pct() -> f64 {
        20.0
    }
    fn default_critical_free_pct() -> f64 {
        10.0
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// A shell command (`sh -c`): exit 0 is healthy.
    pub run: String,
    /// Exit codes that mean a warning rather than critical (e.g. `[1]`, the Nagios
    /// convention).
    #[serde(default)]
    pub warn_exit_codes: Vec<i32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcCheck {
    /// The issuer URL; the discovery document is `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdCheck {
    /// Client URLs of the members to ask (`http://HOST:2379`).
    pub endpoints: Vec<String>,
    /// Members the cluster must have.
    #[serde(default)]
    pub expect_members: Option<usize>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatroniCheck {
    /// The REST API of one member (`http://HOST:8008`).
    pub url: String,
    /// Replicas that must be running; default: every replica Patroni lists.
    #[serde(default)]
    pub expect_replicas: Option<usize>,
    /// More replication lag than this is a warning ...
    #[serde(default = "PatroniCheck::default_warn_lag")]
    pub warn_lag_bytes: bytesize::ByteSize,
    /// ... or critical.
    #[serde(default = "PatroniCheck::default_critical_lag")]
    pub critical_lag_bytes: bytesize::ByteSize,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl PatroniCheck {
    fn default_warn_lag() -> bytesize::ByteSize {
        bytesize::ByteSize::mib(1)
    }
    fn default_critical_lag() -> bytesize::ByteSize {
        bytesize::ByteSize::mib(16)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelCheck {
    /// A sentinel: `redis://HOST:26379`.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The monitored master's name.
    pub master: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisClusterCheck {
    /// One node of the cluster: `redis://HOST:PORT`.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
}

pub(super) fn default_warn_pct() -> f64 {
    80.0
}
pub(super) fn default_critical_pct() -> f64 {
    95.0
}
