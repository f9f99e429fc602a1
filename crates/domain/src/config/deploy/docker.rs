//! `deploy = { kind = "docker", ... }`: a service deployed as a container image.
//! `swap` starts the new container on a fresh loopback port beside the old one,
//! health-gates it, points the reverse proxy at it and stops the old one (kept for
//! rollback); `recreate` stops the old container, starts the new one on the same
//! published port, and goes back to the old image if the new one is not healthy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gate::{BuildIdCheck, HttpGate};
use crate::config::duration_text;
use crate::config::errors::Collector;
use crate::config::fields::absolute;
use crate::spans::KeyPath;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerDeploy {
    /// The image to run; `{rev}` is the deployed commit (`clinic/api:{rev}`).
    pub image: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// The port the app listens on inside the container.
    pub port: u16,
    /// `recreate`: the host port the container is published on (loopback).
    #[serde(default)]
    pub publish: Option<u16>,
    /// Where users reach the app (through the proxy): the build-id check and the
    /// rollback's wait for the old build ask here.
    #[serde(default)]
    pub url: Option<String>,
    /// A Docker network the container joins (to reach the stack's databases).
    #[serde(default)]
    pub network: Option<String>,
    /// Environment of the container. Values are passed to Docker, never logged.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub health: HttpGate,
    #[serde(default)]
    pub build_id: Option<BuildIdCheck>,
    #[serde(default)]
    pub proxy: Option<ProxyConfig>,
    /// Old containers kept (stopped) for rollback.
    #[serde(default = "DockerDeploy::default_keep")]
    pub keep: usize,
}

/// How the new container replaces the old.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Zero downtime: new beside old, health gate, proxy switch, drain, stop old.
    #[default]
    Swap,
    /// Stop old, start new, health gate, back to the old image if unhealthy.
    Recreate,
}

/// The operator's reverse proxy, which a swap switches.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProxyConfig {
    Nginx(NginxProxy),
}

/// nginx: drydock owns one include file holding the service's `upstream` block and
/// rewrites it atomically, checks the whole config (`nginx -t`), and reloads
/// gracefully (`nginx -s reload`, never a restart).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NginxProxy {
    /// The include file drydock writes (`include` it inside `http { }`).
    pub upstream_file: PathBuf,
    /// The upstream's name, as the operator's `proxy_pass http://NAME` uses it
    /// (default: the service's name).
    #[serde(default)]
    pub upstream: Option<String>,
    /// The nginx binary.
    #[serde(default = "NginxProxy::default_binary")]
    pub binary: PathBuf,
    /// The main config file nginx runs with (`-c`); default: nginx's own.
    #[serde(default)]
    pub conf: Option<PathBuf>,
    /// How long the old container keeps serving requests already in flight after the
    /// reload, before it is stopped.
    #[serde(default = "NginxProxy::default_drain", with = "duration_text")]
    pub drain: Duration,
}

impl NginxProxy {
    fn default_binary() -> PathBuf {
        PathBuf::from("nginx")
    }
    fn default_drain() -> Duration {
        Duration::from_secs(30)
    }
}

impl DockerDeploy {
    fn default_keep() -> usize {
        3
    }

    pub(super) fn validate(&mut self, c: &mut Collector<'_>, at: &KeyPath, base: &Path) {
        if self.image.trim().is_empty() {
            c.push(
                &at.key("image"),
                "empty image; give the image to run, e.g. \"clinic/api:{rev}\"",
            );
        }
        if self.port == 0 {
            c.push(
                &at.key("port"),
                "port 0; give the port the app listens on inside the container",
            );
        }
        match (self.strategy, &self.proxy) {
            (Strategy::Swap, None) => c.push(
                &at.key("strategy"),
                "a swap needs a reverse proxy to switch: add proxy = { kind = \"nginx\", upstream_file = \"...\" }, or use strategy = \"recreate\"",
            ),
            (Strategy::Recreate, Some(_)) => c.push(
                &at.key("proxy"),
                "`recreate` does not switch a proxy; use strategy = \"swap\" or remove proxy",
            ),
            _ => {}
        }
        if self.strategy == Strategy::Swap && self.publish.is_some() {
            c.push(
                &at.key("publish"),
                "a swap publishes each new container on a fresh loopback port; `publish` is for strategy = \"recreate\"",
            );
        }
        if self.keep == 0 {
            c.push(
                &at.key("keep"),
                "keep = 0 leaves nothing to roll back to; keep at least 1",
            );
        }
        if let Some(url) = &self.url {
            validate_url(c, &at.key("url"), url);
        }
        if self.build_id.is_some() && self.url.is_none() {
            c.push(
                &at.key("build_id"),
                "the build id is read where users reach the app: give url = \"http://...\"",
            );
        }
        self.health.validate(c, &at.key("health"));
        if let Some(b) = &self.build_id {
            b.validate(c, &at.key("build_id"));
        }
        if let Some(ProxyConfig::Nginx(n)) = self.proxy.as_mut() {
            n.upstream_file = absolute(base, &n.upstream_file);
            if let Some(conf) = n.conf.as_mut() {
                *conf = absolute(base, conf);
            }
        }
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn validate_url(c: &mut Collector<'_>, at: &KeyPath, raw: &str) {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => c.push(
            at,
            format!("`{raw}` is not an http(s) URL; write e.g. \"http://127.0.0.1:8080\""),
        ),
    }
}
