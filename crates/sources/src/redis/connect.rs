//! Reaching the server: the source's handle ([`Redis`]), its endpoint (TCP or Unix
//! socket, from the URL), connections with timeouts, and errors that name the server
//! and the fix.

use std::time::Duration;

use drydock_domain::config::RedisSource;
use redis::{Connection, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

use crate::process::redact;
use crate::{DataSource, SourceError};

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Redis {
    pub(super) config: RedisSource,
}

/// Where the instance is, from the configured URL.
pub(super) struct Endpoint {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) username: Option<String>,
}

impl Redis {
    pub fn new(config: RedisSource) -> Self {
        Redis { config }
    }

    pub(super) fn loc(&self) -> String {
        self.location()
    }

    pub(super) fn password(&self) -> Option<&str> {
        self.config
            .password
            .as_ref()
            .map(|s| s.expose())
            .filter(|p| !p.is_empty())
    }

    pub(super) fn secrets(&self) -> Vec<String> {
        self.password()
            .map(|p| vec![p.to_string()])
            .unwrap_or_default()
    }

    pub(super) fn endpoint(&self) -> Result<Endpoint, SourceError> {
        let url = url::Url::parse(&self.config.url).map_err(|e| {
            SourceError::invalid(
                &self.loc(),
                format!("the URL is not valid ({e}); expected redis://[USER@]HOST:PORT"),
            )
        })?;
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => {
                return Err(SourceError::invalid(
                    &self.loc(),
                    "the URL has no host; expected redis://[USER@]HOST:PORT",
                ))
            }
        };
        let username = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        Ok(Endpoint {
            host,
            port: url.port().unwrap_or(6379),
            username,
        })
    }

    pub(super) fn hostport(&self) -> String {
        match url::Url::parse(&self.config.url) {
            Ok(u) => format!(
                "{}:{}",
                u.host_str().unwrap_or("?"),
                u.port().unwrap_or(6379)
            ),
            Err(_) => self.config.url.clone(),
        }
    }

    /// One more connection to the instance, for the readers of its keys
    /// ([`super::fingerprint::Connector`]); a failure is the client's error.
    pub(super) fn connect_again(&self) -> redis::RedisResult<Connection> {
        self.connect().map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::IoError, "connecting", e.to_string()))
        })
    }

    /// A connection to the configured instance; failures become [`SourceError::Connect`].
    pub(super) fn connect(&self) -> Result<Connection, SourceError> {
        let ep = self.endpoint()?;
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(ep.host, ep.port),
            redis: RedisConnectionInfo {
                db: 0,
                username: ep.username,
                password: self.password().map(str::to_string),
                ..Default::default()
            },
        };
        let mut con = open_connection(info).map_err(|e| self.connect_error(e))?;
        let pong: Result<String, _> = redis::cmd("PING").query(&mut con);
        pong.map_err(|e| self.connect_error(e))?;
        Ok(con)
    }

    pub(super) fn connect_error(&self, e: redis::RedisError) -> SourceError {
        let location = self.loc();
        let hp = self.hostport();
        let text = redact(&e.to_string(), &self.secrets());
        let reference = self.config.password.as_ref().map(|s| s.to_string());
        let (cause, fix) = if e.kind() == redis::ErrorKind::AuthenticationFailed
            || text.contains("WRONGPASS")
            || text.contains("invalid password")
        {
            (
                "the server rejected the password (wrong password or user)".to_string(),
                match reference {
                    Some(r) => format!("check the secret {r} and the user in the URL"),
                    None => "set `password` for this source".to_string(),
                },
            )
        } else if text.contains("NOAUTH") {
            (
                "the server requires a password".to_string(),
                "set `password = \"${env:NAME}\"` for this source".to_string(),
            )
        } else if e.kind() == redis::ErrorKind::BusyLoadingError || text.contains("LOADING") {
            (
                "the server is still loading its data".to_string(),
                "retry in a moment".to_string(),
            )
        } else if e.is_connection_refusal()
            || e.is_timeout()
            || e.kind() == redis::ErrorKind::IoError
        {
            (text, format!("is redis running at {hp}?"))
        } else {
            (
                text,
                format!("check the URL and that redis at {hp} accepts this client"),
            )
        };
        SourceError::Connect {
            location,
            cause,
            fix,
        }
    }

    pub(super) fn query_err(&self, what: &str, e: redis::RedisError) -> SourceError {
        SourceError::query(&self.loc(), what, redact(&e.to_string(), &self.secrets()))
    }
}

pub(super) fn open_connection(info: ConnectionInfo) -> redis::RedisResult<Connection> {
    let client = redis::Client::open(info)?;
    let con = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
