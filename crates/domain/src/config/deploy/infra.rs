//! `[deploy.recreate]`: how `drydock deploy` recreates infrastructure (decisions
//! `infra`, `recreate`, and `heal` when the heal did not fix it): how often and how
//! long it polls the recreated services' health checks, and how many times it tries
//! to restore a source whose data is missing or differs from the pre-deploy backup.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::config::errors::Collector;
use crate::spans::KeyPath;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfraRecreate {
    /// Time between two rounds of health checks after a service is recreated.
    #[serde(default = "InfraRecreate::default_interval", with = "duration_text")]
    pub health_interval: Duration,
    /// How long a recreated service may take to pass its health checks.
    #[serde(default = "InfraRecreate::default_deadline", with = "duration_text")]
    pub health_deadline: Duration,
    /// Attempts at restoring a source that is missing or differs (each verified).
    #[serde(default = "InfraRecreate::default_attempts")]
    pub restore_attempts: u32,
}

impl Default for InfraRecreate {
    fn default() -> Self {
        InfraRecreate {
            health_interval: Self::default_interval(),
            health_deadline: Self::default_deadline(),
            restore_attempts: Self::default_attempts(),
        }
    }
}

impl InfraRecreate {
    fn default_interval() -> Duration {
        Duration::from_secs(1)
    }
    fn default_deadline() -> Duration {
        Duration::from_secs(120)
    }
    fn default_attempts() -> u32 {
        3
    }

    pub(super) fn validate(&self, c: &mut Collector<'_>, at: &KeyPath) {
        let at = at.key("recreate");
        if self.health_interval.is_zero() {
            c.push(
                &at.key("health_interval"),
                "must be more than 0, e.g. \"1s\"",
            );
        }
        if self.health_deadline < self.health_interval {
            c.push(
                &at.key("health_deadline"),
                "shorter than health_interval: give the services time for at least one round of checks, e.g. \"120s\"",
            );
        }
        if !(1..=10).contains(&self.restore_attempts) {
            c.push(
                &at.key("restore_attempts"),
                format!("{} attempts: give 1 to 10", self.restore_attempts),
            );
        }
    }
}
