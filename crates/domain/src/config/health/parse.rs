//! Reads `health = [...]` of one service item by item, so every error keeps its line:
//! `kind` first, then the common keys, then the kind's own struct.

use crate::config::fields::take_kind;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::registry::{parse_kind, CheckSpec, CHECK_KINDS};
use crate::config::duration_text;
use crate::config::errors::Collector;
use crate::spans::KeyPath;

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
pub(in crate::config) fn parse_list(
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
    let kinds = CHECK_KINDS.join(", ");
    let toml::Value::Table(mut table) = item else {
        c.push(at, "a check must be a table: { kind = \"...\", ... }");
        return None;
    };
    let kind = take_kind(at, &mut table, &kinds, c)?;
    let mut common = toml::Table::new();
    for key in ["name", "timeout", "retries"] {
        if let Some(v) = table.remove(key) {
            common.insert(key.to_string(), v);
        }
    }
    let common: Option<Common> = c.section(at, toml::Value::Table(common));
    let rest = toml::Value::Table(table);
    let spec = match parse_kind(&kind, at, rest, c) {
        Some(spec) => spec,
        None => {
            c.push(
                &at.key("kind"),
                format!("unknown check kind `{kind}`; use one of {kinds}"),
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
