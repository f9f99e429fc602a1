//! `kind = "process"`: the service's runtime says it runs, how often it restarted and
//! for how long it has been up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};
use crate::config::duration_text;
use crate::config::runtime::RuntimeConfig;

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

/// The `process` kind.
pub(super) enum ProcessKind {}

impl CheckKindSpec for ProcessKind {
    type Config = ProcessCheck;
    const NAME: &'static str = "process";

    fn validate(_: &mut ProcessCheck, v: &mut CheckValidation<'_, '_>) {
        if matches!(v.runtime(), RuntimeConfig::External | RuntimeConfig::None) {
            v.push(
                "kind",
                "a `process` check asks the service's runtime, and runtime `external`/`none` cannot tell; use a `tcp` or engine check instead",
            );
        }
    }
}
