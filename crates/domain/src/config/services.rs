//! `[services.NAME]`: a service's role, runtime, data sources and health checks. The
//! `data` and `health` lists are parsed item by item (one bad source does not hide the
//! next); then each service is validated: its name, its runtime's keys, its checks, and
//! each source through its kind's [`SourceSpec`](super::sources::SourceSpec).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::deploy::ServiceDeploy;
use super::errors::Collector;
use super::fields::validate_name;
use super::health::{self, HealthCheckConfig};
use super::runtime::RuntimeConfig;
use super::sources::{parse_source, SourceConfig, SourceValidation};
use crate::spans::KeyPath;
use crate::vocabulary::Role;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub role: Option<Role>,
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub data: Vec<SourceConfig>,
    /// Health checks (`health = [...]`), parsed item by item in [`health`](super::health).
    #[serde(default, skip_deserializing)]
    pub health: Vec<HealthCheckConfig>,
    /// Stop the service (its container) while its data is read during a backup, and
    /// start it again afterwards.
    #[serde(default)]
    pub stop_during_backup: bool,
    /// How a new version of the service goes live (`drydock deploy`).
    #[serde(default)]
    pub deploy: Option<ServiceDeploy>,
}

/// A service as far as it parsed: sources that failed to parse are left out (and
/// reported), the rest keep their index for messages.
pub(super) struct PartialService {
    pub(super) role: Option<Role>,
    pub(super) runtime: RuntimeConfig,
    pub(super) stop_during_backup: bool,
    pub(super) deploy: Option<ServiceDeploy>,
    pub(super) data: Vec<(usize, SourceConfig)>,
    pub(super) health: Vec<(usize, HealthCheckConfig)>,
}

/// The service keys besides `data` and `health`, which are parsed item by item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceHead {
    #[serde(default)]
    role: Option<Role>,
    runtime: RuntimeConfig,
    #[serde(default)]
    stop_during_backup: bool,
    #[serde(default)]
    deploy: Option<ServiceDeploy>,
}

pub(super) fn parse_services(
    value: Option<toml::Value>,
    c: &mut Collector<'_>,
) -> BTreeMap<String, PartialService> {
    let at = KeyPath::default().key("services");
    let mut services = BTreeMap::new();
    let Some(value) = value else { return services };
    let toml::Value::Table(table) = value else {
        c.push(&at, "must be a table of services: [services.NAME]");
        return services;
    };
    for (name, value) in table {
        let at = at.key(&name);
        let toml::Value::Table(mut svc) = value else {
            c.push(&at, "a service must be a table: [services.NAME]");
            continue;
        };
        let data = svc.remove("data");
        let checks = svc
            .remove("health")
            .map(|v| health::parse_list(&at.key("health"), v, c))
            .unwrap_or_default();
        let head = c.section::<ServiceHead>(&at, toml::Value::Table(svc));
        let mut sources = Vec::new();
        match data {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    if let Some(src) = parse_source(&at.key("data").index(i), item, c) {
                        sources.push((i, src));
                    }
                }
            }
            Some(_) => c.push(
                &at.key("data"),
                "must be a list of sources: data = [{ kind = \"...\", ... }]",
            ),
        }
        if let Some(head) = head {
            services.insert(
                name,
                PartialService {
                    role: head.role,
                    runtime: head.runtime,
                    stop_during_backup: head.stop_during_backup,
                    deploy: head.deploy,
                    data: sources,
                    health: checks,
                },
            );
        }
    }
    services
}

impl PartialService {
    /// The semantic checks of the service `name`, in the order its errors are reported
    /// for one line: its name, its runtime, its checks, its sources. `base` is the
    /// config file's folder.
    pub(super) fn validate(&mut self, c: &mut Collector<'_>, name: &str, base: &Path) {
        let at = KeyPath::default().key("services").key(name);
        validate_name(c, &at, name, "service");
        self.runtime.validate(c, &at, base, self.stop_during_backup);
        health::validate(&at.key("health"), &mut self.health, &self.runtime, base, c);
        if let Some(deploy) = self.deploy.as_mut() {
            deploy.validate(c, &at, base);
        }
        let mut seen = BTreeMap::new();
        for (i, source) in self.data.iter_mut() {
            let at = at.key("data").index(*i);
            let source_name = source.name().to_string();
            validate_name(c, &at.key("name"), &source_name, "source");
            if let Some(first) = seen.insert(source_name.clone(), *i) {
                c.push(
                    &at,
                    format!("duplicate source name `{source_name}` (also data[{first}]); give each source of a service its own `name`"),
                );
            }
            let kind = source.kind().as_str();
            let mut validation = SourceValidation::new(c, at, base, name, &self.runtime, kind);
            source.spec_mut().validate(&mut validation);
        }
    }

    /// The service as loaded, once every check passed.
    pub(super) fn into_config(self) -> ServiceConfig {
        ServiceConfig {
            role: self.role,
            runtime: self.runtime,
            data: self.data.into_iter().map(|(_, s)| s).collect(),
            health: self.health.into_iter().map(|(_, h)| h).collect(),
            stop_during_backup: self.stop_during_backup,
            deploy: self.deploy,
        }
    }
}
