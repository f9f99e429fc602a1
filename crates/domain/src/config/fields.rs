//! Checks of single values shared by every section: names, host names, secret
//! references, and paths made absolute against the config file's folder.

use std::path::{Path, PathBuf};

use super::errors::Collector;
use crate::secret::{Secret, SecretError};
use crate::spans::KeyPath;

/// Names Docker accepts for containers and volumes.
pub(super) fn valid_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub(super) fn resolve(c: &mut Collector<'_>, at: &KeyPath, secret: &mut Secret) {
    if let Err(e) = secret.resolve() {
        let message = match e {
            SecretError::Literal => "a literal secret is not allowed here; use \"${env:NAME}\" or \"${file:/path}\" and keep the value out of the config".to_string(),
            other => other.to_string(),
        };
        c.push(at, message);
    }
}

pub(super) fn validate_name(c: &mut Collector<'_>, at: &KeyPath, name: &str, what: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        && !name.starts_with('-');
    if !ok {
        c.push(at, format!("invalid {what} name `{name}`: use 1-64 letters, digits, '-' or '_' (not starting with '-')"));
    }
}

pub(super) fn validate_host(c: &mut Collector<'_>, at: &KeyPath, host: &str) {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !ok {
        c.push(
            at,
            format!("invalid host name `{host}`: use 1-253 letters, digits, '-', '_' or '.'"),
        );
    }
}

/// `path` against the config's folder, cleaned lexically so it prints as people write it (`/srv/backups/repo`, not
/// `/srv/backups/./repo`). Only `.` parts and repeated slashes go: `..` stays, because
/// folding it away lexically names another folder when the part before it is a
/// symlink, and a backup must go where the config says.
pub(super) fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    // `components` drops `.` and empty parts, except a leading `.` of a relative path.
    joined.components().collect()
}

/// A URL of one of `schemes` with a host and no password in it (`what` names what it
/// must fit, e.g. "a postgres source"; `shape` shows what follows the scheme).
pub(super) fn url_without_password(
    raw: &str,
    schemes: &[&str],
    what: &str,
    shape: &str,
) -> Result<url::Url, String> {
    let url = url::Url::parse(raw)
        .map_err(|e| format!("not a valid URL ({e}); expected {}://{shape}", schemes[0]))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "scheme `{}` does not fit {what}; expected {}://",
            url.scheme(),
            schemes.join(":// or ")
        ));
    }
    if url.password().is_some() {
        return Err("the URL contains a password; remove it from the URL and set `password = \"${env:NAME}\"` instead".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the URL has no host; expected {}://{shape}",
            schemes[0]
        ));
    }
    Ok(url)
}

/// Takes the `kind` string out of a tagged entry's table, or says at `at` what is wrong
/// with it (`kinds`: the names it may take, for the message).
pub(super) fn take_kind(
    at: &KeyPath,
    table: &mut toml::Table,
    kinds: &str,
    c: &mut Collector<'_>,
) -> Option<String> {
    match table.remove("kind") {
        Some(toml::Value::String(kind)) => Some(kind),
        Some(_) => {
            c.push(&at.key("kind"), format!("must be a string, one of {kinds}"));
            None
        }
        None => {
            c.push(at, format!("missing field `kind`; add it (one of {kinds})"));
            None
        }
    }
}
