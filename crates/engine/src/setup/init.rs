//! `drydock init --from-compose FILE`: writes a `drydock.toml` for a Compose stack.
//!
//! Every Compose service becomes a service with a `compose` runtime; its profile gives
//! the role (`infrastructure` -> infra, `app` -> app); its health checks are a
//! `process` check (the container's state and its Compose `healthcheck` verdict) and a
//! `tcp` check per published port. Images drydock knows (`postgres`, `mysql`,
//! `mariadb`, `redis`, `dragonfly`, ...) get a dump source that runs inside the
//! container (`exec = true`), credentials as `${env:KEY}` references to the Compose
//! environment's *keys* (a value is never copied). Named volumes and bind mounts become
//! `volume` sources, their priority taken from a `drydock.backup` (or `backup`) label.
//! An image drydock does not know is written as a plain service with a TODO, not a
//! guess. The report says what was guessed and what the operator should check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use drydock_domain::config::{LABEL_BACKUP, LABEL_STOP_DURING_BACKUP};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::EngineError;

#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The config written.
    pub file: String,
    pub compose: String,
    pub project: String,
    pub services: Vec<InitService>,
    /// Environment variables drydock reads (the same values Compose gets).
    pub env: Vec<String>,
    /// What the operator should check before relying on the config.
    pub check: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitService {
    pub name: String,
    pub image: Option<String>,
    pub role: Option<String>,
    /// `postgres`, `mysql`, `redis`, or `unknown` (a plain service with a TODO).
    pub guess: String,
    pub stop_during_backup: bool,
    pub sources: Vec<InitSource>,
    pub health: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitSource {
    pub name: String,
    pub kind: String,
    pub priority: String,
    /// Where the priority came from: `label`, `guess`.
    pub priority_from: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitOptions {
    pub compose: PathBuf,
    /// The config to write.
    pub output: PathBuf,
    /// The Compose project name; default: the compose file's folder name, as Compose does.
    pub project: Option<String>,
    /// Overwrite an existing config.
    pub force: bool,
}

fn refused(message: String) -> EngineError {
    EngineError::Refused(message)
}

/// Reads the compose file, writes the config (0600) and reports what it guessed.
pub fn from_compose(opts: &InitOptions) -> Result<InitReport, EngineError> {
    let text = std::fs::read_to_string(&opts.compose).map_err(|e| {
        refused(format!(
            "cannot read the compose file {}: {e}; check the path",
            opts.compose.display()
        ))
    })?;
    let doc: Value = serde_yaml::from_str(&text).map_err(|e| {
        refused(format!(
            "{} is not valid YAML: {e}; `docker compose config` shows what Compose makes of it",
            opts.compose.display()
        ))
    })?;
    if opts.output.exists() && !opts.force {
        return Err(refused(format!(
            "{} exists; nothing was written. Pass --force to replace it, or --config OTHER.toml",
            opts.output.display()
        )));
    }
    let compose_abs = std::path::absolute(&opts.compose).unwrap_or(opts.compose.to_path_buf());
    let compose_dir = compose_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let output_abs = std::path::absolute(&opts.output).unwrap_or(opts.output.to_path_buf());
    let output_dir = output_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let project = opts.project.clone().unwrap_or_else(|| {
        compose_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_else(|| "stack".into())
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    });
    let services = doc
        .get("services")
        .and_then(Value::as_mapping)
        .ok_or_else(|| {
            refused(format!(
                "{} has no `services:`; is it a Compose file?",
                opts.compose.display()
            ))
        })?;
    let top_volumes = doc.get("volumes").and_then(Value::as_mapping);

    let mut out = String::new();
    let mut report = InitReport {
        file: opts.output.display().to_string(),
        compose: opts.compose.display().to_string(),
        project: project.clone(),
        services: Vec::new(),
        env: vec!["DRYDOCK_REPO_PASSWORD".into()],
        check: vec![
            "the repository path: put it on another disk than the data, and add a [[remote]] copy"
                .into(),
        ],
    };
    let compose_file = relative_to(&compose_abs, &output_dir);
    let _ = writeln!(
        out,
        "# Written by `drydock init --from-compose {}`.\n# Check every line marked CHECK or TODO, then run `drydock validate`.\n",
        opts.compose.display()
    );
    let stack_name: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "[stack]\nname = {}\nstate_dir = \".drydock/state\"\n\n[repository]\npath = \".drydock/repo\"  # CHECK: another disk; add a [[remote]] for a second copy\npassword = \"${{env:DRYDOCK_REPO_PASSWORD}}\"",
        q(&stack_name)
    );

    for (name, svc) in services {
        let Some(name) = name.as_str() else { continue };
        let image = svc.get("image").and_then(Value::as_str).map(str::to_string);
        let env = environment(svc);
        let profiles: Vec<String> = seq_strings(svc.get("profiles"));
        let role = if profiles.iter().any(|p| p == "infrastructure") {
            Some("infra")
        } else if profiles.iter().any(|p| p == "app") {
            Some("app")
        } else {
            None
        };
        let profile = profiles.first().cloned();
        let labels = labels(svc.get("labels"));
        let stop = labels
            .get(LABEL_STOP_DURING_BACKUP)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let ports = published_ports(svc.get("ports"));
        let guess = image.as_deref().map(guess_kind).unwrap_or("unknown");
        let mut info = InitService {
            name: name.to_string(),
            image: image.clone(),
            role: role.map(str::to_string),
            guess: guess.to_string(),
            stop_during_backup: stop,
            sources: Vec::new(),
            health: Vec::new(),
        };

        let _ = writeln!(out, "\n[services.{}]", toml_key(name));
        if let Some(image) = &image {
            let _ = writeln!(out, "# image: {image}");
        }
        if let Some(role) = role {
            let _ = writeln!(out, "role = \"{role}\"  # from profile");
        } else if !profiles.is_empty() {
            report.check.push(format!(
                "{name}: profile(s) {} are neither `infrastructure` nor `app`; set `role` if it matters",
                profiles.join(", ")
            ));
        }
        if stop {
            let _ = writeln!(
                out,
                "stop_during_backup = true  # from label {LABEL_STOP_DURING_BACKUP}"
            );
        }
        let mut runtime = format!(
            "runtime = {{ kind = \"compose\", project = {}, service = {}, file = {}",
            q(&project),
            q(name),
            q(&compose_file)
        );
        if let Some(p) = &profile {
            let _ = write!(runtime, ", profile = {}", q(p));
        }
        runtime.push_str(" }");
        let _ = writeln!(out, "{runtime}");

        // Health: the container itself, then every published port.
        let mut health = vec!["{ kind = \"process\" }".to_string()];
        info.health.push("process".into());
        if let Some(test) = svc.get("healthcheck").and_then(|h| h.get("test")) {
            let test = match test {
                Value::Sequence(s) => s
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            health[0] = format!(
                "{{ kind = \"process\" }},  # reports the Compose healthcheck: {}",
                test.replace('\n', " ")
            );
        } else {
            health[0].push(',');
        }
        for (host, container) in &ports {
            health.push(format!(
                "{{ kind = \"tcp\", name = \"port-{host}\", address = \"127.0.0.1:{host}\" }},  # published from {container}"
            ));
            info.health.push(format!("port-{host}"));
        }
        let _ = writeln!(out, "health = [");
        for h in &health {
            let _ = writeln!(out, "  {h}");
        }
        let _ = writeln!(out, "]");

        // Data: a dump for a known database image, then the volumes.
        let mut data = Vec::new();
        match guess {
            "postgres" | "mysql" | "redis" => {
                let (line, vars, notes) =
                    dump_source(name, guess, &env, &ports, svc, image.as_deref());
                data.push(line);
                report.env.extend(vars);
                report.check.extend(notes);
                info.sources.push(InitSource {
                    name: guess.to_string(),
                    kind: guess.to_string(),
                    priority: "critical".into(),
                    priority_from: "guess".into(),
                });
                report.check.push(format!(
                    "{name}: the {guess} dump is priority critical (a guess); its tools run inside the container (exec = true)"
                ));
            }
            _ => {
                let _ = writeln!(
                    out,
                    "# TODO: drydock does not know the image `{}`; declare what data it owns (data = [...]) and how to check it. Nothing was guessed.",
                    image.as_deref().unwrap_or("(none)")
                );
                report.check.push(format!(
                    "{name}: unknown image `{}`: written as a plain service with a TODO",
                    image.as_deref().unwrap_or("(none)")
                ));
            }
        }
        let is_database = matches!(guess, "postgres" | "mysql" | "redis");
        for mount in seq(svc.get("volumes")) {
            let Some(m) = parse_mount(mount) else {
                continue;
            };
            if m.read_only || m.source.contains("docker.sock") {
                continue;
            }
            let vname = mount_name(&m.target);
            let (target_key, source_name, labels) = if m.bind {
                let host = compose_dir.join(&m.source);
                let host = normalize(&host);
                (
                    format!("path = {}", q(&relative_to(&host, &output_dir))),
                    vname.clone(),
                    BTreeMap::new(),
                )
            } else {
                let decl = top_volumes.and_then(|v| v.get(m.source.as_str()));
                let external = decl
                    .and_then(|d| d.get("external"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let docker_name = decl
                    .and_then(|d| d.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        if external {
                            m.source.clone()
                        } else {
                            format!("{project}_{}", m.source)
                        }
                    });
                (
                    format!("volume = {}", q(&docker_name)),
                    m.source.clone(),
                    labels_of(decl),
                )
            };
            let label = labels
                .get(LABEL_BACKUP)
                .or_else(|| labels.get("backup"))
                .map(|v| v.trim().to_lowercase())
                .filter(|v| v.parse::<drydock_domain::Priority>().is_ok());
            let (priority, from, comment) = match (&label, is_database) {
                (Some(p), _) => (p.clone(), "label", "from its label".to_string()),
                (None, true) => (
                    "none".to_string(),
                    "guess",
                    "the dump above is the backup; a file copy of a live database is not consistent".to_string(),
                ),
                (None, false) => (
                    "medium".to_string(),
                    "guess",
                    format!("CHECK: no {LABEL_BACKUP} label, medium guessed"),
                ),
            };
            if from == "guess" && !is_database {
                report.check.push(format!(
                    "{name}: {} has no {LABEL_BACKUP} label; priority medium is a guess",
                    if m.bind {
                        format!("bind mount {}", m.source)
                    } else {
                        format!("volume {}", m.source)
                    }
                ));
            }
            let source_name = sanitize(&source_name);
            let description = labels
                .get("drydock.description")
                .or_else(|| labels.get("description"));
            let mut line = format!(
                "{{ kind = \"volume\", name = {}, {target_key}, priority = \"{priority}\" }},  # {comment}; mounted at {}",
                q(&source_name),
                m.target
            );
            if let Some(d) = description {
                let _ = write!(line, " ({})", d.replace('\n', " "));
            }
            data.push(line);
            info.sources.push(InitSource {
                name: source_name,
                kind: "volume".into(),
                priority,
                priority_from: from.into(),
            });
        }
        if !data.is_empty() {
            let _ = writeln!(out, "data = [");
            for d in &data {
                let _ = writeln!(out, "  {d}");
            }
            let _ = writeln!(out, "]");
        }
        report.services.push(info);
    }
    report.env.sort();
    report.env.dedup();
    report.check.push(format!(
        "set {} in drydock's environment (the values Compose uses), then run `drydock validate`",
        report.env.join(", ")
    ));

    write_private(&opts.output, &out).map_err(|e| {
        refused(format!(
            "cannot write {}: {e}; check the folder's permissions",
            opts.output.display()
        ))
    })?;
    Ok(report)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The source line for a database image, the environment variables it reads, and notes.
fn dump_source(
    service: &str,
    kind: &str,
    env: &BTreeMap<String, String>,
    ports: &[(u16, u16)],
    svc: &Value,
    image: Option<&str>,
) -> (String, Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut vars = Vec::new();
    let default_port = match kind {
        "postgres" => 5432,
        "mysql" => 3306,
        _ => 6379,
    };
    let port = match ports.iter().find(|(_, c)| *c == default_port) {
        Some((host, _)) => *host,
        None => {
            notes.push(format!("{service}: port {default_port} is not published; drydock reads counts and fingerprints over it, so publish it on 127.0.0.1 (ports: [\"127.0.0.1:{default_port}:{default_port}\"]) and fix the url"));
            default_port
        }
    };
    // A key from the environment becomes a reference; a literal value is never copied.
    let mut secret = |keys: &[&str]| -> Option<String> {
        let key = keys.iter().find(|k| env.contains_key(**k))?;
        vars.push(key.to_string());
        Some(format!("${{env:{key}}}"))
    };
    let literal = |keys: &[&str], default: &str| -> String {
        keys.iter()
            .find_map(|k| env.get(*k).and_then(|v| interpolation_default(v)))
            .unwrap_or_else(|| default.to_string())
    };
    let (url, password) = match kind {
        "postgres" => {
            let user = literal(&["POSTGRES_USER"], "postgres");
            let db = literal(&["POSTGRES_DB"], &user);
            let pw = secret(&["POSTGRES_PASSWORD"]);
            if pw.is_none() {
                notes.push(format!("{service}: no POSTGRES_PASSWORD in its environment; add `password = \"${{env:...}}\"` if the server wants one"));
            }
            (format!("postgres://{user}@127.0.0.1:{port}/{db}"), pw)
        }
        "mysql" => {
            // A consistent dump takes the global read lock: root has the right to.
            let root = secret(&["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"]);
            let (user, pw) = match root {
                Some(pw) => ("root".to_string(), Some(pw)),
                None => {
                    notes.push(format!("{service}: no root password in its environment; the user needs RELOAD (global read lock) for a consistent dump"));
                    (
                        literal(&["MARIADB_USER", "MYSQL_USER"], "root"),
                        secret(&["MARIADB_PASSWORD", "MYSQL_PASSWORD"]),
                    )
                }
            };
            let db = literal(&["MARIADB_DATABASE", "MYSQL_DATABASE"], "");
            let db = if db.is_empty() {
                notes.push(format!(
                    "{service}: TODO: no MYSQL_DATABASE in its environment; put the database name in the url"
                ));
                "TODO".to_string()
            } else {
                db
            };
            (format!("mysql://{user}@127.0.0.1:{port}/{db}"), pw)
        }
        _ => {
            let mut pw = secret(&["REDIS_PASSWORD", "DRAGONFLY_PASSWORD", "REDIS_PASS"]);
            if pw.is_none() {
                if let Some(arg) = requirepass(svc) {
                    match arg.strip_prefix("${").and_then(|a| a.strip_suffix('}')) {
                        Some(var) => {
                            let var = var.split([':', '-']).next().unwrap_or(var).to_string();
                            vars.push(var.clone());
                            pw = Some(format!("${{env:{var}}}"));
                        }
                        None => notes.push(format!("{service}: its command sets a literal --requirepass; drydock never copies it: put it in a variable and set `password = \"${{env:NAME}}\"`")),
                    }
                }
            }
            if image.is_some_and(|i| i.contains("dragonfly")) {
                notes.push(format!("{service}: Dragonfly speaks the Redis protocol; check that `redis-cli --rdb` works against it (drydock backs it up as redis)"));
            }
            (format!("redis://127.0.0.1:{port}"), pw)
        }
    };
    let mut line = format!(
        "{{ kind = \"{kind}\", priority = \"critical\", exec = true, url = {}",
        q(&url)
    );
    if let Some(pw) = password {
        let _ = write!(line, ", password = {}", q(&pw));
    }
    line.push_str(" },  # CHECK: guessed from the image");
    (line, vars, notes)
}

/// `--requirepass X` in a service's command.
fn requirepass(svc: &Value) -> Option<String> {
    let words: Vec<String> = match svc.get("command")? {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Sequence(s) => s
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    let i = words.iter().position(|w| w == "--requirepass")?;
    words
        .get(i + 1)
        .map(|w| w.trim_matches(['"', '\'']).to_string())
}

/// The engine an image runs, by its name without registry, owner and tag.
pub fn guess_kind(image: &str) -> &'static str {
    let image = interpolation_default(image).unwrap_or_else(|| image.to_string());
    let name = image
        .rsplit('/')
        .next()
        .unwrap_or(&image)
        .split([':', '@'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if ["postgres", "postgis", "timescaledb"]
        .iter()
        .any(|k| name.contains(k))
    {
        "postgres"
    } else if ["mysql", "mariadb", "percona"]
        .iter()
        .any(|k| name.contains(k))
    {
        "mysql"
    } else if ["redis", "valkey", "keydb", "dragonfly"]
        .iter()
        .any(|k| name.contains(k))
    {
        "redis"
    } else {
        "unknown"
    }
}

/// A value with Compose interpolation resolved as Compose would: a variable set in the
/// environment gives its value, else `${VAR:-default}`/`${VAR-default}` the default;
/// `None` when neither is there. Used for images, ports, names and paths, never for
/// credentials (those stay references).
fn interpolation_default(value: &str) -> Option<String> {
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

fn seq(v: Option<&Value>) -> Vec<&Value> {
    v.and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn seq_strings(v: Option<&Value>) -> Vec<String> {
    seq(v)
        .into_iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// `environment:` as a list (`KEY=VALUE`) or a map.
fn environment(svc: &Value) -> BTreeMap<String, String> {
    key_values(svc.get("environment"))
}

fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    key_values(v)
}

fn labels_of(decl: Option<&Value>) -> BTreeMap<String, String> {
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
fn published_ports(v: Option<&Value>) -> Vec<(u16, u16)> {
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

struct Mount {
    source: String,
    target: String,
    bind: bool,
    read_only: bool,
}

fn parse_mount(v: &Value) -> Option<Mount> {
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
fn mount_name(target: &str) -> String {
    target
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("data")
        .to_string()
}

fn sanitize(name: &str) -> String {
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

fn normalize(p: &Path) -> PathBuf {
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
fn relative_to(path: &Path, dir: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_key(s: &str) -> String {
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
    fn images_map_to_engines_and_unknown_is_unknown() {
        assert_eq!(guess_kind("postgres:16-alpine"), "postgres");
        assert_eq!(guess_kind("docker.io/bitnami/postgresql:15"), "postgres");
        assert_eq!(guess_kind("${PG_IMAGE:-postgres:15}"), "postgres");
        assert_eq!(guess_kind("mariadb:11"), "mysql");
        assert_eq!(
            guess_kind("docker.dragonflydb.io/dragonflydb/dragonfly"),
            "redis"
        );
        assert_eq!(guess_kind("ghcr.io/clinic/api:latest"), "unknown");
        assert_eq!(guess_kind("openvidu/openvidu-server:2.29"), "unknown");
    }

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
