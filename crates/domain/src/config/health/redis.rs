//! `kind = "redis"`: `PING`, the server's role, memory against `maxmemory`.

use serde::{Deserialize, Serialize};

use super::spec::{
    default_critical_pct, default_warn_pct, url_endpoints, CheckKindSpec, CheckValidation,
};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisCheck {
    /// `redis://[USER@]HOST:PORT`, no password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `master` or `replica`: the role the server must have.
    #[serde(default)]
    pub expect_role: Option<String>,
    #[serde(default = "default_warn_pct")]
    pub warn_memory_pct: f64,
    #[serde(default = "default_critical_pct")]
    pub critical_memory_pct: f64,
}

/// The `redis` kind.
pub(super) enum RedisKind {}

impl CheckKindSpec for RedisKind {
    type Config = RedisCheck;
    const NAME: &'static str = "redis";

    fn validate(r: &mut RedisCheck, v: &mut CheckValidation<'_, '_>) {
        v.url("url", &r.url, &["redis"]);
        v.thresholds(
            "memory_pct",
            r.warn_memory_pct,
            r.critical_memory_pct,
            false,
        );
        if let Some(role) = &r.expect_role {
            if !["master", "replica", "slave"].contains(&role.as_str()) {
                v.push("expect_role", "one of master, replica");
            }
        }
        v.secret("password", &mut r.password);
    }

    fn endpoints(r: &RedisCheck) -> Vec<(String, u16)> {
        url_endpoints(&r.url)
    }

    fn password(r: &RedisCheck) -> Option<&Secret> {
        r.password.as_ref()
    }
}
