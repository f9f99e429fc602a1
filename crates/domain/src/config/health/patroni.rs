//! `kind = "patroni"`: a Patroni cluster has a leader, its replicas run and their
//! replication lag is within bounds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoints, CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatroniCheck {
    /// The REST API of one member (`http://HOST:8008`).
    pub url: String,
    /// Replicas that must be running; default: every replica Patroni lists.
    #[serde(default)]
    pub expect_replicas: Option<usize>,
    /// More replication lag than this is a warning ...
    #[serde(default = "PatroniCheck::default_warn_lag")]
    pub warn_lag_bytes: bytesize::ByteSize,
    /// ... or critical.
    #[serde(default = "PatroniCheck::default_critical_lag")]
    pub critical_lag_bytes: bytesize::ByteSize,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl PatroniCheck {
    fn default_warn_lag() -> bytesize::ByteSize {
        bytesize::ByteSize::mib(1)
    }
    fn default_critical_lag() -> bytesize::ByteSize {
        bytesize::ByteSize::mib(16)
    }
}

/// The `patroni` kind.
pub(super) enum PatroniKind {}

impl CheckKindSpec for PatroniKind {
    type Config = PatroniCheck;
    const NAME: &'static str = "patroni";

    fn validate(p: &mut PatroniCheck, v: &mut CheckValidation<'_, '_>) {
        v.url("url", &p.url, &["http", "https"]);
        if p.critical_lag_bytes < p.warn_lag_bytes {
            v.push(
                "critical_lag_bytes",
                format!("must be at least warn_lag_bytes ({})", p.warn_lag_bytes),
            );
        }
        v.absolute_opt(&mut p.ca_file);
    }

    fn endpoints(p: &PatroniCheck) -> Vec<(String, u16)> {
        url_endpoints(&p.url)
    }
}
