//! The one list of check kinds: `check_kinds!` writes [`CheckSpec`] (one variant per
//! kind), its `kind()` name, the parse of `kind = "..."` and [`CHECK_KINDS`] from it,
//! so a kind named in a message is always one the parse accepts.

use std::path::Path;

use serde::Serialize;

use super::kinds::{
    CommandCheck, DiskCheck, DnsCheck, EtcdCheck, HttpCheck, OidcCheck, PatroniCheck, ProcessCheck,
    RedisCheck, RedisClusterCheck, SentinelCheck, SqlCheck, SqliteCheck, TcpCheck,
};
use crate::config::errors::Collector;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// Writes, from one line per kind (`Variant(KeysStruct) = "name" | "alias"`): the
/// [`CheckSpec`] enum (serialized with the name as `kind`), `CheckSpec::kind`,
/// [`CHECK_KINDS`] (the names, without aliases) and `parse_kind`.
macro_rules! check_kinds {
    ($($variant:ident($keys:ty) = $name:literal $(| $alias:literal)*),+ $(,)?) => {
        /// What a check looks at, per kind.
        #[derive(Debug, Clone, Serialize)]
        #[serde(tag = "kind")]
        pub enum CheckSpec {
            $(#[serde(rename = $name)] $variant($keys),)+
        }

        /// The kinds, as written in `kind = "..."`, in the order messages list them.
        pub const CHECK_KINDS: &[&str] = &[$($name,)+];

        impl CheckSpec {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(CheckSpec::$variant(_) => $name,)+
                }
            }
        }

        /// Deserializes the kind's keys (`kind` and the common keys taken out) as the
        /// kind `name`'s struct; `None` when no kind has that name.
        pub(super) fn parse_kind(
            name: &str,
            at: &KeyPath,
            rest: toml::Value,
            c: &mut Collector<'_>,
        ) -> Option<Option<CheckSpec>> {
            match name {
                $($name $(| $alias)* => Some(c.section(at, rest).map(CheckSpec::$variant)),)+
                _ => None,
            }
        }
    };
}

check_kinds! {
    Tcp(TcpCheck) = "tcp",
    Http(HttpCheck) = "http",
    Https(HttpCheck) = "https",
    Dns(DnsCheck) = "dns",
    Postgres(SqlCheck) = "postgres",
    Mysql(SqlCheck) = "mysql" | "mariadb",
    Redis(RedisCheck) = "redis",
    Sqlite(SqliteCheck) = "sqlite",
    Process(ProcessCheck) = "process",
    Disk(DiskCheck) = "disk",
    Command(CommandCheck) = "command",
    Oidc(OidcCheck) = "oidc",
    Etcd(EtcdCheck) = "etcd",
    Patroni(PatroniCheck) = "patroni",
    RedisSentinel(SentinelCheck) = "redis-sentinel",
    RedisCluster(RedisClusterCheck) = "redis-cluster",
}

impl CheckSpec {
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
