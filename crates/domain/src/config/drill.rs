//! `[drill]`: the RTO and RPO targets a recovery must meet, with per-priority
//! overrides.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_text;
use crate::vocabulary::Priority;

/// `[drill]`: the RTO and RPO a recovery must meet, with optional per-priority tables
/// (`[drill.critical]`, e.g. a 15-minute RPO for the databases) overriding them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    #[serde(default = "DrillConfig::default_rto", with = "duration_text")]
    pub rto_target: Duration,
    #[serde(default = "DrillConfig::default_rpo", with = "duration_text")]
    pub rpo_target: Duration,
    #[serde(default)]
    pub critical: Option<TargetOverride>,
    #[serde(default)]
    pub high: Option<TargetOverride>,
    #[serde(default)]
    pub medium: Option<TargetOverride>,
    #[serde(default)]
    pub low: Option<TargetOverride>,
}

/// Targets that differ for one priority class; missing ones come from `[drill]`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetOverride {
    #[serde(default, with = "duration_text::option")]
    pub rto_target: Option<Duration>,
    #[serde(default, with = "duration_text::option")]
    pub rpo_target: Option<Duration>,
}

impl DrillConfig {
    fn default_rto() -> Duration {
        Duration::from_secs(30 * 60)
    }
    fn default_rpo() -> Duration {
        Duration::from_secs(24 * 3600)
    }

    /// (RTO target, RPO target) for a source of `priority`.
    pub fn targets_for(&self, priority: Priority) -> (Duration, Duration) {
        let over = match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
            Priority::None => None,
        }
        .unwrap_or_default();
        (
            over.rto_target.unwrap_or(self.rto_target),
            over.rpo_target.unwrap_or(self.rpo_target),
        )
    }
}

impl Default for DrillConfig {
    fn default() -> Self {
        DrillConfig {
            rto_target: Self::default_rto(),
            rpo_target: Self::default_rpo(),
            critical: None,
            high: None,
            medium: None,
            low: None,
        }
    }
}
