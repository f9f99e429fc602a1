//! Reading a Compose file as Compose does: interpolation (`${VAR:-default}`),
//! `environment:` and `labels:` in list or map form, published ports, mounts, and the
//! names and paths `drydock init` writes from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// The word after `flag` in a service's command (`--requirepass X`).
pub(super) fn command_arg(svc: &Value, flag: &str) -> Option<String> {
    let words: Vec<String> = match svc.get("command")? {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Sequence(s) => s
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    let i = words.iter().position(|w| w == flag)?;
    words
        .get(i + 1)
        .map(|w| w.trim_matches(['"', '\'']).to_string())
}

/// A value with Compose interpolation resolved as Compose would: a variable set in the
/// environment gives its value, else `${VAR:-default}`/`${VAR-default}` the default;
/// `None` when neither is there. Used for images, ports, names and paths, never for
/// credentials (those stay references).
pub(super) fn interpolation_default(value: &str) -> Option<String> {
    static VAR: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = VAR.get_or_init(|| {
        regex::Regex::new(
            r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)",
        )
        .expect("valid regex")
    });
    let mut missing = false;
    let out = re.replace_all(value.trim(), |c: &regex::Captures<'_>| {
        let name = c
            .get(1)
            .or(c.get(4))
            .map(|m| m.as_str())
            .unwrap_or_default();
        if let Some(v) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
            return v;
        }
        match c.get(3) {
            Some(default) => default.as_str().to_string(),
            None => {
                missing = true;
                String::new()
            }
        }
    });
    (!missing).then(|| out.replace("$$", "$"))
}

pub(super) fn seq(v: Option<&Value>) -> Vec<&Value> {
    v.and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

pub(super) fn seq_strings(v: Option<&Value>) -> Vec<String> {
    seq(v)
        .into_iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// `environment:` as a list (`KEY=VALUE`) or a map.
pub(super) fn environment(svc: &Value) -> BTreeMap<String, String> {
    key_values(svc.get("environment"))
}

pub(super) fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    key_values(v)
}

pub(super) fn labels_of(decl: Option<&Value>) -> BTreeMap<String, String> {
    key_values(decl.and_then(|d| d.get("labels")))
}

fn key_values(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Some(Value::Sequence(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                let (k, val) = item.split_once('=').unwrap_or((item, ""));
                out.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
        Some(Value::Mapping(m)) => {
            for (k, val) in m {
                let Some(k) = k.as_str() else { continue };
                let val = match val {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                out.insert(k.to_string(), val);
            }
        }
        _ => {}
    }
    out
}

/// Published ports: (host port, container port), only where the host port is known.
pub(super) fn published_ports(v: Option<&Value>) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for p in seq(v) {
        match p {
            Value::Mapping(_) => {
                let target = p.get("target").and_then(port_of);
                let published = p.get("published").and_then(port_of);
                if let (Some(h), Some(c)) = (published, target) {
                    out.push((h, c));
                }
            }
            other => {
                let text = match other {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                let Some(text) = interpolation_default(&text) else {
                    continue;
                };
                let text = text.split('/').next().unwrap_or_default();
                let parts: Vec<&str> = text.rsplitn(3, ':').collect();
                if parts.len() >= 2 {
                    let container = parts[0].parse().ok();
                    let host = parts[1].parse().ok();
                    if let (Some(h), Some(c)) = (host, container) {
                        out.push((h, c));
                    }
                }
            }
        }
    }
    out
}

fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => interpolation_default(s).and_then(|s| s.parse().ok()),
        _ => None,
    }
}

pub(super) struct Mount {
    pub(super) source: String,
    pub(super) target: String,
    pub(super) bind: bool,
    pub(super) read_only: bool,
}

pub(super) fn parse_mount(v: &Value) -> Option<Mount> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() < 2 {
                return None; // an anonymous volume: nothing to name
            }
            let source = parts[0].to_string();
            let bind = source.starts_with(['.', '/', '~']);
            Some(Mount {
                source,
                target: parts[1].to_string(),
                bind,
                read_only: parts
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|x| x == "ro")),
            })
        }
        Value::Mapping(_) => {
            let typ = v.get("type").and_then(Value::as_str).unwrap_or("volume");
            if typ != "volume" && typ != "bind" {
                return None;
            }
            Some(Mount {
                source: v.get("source").and_then(Value::as_str)?.to_string(),
                target: v.get("target").and_then(Value::as_str)?.to_string(),
                bind: typ == "bind",
                read_only: v.get("read_only").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        _ => None,
    }
}

/// A source name from a mount's target (`/var/lib/app/uploads` -> `uploads`).
pub(super) fn mount_name(target: &str) -> String {
    target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("data")
        .to_string()
}

pub(super) fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_start_matches('-').chars().take(64).collect()
}

pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `dir` when it lies below it, else absolute.
pub(super) fn relative_to(path: &Path, dir: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A TOML string.
pub(super) fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn toml_key(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        q(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_interpolation() {
        let v: Value = serde_yaml::from_str(
            "[\"127.0.0.1:15432:5432\", \"${API_PORT:-8080}:80\", \"6379\", {target: 9000, published: 19000}]",
        )
        .unwrap();
        assert_eq!(
            published_ports(Some(&v)),
            vec![(15432, 5432), (8080, 80), (19000, 9000)]
        );
        assert_eq!(interpolation_default("${X}"), None);
        assert_eq!(interpolation_default("app"), Some("app".into()));
    }
}
