//! The one list of check kinds: `check_kinds!` writes [`CheckSpec`] (one variant per
//! kind) and every match on it: the kind's name, the parse of `kind = "..."`,
//! [`CHECK_KINDS`], the serialized shape, and the dispatch to the kind's
//! `CheckKindSpec` (validation, endpoints, password, paths). Nothing else matches on
//! the enum, so a kind named in a message is always one the parse accepts, and adding
//! a kind adds one line to the list at the bottom.

use std::path::Path;

use serde::Serialize;

use super::command::{CommandCheck, CommandKind};
use super::disk::{DiskCheck, DiskKind};
use super::dns::{DnsCheck, DnsKind};
use super::etcd::{EtcdCheck, EtcdKind};
use super::http::{HttpCheck, HttpKind, HttpsKind};
use super::oidc::{OidcCheck, OidcKind};
use super::patroni::{PatroniCheck, PatroniKind};
use super::process::{ProcessCheck, ProcessKind};
use super::redis::{RedisCheck, RedisKind};
use super::redis_cluster::{RedisClusterCheck, RedisClusterKind};
use super::redis_sentinel::{RedisSentinelKind, SentinelCheck};
use super::spec::{CheckKindSpec, CheckValidation};
use super::sql::{MysqlKind, PostgresKind, SqlCheck};
use super::sqlite::{SqliteCheck, SqliteKind};
use super::tcp::{TcpCheck, TcpKind};
use crate::config::errors::Collector;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// Writes, from one line per kind (`Variant(ConfigStruct) = KindSpec`): the
/// [`CheckSpec`] enum (serialized as its config struct's keys plus `kind = NAME`),
/// `CheckSpec::kind`, [`CHECK_KINDS`] (the names, without aliases), `parse_kind`, and
/// the dispatch of validation, endpoints, password and paths to the kind.
macro_rules! check_kinds {
    ($($variant:ident($config:ty) = $kind:ty),+ $(,)?) => {
        /// What a check looks at, per kind.
        #[derive(Debug, Clone)]
        pub enum CheckSpec {
            $($variant($config),)+
        }

        /// The kinds, as written in `kind = "..."`, in the order messages list them.
        pub const CHECK_KINDS: &[&str] = &[$(<$kind as CheckKindSpec>::NAME,)+];

        impl CheckSpec {
            /// The kind's name, as `kind = "..."` writes it.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(CheckSpec::$variant(_) => <$kind as CheckKindSpec>::NAME,)+
                }
            }

            /// The network endpoints (`host`, `port`) the check talks to, for
            /// `diagnose`'s port and conflict report.
            pub fn endpoints(&self) -> Vec<(String, u16)> {
                match self {
                    $(CheckSpec::$variant(check) => <$kind as CheckKindSpec>::endpoints(check),)+
                }
            }

            /// The password the check logs in with, for `redact`.
            pub fn password(&self) -> Option<&Secret> {
                match self {
                    $(CheckSpec::$variant(check) => <$kind as CheckKindSpec>::password(check),)+
                }
            }

            /// Files and folders the check reads, for `diagnose`'s disk report.
            pub fn paths(&self) -> Vec<&Path> {
                match self {
                    $(CheckSpec::$variant(check) => <$kind as CheckKindSpec>::paths(check),)+
                }
            }

            /// The kind's semantic checks of this check, completing it.
            pub(super) fn validate(&mut self, v: &mut CheckValidation<'_, '_>) {
                match self {
                    $(CheckSpec::$variant(check) => <$kind as CheckKindSpec>::validate(check, v),)+
                }
            }
        }

        impl Serialize for CheckSpec {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(CheckSpec::$variant(check) => Tagged {
                        kind: <$kind as CheckKindSpec>::NAME,
                        check,
                    }
                    .serialize(s),)+
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
            $(if name == <$kind as CheckKindSpec>::NAME
                || <$kind as CheckKindSpec>::ALIASES.contains(&name)
            {
                return Some(c.section(at, rest).map(CheckSpec::$variant));
            })+
            None
        }
    };
}

/// A check as serialized: `kind` first, then the kind's own keys (the shape serde's
/// internally tagged enums write).
#[derive(Serialize)]
struct Tagged<'a, T> {
    kind: &'static str,
    #[serde(flatten)]
    check: &'a T,
}

check_kinds! {
    Tcp(TcpCheck) = TcpKind,
    Http(HttpCheck) = HttpKind,
    Https(HttpCheck) = HttpsKind,
    Dns(DnsCheck) = DnsKind,
    Postgres(SqlCheck) = PostgresKind,
    Mysql(SqlCheck) = MysqlKind,
    Redis(RedisCheck) = RedisKind,
    Sqlite(SqliteCheck) = SqliteKind,
    Process(ProcessCheck) = ProcessKind,
    Disk(DiskCheck) = DiskKind,
    Command(CommandCheck) = CommandKind,
    Oidc(OidcCheck) = OidcKind,
    Etcd(EtcdCheck) = EtcdKind,
    Patroni(PatroniCheck) = PatroniKind,
    RedisSentinel(SentinelCheck) = RedisSentinelKind,
    RedisCluster(RedisClusterCheck) = RedisClusterKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_serializes_as_its_kind_then_its_keys() {
        let tcp = CheckSpec::Tcp(TcpCheck {
            address: "db:5432".into(),
        });
        assert_eq!(
            serde_json::to_string(&tcp).unwrap(),
            r#"{"kind":"tcp","address":"db:5432"}"#
        );
        let mysql = CheckSpec::Mysql(SqlCheck::derived("mysql://app@db/app", None));
        let json = serde_json::to_value(&mysql).unwrap();
        assert_eq!(json["kind"], "mysql");
        assert_eq!(json["url"], "mysql://app@db/app");
        assert_eq!(mysql.kind(), "mysql");
        assert_eq!(mysql.endpoints(), [("db".to_string(), 3306)]);
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let mut names = CHECK_KINDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECK_KINDS.len(), "{CHECK_KINDS:?}");
    }
}
