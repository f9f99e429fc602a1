//! One file per check kind; [`crate::registry::build`] maps config to them.

pub mod command;
pub mod disk;
pub mod dns;
pub mod etcd;
pub mod http;
pub mod mysql;
pub mod oidc;
pub mod patroni;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod sqlite;
pub mod tcp;

/// `(user, host, port, database)` of a `scheme://USER@HOST:PORT/DB` URL validated at
/// config load.
pub(crate) fn url_parts(
    raw: &str,
    default_port: u16,
) -> Result<(String, String, u16, String), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("bad URL {raw}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{raw} has no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let user = percent_decode(url.username());
    let db = percent_decode(url.path().trim_start_matches('/'));
    Ok((user, host, url.port().unwrap_or(default_port), db))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
