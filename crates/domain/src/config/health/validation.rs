//! The semantic checks of one service's health list: names (unique), timeouts,
//! retries, URLs, thresholds, secrets (resolved) and paths (made absolute).

use std::path::Path;

use super::parse::HealthCheckConfig;
use super::registry::{split_host_port, CheckSpec};
use crate::config::errors::Collector;
use crate::config::fields::{absolute, resolve, validate_name};
use crate::config::runtime::RuntimeConfig;
use crate::spans::KeyPath;

/// Semantic checks of one service's health list: names, URLs, thresholds, secrets,
/// paths. `base` is the config file's folder.
pub(in crate::config) fn validate(
    at: &KeyPath,
    checks: &mut [(usize, HealthCheckConfig)],
    runtime: &RuntimeConfig,
    base: &Path,
    c: &mut Collector<'_>,
) {
    let mut seen = std::collections::BTreeMap::new();
    for (i, check) in checks.iter_mut() {
        let at = at.index(*i);
        validate_name(c, &at.key("name"), &check.name, "check");
        if let Some(first) = seen.insert(check.name.clone(), *i) {
            c.push(
                &at,
                format!(
                    "duplicate check name `{}` (also health[{first}]); give each check of a service its own `name`",
                    check.name
                ),
            );
        }
        if check.timeout.is_zero() {
            c.push(
                &at.key("timeout"),
                "must be more than 0; write e.g. 5s or 500ms",
            );
        }
        if check.retries > 10 {
            c.push(
                &at.key("retries"),
                "at most 10; a check that needs more is not healthy",
            );
        }
        if matches!(check.spec, CheckSpec::Process(_))
            && matches!(runtime, RuntimeConfig::External | RuntimeConfig::None)
        {
            c.push(
                &at.key("kind"),
                "a `process` check asks the service's runtime, and runtime `external`/`none` cannot tell; use a `tcp` or engine check instead",
            );
        }
        validate_spec(&at, &mut check.spec, base, c);
    }
}

fn validate_spec(at: &KeyPath, spec: &mut CheckSpec, base: &Path, c: &mut Collector<'_>) {
    let url_check = |key: &str, raw: &str, schemes: &[&str], c: &mut Collector<'_>| {
        if let Err(message) = check_url(raw, schemes) {
            c.push(&at.key(key), message);
        }
    };
    let pct = |key: &str, warn: f64, critical: f64, lower_is_worse: bool, c: &mut Collector<'_>| {
        for (k, v) in [
            (format!("warn_{key}"), warn),
            (format!("critical_{key}"), critical),
        ] {
            if !(0.0..=100.0).contains(&v) {
                c.push(&at.key(&k), "a percentage from 0 to 100");
            }
        }
        let ordered = if lower_is_worse {
            critical <= warn
        } else {
            critical >= warn
        };
        if !ordered {
            c.push(
                &at.key(&format!("critical_{key}")),
                format!(
                    "must be {} warn_{key} ({warn}); the critical threshold is the worse one",
                    if lower_is_worse {
                        "at most"
                    } else {
                        "at least"
                    }
                ),
            );
        }
    };
    match spec {
        CheckSpec::Tcp(t) => {
            if split_host_port(&t.address).is_none() {
                c.push(
                    &at.key("address"),
                    format!("`{}` is not HOST:PORT", t.address),
                );
            }
        }
        CheckSpec::Http(h) | CheckSpec::Https(h) => {
            url_check("url", &h.url, &["http", "https"], c);
            if h.json_equals.is_some() && h.json_field.is_none() {
                c.push(
                    &at.key("json_equals"),
                    "needs `json_field` (the field to compare)",
                );
            }
            if h.cert_critical_days > h.cert_warn_days {
                c.push(
                    &at.key("cert_critical_days"),
                    format!("must be at most cert_warn_days ({})", h.cert_warn_days),
                );
            }
            if let Some(p) = &mut h.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Dns(d) => {
            if d.host.trim().is_empty() {
                c.push(&at.key("host"), "empty; give the name to resolve");
            }
            if let Some(r) = &d.resolver {
                if parse_resolver(r).is_none() {
                    c.push(
                        &at.key("resolver"),
                        format!("`{r}` is not IP or IP:PORT (e.g. 127.0.0.1:53)"),
                    );
                }
            }
        }
        CheckSpec::Postgres(s) => {
            url_check("url", &s.url, &["postgres", "postgresql"], c);
            pct(
                "connections_pct",
                s.warn_connections_pct,
                s.critical_connections_pct,
                false,
                c,
            );
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Mysql(s) => {
            url_check("url", &s.url, &["mysql", "mariadb"], c);
            pct(
                "connections_pct",
                s.warn_connections_pct,
                s.critical_connections_pct,
                false,
                c,
            );
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Redis(r) => {
            url_check("url", &r.url, &["redis"], c);
            pct(
                "memory_pct",
                r.warn_memory_pct,
                r.critical_memory_pct,
                false,
                c,
            );
            if let Some(role) = &r.expect_role {
                if !["master", "replica", "slave"].contains(&role.as_str()) {
                    c.push(&at.key("expect_role"), "one of master, replica");
                }
            }
            if let Some(p) = &mut r.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::RedisSentinel(s) => {
            url_check("url", &s.url, &["redis"], c);
            if s.master.trim().is_empty() {
                c.push(&at.key("master"), "empty; give the monitored master's name");
            }
            if let Some(p) = &mut s.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::RedisCluster(r) => {
            url_check("url", &r.url, &["redis"], c);
            if let Some(p) = &mut r.password {
                resolve(c, &at.key("password"), p);
            }
        }
        CheckSpec::Sqlite(s) => s.path = absolute(base, &s.path),
        CheckSpec::Disk(d) => {
            d.path = absolute(base, &d.path);
            pct("free_pct", d.warn_free_pct, d.critical_free_pct, true, c);
            if let (Some(w), Some(cr)) = (d.warn_free_bytes, d.critical_free_bytes) {
                if cr > w {
                    c.push(
                        &at.key("critical_free_bytes"),
                        format!("must be at most warn_free_bytes ({w})"),
                    );
                }
            }
        }
        CheckSpec::Command(cmd) => {
            if cmd.run.trim().is_empty() {
                c.push(
                    &at.key("run"),
                    "empty command; give the shell command to run",
                );
            }
        }
        CheckSpec::Oidc(o) => {
            url_check("issuer", &o.issuer, &["https", "http"], c);
            if let Some(p) = &mut o.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Etcd(e) => {
            if e.endpoints.is_empty() {
                c.push(
                    &at.key("endpoints"),
                    "empty; list the members' client URLs (http://HOST:2379)",
                );
            }
            for (j, u) in e.endpoints.iter().enumerate() {
                url_check(&format!("endpoints[{j}]"), u, &["http", "https"], c);
            }
            if let Some(p) = &mut e.ca_file {
                *p = absolute(base, p);
            }
        }
        CheckSpec::Patroni(p) => {
            url_check("url", &p.url, &["http", "https"], c);
            if p.critical_lag_bytes < p.warn_lag_bytes {
                c.push(
                    &at.key("critical_lag_bytes"),
                    format!("must be at least warn_lag_bytes ({})", p.warn_lag_bytes),
                );
            }
            if let Some(f) = &mut p.ca_file {
                *f = absolute(base, f);
            }
        }
        CheckSpec::Process(_) => {}
    }
    if let CheckSpec::Https(h) = spec {
        if !h.url.starts_with("https://") {
            c.push(
                &at.key("url"),
                "a `https` check needs an https:// URL (use kind = \"http\" for plain HTTP)",
            );
        }
    }
    if let CheckSpec::Http(h) = spec {
        if !h.url.starts_with("https://") && (h.hsts || h.ca_file.is_some()) {
            c.push(at, "`hsts` and `ca_file` need an https:// URL");
        }
    }
}

/// A resolver address: `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_resolver(text: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    text.parse().ok()
}

fn check_url(raw: &str, schemes: &[&str]) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!(
            "not a valid URL ({e}); expected {}://HOST:PORT/...",
            schemes[0]
        )
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "scheme `{}` does not fit this check; expected {}://",
            url.scheme(),
            schemes.join(":// or ")
        ));
    }
    if url.password().is_some() {
        return Err("the URL contains a password; remove it from the URL and set `password = \"${env:NAME}\"` instead".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the URL has no host; expected {}://HOST:PORT/...",
            schemes[0]
        ));
    }
    Ok(())
}
