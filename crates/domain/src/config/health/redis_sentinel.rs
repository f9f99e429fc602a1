//! `kind = "redis-sentinel"`: a sentinel knows the monitored master, and the master is
//! reachable with enough sentinels agreeing.

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoints, CheckKindSpec, CheckValidation};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelCheck {
    /// A sentinel: `redis://HOST:26379`.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The monitored master's name.
    pub master: String,
}

/// The `redis-sentinel` kind.
pub(super) enum RedisSentinelKind {}

impl CheckKindSpec for RedisSentinelKind {
    type Config = SentinelCheck;
    const NAME: &'static str = "redis-sentinel";

    fn validate(s: &mut SentinelCheck, v: &mut CheckValidation<'_, '_>) {
        v.url("url", &s.url, &["redis"]);
        if s.master.trim().is_empty() {
            v.push("master", "empty; give the monitored master's name");
        }
        v.secret("password", &mut s.password);
    }

    fn endpoints(s: &SentinelCheck) -> Vec<(String, u16)> {
        url_endpoints(&s.url)
    }

    fn password(s: &SentinelCheck) -> Option<&Secret> {
        s.password.as_ref()
    }
}
