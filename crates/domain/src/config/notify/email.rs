//! `kind = "email"`: a plain-text mail through an SMTP server. The password is a secret;
//! a password is never sent over a connection without TLS to another machine.

use serde::{Deserialize, Serialize};

use super::spec::{ChannelSpec, ChannelValidation};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    /// The SMTP server's host name.
    pub server: String,
    /// Its port (default: 587 for `starttls`, 465 for `tls`, 25 for `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the connection is secured (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender address.
    pub from: String,
    /// The recipients, at least one.
    pub to: Vec<String>,
    /// The login name, when the server wants one (with `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: only for a relay on this machine or a trusted network.
    None,
}

impl EmailChannel {
    /// The port in force.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

impl ChannelSpec for EmailChannel {
    fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>) {
        let host_ok = !self.server.is_empty()
            && self.server.len() <= 253
            && self
                .server
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | ':'));
        if !host_ok {
            v.push(
                "server",
                format!(
                    "invalid SMTP server `{}`: give a host name or address (the port goes in `port`)",
                    self.server
                ),
            );
        }
        if self.port == Some(0) {
            v.push("port", "port 0 is not a port; give the SMTP server's port");
        }
        if !looks_like_address(&self.from) {
            v.push(
                "from",
                format!("`{}` is not a mail address (NAME@DOMAIN)", self.from),
            );
        }
        if self.to.is_empty() {
            v.push("to", "no recipient; list at least one address");
        }
        for (i, to) in self.to.iter().enumerate() {
            if !looks_like_address(to) {
                v.push(
                    "to",
                    format!("to[{i}]: `{to}` is not a mail address (NAME@DOMAIN)"),
                );
            }
        }
        match (&self.username, self.password.as_mut()) {
            (Some(_), None) => v.push("password", "`username` without `password`; add the password as a secret reference, or remove `username`"),
            (None, Some(_)) => v.push("username", "`password` without `username`; add the login name"),
            (Some(_), Some(password)) => {
                v.secret("password", password);
                let local = matches!(self.server.as_str(), "localhost" | "127.0.0.1" | "::1");
                if self.tls == SmtpTls::None && !local {
                    v.push("tls", format!("`tls = \"none\"` would send the password to {} unencrypted; use `starttls` or `tls`", self.server));
                }
            }
            (None, None) => {}
        }
    }
}

/// A cheap shape check (`x@y`); the mailer parses the address fully when sending.
fn looks_like_address(raw: &str) -> bool {
    let address = match (raw.find('<'), raw.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => raw,
    };
    match address.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && !domain.is_empty() && !address.contains(char::is_whitespace)
        }
        None => false,
    }
}
