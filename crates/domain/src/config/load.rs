//! [`Config::load`]: reading `drydock.toml`, parsing each section on its own, then the
//! semantic checks of every part that parsed, so one structural error does not hide a
//! literal secret three sections further down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::deploy::DeployConfig;
use super::drill::DrillConfig;
use super::errors::{sorted, Collector, ConfigError, ConfigErrors};
use super::notify::{parse_notify, NotifyConfig};
use super::remotes::{parse_remotes, validate_remotes, RemoteConfig};
use super::retention::{validate_retention, RetentionConfig};
use super::schedule::{parse_schedules, validate_schedules, ScheduleConfig};
use super::serve::ServeConfig;
use super::services::{parse_services, PartialService, ServiceConfig};
use super::sources::SourceConfig;
use super::stack::{RepositoryConfig, StackConfig};
use crate::spans::{KeyPath, SpanIndex};

/// A loaded, validated stack configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it was loaded from.
    pub file: PathBuf,
    pub stack: StackConfig,
    pub repository: RepositoryConfig,
    /// Copies of the repository in S3-compatible buckets (`[[remote]]`), in file order.
    pub remotes: Vec<RemoteConfig>,
    pub retention: RetentionConfig,
    pub drill: DrillConfig,
    pub services: BTreeMap<String, ServiceConfig>,
    /// Where `drydock serve` sends notifications (`[[notify]]`), in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyConfig>,
    /// `[serve]`: the daemon's listener, token and limits (defaults without it).
    pub serve: ServeConfig,
    /// `[[schedule]]` entries as written, in file order; empty means the defaults
    /// (see [`ScheduleConfig::effective`]).
    pub schedules: Vec<ScheduleConfig>,
    /// `[deploy]`: which changed paths are infrastructure, which the app's.
    pub deploy: DeployConfig,
}

/// A drydock.toml is a few KiB; anything past this is not one. The TOML parser keeps
/// about 2 KiB per key (torture_hostile's fuzz measured ~230 bytes allocated per input
/// byte for an inline table of repeated keys), so the cap also bounds a load's memory.
pub const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// The top-level sections a config may have.
const SECTIONS: &[&str] = &[
    "stack",
    "repository",
    "remote",
    "retention",
    "drill",
    "services",
    "notify",
    "serve",
    "schedule",
    "deploy",
];

/// Every section as far as it parsed (`None`: it failed, and the failure was recorded).
struct Parsed {
    stack: Option<StackConfig>,
    repository: Option<RepositoryConfig>,
    remotes: Vec<(usize, RemoteConfig)>,
    retention: Option<RetentionConfig>,
    drill: Option<DrillConfig>,
    services: BTreeMap<String, PartialService>,
    notify: Vec<NotifyConfig>,
    serve: Option<ServeConfig>,
    schedules: Vec<(usize, ScheduleConfig)>,
    deploy: Option<DeployConfig>,
    /// `[services]` was absent or parsed as a table (so schedules may name services).
    services_readable: bool,
}

impl Config {
    /// The config file's folder: relative paths in it, builds and hooks start here
    /// (`.` for a file named without a folder).
    pub fn dir(&self) -> &Path {
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// Reads, parses and validates `file`, resolving every secret.
    pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
        use std::io::Read;
        let whole = |message: String| {
            ConfigErrors(vec![ConfigError {
                file: file.to_path_buf(),
                line: None,
                key: String::new(),
                message,
            }])
        };
        let mut text = String::new();
        // Read at most one byte past the cap: `--config /dev/zero` (or a huge file
        // named by mistake) must not fill memory.
        std::fs::File::open(file)
            .and_then(|f| f.take(CONFIG_MAX_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| {
                whole(format!(
                    "cannot read the config: {e}; check the path (or pass --config FILE)"
                ))
            })?;
        if text.len() as u64 > CONFIG_MAX_BYTES {
            return Err(whole(format!(
                "the config is larger than {} MiB: not a drydock config; check the path (or pass --config FILE)",
                CONFIG_MAX_BYTES >> 20
            )));
        }
        Self::from_text(file, &text)
    }

    /// Parses and validates config text that came from `file` (used for messages and
    /// for resolving relative paths).
    pub fn from_text(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let base = config_folder(file);
        let mut c = Collector {
            file,
            spans: None,
            errors: Vec::new(),
        };
        let spans = index_spans(file, text)?;
        c.spans = Some(&spans);
        let mut root: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                c.push(
                    &KeyPath::default(),
                    format!("invalid TOML: {}", e.message()),
                );
                return Err(ConfigErrors(c.errors));
            }
        };
        report_unknown_sections(&root, &mut c);
        let mut parsed = parse_sections(&mut root, &mut c);
        validate_sections(&mut parsed, &base, &mut c);
        assemble(file, parsed, c.errors)
    }

    /// Every data source with its service, in config order.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &ServiceConfig, &SourceConfig)> {
        self.services
            .iter()
            .flat_map(|(name, svc)| svc.data.iter().map(move |src| (name.as_str(), svc, src)))
    }
}

/// The folder relative paths are taken from: the config file's, absolute.
fn config_folder(file: &Path) -> PathBuf {
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        base
    };
    std::path::absolute(&base).unwrap_or(base)
}

/// The lines of every key, or the one TOML syntax error (nothing else can be read).
fn index_spans(file: &Path, text: &str) -> Result<SpanIndex, ConfigErrors> {
    SpanIndex::parse(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| crate::spans::line_of(&crate::spans::line_starts(text), s.start));
        let message = e.message().trim().replace('\n', "; ");
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            key: String::new(),
            message: format!("invalid TOML: {message}"),
        }])
    })
}

fn report_unknown_sections(root: &toml::Table, c: &mut Collector<'_>) {
    let top = KeyPath::default();
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            let hint = match key.as_str() {
                "remotes" => "write each remote as [[remote]]".to_string(),
                "schedules" => "write each schedule as [[schedule]]".to_string(),
                _ => format!("expected one of {}", SECTIONS.join(", ")),
            };
            c.push(&top.key(key), format!("unknown section `{key}`: {hint}"));
        }
    }
}

/// Each section on its own; `[stack]` and `[repository]`
/// are required, `[retention]` and `[drill]` have defaults.
fn parse_sections(root: &mut toml::Table, c: &mut Collector<'_>) -> Parsed {
    let top = KeyPath::default();
    let mut take = |name: &str, c: &mut Collector<'_>| -> Option<toml::Value> {
        let v = root.remove(name);
        if v.is_none() && (name == "stack" || name == "repository") {
            c.push(
                &top,
                format!("missing section [{name}]; add it (see examples/)"),
            );
        }
        v
    };
    let stack = take("stack", c).and_then(|v| c.section(&top.key("stack"), v));
    let repository = take("repository", c).and_then(|v| c.section(&top.key("repository"), v));
    let remotes = parse_remotes(take("remote", c), c);
    let retention = match take("retention", c) {
        Some(v) => c.section(&top.key("retention"), v),
        None => Some(RetentionConfig::default()),
    };
    let drill = match take("drill", c) {
        Some(v) => c.section(&top.key("drill"), v),
        None => Some(DrillConfig::default()),
    };
    let serve = match take("serve", c) {
        Some(v) => c.section(&top.key("serve"), v),
        None => Some(ServeConfig::default()),
    };
    let schedules = parse_schedules(take("schedule", c), c);
    let deploy = match take("deploy", c) {
        Some(v) => c.section(&top.key("deploy"), v),
        None => Some(DeployConfig::default()),
    };
    let services_value = take("services", c);
    let services_readable = services_value.as_ref().is_none_or(toml::Value::is_table);
    let services = parse_services(services_value, c);
    // Validated as it is read: a channel's checks need nothing from other sections.
    let notify = parse_notify(take("notify", c), c);
    Parsed {
        stack,
        repository,
        remotes,
        retention,
        drill,
        services,
        notify,
        serve,
        schedules,
        deploy,
        services_readable,
    }
}

/// The semantic checks, on every part that parsed.
fn validate_sections(parsed: &mut Parsed, base: &Path, c: &mut Collector<'_>) {
    if let Some(stack) = parsed.stack.as_mut() {
        stack.validate(c, base);
    }
    if let Some(repository) = parsed.repository.as_mut() {
        repository.validate(c, base);
    }
    validate_remotes(c, &mut parsed.remotes);
    if let Some(retention) = parsed.retention.as_ref() {
        validate_retention(c, retention);
    }
    for (name, service) in parsed.services.iter_mut() {
        service.validate(c, name, base);
    }
    if let Some(serve) = parsed.serve.as_mut() {
        serve.validate(c);
    }
    if let Some(deploy) = parsed.deploy.as_ref() {
        deploy.validate(c);
    }
    let services = parsed.services_readable.then_some(&parsed.services);
    validate_schedules(c, &parsed.schedules, services);
}

/// The config, when every section parsed and no check failed; else every error in
/// file order.
fn assemble(file: &Path, parsed: Parsed, errors: Vec<ConfigError>) -> Result<Config, ConfigErrors> {
    let Parsed {
        stack,
        repository,
        remotes,
        retention,
        drill,
        services,
        notify,
        serve,
        schedules,
        deploy,
        services_readable: _,
    } = parsed;
    let (Some(stack), Some(repository), Some(retention), Some(drill), Some(serve), Some(deploy)) =
        (stack, repository, retention, drill, serve, deploy)
    else {
        return Err(ConfigErrors(sorted(errors)));
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(sorted(errors)));
    }
    Ok(Config {
        file: file.to_path_buf(),
        stack,
        repository,
        remotes: remotes.into_iter().map(|(_, r)| r).collect(),
        retention,
        drill,
        services: services
            .into_iter()
            .map(|(name, service)| (name, service.into_config()))
            .collect(),
        notify,
        serve,
        schedules: schedules.into_iter().map(|(_, s)| s).collect(),
        deploy,
    })
}
