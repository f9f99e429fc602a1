//! `kind = "http"` and `kind = "https"`: one request, judged by status, latency, body
//! and (for https) the certificate. The two kinds share [`HttpCheck`]; `https` insists
//! on an https:// URL, `http` refuses the TLS-only keys on a plain one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoints, CheckKindSpec, CheckValidation};

/// `http` and `https`: one request, judged by status, latency, body and (for https)
/// the certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    /// Accepted statuses (`200` or `[200, 302]`); default any 2xx. Redirects are not
    /// followed, so a 302 is seen as a 302.
    #[serde(default)]
    pub expect_status: Option<OneOrMany>,
    /// Slower answers are a warning.
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// A field of a JSON body, as a JSON pointer (`/status`) or dotted path (`status`,
    /// `checks.db.status`); with `json_equals`.
    #[serde(default)]
    pub json_field: Option<String>,
    #[serde(default)]
    pub json_equals: Option<serde_json::Value>,
    /// PEM file with the CA(s) to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Fewer days until the certificate expires is a warning ...
    #[serde(default = "HttpCheck::default_cert_warn_days")]
    pub cert_warn_days: u32,
    /// ... and this few is critical (an expired certificate always is).
    #[serde(default = "HttpCheck::default_cert_critical_days")]
    pub cert_critical_days: u32,
    /// Require a `Strict-Transport-Security` header.
    #[serde(default)]
    pub hsts: bool,
}

impl HttpCheck {
    fn default_cert_warn_days() -> u32 {
        14
    }
    fn default_cert_critical_days() -> u32 {
        3
    }

    /// Whether `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        match &self.expect_status {
            None => (200..300).contains(&status),
            Some(OneOrMany::One(s)) => *s == status,
            Some(OneOrMany::Many(list)) => list.contains(&status),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(u16),
    Many(Vec<u16>),
}

/// The rules both kinds share.
fn validate_request(h: &mut HttpCheck, v: &mut CheckValidation<'_, '_>) {
    v.url("url", &h.url, &["http", "https"]);
    if h.json_equals.is_some() && h.json_field.is_none() {
        v.push("json_equals", "needs `json_field` (the field to compare)");
    }
    if h.cert_critical_days > h.cert_warn_days {
        v.push(
            "cert_critical_days",
            format!("must be at most cert_warn_days ({})", h.cert_warn_days),
        );
    }
    v.absolute_opt(&mut h.ca_file);
}

/// The `http` kind.
pub(super) enum HttpKind {}

impl CheckKindSpec for HttpKind {
    type Config = HttpCheck;
    const NAME: &'static str = "http";

    fn validate(h: &mut HttpCheck, v: &mut CheckValidation<'_, '_>) {
        validate_request(h, v);
        if !h.url.starts_with("https://") && (h.hsts || h.ca_file.is_some()) {
            v.push_check("`hsts` and `ca_file` need an https:// URL");
        }
    }

    fn endpoints(h: &HttpCheck) -> Vec<(String, u16)> {
        url_endpoints(&h.url)
    }
}

/// The `https` kind.
pub(super) enum HttpsKind {}

impl CheckKindSpec for HttpsKind {
    type Config = HttpCheck;
    const NAME: &'static str = "https";

    fn validate(h: &mut HttpCheck, v: &mut CheckValidation<'_, '_>) {
        validate_request(h, v);
        if !h.url.starts_with("https://") {
            v.push(
                "url",
                "a `https` check needs an https:// URL (use kind = \"http\" for plain HTTP)",
            );
        }
    }

    fn endpoints(h: &HttpCheck) -> Vec<(String, u16)> {
        url_endpoints(&h.url)
    }
}
