//! The one place that lists the source kinds: [`SourceConfig`] (one variant per kind),
//! the match from a declared source to its kind's traits, and the parse of `kind =
//! "..."`. Adding a kind adds one line to `source_kinds!`'s list at the bottom.

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
use crate::vocabulary::{Priority, SourceKind};

/// Writes, from one line per kind (`Variant(ConfigStruct) = KindSpec`): the
/// [`SourceConfig`] enum, [`KINDS`], and the matches from a source to its traits and
/// from a kind name to its parse. The variant's name, lowercased, is the kind's name in
/// `kind = "..."` and serialized configs, as [`SourceKind`] spells it.
macro_rules! source_kinds {
    ($($variant:ident($config:ty) = $kind:expr),+ $(,)?) => {
        /// One piece of data a service owns.
        #[derive(Debug, Clone, Deserialize, Serialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        pub enum SourceConfig {
            $($variant($config),)+
        }

        /// Every source kind, in the order messages list them.
        pub const KINDS: &[&dyn SourceKindSpec] = &[$(&$kind,)+];

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

            /// What its kind is, through the kind's [`SourceKindSpec`].
            pub fn kind_spec(&self) -> &'static dyn SourceKindSpec {
                match self {
                    $(SourceConfig::$variant(_) => &$kind,)+
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
            $(if kind == $kind.kind() {
                return c.section(at, rest).map(SourceConfig::$variant);
            })+
            None
        }
    };
}

source_kinds! {
    Postgres(PostgresSource) = Postgres,
    Mysql(MysqlSource) = Mysql,
    Redis(RedisSource) = Redis,
    Sqlite(SqliteSource) = Sqlite,
    Files(FilesSource) = Files,
    Volume(VolumeSource) = Volume,
}

/// The traits of `kind`.
pub fn kind_spec(kind: SourceKind) -> &'static dyn SourceKindSpec {
    KINDS
        .iter()
        .copied()
        .find(|spec| spec.kind() == kind)
        .expect("every SourceKind is listed in source_kinds!")
}

impl SourceConfig {
    pub fn kind(&self) -> SourceKind {
        self.kind_spec().kind()
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
        .map(|k| k.kind().as_str())
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
    let named = KINDS
        .iter()
        .find(|k| k.kind().as_str() == name || k.aliases().contains(&name.as_str()));
    match named {
        Some(kind) => parse_as(kind.kind(), at, toml::Value::Table(table), c),
        None => {
            c.push(
                &at.key("kind"),
                format!("unknown source kind `{name}`; use one of {kinds}"),
            );
            None
        }
    }
}
