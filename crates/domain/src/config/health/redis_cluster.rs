//! `kind = "redis-cluster"`: the cluster's state, slots and nodes, asked of one node.

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoints, CheckKindSpec, CheckValidation};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisClusterCheck {
    /// One node of the cluster: `redis://HOST:PORT`.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
}

/// The `redis-cluster` kind.
pub(super) enum RedisClusterKind {}

impl CheckKindSpec for RedisClusterKind {
    type Config = RedisClusterCheck;
    const NAME: &'static str = "redis-cluster";

    fn validate(r: &mut RedisClusterCheck, v: &mut CheckValidation<'_, '_>) {
        v.url("url", &r.url, &["redis"]);
        v.secret("password", &mut r.password);
    }

    fn endpoints(r: &RedisClusterCheck) -> Vec<(String, u16)> {
        url_endpoints(&r.url)
    }

    fn password(r: &RedisClusterCheck) -> Option<&Secret> {
        r.password.as_ref()
    }
}
