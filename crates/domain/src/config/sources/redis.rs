//! `kind = "redis"`: a whole Redis (or Valkey, KeyDB, Dragonfly) instance, dumped as
//! an RDB file.

use serde::{Deserialize, Serialize};

use super::spec::{
    url_database, ContainerFacts, DumpGuess, SourceKindSpec, SourceSpec, SourceValidation,
};
use crate::config::health::{CheckSpec, RedisCheck};
use crate::config::runtime::ExecTarget;
use crate::secret::Secret;
use crate::vocabulary::Priority;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSource {
    #[serde(default)]
    pub name: Option<String>,
    pub priority: Priority,
    /// `redis://[USER@]HOST:PORT`, without a password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Run the dump and restore tools inside the service's container (`docker` or
    /// `compose` runtime) through the exec API, so their version matches the server's.
    #[serde(default)]
    pub exec: bool,
    /// The container runtime `exec` runs in, filled at load from the service.
    #[serde(skip)]
    pub exec_in: Option<ExecTarget>,
}

/// The `redis` kind.
pub struct Redis;

impl SourceKindSpec for Redis {
    fn count_unit(&self) -> &'static str {
        "keys"
    }

    fn default_port(&self) -> Option<u16> {
        Some(6379)
    }

    fn image_names(&self) -> &'static [&'static str] {
        &["redis", "valkey", "keydb", "dragonfly"]
    }

    fn guess_from_container(&self, container: &mut dyn ContainerFacts) -> Option<DumpGuess> {
        let service = container.service().to_string();
        let mut password =
            container.secret(&["REDIS_PASSWORD", "DRAGONFLY_PASSWORD", "REDIS_PASS"]);
        if password.is_none() {
            if let Some(arg) = container.command_arg("--requirepass") {
                match arg.strip_prefix("${").and_then(|a| a.strip_suffix('}')) {
                    Some(var) => {
                        let var = var.split([':', '-']).next().unwrap_or(var).to_string();
                        container.reads_variable(&var);
                        password = Some(format!("${{env:{var}}}"));
                    }
                    None => container.note(format!("{service}: its command sets a literal --requirepass; drydock never copies it: put it in a variable and set `password = \"${{env:NAME}}\"`")),
                }
            }
        }
        if container.image().is_some_and(|i| i.contains("dragonfly")) {
            container.note(format!("{service}: Dragonfly speaks the Redis protocol; check that `redis-cli --rdb` works against it (drydock backs it up as redis)"));
        }
        let port = container.port();
        Some(DumpGuess {
            url: format!("redis://127.0.0.1:{port}"),
            password,
        })
    }
}

impl SourceSpec for RedisSource {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn priority(&self) -> Priority {
        self.priority
    }

    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    fn derived_check(&self) -> Option<CheckSpec> {
        Some(CheckSpec::Redis(RedisCheck {
            url: self.url.clone(),
            password: self.password.clone(),
            expect_role: None,
            warn_memory_pct: 80.0,
            critical_memory_pct: 95.0,
        }))
    }

    fn validate(&mut self, v: &mut SourceValidation<'_, '_>) {
        if let Some(url) = v.url(&self.url, &["redis"]) {
            if !url_database(&url).is_empty() {
                v.push(
                    "url",
                    "drydock backs up the whole Redis instance; remove the /DB part of the URL",
                );
            }
        }
        v.secret("password", self.password.as_mut());
        v.exec(self.exec, &mut self.exec_in);
    }
}
