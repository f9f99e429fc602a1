//! `health = [...]`: the checks declared per service, parsed item by item like `data`
//! sources so every error keeps its line, then validated (names, URLs, thresholds) and
//! their secrets resolved.
//!
//! Every check has the common keys `name` (default: its kind; unique within the
//! service), `timeout` (the whole check's budget, retries included; default `5s`) and
//! `retries` (further attempts after a failed one, with exponential backoff; default 3).
//! The rest are the kind's own keys, each kind a struct with `deny_unknown_fields`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_text;
use super::errors::Collector;
use super::fields::{absolute, resolve, validate_name};
use super::runtime::RuntimeConfig;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// The kinds, as written in `kind = "..."`.
pub const CHECK_KINDS: &str = "tcp, http, https, dns, postgres, mysql, redis, sqlite, process, disk, command, oidc, etcd, patroni, redis-sentinel, redis-cluster";

/// One declared health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthCheckConfig {
    /// `name`, or else the kind.
    pub name: String,
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(flatten)]
    pub spec: CheckSpec,
}

impl HealthCheckConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_RETRIES: u32 = 3;

    /// A check with the default timeout and retries, named after its kind.
    pub fn new(spec: CheckSpec) -> Self {
        HealthCheckConfig {
            name: spec.kind().to_string(),
            timeout: Self::DEFAULT_TIMEOUT,
            retries: Self::DEFAULT_RETRIES,
            spec,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}

/// What a check looks at, per kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckSpec {
    Tcp(TcpCheck),
    Http(HttpCheck),
    Https(HttpCheck),
    Dns(DnsCheck),
    Postgres(SqlCheck),
    Mysql(SqlCheck),
    Redis(RedisCheck),
    Sqlite(SqliteCheck),
    Process(ProcessCheck),
    Disk(DiskCheck),
    Command(CommandCheck),
    Oidc(OidcCheck),
    Etcd(EtcdCheck),
    Patroni(PatroniCheck),
    RedisSentinel(SentinelCheck),
    RedisCluster(RedisClusterCheck),
}

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Http(_) => "http",
            CheckSpec::Https(_) => "https",
            CheckSpec::Dns(_) => "dns",
            CheckSpec::Postgres(_) => "postgres",
            CheckSpec::Mysql(_) => "mysql",
            CheckSpec::Redis(_) => "redis",
            CheckSpec::Sqlite(_) => "sqlite",
            CheckSpec::Process(_) => "process",
            CheckSpec::Disk(_) => "disk",
            CheckSpec::Command(_) => "command",
            CheckSpec::Oidc(_) => "oidc",
            CheckSpec::Etcd(_) => "etcd",
            CheckSpec::Patroni(_) => "patroni",
            CheckSpec::RedisSentinel(_) => "redis-sentinel",
            CheckSpec::RedisCluster(_) => "redis-cluster",
        }
    }

    /// The network endpoints (`host`, `port`) the check talks to, for `diagnose`'s
    /// port and conflict report.
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        let from_url = |u: &str| -> Option<(String, u16)> {
            let url = url::Url::parse(u).ok()?;
            let host = url.host_str()?.trim_matches(['[', ']']).to_string();
            let port = url.port_or_known_default().or(match url.scheme() {
                "postgres" | "postgresql" => Some(5432),
                "mysql" | "mariadb" => Some(3306),
                "redis" => Some(6379),
                _ => None,
            })?;
            Some((host, port))
        };
        match self {
            CheckSpec::Tcp(t) => split_host_port(&t.address).into_iter().collect(),
            CheckSpec::Http(h) | CheckSpec::Https(h) => from_url(&h.url).into_iter().collect(),
            CheckSpec::Postgres(s) | CheckSpec::Mysql(s) => from_url(&s.url).into_iter().collect(),
            CheckSpec::Redis(r) => from_url(&r.url).into_iter().collect(),
            CheckSpec::RedisSentinel(s) => from_url(&s.url).into_iter().collect(),
            CheckSpec::RedisCluster(r) => from_url(&r.url).into_iter().collect(),
            CheckSpec::Oidc(o) => from_url(&o.issuer).into_iter().collect(),
            CheckSpec::Etcd(e) => e.endpoints.iter().filter_map(|u| from_url(u)).collect(),
            CheckSpec::Patroni(p) => from_url(&p.url).into_iter().collect(),
            CheckSpec::Dns(_)
            | CheckSpec::Sqlite(_)
            | CheckSpec::Process(_)
            | CheckSpec::Disk(_)
            | CheckSpec::Command(_) => Vec::new(),
        }
    }

    /// The password the check logs in with, for `redact`.
    pub fn password(&self) -> Option<&Secret> {
        match self {
            CheckSpec::Postgres(s) | CheckSpec::Mysql(s) => s.password.as_ref(),
            CheckSpec::Redis(r) => r.password.as_ref(),
            CheckSpec::RedisSentinel(r) => r.password.as_ref(),
            CheckSpec::RedisCluster(r) => r.password.as_ref(),
            _ => None,
        }
    }

    /// Files and folders the check reads, for `diagnose`'s disk report.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            CheckSpec::Sqlite(s) => vec![&s.path],
            CheckSpec::Disk(d) => vec![&d.path],
            _ => Vec::new(),
        }
    }
}

/// `HOST:PORT` (`[v6]:PORT` too) into its parts.
pub fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

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

fn default_warn_pct() -> f64 {
    80.0
}
fn default_critical_pct() -> f64 {
    95.0
}

/// The common keys, taken out of the item before the kind's own struct reads the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, with = "duration_text::option")]
    timeout: Option<Duration>,
    #[serde(default)]
    retries: Option<u32>,
}

/// Parses `health = [...]` of one service: the checks that parsed, with their index.
pub(super) fn parse_list(
    at: &KeyPath,
    value: toml::Value,
    c: &mut Collector<'_>,
) -> Vec<(usize, HealthCheckConfig)> {
    let toml::Value::Array(items) = value else {
        c.push(
            at,
            "must be a list of checks: health = [{ kind = \"...\", ... }]",
        );
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| parse_check(&at.index(i), item, c).map(|h| (i, h)))
        .collect()
}

/// Reads `kind`, then the common keys, then the kind's struct (serde's tagged and
/// flattened enums lose exact key paths and cannot deny unknown keys).
fn parse_check(
    at: &KeyPath,
    item: toml::Value,
    c: &mut Collector<'_>,
) -> Option<HealthCheckConfig> {
    let toml::Value::Table(mut table) = item else {
        c.push(at, "a check must be a table: { kind = \"...\", ... }");
        return None;
    };
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => {
            c.push(
                &at.key("kind"),
                format!("must be a string, one of {CHECK_KINDS}"),
            );
            return None;
        }
        None => {
            c.push(
                at,
                format!("missing field `kind`; add it (one of {CHECK_KINDS})"),
            );
            return None;
        }
    };
    let mut common = toml::Table::new();
    for key in ["name", "timeout", "retries"] {
        if let Some(v) = table.remove(key) {
            common.insert(key.to_string(), v);
        }
    }
    let common: Option<Common> = c.section(at, toml::Value::Table(common));
    let rest = toml::Value::Table(table);
    let spec = match kind.as_str() {
        "tcp" => c.section(at, rest).map(CheckSpec::Tcp),
        "http" => c.section(at, rest).map(CheckSpec::Http),
        "https" => c.section(at, rest).map(CheckSpec::Https),
        "dns" => c.section(at, rest).map(CheckSpec::Dns),
        "postgres" => c.section(at, rest).map(CheckSpec::Postgres),
        "mysql" | "mariadb" => c.section(at, rest).map(CheckSpec::Mysql),
        "redis" => c.section(at, rest).map(CheckSpec::Redis),
        "sqlite" => c.section(at, rest).map(CheckSpec::Sqlite),
        "process" => c.section(at, rest).map(CheckSpec::Process),
        "disk" => c.section(at, rest).map(CheckSpec::Disk),
        "command" => c.section(at, rest).map(CheckSpec::Command),
        "oidc" => c.section(at, rest).map(CheckSpec::Oidc),
        "etcd" => c.section(at, rest).map(CheckSpec::Etcd),
        "patroni" => c.section(at, rest).map(CheckSpec::Patroni),
        "redis-sentinel" => c.section(at, rest).map(CheckSpec::RedisSentinel),
        "redis-cluster" => c.section(at, rest).map(CheckSpec::RedisCluster),
        other => {
            c.push(
                &at.key("kind"),
                format!("unknown check kind `{other}`; use one of {CHECK_KINDS}"),
            );
            None
        }
    };
    let (common, spec) = (common?, spec?);
    Some(HealthCheckConfig {
        name: common.name.unwrap_or_else(|| spec.kind().to_string()),
        timeout: common.timeout.unwrap_or(HealthCheckConfig::DEFAULT_TIMEOUT),
        retries: common.retries.unwrap_or(HealthCheckConfig::DEFAULT_RETRIES),
        spec,
    })
}

/// Semantic checks of one service's health list: names, URLs, thresholds, secrets,
/// paths. `base` is the config file's folder.
pub(super) fn validate(
    at: &KeyPath,
    checks: &mut [(usize, HealthCheckConfig)],
    runtime: &RuntimeConfig,
    base: &Path,
    c: &mut Collector<'_>,
) {
    let mut seen = std::collections::BTreeMap::new();
    for (i, check) in checks.iter_mut() {
        let at = at.index(*i);
        validate_name(c, &at.key("name"), &check.name, "check");
        if let Some(first) = seen.insert(check.name.clone(), *i) {
            c.push(
                &at,
                format!(
                    "duplicate check name `{}` (also health[{first}]); give each check of a service its own `name`",
                    check.name
                ),
            );
        }
        if check.timeout.is_zero() {
            c.push(
                &at.key("timeout"),
                "must be more than 0; write e.g. 5s or 500ms",
            );
        }
        if check.retries > 10 {
            c.push(
                &at.key("retries"),
                "at most 10; a check that needs more is not healthy",
            );
        }
        if matches!(check.spec, CheckSpec::Process(_))
            && matches!(runtime, RuntimeConfig::External | RuntimeConfig::None)
        {
            c.push(
                &at.key("kind"),
                "a `process` check asks the service's runtime, and runtime `external`/`none` cannot tell; use a `tcp` or engine check instead",
            );
        }
        validate_spec(&at, &mut check.spec, base, c);
    }
}

fn validate_spec(at: &KeyPath, spec: &mut CheckSpec, base: &Path, c: &mut Collector<'_>) {
    let url_check = |key: &str, raw: &str, schemes: &[&str], c: &mut Collector<'_>| {
        if let Err(message) = check_url(raw, schemes) {
            c.push(&at.key(key), message);
        }
    };
    let pct = |key: &str, warn: f64, critical: f64, lower_is_worse: bool, c: &mut Collector<'_>| {
        for (k, v) in [
            (format!("warn_{key}"), warn),
            (format!("critical_{key}"), critical),
        ] {
            if !(0.0..=100.0).contains(&v) {
                c.push(&at.key(&k), "a percentage from 0 to 100");
            }
        }
        let ordered = if lower_is_worse {
            critical <= warn
        } else {
            critical >= warn
        };
        if !ordered {
            c.push(
                &at.key(&format!("critical_{key}")),
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
    };
    match spec {
        CheckSpec::Tcp(t) => {
            if split_host_port(&t.address).is_none() {
                c.push(
                    &at.key("address"),
                    format!("`{}` is not HOST:PORT", t.address),
                );
            }
        }
        CheckSpec::Http(h) | CheckSpec::Https(h) => {
            url_check("url", &h.url, &["http", "https"], c);
            if h.json_equals.is_some() && h.json_field.is_none() {
                c.push(
                    &at.key("json_equals"),
                    "needs `json_field` (the field to compare)",
                );
            }
            if h.cert_critical_days > h.cert_warn_days {
                c.push(
                    &at.key("cert_critical_days"),
                    format!("must be at most cert_warn_days ({})", h.cert_warn_days),
                );
            }
            if let Some(p) = &mut h.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Dns(d) => {
            if d.host.trim().is_empty() {
                c.push(&at.key("host"), "empty; give the name to resolve");
            }
            if let Some(r) = &d.resolver {
                if parse_resolver(r).is_none() {
                    c.push(
                        &at.key("resolver"),
                        format!("`{r}` is not IP or IP:PORT (e.g. 127.0.0.1:53)"),
                    );
                }
            }
        }
        CheckSpec::Postgres(s) => {
            url_check("url", &s.url, &["postgres", "postgresql"], c);
            pct(
                "connections_pct",
                s.warn_connections_pct,
                s.critical_connections_pct,
                false,
                c,
            );
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Mysql(s) => {
            url_check("url", &s.url, &["mysql", "mariadb"], c);
            pct(
                "connections_pct",
                s.warn_connections_pct,
                s.critical_connections_pct,
                false,
                c,
            );
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Redis(r) => {
            url_check("url", &r.url, &["redis"], c);
            pct(
                "memory_pct",
                r.warn_memory_pct,
                r.critical_memory_pct,
                false,
                c,
            );
            if let Some(role) = &r.expect_role {
                if !["master", "replica", "slave"].contains(&role.as_str()) {
                    c.push(&at.key("expect_role"), "one of master, replica");
                }
            }
            if let Some(p) = &mut r.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::RedisSentinel(s) => {
            url_check("url", &s.url, &["redis"], c);
            if s.master.trim().is_empty() {
                c.push(&at.key("master"), "empty; give the monitored master's name");
            }
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::RedisCluster(r) => {
            url_check("url", &r.url, &["redis"], c);
            if let Some(p) = &mut r.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Sqlite(s) => s.path = absolute(base, &s.path),
        CheckSpec::Disk(d) => {
            d.path = absolute(base, &d.path);
            pct("free_pct", d.warn_free_pct, d.critical_free_pct, true, c);
            if let (Some(w), Some(cr)) = (d.warn_free_bytes, d.critical_free_bytes) {
                if cr > w {
                    c.push(
                        &at.key("critical_free_bytes"),
                        format!("must be at most warn_free_bytes ({w})"),
                    );
                }
            }
        }
        CheckSpec::Command(cmd) => {
            if cmd.run.trim().is_empty() {
                c.push(
                    &at.key("run"),
                    "empty command; give the shell command to run",
                );
            }
        }
        CheckSpec::Oidc(o) => {
            url_check("issuer", &o.issuer, &["https", "http"], c);
            if let Some(p) = &mut o.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Etcd(e) => {
            if e.endpoints.is_empty() {
                c.push(
                    &at.key("endpoints"),
                    "empty; list the members' client URLs (http://HOST:2379)",
                );
            }
            for (j, u) in e.endpoints.iter().enumerate() {
                url_check(&format!("endpoints[{j}]"), u, &["http", "https"], c);
            }
            if let Some(p) = &mut e.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Patroni(p) => {
            url_check("url", &p.url, &["http", "https"], c);
            if p.critical_lag_bytes < p.warn_lag_bytes {
                c.push(
                    &at.key("critical_lag_bytes"),
                    format!("must be at least warn_lag_bytes ({})", p.warn_lag_bytes),
                );
            }
            if let Some(f) = &mut p.ca_file {
                *f = absolute(base, f);
            }
        }
        CheckSpec::Process(_) => {}
    }
    if let CheckSpec::Https(h) = spec {
        if !h.url.starts_with("https://") {
            c.push(
                &at.key("url"),
                "a `https` check needs an https:// URL (use kind = \"http\" for plain HTTP)",
            );
        }
    }
    if let CheckSpec::Http(h) = spec {
        if !h.url.starts_with("https://") && (h.hsts || h.ca_file.is_some()) {
            c.push(at, "`hsts` and `ca_file` need an https:// URL");
        }
    }
}

/// A resolver address: `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_resolver(text: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    text.parse().ok()
}

fn check_url(raw: &str, schemes: &[&str]) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!(
            "not a valid URL ({e}); expected {}://HOST:PORT/...",
            schemes[0]
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "scheme `{}` does not fit this check; expected {}://",
            url.scheme(),
            schemes.join(":// or ")
        ));
    }
    if url.password().is_some() {
        return Err("the URL contains a password; remove it from the URL and set `password = \"${env:NAME}\"` instead".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the URL has no host; expected {}://HOST:PORT/...",
            schemes[0]
        ));
    }
    Ok(())
}
