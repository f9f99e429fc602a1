//! `http` and `https`: one GET, judged by status, latency, body (text or a JSON
//! field), and for https the certificate (trusted, valid for the host, days to
//! expiry) and, when asked, the HSTS header.

use std::time::Instant;

use drydock_domain::config::health::HttpCheck;
use serde_json::Value;

use crate::net::{self, TlsFailure};
use crate::{millis, Check, Outcome, Status, Verdict};

pub struct Http {
    config: HttpCheck,
}

impl Http {
    pub fn new(config: HttpCheck) -> Self {
        Http { config }
    }

    /// Judges the certificate; `false` when the request should not be made at all.
    fn judge_certificate(&self, url: &url::Url, deadline: Instant, v: &mut Verdict) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            v.problem(Status::Critical, format!("{} has no host", self.config.url));
            return false;
        };
        let host = host.trim_matches(['[', ']']);
        let anchors = match net::trust_anchors(self.config.ca_file.as_deref()) {
            Ok(a) => a,
            Err(e) => {
                v.problem(Status::Critical, e);
                return false;
            }
        };
        match net::probe(host, port, &anchors, deadline) {
            Ok(cert) => {
                let days = cert.days_left;
                if days <= i64::from(self.config.cert_critical_days) {
                    v.problem(
                        Status::Critical,
                        format!(
                            "certificate expires in {days} day(s) (not after {})",
                            cert.not_after
                        ),
                    );
                } else if days <= i64::from(self.config.cert_warn_days) {
                    v.problem(
                        Status::Warning,
                        format!(
                            "certificate expires in {days} day(s) (not after {})",
                            cert.not_after
                        ),
                    );
                }
                v.detail("certificate", &cert);
                true
            }
            Err(TlsFailure::Certificate(reason, cert)) => {
                v.detail("certificate", &cert);
                v.detail("tls_error", &reason);
                v.problem(Status::Critical, reason);
                false
            }
            Err(TlsFailure::Connect(e)) => {
                v.transient(e);
                false
            }
            Err(TlsFailure::Handshake(e)) => {
                v.transient(format!("TLS handshake with {host}:{port} failed: {e}"));
                false
            }
        }
    }
}

impl Check for Http {
    fn run(&self, deadline: Instant) -> Outcome {
        let c = &self.config;
        let mut v = Verdict::new();
        v.detail("url", &c.url);
        let url = match url::Url::parse(&c.url) {
            Ok(u) => u,
            Err(e) => return Outcome::critical(format!("bad URL {}: {e}", c.url)).definitive(),
        };
        let https = url.scheme() == "https";
        if https && !self.judge_certificate(&url, deadline, &mut v) {
            let retry = !v.details.contains_key("tls_error");
            let mut o = v.finish("");
            o.retry = retry;
            return o;
        }
        let anchors = if https {
            net::trust_anchors(c.ca_file.as_deref()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let agent = net::agent(&anchors, deadline);
        let began = Instant::now();
        let mut resp = match agent.get(&c.url).call() {
            Ok(r) => r,
            Err(e) => {
                v.transient(net::http_error(&c.url, &e));
                return v.finish("");
            }
        };
        let status = resp.status().as_u16();
        let hsts = resp
            .headers()
            .get("strict-transport-security")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let wants_body = c.body_contains.is_some() || c.json_field.is_some();
        let body = if wants_body {
            match resp
                .body_mut()
                .with_config()
                .limit(4 << 20)
                .read_to_string()
            {
                Ok(b) => Some(b),
                Err(e) => {
                    v.transient(format!("{}: reading the body failed: {e}", c.url));
                    return v.finish("");
                }
            }
        } else {
            None
        };
        let latency = began.elapsed();
        v.detail("status", status);
        v.detail("latency_ms", millis(latency));
        if !c.accepts(status) {
            let wanted = match &c.expect_status {
                None => "2xx".to_string(),
                Some(drydock_domain::config::health::OneOrMany::One(s)) => s.to_string(),
                Some(drydock_domain::config::health::OneOrMany::Many(l)) => l
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            v.transient(format!("status {status}, expected {wanted}"));
        }
        if let Some(max) = c.max_latency_ms {
            if latency.as_millis() > u128::from(max) {
                v.problem(
                    Status::Warning,
                    format!("slow: answered in {} ms (max {max} ms)", millis(latency)),
                );
            }
        }
        if let (Some(needle), Some(body)) = (&c.body_contains, &body) {
            if !body.contains(needle.as_str()) {
                v.transient(format!("the body does not contain `{needle}`"));
            }
        }
        if let (Some(field), Some(body)) = (&c.json_field, &body) {
            match serde_json::from_str::<Value>(body) {
                Err(e) => v.transient(format!(
                    "the body is not JSON ({e}), so `{field}` cannot be read"
                )),
                Ok(json) => {
                    let found = json_field(&json, field);
                    v.detail("json_value", found);
                    match (found, &c.json_equals) {
                        (None, _) => v.transient(format!("the JSON body has no `{field}`")),
                        (Some(got), Some(want)) if !json_equal(got, want) => {
                            v.transient(format!("`{field}` is {got}, expected {want}"))
                        }
                        _ => {}
                    }
                }
            }
        }
        if c.hsts {
            match &hsts {
                Some(h) => v.detail("hsts", h),
                None => v.problem(Status::Warning, "no Strict-Transport-Security header"),
            }
        }
        let ok = format!("{status} in {} ms", millis(latency));
        v.finish(ok)
    }
}

/// A field by JSON pointer (`/a/b`) or dotted path (`a.b`).
pub fn json_field<'a>(json: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        return json.pointer(field);
    }
    field.split('.').try_fold(json, |v, key| match v {
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => v.get(key),
    })
}

/// Equality that lets `"UP"` match `UP` and `200` match `200.0`.
fn json_equal(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_by_pointer_and_path() {
        let v: Value = serde_json::json!({"status": "UP", "checks": [{"db": {"ok": true}}]});
        assert_eq!(json_field(&v, "status"), Some(&Value::from("UP")));
        assert_eq!(json_field(&v, "/checks/0/db/ok"), Some(&Value::Bool(true)));
        assert_eq!(json_field(&v, "checks.0.db.ok"), Some(&Value::Bool(true)));
        assert_eq!(json_field(&v, "nope"), None);
        assert!(json_equal(
            &serde_json::json!(200),
            &serde_json::json!(200.0)
        ));
    }
}
