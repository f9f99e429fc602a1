//! `[[remote]]`: copies of the repository in S3-compatible buckets, each parsed and
//! validated on its own so one bad remote does not hide another's errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::Collector;
use super::fields::{resolve, validate_name};
use crate::secret::Secret;
use crate::spans::KeyPath;

/// One `[[remote]]`: a copy of the repository in an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// How backups, errors and `--from`/`--copy` name this copy.
    pub name: String,
    pub kind: RemoteKind,
    /// `https://host[:port]` of the S3 API, without credentials.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket (`backups/clinic/`); default: the bucket root.
    #[serde(default)]
    pub prefix: String,
    /// `https://host/bucket/key` instead of `https://bucket.host/key` (Garage, MinIO,
    /// Ceph and Contabo need it).
    #[serde(default)]
    pub path_style: bool,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// The copy's repository password; default: `[repository].password`.
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteKind {
    S3,
}

/// The copy drydock writes first, named like a remote in outputs and `--from`.
pub const LOCAL_COPY: &str = "local";

/// Each `[[remote]]` on its own, so one bad remote does not hide another's errors.
pub(super) fn parse_remotes(
    value: Option<toml::Value>,
    c: &mut Collector<'_>,
) -> Vec<(usize, RemoteConfig)> {
    let at = KeyPath::default().key("remote");
    match value {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| c.section(&at.index(i), item).map(|r| (i, r)))
            .collect(),
        Some(_) => {
            c.push(
                &at,
                "must be a list of tables: write each remote as [[remote]]",
            );
            Vec::new()
        }
    }
}

pub(super) fn validate_remotes(c: &mut Collector<'_>, remotes: &mut [(usize, RemoteConfig)]) {
    let mut seen = BTreeMap::new();
    for (i, remote) in remotes.iter_mut() {
        let at = KeyPath::default().key("remote").index(*i);
        validate_name(c, &at.key("name"), &remote.name, "remote");
        if remote.name == LOCAL_COPY {
            c.push(
                &at.key("name"),
                "`local` names the local repository; give the remote another name",
            );
        }
        if let Some(first) = seen.insert(remote.name.clone(), *i) {
            c.push(
                &at.key("name"),
                format!(
                    "duplicate remote name `{}` (also remote[{first}]); names must be unique",
                    remote.name
                ),
            );
        }
        if let Err(message) = validate_endpoint(&remote.endpoint) {
            c.push(&at.key("endpoint"), message);
        }
        if remote.region.trim().is_empty() {
            c.push(
                &at.key("region"),
                "empty region; give the region the server expects (e.g. `us-east-1`, `garage`)",
            );
        }
        let bucket_ok = (3..=63).contains(&remote.bucket.len())
            && remote
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            c.push(
                &at.key("bucket"),
                format!(
                    "invalid bucket name `{}`: use 3-63 lowercase letters, digits, '-' or '.'",
                    remote.bucket
                ),
            );
        }
        let prefix_ok = remote
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
            && !remote.prefix.split('/').any(|part| part == "..");
        if !prefix_ok {
            c.push(
                &at.key("prefix"),
                format!(
                    "invalid prefix `{}`: use letters, digits, '-', '_', '.' and '/' (no `..`)",
                    remote.prefix
                ),
            );
        }
        resolve(c, &at.key("access_key_id"), &mut remote.access_key_id);
        resolve(
            c,
            &at.key("secret_access_key"),
            &mut remote.secret_access_key,
        );
        if let Some(password) = remote.password.as_mut() {
            resolve(c, &at.key("password"), password);
        }
    }
}

fn validate_endpoint(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw)
        .map_err(|e| format!("not a valid URL ({e}); expected https://HOST[:PORT]"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint URL contains credentials; remove them and set access_key_id / secret_access_key as secret references".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not HTTP; expected https://HOST[:PORT]",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the endpoint has no host; expected https://HOST[:PORT]".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err("the endpoint must be only https://HOST[:PORT]; put the bucket in `bucket` and any folder in `prefix`".into());
    }
    Ok(())
}
