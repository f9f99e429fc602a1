//! `kind = "tcp"`: a TCP connection to `HOST:PORT` opens.

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// `HOST:PORT`.
    pub address: String,
}

/// The `tcp` kind.
pub(super) enum TcpKind {}

impl CheckKindSpec for TcpKind {
    type Config = TcpCheck;
    const NAME: &'static str = "tcp";

    fn validate(t: &mut TcpCheck, v: &mut CheckValidation<'_, '_>) {
        if split_host_port(&t.address).is_none() {
            v.push("address", format!("`{}` is not HOST:PORT", t.address));
        }
    }

    fn endpoints(t: &TcpCheck) -> Vec<(String, u16)> {
        split_host_port(&t.address).into_iter().collect()
    }
}

/// `HOST:PORT` (`[v6]:PORT` too) into its parts.
pub fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}
