//! The semantic checks of one service's health list that every kind shares: names
//! (unique), timeouts and retries; then each check's own rules (URLs, thresholds,
//! secrets resolved, paths made absolute), which live with its kind (`CheckKindSpec`)
//! and are reached through the registry.

use std::path::Path;

use super::parse::HealthCheckConfig;
use super::spec::CheckValidation;
use crate::config::errors::Collector;
use crate::config::fields::validate_name;
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
        check
            .spec
            .validate(&mut CheckValidation::new(c, &at, base, runtime));
    }
}
