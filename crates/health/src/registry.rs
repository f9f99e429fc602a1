//! The one place that maps a configured check to its adapter.

use std::sync::Arc;

use drydock_domain::config::{CheckSpec, HealthCheckConfig};
use drydock_runtimes::Runtime;

use crate::checks;
use crate::Check;

/// What a check may need besides its own config.
#[derive(Clone)]
pub struct CheckContext {
    pub service: String,
    /// The service's runtime (for `process` checks).
    pub runtime: Arc<dyn Runtime>,
}

pub fn build(config: &HealthCheckConfig, ctx: &CheckContext) -> Arc<dyn Check> {
    match &config.spec {
        CheckSpec::Tcp(c) => Arc::new(checks::tcp::Tcp::new(c.clone())),
        CheckSpec::Http(c) | CheckSpec::Https(c) => Arc::new(checks::http::Http::new(c.clone())),
        CheckSpec::Dns(c) => Arc::new(checks::dns::Dns::new(c.clone())),
        CheckSpec::Postgres(c) => Arc::new(checks::postgres::Postgres::new(c.clone())),
        CheckSpec::Mysql(c) => Arc::new(checks::mysql::Mysql::new(c.clone())),
        CheckSpec::Redis(c) => Arc::new(checks::redis::Redis::new(c.clone())),
        CheckSpec::Sqlite(c) => Arc::new(checks::sqlite::Sqlite::new(c.clone())),
        CheckSpec::Process(c) => Arc::new(checks::process::ProcessState::new(
            c.clone(),
            ctx.runtime.clone(),
        )),
        CheckSpec::Disk(c) => Arc::new(checks::disk::Disk::new(c.clone())),
        CheckSpec::Command(c) => Arc::new(checks::command::ShellCommand::new(c.clone())),
        CheckSpec::Oidc(c) => Arc::new(checks::oidc::Oidc::new(c.clone())),
        CheckSpec::Etcd(c) => Arc::new(checks::etcd::Etcd::new(c.clone())),
        CheckSpec::Patroni(c) => Arc::new(checks::patroni::Patroni::new(c.clone())),
        CheckSpec::RedisSentinel(c) => {
            Arc::new(checks::redis_sentinel::RedisSentinel::new(c.clone()))
        }
        CheckSpec::RedisCluster(c) => Arc::new(checks::redis_cluster::RedisCluster::new(c.clone())),
    }
}
