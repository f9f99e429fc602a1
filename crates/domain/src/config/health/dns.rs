//! `kind = "dns"`: a name resolves (to one of the expected addresses), through the
//! system resolver or a given DNS server.

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve.
    pub host: String,
    /// Addresses it must resolve to (at least one of them); default: any.
    #[serde(default)]
    pub expect: Vec<std::net::IpAddr>,
    /// `IP` or `IP:PORT` of the DNS server to ask; default: the system resolver.
    #[serde(default)]
    pub resolver: Option<String>,
    /// `A` (default) or `AAAA`, when asking a `resolver`.
    #[serde(default)]
    pub record: DnsRecord,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecord {
    #[default]
    A,
    Aaaa,
}

/// The `dns` kind.
pub(super) enum DnsKind {}

impl CheckKindSpec for DnsKind {
    type Config = DnsCheck;
    const NAME: &'static str = "dns";

    fn validate(d: &mut DnsCheck, v: &mut CheckValidation<'_, '_>) {
        if d.host.trim().is_empty() {
            v.push("host", "empty; give the name to resolve");
        }
        if let Some(r) = &d.resolver {
            if parse_resolver(r).is_none() {
                v.push(
                    "resolver",
                    format!("`{r}` is not IP or IP:PORT (e.g. 127.0.0.1:53)"),
                );
            }
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
