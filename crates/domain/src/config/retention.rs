//! `[retention]`: how many backups of each source every copy keeps, the anomaly guard,
//! the calendar's time zone, and the per-priority overrides.

use serde::{Deserialize, Serialize};

use super::errors::Collector;
use crate::spans::KeyPath;
use crate::vocabulary::Priority;

/// `[retention]`: how many backups of each source every copy keeps, with optional
/// per-priority tables (`[retention.critical]` ...) overriding some of the counts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default = "RetentionConfig::default_daily")]
    pub daily: u32,
    #[serde(default = "RetentionConfig::default_weekly")]
    pub weekly: u32,
    #[serde(default = "RetentionConfig::default_monthly")]
    pub monthly: u32,
    /// The anomaly guard: the newest backup is suspicious when smaller than this
    /// fraction of the median of the `anomaly_window` before it.
    #[serde(default = "RetentionConfig::default_anomaly_ratio")]
    pub anomaly_ratio: f64,
    #[serde(default = "RetentionConfig::default_anomaly_window")]
    pub anomaly_window: usize,
    /// IANA time zone for the day/week/month buckets; default: the system's.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub critical: Option<KeepOverride>,
    #[serde(default)]
    pub high: Option<KeepOverride>,
    #[serde(default)]
    pub medium: Option<KeepOverride>,
    #[serde(default)]
    pub low: Option<KeepOverride>,
}

/// Counts that differ for one priority class; missing ones come from `[retention]`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeepOverride {
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
}

impl RetentionConfig {
    fn default_daily() -> u32 {
        7
    }
    fn default_weekly() -> u32 {
        4
    }
    fn default_monthly() -> u32 {
        12
    }
    fn default_anomaly_ratio() -> f64 {
        0.5
    }
    fn default_anomaly_window() -> usize {
        7
    }

    /// The counts that apply to sources of `priority`.
    pub fn rules_for(&self, priority: Priority) -> crate::retention::KeepRules {
        let over = match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
            Priority::None => None,
        }
        .unwrap_or_default();
        crate::retention::KeepRules {
            daily: over.daily.unwrap_or(self.daily),
            weekly: over.weekly.unwrap_or(self.weekly),
            monthly: over.monthly.unwrap_or(self.monthly),
        }
    }

    pub fn anomaly_guard(&self) -> crate::retention::AnomalyGuard {
        crate::retention::AnomalyGuard {
            ratio: self.anomaly_ratio,
            window: self.anomaly_window,
        }
    }

    /// The zone calendar buckets are counted in (validated at load).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|name| jiff::tz::TimeZone::get(name).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            daily: 7,
            weekly: 4,
            monthly: 12,
            anomaly_ratio: 0.5,
            anomaly_window: 7,
            timezone: None,
            critical: None,
            high: None,
            medium: None,
            low: None,
        }
    }
}

pub(super) fn validate_retention(c: &mut Collector<'_>, retention: &RetentionConfig) {
    let at = KeyPath::default().key("retention");
    if !(retention.anomaly_ratio > 0.0 && retention.anomaly_ratio <= 1.0) {
        c.push(
            &at.key("anomaly_ratio"),
            format!("{} is not a fraction; use a number above 0 and at most 1 (0.5 = half the usual size)", retention.anomaly_ratio),
        );
    }
    if retention.anomaly_window == 0 {
        c.push(
            &at.key("anomaly_window"),
            "must be at least 1 (backups to take the median of)",
        );
    }
    if let Some(name) = &retention.timezone {
        if jiff::tz::TimeZone::get(name).is_err() {
            c.push(
                &at.key("timezone"),
                format!(
                    "unknown time zone `{name}`; use an IANA name like `Europe/Berlin` or `UTC`"
                ),
            );
        }
    }
    let mut empty_by_default = Vec::new();
    for (priority, table) in [
        (Priority::Critical, retention.critical),
        (Priority::High, retention.high),
        (Priority::Medium, retention.medium),
        (Priority::Low, retention.low),
    ] {
        if !retention.rules_for(priority).keeps_nothing() {
            continue;
        }
        if table.is_some() {
            c.push(
                &at.key(&priority.to_string()),
                format!("keeps no {priority} backup at all (daily, weekly and monthly are 0); keep at least one"),
            );
        } else {
            empty_by_default.push(priority.to_string());
        }
    }
    if !empty_by_default.is_empty() {
        c.push(
            &at,
            format!(
                "daily, weekly and monthly are all 0, so no {} backup would be kept; keep at least one",
                empty_by_default.join("/")
            ),
        );
    }
}
