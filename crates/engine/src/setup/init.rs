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

use drydock_domain::config::sources::{ContainerFacts, DumpGuess, SourceKind, KINDS};
use drydock_domain::config::{LABEL_BACKUP, LABEL_STOP_DURING_BACKUP};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::compose_file::{
    command_arg, environment, interpolation_default, labels, labels_of, mount_name, normalize,
    parse_mount, published_ports, q, relative_to, sanitize, seq, seq_strings, toml_key,
};
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

/// What `init` reads and writes. The field docs are also the `--help` lines (`clap`
/// feature).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct InitOptions {
    /// The Compose file to read.
    #[cfg_attr(feature = "clap", arg(long = "from-compose", value_name = "FILE"))]
    pub compose: PathBuf,
    // The config to write: on the command line, the global `--config` path.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub output: PathBuf,
    /// The Compose project name (default: the compose file's folder name, as Compose).
    #[cfg_attr(feature = "clap", arg(long, short = 'p'))]
    pub project: Option<String>,
    /// Replace an existing config.
    #[cfg_attr(feature = "clap", arg(long))]
    pub force: bool,
}

fn refused(message: String) -> EngineError {
    EngineError::Refused(message)
}

/// Reads the compose file, writes the config (0600) and reports what it guessed.
pub fn from_compose(opts: &InitOptions) -> Result<InitReport, EngineError> {
    let doc = read_compose(opts)?;
    if opts.output.exists() && !opts.force {
        return Err(refused(format!(
            "{} exists; nothing was written. Pass --force to replace it, or --config OTHER.toml",
            opts.output.display()
        )));
    }
    let layout = Layout::of(opts);
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
        project: layout.project.clone(),
        services: Vec::new(),
        env: vec!["DRYDOCK_REPO_PASSWORD".into()],
        check: vec![
            "the repository path: put it on another disk than the data, and add a [[remote]] copy"
                .into(),
        ],
    };
    write_stack_and_repository(&mut out, opts, &layout.project);
    for (name, svc) in services {
        let Some(name) = name.as_str() else { continue };
        let info = write_service(&mut out, &mut report, &layout, top_volumes, name, svc);
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

/// The compose file, parsed.
fn read_compose(opts: &InitOptions) -> Result<Value, EngineError> {
    let text = std::fs::read_to_string(&opts.compose).map_err(|e| {
        refused(format!(
            "cannot read the compose file {}: {e}; check the path",
            opts.compose.display()
        ))
    })?;
    serde_yaml::from_str(&text).map_err(|e| {
        refused(format!(
            "{} is not valid YAML: {e}; `docker compose config` shows what Compose makes of it",
            opts.compose.display()
        ))
    })
}

/// Where the compose file and the config are, and the Compose project's name.
struct Layout {
    /// The compose file's folder: bind mounts are relative to it.
    compose_dir: PathBuf,
    /// The config's folder: paths written are relative to it where they can be.
    output_dir: PathBuf,
    /// The compose file as the config names it.
    compose_file: String,
    project: String,
}

impl Layout {
    fn of(opts: &InitOptions) -> Self {
        let compose_abs = std::path::absolute(&opts.compose).unwrap_or(opts.compose.to_path_buf());
        let compose_dir = compose_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        let output_abs = std::path::absolute(&opts.output).unwrap_or(opts.output.to_path_buf());
        let output_dir = output_abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        // Compose's own default: the compose file's folder name.
        let project = opts.project.clone().unwrap_or_else(|| {
            compose_dir
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "stack".into())
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        });
        Layout {
            compose_file: relative_to(&compose_abs, &output_dir),
            compose_dir,
            output_dir,
            project,
        }
    }
}

/// The header comment, `[stack]` and `[repository]`.
fn write_stack_and_repository(out: &mut String, opts: &InitOptions, project: &str) {
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
}

/// What one Compose service says about itself.
struct ServiceFacts<'a> {
    name: &'a str,
    svc: &'a Value,
    image: Option<String>,
    env: BTreeMap<String, String>,
    profiles: Vec<String>,
    role: Option<&'static str>,
    stop: bool,
    ports: Vec<(u16, u16)>,
    /// The source kind its image runs, when drydock knows the image.
    kind: Option<SourceKind>,
}

impl<'a> ServiceFacts<'a> {
    fn read(name: &'a str, svc: &'a Value) -> Self {
        let image = svc.get("image").and_then(Value::as_str).map(str::to_string);
        let profiles: Vec<String> = seq_strings(svc.get("profiles"));
        let role = if profiles.iter().any(|p| p == "infrastructure") {
            Some("infra")
        } else if profiles.iter().any(|p| p == "app") {
            Some("app")
        } else {
            None
        };
        let stop = labels(svc.get("labels"))
            .get(LABEL_STOP_DURING_BACKUP)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        ServiceFacts {
            name,
            svc,
            kind: image.as_deref().and_then(image_kind),
            image,
            env: environment(svc),
            profiles,
            role,
            stop,
            ports: published_ports(svc.get("ports")),
        }
    }
}

/// One `[services.NAME]` table: its head, health and data; what was guessed goes to
/// `report`.
fn write_service(
    out: &mut String,
    report: &mut InitReport,
    layout: &Layout,
    top_volumes: Option<&serde_yaml::Mapping>,
    name: &str,
    svc: &Value,
) -> InitService {
    let facts = ServiceFacts::read(name, svc);
    let guess = facts.kind.map_or("unknown", SourceKind::as_str);
    let mut info = InitService {
        name: name.to_string(),
        image: facts.image.clone(),
        role: facts.role.map(str::to_string),
        guess: guess.to_string(),
        stop_during_backup: facts.stop,
        sources: Vec::new(),
        health: Vec::new(),
    };
    write_service_head(out, report, layout, &facts);
    write_health(out, &mut info, &facts);
    let mut data = Vec::new();
    match facts.kind {
        Some(kind) => {
            data.push(guess_dump_source(report, &mut info, &facts, kind));
        }
        None => {
            let _ = writeln!(
                out,
                "# TODO: drydock does not know the image `{}`; declare what data it owns (data = [...]) and how to check it. Nothing was guessed.",
                facts.image.as_deref().unwrap_or("(none)")
            );
            report.check.push(format!(
                "{name}: unknown image `{}`: written as a plain service with a TODO",
                facts.image.as_deref().unwrap_or("(none)")
            ));
        }
    }
    for mount in seq(svc.get("volumes")) {
        if let Some(line) = volume_source(report, &mut info, layout, top_volumes, &facts, mount) {
            data.push(line);
        }
    }
    if !data.is_empty() {
        let _ = writeln!(out, "data = [");
        for d in &data {
            let _ = writeln!(out, "  {d}");
        }
        let _ = writeln!(out, "]");
    }
    info
}

/// The table header, the image comment, `role`, `stop_during_backup` and `runtime`.
fn write_service_head(
    out: &mut String,
    report: &mut InitReport,
    layout: &Layout,
    facts: &ServiceFacts<'_>,
) {
    let name = facts.name;
    let _ = writeln!(out, "\n[services.{}]", toml_key(name));
    if let Some(image) = &facts.image {
        let _ = writeln!(out, "# image: {image}");
    }
    if let Some(role) = facts.role {
        let _ = writeln!(out, "role = \"{role}\"  # from profile");
    } else if !facts.profiles.is_empty() {
        report.check.push(format!(
            "{name}: profile(s) {} are neither `infrastructure` nor `app`; set `role` if it matters",
            facts.profiles.join(", ")
        ));
    }
    if facts.stop {
        let _ = writeln!(
            out,
            "stop_during_backup = true  # from label {LABEL_STOP_DURING_BACKUP}"
        );
    }
    let mut runtime = format!(
        "runtime = {{ kind = \"compose\", project = {}, service = {}, file = {}",
        q(&layout.project),
        q(name),
        q(&layout.compose_file)
    );
    if let Some(p) = facts.profiles.first() {
        let _ = write!(runtime, ", profile = {}", q(p));
    }
    runtime.push_str(" }");
    let _ = writeln!(out, "{runtime}");
}

/// `health = [...]`: the container itself, then every published port.
fn write_health(out: &mut String, info: &mut InitService, facts: &ServiceFacts<'_>) {
    let mut health = vec!["{ kind = \"process\" }".to_string()];
    info.health.push("process".into());
    if let Some(test) = facts.svc.get("healthcheck").and_then(|h| h.get("test")) {
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
    for (host, container) in &facts.ports {
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
}

/// The dump source line for a database image, as its kind guesses it; the variables it
/// reads and the notes go to `report`.
fn guess_dump_source(
    report: &mut InitReport,
    info: &mut InitService,
    facts: &ServiceFacts<'_>,
    kind: SourceKind,
) -> String {
    let name = facts.name;
    let guess = kind.as_str();
    let (line, vars, notes) = dump_source(facts, kind);
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
    line
}

/// The `volume` source line for one of the service's mounts (`None`: read-only, the
/// Docker socket, or not a mount).
/// How the config names a mount's data (`path = ..` for a bind mount, `volume = ..`
/// with Docker's name of a named volume), the source's name, and the volume's labels.
fn mount_target(
    m: &super::compose_file::Mount,
    vname: &str,
    layout: &Layout,
    top_volumes: Option<&serde_yaml::Mapping>,
) -> (String, String, BTreeMap<String, String>) {
    if m.bind {
        let host = layout.compose_dir.join(&m.source);
        let host = normalize(&host);
        (
            format!("path = {}", q(&relative_to(&host, &layout.output_dir))),
            vname.to_string(),
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
                    format!("{}_{}", layout.project, m.source)
                }
            });
        (
            format!("volume = {}", q(&docker_name)),
            m.source.clone(),
            labels_of(decl),
        )
    }
}

fn volume_source(
    report: &mut InitReport,
    info: &mut InitService,
    layout: &Layout,
    top_volumes: Option<&serde_yaml::Mapping>,
    facts: &ServiceFacts<'_>,
    mount: &Value,
) -> Option<String> {
    let name = facts.name;
    let is_database = facts.kind.is_some();
    let m = parse_mount(mount)?;
    if m.read_only || m.source.contains("docker.sock") {
        return None;
    }
    let vname = mount_name(&m.target);
    let (target_key, source_name, labels) = mount_target(&m, &vname, layout, top_volumes);
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
            "the dump above is the backup; a file copy of a live database is not consistent"
                .to_string(),
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
    info.sources.push(InitSource {
        name: source_name,
        kind: "volume".into(),
        priority,
        priority_from: from.into(),
    });
    Some(line)
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

/// A Compose service as a kind's `SourceKindSpec::guess_from_container` sees it,
/// collecting the variables the guess reads and its notes.
struct ComposeContainer<'a> {
    facts: &'a ServiceFacts<'a>,
    port: u16,
    vars: Vec<String>,
    notes: Vec<String>,
}

impl ContainerFacts for ComposeContainer<'_> {
    fn service(&self) -> &str {
        self.facts.name
    }

    fn image(&self) -> Option<&str> {
        self.facts.image.as_deref()
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn secret(&mut self, keys: &[&str]) -> Option<String> {
        // A key from the environment becomes a reference; a literal value is never copied.
        let key = keys.iter().find(|k| self.facts.env.contains_key(**k))?;
        self.vars.push(key.to_string());
        Some(format!("${{env:{key}}}"))
    }

    fn literal(&self, keys: &[&str], default: &str) -> String {
        keys.iter()
            .find_map(|k| {
                self.facts
                    .env
                    .get(*k)
                    .and_then(|v| interpolation_default(v))
            })
            .unwrap_or_else(|| default.to_string())
    }

    fn command_arg(&self, flag: &str) -> Option<String> {
        command_arg(self.facts.svc, flag)
    }

    fn reads_variable(&mut self, name: &str) {
        self.vars.push(name.to_string());
    }

    fn note(&mut self, text: String) {
        self.notes.push(text);
    }
}

/// The source line for a database image, the environment variables it reads, and notes.
fn dump_source(facts: &ServiceFacts<'_>, kind: SourceKind) -> (String, Vec<String>, Vec<String>) {
    let service = facts.name;
    let mut notes = Vec::new();
    let default_port = kind.spec().default_port().unwrap_or_default();
    let port = match facts.ports.iter().find(|(_, c)| *c == default_port) {
        Some((host, _)) => *host,
        None => {
            notes.push(format!("{service}: port {default_port} is not published; drydock reads counts and fingerprints over it, so publish it on 127.0.0.1 (ports: [\"127.0.0.1:{default_port}:{default_port}\"]) and fix the url"));
            default_port
        }
    };
    let mut container = ComposeContainer {
        facts,
        port,
        vars: Vec::new(),
        notes,
    };
    let guess = kind.spec().guess_from_container(&mut container);
    let ComposeContainer { vars, notes, .. } = container;
    let Some(DumpGuess { url, password }) = guess else {
        // A kind with image names but nothing to guess: say so rather than write a
        // source that cannot work.
        let line = format!(
            "# TODO: drydock cannot guess a {} source for this image; declare it by hand",
            kind
        );
        return (line, vars, notes);
    };
    let mut line = format!(
        "{{ kind = \"{}\", priority = \"critical\", exec = true, url = {}",
        kind,
        q(&url)
    );
    if let Some(pw) = password {
        let _ = write!(line, ", password = {}", q(&pw));
    }
    line.push_str(" },  # CHECK: guessed from the image");
    (line, vars, notes)
}

/// The source kind an image runs, by its name without registry, owner and tag, as the
/// kinds' `SourceKindSpec::image_names` list them.
fn image_kind(image: &str) -> Option<SourceKind> {
    let image = interpolation_default(image).unwrap_or_else(|| image.to_string());
    let name = image
        .rsplit('/')
        .next()
        .unwrap_or(&image)
        .split([':', '@'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    KINDS
        .iter()
        .copied()
        .find(|kind| kind.spec().image_names().iter().any(|k| name.contains(k)))
}

/// The engine an image runs (`postgres`, `mysql`, `redis`), or `unknown`.
pub fn guess_kind(image: &str) -> &'static str {
    image_kind(image).map_or("unknown", SourceKind::as_str)
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
}
