//! Reading `[[notify]]`: each entry on its own (so one bad entry does not hide
//! another's errors), its kind's keys through the registry, then its checks.

use crate::config::fields::take_kind;
use std::collections::BTreeMap;

use serde::Serialize;

use super::registry::{self, ChannelConfig, CHANNEL_KINDS};
use super::spec::{ChannelValidation, NotifyOn};
use crate::config::errors::Collector;
use crate::config::fields::validate_name;
use crate::spans::KeyPath;

/// One `[[notify]]` entry, validated: its name, the events it gets and its kind's keys.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyConfig {
    /// How the outbox, metrics and the dashboard name the channel (`name = "..."`;
    /// default: its kind).
    pub name: String,
    /// The events it is sent, never empty (its kind's default when not given).
    pub on: Vec<NotifyOn>,
    #[serde(flatten)]
    pub channel: ChannelConfig,
}

impl NotifyConfig {
    /// Whether the channel asked for `event`.
    pub fn wants(&self, event: NotifyOn) -> bool {
        self.on.contains(&event)
    }
}

/// Each `[[notify]]` on its own, so one bad entry does not hide another's errors;
/// validated (names unique, secrets resolved, kind rules) as it is read.
pub(in crate::config) fn parse_notify(
    value: Option<toml::Value>,
    c: &mut Collector<'_>,
) -> Vec<NotifyConfig> {
    let at = KeyPath::default().key("notify");
    let items = match value {
        None => return Vec::new(),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            c.push(
                &at,
                "must be a list of tables: write each channel as [[notify]]",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = at.index(i);
        let Some(mut entry) = parse_entry(&at, item, c) else {
            continue;
        };
        let mut v = ChannelValidation {
            collector: c,
            at: at.clone(),
        };
        entry.channel.spec_mut().validate(&mut v);
        validate_name(c, &at.key("name"), &entry.name, "notify");
        if let Some(first) = seen.insert(entry.name.clone(), i) {
            c.push(
                &at.key("name"),
                format!(
                    "duplicate channel name `{}` (also notify[{first}]); give each [[notify]] its own `name`",
                    entry.name
                ),
            );
        }
        out.push(entry);
    }
    out
}

/// One entry: `kind`, `name` and `on` taken out, the rest read as the kind's struct
/// (serde's internally tagged enums would lose the exact key paths of errors).
fn parse_entry(at: &KeyPath, item: toml::Value, c: &mut Collector<'_>) -> Option<NotifyConfig> {
    let kinds = CHANNEL_KINDS.join(", ");
    let toml::Value::Table(mut table) = item else {
        c.push(at, "a channel must be a table: [[notify]] kind = \"...\"");
        return None;
    };
    let kind = take_kind(at, &mut table, &kinds, c)?;
    let name = match table.remove("name") {
        None => kind.clone(),
        Some(toml::Value::String(name)) => name,
        Some(_) => {
            c.push(&at.key("name"), "must be a string");
            return None;
        }
    };
    let on = match table.remove("on") {
        None => None,
        Some(value) => {
            let on: Vec<NotifyOn> = c.section(&at.key("on"), value)?;
            if on.is_empty() {
                c.push(
                    &at.key("on"),
                    "empty list: name at least one of failure, recovery, success, start (or remove `on` for failure + recovery)",
                );
                return None;
            }
            Some(on)
        }
    };
    let Some(parsed) = registry::parse_kind(&kind, at, toml::Value::Table(table), c) else {
        c.push(
            &at.key("kind"),
            format!("unknown channel kind `{kind}`; use one of {kinds}"),
        );
        return None;
    };
    let channel = parsed?;
    let mut on = on.unwrap_or_else(|| channel.spec().default_on().to_vec());
    on.sort();
    on.dedup();
    Some(NotifyConfig { name, on, channel })
}
