//! The [`Channel`] trait every channel kind implements (one file each under
//! `channels/`), what one attempt comes to ([`Delivery`]), and the HTTP attempt the
//! HTTP kinds share: one POST with a timeout and the idempotency key, its answer
//! classified (2xx sent; network errors, timeouts, 408, 429 and 5xx retried, honouring
//! `Retry-After`; any other status refused at once).

use std::time::Duration;

use crate::message::Message;

/// A way to tell people: one per `[[notify]]` entry.
pub trait Channel: Send {
    /// One attempt to send `message` under the idempotency `key`, within `timeout`.
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery;

    /// Whether the channel wants the state of every run rather than state changes (a
    /// dead man's switch, which tracks the state itself).
    fn every_run(&self) -> bool {
        false
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver took it.
    Sent,
    /// It may work later (network, timeout, 429, 5xx); `after`: the receiver's
    /// `Retry-After`.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// It will not work as it is (another 4xx, a bad address): given up at once.
    Reject { error: String },
}

/// One HTTP request of a channel: the URL (a secret: never in a message), the body and
/// its headers. Sent with the `Idempotency-Key` header.
pub(crate) struct HttpPost<'a> {
    pub url: &'a str,
    pub content_type: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl HttpPost<'_> {
    pub(crate) fn send(self, key: &str, timeout: Duration) -> Delivery {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            // A redirect would carry the body elsewhere; the operator fixes the URL.
            .max_redirects(0)
            .user_agent(concat!("drydock/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut request = agent
            .post(self.url)
            .header("Content-Type", self.content_type)
            .header("Idempotency-Key", key);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        match request.send(self.body.as_bytes()) {
            Ok(response) => classify(
                response.status().as_u16(),
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(e) => transport(&e),
        }
    }
}

/// The answer's status as a delivery.
pub(crate) fn classify(status: u16, retry_after: Option<&str>) -> Delivery {
    match status {
        200..=299 => Delivery::Sent,
        408 | 429 | 500..=599 => Delivery::Retry {
            error: format!("the receiver answered HTTP {status}"),
            after: retry_after.and_then(parse_retry_after),
        },
        300..=399 => Delivery::Reject {
            error: format!("the receiver answered HTTP {status} (a redirect); put the final URL in the config"),
        },
        _ => Delivery::Reject {
            error: format!("the receiver refused it with HTTP {status}; check the channel's URL and its permissions"),
        },
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let secs = at.as_second() - drydock_domain::clock::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// A transport error as a delivery, described without the URL (ureq's messages may
/// carry it; the caller redacts secrets as well).
fn transport(e: &ureq::Error) -> Delivery {
    let error = match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        // ureq hands rustls's certificate errors over as I/O errors: retrying would
        // meet the same certificate.
        ureq::Error::Io(io) if io.to_string().contains("certificate") => {
            return Delivery::Reject {
                error: format!("TLS failed ({io}); check the server's certificate"),
            }
        }
        ureq::Error::Io(io) => format!("network error: {} ({io})", io.kind()),
        ureq::Error::BadUri(_) => {
            return Delivery::Reject {
                error: "the URL cannot be used; check the channel's URL".into(),
            }
        }
        ureq::Error::Tls(_) => {
            return Delivery::Reject {
                error: format!("TLS failed ({e}); check the server's certificate"),
            }
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    Delivery::Retry { error, after: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_and_retry_after_read_in_both_forms() {
        assert_eq!(classify(204, None), Delivery::Sent);
        assert!(matches!(classify(404, None), Delivery::Reject { .. }));
        assert!(matches!(classify(301, None), Delivery::Reject { .. }));
        assert_eq!(
            classify(429, Some("7")),
            Delivery::Retry {
                error: "the receiver answered HTTP 429".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        let Delivery::Retry { after, .. } = classify(503, Some("Sun, 06 Nov 1994 08:49:37 GMT"))
        else {
            panic!()
        };
        assert_eq!(after, Some(Duration::ZERO), "a date in the past: now");
        let Delivery::Retry { after, .. } = classify(500, Some("soon")) else {
            panic!()
        };
        assert_eq!(after, None);
    }
}
