//! The one place that lists the source kinds: [`SourceKind`] (their stable names),
//! [`SourceConfig`] (one variant per kind), the matches from a declared source or a
//! kind to its kind's traits, and the parse of `kind = "..."`. Adding a kind adds one
//! line to `source_kinds!`'s list at the bottom.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::files::{Files, FilesSource};
use super::mysql::{Mysql, MysqlSource};
use super::postgres::{Postgres, PostgresSource};
use super::redis::{Redis, RedisSource};
use super::spec::{SourceKindSpec, SourceSpec};
use super::sqlite::{Sqlite, SqliteSource};
use super::volume::{Volume, VolumeSource};
use crate::config::errors::Collector;
use crate::spans::KeyPath;
use crate::vocabulary::Priority;

/// Writes, from one line per kind (`"name" => Variant(ConfigStruct) = KindSpec`): the
/// [`SourceKind`] enum (the name is its serde name, `as_str`, `Display` and `FromStr`),
/// the [`SourceConfig`] enum (the same name in `kind = "..."`), [`KINDS`], and the
/// matches from a source or a kind to its traits and from a kind to its parse.
macro_rules! source_kinds {
    ($($name:literal => $variant:ident($config:ty) = $kind:expr),+ $(,)?) => {
        /// The source kinds, for tags, manifests and messages: each kind's stable name.
        /// What each kind *is* (its config, validation, ports, checks) is behind
        /// [`SourceKind::spec`], one file per kind.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub enum SourceKind {
            $(#[serde(rename = $name)] $variant,)+
        }

        /// Every source kind, in the order messages list them.
        pub const KINDS: &[SourceKind] = &[$(SourceKind::$variant,)+];

        impl SourceKind {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SourceKind::$variant => $name,)+
                }
            }

            /// What the kind is, through its [`SourceKindSpec`].
            pub fn spec(self) -> &'static dyn SourceKindSpec {
                match self {
                    $(SourceKind::$variant => &$kind,)+
                }
            }
        }

        /// One piece of data a service owns.
        #[derive(Debug, Clone, Deserialize, Serialize)]
        #[serde(tag = "kind")]
        pub enum SourceConfig {
            $(#[serde(rename = $name)] $variant($config),)+
        }

        impl SourceConfig {
            /// What this declared source holds, through its kind's [`SourceSpec`].
            pub fn spec(&self) -> &dyn SourceSpec {
                match self {
                    $(SourceConfig::$variant(source) => source,)+
                }
            }

            /// The same, to validate (and complete) it at load.
            pub fn spec_mut(&mut self) -> &mut dyn SourceSpec {
                match self {
                    $(SourceConfig::$variant(source) => source,)+
                }
            }

            /// Its kind's stable name.
            pub fn kind(&self) -> SourceKind {
                match self {
                    $(SourceConfig::$variant(_) => SourceKind::$variant,)+
                }
            }
        }

        /// Deserializes the keys of a source (`kind` taken out) as `kind`'s struct.
        fn parse_as(
            kind: SourceKind,
            at: &KeyPath,
            rest: toml::Value,
            c: &mut Collector<'_>,
        ) -> Option<SourceConfig> {
            match kind {
                $(SourceKind::$variant => c.section(at, rest).map(SourceConfig::$variant),)+
            }
        }
    };
}

source_kinds! {
    "postgres" => Postgres(PostgresSource) = Postgres,
    "mysql" => Mysql(MysqlSource) = Mysql,
    "redis" => Redis(RedisSource) = Redis,
    "sqlite" => Sqlite(SqliteSource) = Sqlite,
    "files" => Files(FilesSource) = Files,
    "volume" => Volume(VolumeSource) = Volume,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SourceKind {
    type Err = String;
    /// The kind's name or an alias (`mariadb`), as `kind = "..."` takes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KINDS
            .iter()
            .copied()
            .find(|k| k.as_str() == s || k.spec().aliases().contains(&s))
            .ok_or_else(|| {
                let names: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
                format!("unknown source kind `{s}`; use one of {}", names.join(", "))
            })
    }
}

/// The traits of `kind`.
pub fn kind_spec(kind: SourceKind) -> &'static dyn SourceKindSpec {
    kind.spec()
}

impl SourceConfig {
    /// What its kind is, through the kind's [`SourceKindSpec`].
    pub fn kind_spec(&self) -> &'static dyn SourceKindSpec {
        self.kind().spec()
    }

    /// The source's name within its service: `name`, or else its kind.
    pub fn name(&self) -> &str {
        self.spec().name().unwrap_or(self.kind().as_str())
    }

    pub fn priority(&self) -> Priority {
        self.spec().priority()
    }
}

/// Reads `kind` first and then the kind's own struct, so errors keep exact key paths
/// (serde's internally tagged enums lose them).
pub(in crate::config) fn parse_source(
    at: &KeyPath,
    item: toml::Value,
    c: &mut Collector<'_>,
) -> Option<SourceConfig> {
    let kinds = KINDS
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let toml::Value::Table(mut table) = item else {
        c.push(
            at,
            "a source must be a table: { kind = \"...\", priority = \"...\", ... }",
        );
        return None;
    };
    let name = match table.remove("kind") {
        Some(toml::Value::String(name)) => name,
        Some(_) => {
            c.push(&at.key("kind"), format!("must be a string, one of {kinds}"));
            return None;
        }
        None => {
            c.push(at, format!("missing field `kind`; add it (one of {kinds})"));
            return None;
        }
    };
    match name.parse::<SourceKind>() {
        Ok(kind) => parse_as(kind, at, toml::Value::Table(table), c),
        Err(message) => {
            c.push(&at.key("kind"), message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_has_one_name_for_serde_display_and_parse() {
        for kind in KINDS.iter().copied() {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<SourceKind>(&json).unwrap(), kind);
            assert_eq!(kind.as_str().parse::<SourceKind>(), Ok(kind));
            assert_eq!(kind_spec(kind).aliases(), kind.spec().aliases());
        }
        assert_eq!("mariadb".parse::<SourceKind>(), Ok(SourceKind::Mysql));
        let unknown = "mongo".parse::<SourceKind>().unwrap_err();
        assert!(
            unknown.contains("postgres, mysql, redis, sqlite, files, volume"),
            "{unknown}"
        );
        assert_eq!(SourceKind::Postgres.to_string(), "postgres");
    }
}
