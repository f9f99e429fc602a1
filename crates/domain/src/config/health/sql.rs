//! `kind = "postgres"` and `kind = "mysql"` (alias `mariadb`): connect, `SELECT 1`,
//! database size, connections against the server's maximum. The two kinds share
//! [`SqlCheck`] and differ in the URL schemes they take.

use serde::{Deserialize, Serialize};

use super::spec::{
    default_critical_pct, default_warn_pct, url_endpoints, CheckKindSpec, CheckValidation,
};
use crate::secret::Secret;

/// `postgres` and `mysql`: connect, `SELECT 1`, database size, connections vs max.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    /// `postgres://USER@HOST:PORT/DB` or `mysql://USER@HOST:PORT/DB`, no password.
    pub url: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default = "default_warn_pct")]
    pub warn_connections_pct: f64,
    #[serde(default = "default_critical_pct")]
    pub critical_connections_pct: f64,
}

impl SqlCheck {
    /// The check `drydock health` derives for a database source: connection thresholds
    /// at their defaults.
    pub fn derived(url: &str, password: Option<Secret>) -> Self {
        SqlCheck {
            url: url.to_string(),
            password,
            warn_connections_pct: default_warn_pct(),
            critical_connections_pct: default_critical_pct(),
        }
    }
}

fn validate_sql(s: &mut SqlCheck, schemes: &[&str], v: &mut CheckValidation<'_, '_>) {
    v.url("url", &s.url, schemes);
    v.thresholds(
        "connections_pct",
        s.warn_connections_pct,
        s.critical_connections_pct,
        false,
    );
    v.secret("password", &mut s.password);
}

/// The `postgres` kind.
pub(super) enum PostgresKind {}

impl CheckKindSpec for PostgresKind {
    type Config = SqlCheck;
    const NAME: &'static str = "postgres";

    fn validate(s: &mut SqlCheck, v: &mut CheckValidation<'_, '_>) {
        validate_sql(s, &["postgres", "postgresql"], v);
    }

    fn endpoints(s: &SqlCheck) -> Vec<(String, u16)> {
        url_endpoints(&s.url)
    }

    fn password(s: &SqlCheck) -> Option<&Secret> {
        s.password.as_ref()
    }
}

/// The `mysql` kind (MariaDB too).
pub(super) enum MysqlKind {}

impl CheckKindSpec for MysqlKind {
    type Config = SqlCheck;
    const NAME: &'static str = "mysql";
    const ALIASES: &'static [&'static str] = &["mariadb"];

    fn validate(s: &mut SqlCheck, v: &mut CheckValidation<'_, '_>) {
        validate_sql(s, &["mysql", "mariadb"], v);
    }

    fn endpoints(s: &SqlCheck) -> Vec<(String, u16)> {
        url_endpoints(&s.url)
    }

    fn password(s: &SqlCheck) -> Option<&Secret> {
        s.password.as_ref()
    }
}
