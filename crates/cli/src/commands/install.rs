//! `drydock install --systemd [--dry-run] [--unit-dir DIR] [--force]`: writes
//! `drydock.service`, a hardened systemd unit that runs `drydock serve --config
//! <this config>`, and prints the commands that enable it.
//!
//! What the unit holds follows from the config, read once here: the folders drydock
//! writes (repository, state, the folders beside file and SQLite sources where a
//! restore puts its scratch entries) are the only writable ones under
//! `ProtectSystem=strict`; Docker's group only when a service runs in Docker; an
//! `EnvironmentFile=` only when secrets come from the environment. The unit is built
//! with [`Unit`], a small typed builder, so its text is rendered in one place and
//! snapshot-tested (`crates/cli/tests/install.rs`).
//!
//! Who it runs as: the config file's owner. A config owned by root (the usual
//! `/etc/drydock/drydock.toml`) gives a root service whose capabilities are cut down
//! to the file capabilities a backup and a restore of other users' files need; a config
//! owned by another user gives a service of that user, with the same capabilities as
//! ambient ones (remove `AmbientCapabilities=` when all the data is that user's).
//!
//! Sleep and shutdown: the unit does not wrap `serve` in `systemd-inhibit` (a lock
//! for the daemon's whole life would forbid sleep whenever it runs, and the wrapper
//! would be the main process `NotifyAccess=main` listens to); the daemon takes a lock
//! per job instead (`crate::systemd::inhibit_sleep`).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use drydock_domain::config::{RuntimeConfig, SourceConfig};
use drydock_domain::secret::SecretRef;
use drydock_domain::Config;
use serde::Serialize;

use super::common::{load, output, Failure, Globals, EXIT_FAILURE, EXIT_REFUSED, EXIT_USAGE};

/// The unit's file name; `systemctl enable --now drydock` names it.
pub const UNIT_NAME: &str = "drydock.service";

/// How long systemd waits between watchdog pings before it restarts the daemon;
/// `drydock serve` pings at half of it (`crate::systemd::watchdog_interval`).
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// How long `drydock serve` lets a running job finish after SIGTERM before it cancels
/// it. The unit's `TimeoutStopSec=` adds to it the time the cancellation's cleanup
/// takes (starting stopped containers again), so systemd never kills a cleanup.
pub const SERVE_STOP_GRACE: Duration = Duration::from_secs(60);

/// Where `EnvironmentFile=` points when the config reads secrets from the environment.
pub const ENVIRONMENT_FILE: &str = "/etc/drydock/drydock.env";

/// Where Docker keeps named volumes (its default data-root); a restore of a named
/// volume writes there.
const DOCKER_VOLUMES: &str = "/var/lib/docker/volumes";

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Install as a systemd service (the only installer so far).
    #[arg(long, required = true)]
    pub systemd: bool,
    /// Print the unit and where it would go; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The folder the unit is written into.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
    /// Replace an existing drydock.service that differs from this one.
    #[arg(long)]
    pub force: bool,
}

/// What `install` did, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Installed {
    ok: bool,
    path: String,
    /// false for --dry-run, and when the file already held this unit.
    written: bool,
    /// The file already held exactly this unit.
    unchanged: bool,
    dry_run: bool,
    unit: String,
    warnings: Vec<String>,
    /// Run these, as root, to start it now and at every boot.
    commands: Vec<String>,
}

pub fn run(args: &InstallArgs, g: &Globals) -> Result<u8, Failure> {
    let config = load(g)?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| failure(format!("cannot find drydock's own executable: {e}")))?;
    let facts = Facts::of(&config, &exe)?;
    let unit = facts.unit().render();
    check_unit_dir(&args.unit_dir)?;
    let path = std::path::absolute(&args.unit_dir)
        .unwrap_or_else(|_| args.unit_dir.clone())
        .join(UNIT_NAME);
    let existing = std::fs::read_to_string(&path).ok();
    let unchanged = existing.as_deref() == Some(unit.as_str());
    if existing.is_some() && !unchanged && !args.force && !args.dry_run {
        return Err(Failure {
            code: EXIT_REFUSED,
            message: format!(
                "{} exists and differs from the unit drydock would write; nothing was \
                 written. See the new unit with `drydock install --systemd --dry-run`, then \
                 run again with --force to replace it (or --unit-dir to write elsewhere)",
                path.display()
            ),
        });
    }
    let written = !args.dry_run && !unchanged;
    if written {
        write_unit(&path, &unit)?;
    }
    let report = Installed {
        ok: true,
        path: path.display().to_string(),
        written,
        unchanged,
        dry_run: args.dry_run,
        unit,
        warnings: facts.warnings.clone(),
        commands: vec![
            "systemctl daemon-reload".into(),
            "systemctl enable --now drydock".into(),
        ],
    };
    output(g, &report, text);
    Ok(0)
}

fn text(r: &Installed) -> String {
    let mut out = String::new();
    if r.dry_run {
        let would = if r.unchanged {
            "already holds (nothing to write)"
        } else {
            "would write"
        };
        out += &format!("{would} {}:\n\n{}\n", r.path, r.unit);
    } else if r.unchanged {
        out += &format!("{} already holds this unit; nothing written\n", r.path);
    } else {
        out += &format!("wrote {}\n", r.path);
    }
    for w in &r.warnings {
        out += &format!("warning: {w}\n");
    }
    out += "\nEnable and start it (as root):\n";
    for c in &r.commands {
        out += &format!("  {c}\n");
    }
    out += "Then: systemctl status drydock, journalctl -u drydock\n";
    out
}

fn failure(message: String) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        message,
    }
}

fn check_unit_dir(dir: &Path) -> Result<(), Failure> {
    if !dir.is_dir() {
        return Err(Failure {
            code: EXIT_USAGE,
            message: format!(
                "the unit folder {} does not exist or is not a folder; nothing was written. \
                 Is systemd installed? Give another with --unit-dir",
                dir.display()
            ),
        });
    }
    Ok(())
}

/// Writes the unit whole or not at all: a temporary file beside it, renamed over it.
fn write_unit(path: &Path, unit: &str) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let cannot = |what: &str, e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            "; run it as root (sudo drydock install --systemd ...) or give a folder you can \
             write with --unit-dir"
        } else {
            ""
        };
        failure(format!(
            "cannot {what} {}: {e}; nothing was written{hint}",
            path.display()
        ))
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cannot("write", e))?;
    tmp.write_all(unit.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        // systemd and `systemctl cat` read units as any user: 0644, as packages install them.
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|e| cannot("write", e))?;
    tmp.persist(path).map_err(|e| cannot("replace", e.error))?;
    Ok(())
}

/// What the unit needs to know, read from the config and the machine.
struct Facts {
    exe: PathBuf,
    config_file: PathBuf,
    stack: String,
    /// `None`: root.
    user: Option<String>,
    /// Writable under `ProtectSystem=strict`; `optional` ones are prefixed `-` (systemd
    /// skips them when missing).
    writable: Vec<(PathBuf, bool)>,
    docker: bool,
    process_runtime: bool,
    env_secrets: Vec<String>,
    private_tmp: bool,
    stop_timeout: Duration,
    warnings: Vec<String>,
}

impl Facts {
    fn of(config: &Config, exe: &Path) -> Result<Facts, Failure> {
        let config_file = std::path::absolute(&config.file)
            .map_err(|e| failure(format!("cannot resolve {}: {e}", config.file.display())))?;
        let meta = std::fs::metadata(&config_file)
            .map_err(|e| failure(format!("cannot read {}: {e}", config_file.display())))?;
        let user = match meta.uid() {
            0 => None,
            uid => Some(
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .ok_or_else(|| {
                        failure(format!(
                            "{} is owned by uid {uid}, which has no user name; the unit runs \
                             as the config's owner: chown it to root or to a named user",
                            config_file.display()
                        ))
                    })?,
            ),
        };
        let mut warnings = Vec::new();
        let (writable, docker) = writable_paths(config);
        for (path, optional) in &writable {
            if !optional && !path.exists() {
                warnings.push(format!(
                    "{} does not exist yet; systemd will not start the unit until it does \
                     (create it, or run `drydock backup` once by hand first)",
                    path.display()
                ));
            }
        }
        if docker
            && nix::unistd::Group::from_name("docker")
                .ok()
                .flatten()
                .is_none()
        {
            warnings.push(
                "the config has Docker services but this machine has no `docker` group; \
                 the unit's SupplementaryGroups=docker keeps it from starting until Docker \
                 is installed"
                    .into(),
            );
        }
        let env_secrets = env_secret_names(config);
        if !env_secrets.is_empty() {
            warnings.push(format!(
                "the config reads secrets from the environment ({}): put them as NAME=value \
                 lines in {ENVIRONMENT_FILE} (owned by root, mode 0600); the unit reads it",
                env_secrets.join(", ")
            ));
        }
        let mut needed: Vec<PathBuf> = vec![config_file.clone(), exe.to_path_buf()];
        needed.extend(writable.iter().map(|(p, _)| p.clone()));
        needed.extend(secret_files(config));
        let private_tmp = !needed.iter().any(|p| in_tmp(p));
        if !private_tmp {
            warnings.push(
                "the config, drydock or its data is under /tmp or /var/tmp, which \
                 PrivateTmp= would hide from the service: the unit keeps the machine's /tmp \
                 (PrivateTmp=no); move them to lasting folders"
                    .into(),
            );
        }
        let cleanup = config
            .services
            .values()
            .filter_map(|s| match &s.runtime {
                RuntimeConfig::Docker(d) => Some(d.stop_timeout + d.health_timeout),
                RuntimeConfig::Compose(c) => Some(c.stop_timeout + c.health_timeout),
                RuntimeConfig::Process(p) => Some(p.timeout * 2),
                _ => None,
            })
            .max()
            .unwrap_or_default();
        for p in &needed {
            if p.to_str().is_none_or(|s| s.chars().any(char::is_control)) {
                return Err(failure(format!(
                    "{} holds a character a systemd unit cannot express (a control \
                     character or invalid UTF-8); rename it",
                    p.display()
                )));
            }
        }
        Ok(Facts {
            exe: exe.to_path_buf(),
            config_file,
            stack: config.stack.name.clone(),
            user,
            writable,
            docker,
            process_runtime: config
                .services
                .values()
                .any(|s| matches!(s.runtime, RuntimeConfig::Process(_))),
            env_secrets,
            private_tmp,
            stop_timeout: SERVE_STOP_GRACE + cleanup + Duration::from_secs(10),
            warnings,
        })
    }

    /// The unit, line by line.
    fn unit(&self) -> Unit {
        let mut u = Unit::default();
        u.comment("Written by `drydock install --systemd`; run it again after changing where")
            .comment("the config keeps its data (the writable folders below come from it).")
            .section("Unit")
            .key(
                "Description",
                format!(
                    "drydock: scheduled backups, drills and health checks of the stack {}",
                    self.stack
                ),
            )
            .key("Wants", "network-online.target")
            .key(
                "After",
                if self.docker {
                    "network-online.target docker.service"
                } else {
                    "network-online.target"
                },
            );

        u.section("Service")
            .comment("drydock tells systemd when it is ready and pings the watchdog itself;")
            .comment("only its own main process may (no wrapper around it).")
            .key("Type", "notify")
            .key("NotifyAccess", "main")
            .key(
                "ExecStart",
                format!(
                    "{} serve --config {}",
                    exec_word(&self.exe),
                    exec_word(&self.config_file)
                ),
            )
            .key("WatchdogSec", seconds(WATCHDOG))
            .key("Restart", "on-failure")
            .key("RestartSec", "30s")
            .comment("SIGTERM lets the running job finish or cancels it cleanly (containers it")
            .comment("stopped are started again) within this time.")
            .key("KillSignal", "SIGTERM")
            .key("TimeoutStopSec", seconds(self.stop_timeout))
            .key("UMask", "0077");
        if let Some(user) = &self.user {
            u.comment("The config's owner.").key("User", user.clone());
        }
        if self.docker {
            u.comment("The Docker socket, for the Docker and Compose services.")
                .key("SupplementaryGroups", "docker");
        }
        if !self.env_secrets.is_empty() {
            u.comment(format!(
                "Secrets the config reads from the environment: {}.",
                self.env_secrets.join(", ")
            ))
            .key("EnvironmentFile", format!("-{ENVIRONMENT_FILE}"));
        }

        u.blank()
            .comment("Hardening: the whole file system is read-only but for what drydock writes:")
            .comment("its repository and state, and the folders its restores write into.")
            .key("ProtectSystem", "strict")
            .key(
                "ReadWritePaths",
                self.writable
                    .iter()
                    .map(|(p, optional)| {
                        format!("{}{}", if *optional { "-" } else { "" }, path_word(p))
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .key("ProtectHome", "read-only")
            .key("PrivateTmp", if self.private_tmp { "yes" } else { "no" })
            .key("NoNewPrivileges", "yes")
            .key("ProtectKernelTunables", "yes")
            .key("ProtectKernelModules", "yes")
            .key("ProtectKernelLogs", "yes")
            .key("ProtectControlGroups", "yes")
            .key("ProtectClock", "yes")
            .key("ProtectHostname", "yes")
            .key("RestrictRealtime", "yes")
            .key("LockPersonality", "yes")
            .key("SystemCallArchitectures", "native")
            .key(
                "RestrictAddressFamilies",
                "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            );

        let mut caps = vec![
            (
                "CAP_DAC_READ_SEARCH",
                "read every file and folder a backup reads, whoever owns it",
            ),
            (
                "CAP_DAC_OVERRIDE",
                "write restored data into folders owned by the services' users",
            ),
            (
                "CAP_CHOWN",
                "give restored files back their owner and group",
            ),
            (
                "CAP_FOWNER",
                "set modes and times of restored files drydock does not own",
            ),
            ("CAP_FSETID", "keep restored setuid/setgid bits"),
        ];
        if self.process_runtime {
            caps.push((
                "CAP_KILL",
                "the process runtimes' stop commands signal services of other users",
            ));
            caps.push((
                "CAP_SETUID",
                "the process runtimes' commands may switch to the service's user (runuser)",
            ));
            caps.push(("CAP_SETGID", "the same, for its groups"));
        }
        u.comment("Capabilities, each for one reason:");
        for (cap, why) in &caps {
            u.comment(format!("  {cap}: {why}"));
        }
        let set = caps.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(" ");
        u.key("CapabilityBoundingSet", set.clone());
        if self.user.is_some() {
            u.key("AmbientCapabilities", set);
        }

        u.section("Install").key("WantedBy", "multi-user.target");
        u
    }
}

/// The folders drydock writes, each once (none inside another), and whether the
/// config has Docker services.
fn writable_paths(config: &Config) -> (Vec<(PathBuf, bool)>, bool) {
    let mut must: BTreeSet<PathBuf> = BTreeSet::new();
    let mut optional: BTreeSet<PathBuf> = BTreeSet::new();
    must.insert(config.repository.path.clone());
    must.insert(config.stack.state_dir.clone());
    let mut docker = config.services.values().any(|s| s.runtime.is_container());
    for (_, _, source) in config.sources() {
        // A restore writes beside the live path (scratch entries, then a rename; SQLite's
        // journal too), so the folder holding it must be writable, and the folder a
        // followed symlink points into.
        let mut beside = |path: &Path, follow: bool| {
            must.insert(parent(path));
            if follow {
                if let Ok(target) = path.canonicalize() {
                    must.insert(parent(&target));
                }
            }
        };
        match source {
            SourceConfig::Files(f) => beside(&f.path, f.follow_symlink),
            SourceConfig::Sqlite(s) => beside(&s.path, s.follow_symlink),
            SourceConfig::Volume(v) => match &v.path {
                Some(path) => beside(path, false),
                None => {
                    docker = true;
                    optional.insert(PathBuf::from(DOCKER_VOLUMES));
                }
            },
            _ => {}
        }
    }
    let all: Vec<(PathBuf, bool)> = must
        .iter()
        .map(|p| (p.clone(), false))
        .chain(
            optional
                .iter()
                .filter(|p| !must.contains(*p))
                .map(|p| (p.clone(), true)),
        )
        .collect();
    let kept = all
        .iter()
        .filter(|(p, _)| !all.iter().any(|(q, _)| q != p && p.starts_with(q)))
        .cloned()
        .collect();
    (kept, docker)
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}

fn in_tmp(path: &Path) -> bool {
    path.starts_with("/tmp") || path.starts_with("/var/tmp")
}

/// The names of the environment variables the config's secrets come from (the names
/// only: never a value).
fn env_secret_names(config: &Config) -> Vec<String> {
    let names: BTreeSet<String> = secrets(config)
        .filter_map(|r| match r {
            SecretRef::Env(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.into_iter().collect()
}

fn secret_files(config: &Config) -> Vec<PathBuf> {
    secrets(config)
        .filter_map(|r| match r {
            SecretRef::File(path) => Some(path.clone()),
            _ => None,
        })
        .collect()
}

fn secrets(config: &Config) -> impl Iterator<Item = &SecretRef> {
    let repo = std::iter::once(&config.repository.password);
    let remotes = config.remotes.iter().flat_map(|r| {
        [&r.access_key_id, &r.secret_access_key]
            .into_iter()
            .chain(r.password.as_ref())
    });
    let sources = config.sources().flat_map(|(_, _, s)| s.spec().secrets());
    repo.chain(remotes).chain(sources).map(|s| s.reference())
}

/// `WatchdogSec=`'s spelling of a duration: whole seconds.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// A path as one word of `ExecStart=`: `%` and `$` escaped (systemd expands
/// specifiers and variables there), quoted when it holds a space or a quote.
fn exec_word(path: &Path) -> String {
    path_word(path).replace('$', "$$")
}

/// A path as one word of a space-separated list (`ReadWritePaths=`).
fn path_word(path: &Path) -> String {
    let text = path.display().to_string().replace('%', "%%");
    if text.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// A unit file: sections of `Key=value` lines and comments, rendered in one place.
#[derive(Default)]
struct Unit {
    lines: Vec<Line>,
}

enum Line {
    Section(&'static str),
    Key(&'static str, String),
    Comment(String),
    Blank,
}

impl Unit {
    fn section(&mut self, name: &'static str) -> &mut Self {
        if !self.lines.is_empty() {
            self.lines.push(Line::Blank);
        }
        self.lines.push(Line::Section(name));
        self
    }

    fn key(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.lines.push(Line::Key(key, value.into()));
        self
    }

    fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.lines.push(Line::Comment(text.into()));
        self
    }

    fn blank(&mut self) -> &mut Self {
        self.lines.push(Line::Blank);
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Section(name) => out += &format!("[{name}]\n"),
                Line::Key(key, value) => out += &format!("{key}={value}\n"),
                Line::Comment(text) => out += &format!("# {text}\n"),
                Line::Blank => out += "\n",
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// systemd splits these settings on spaces and expands `%` specifiers (and `$`
    /// variables in `ExecStart=`): a path must reach it as the one word it is.
    #[test]
    fn paths_are_quoted_and_escaped_for_systemd() {
        let plain = Path::new("/srv/backups/shop");
        assert_eq!(path_word(plain), "/srv/backups/shop");
        assert_eq!(exec_word(plain), "/srv/backups/shop");
        let odd = Path::new("/srv/my data/100%/$HOME/\"q\"");
        assert_eq!(path_word(odd), r#""/srv/my data/100%%/$HOME/\"q\"""#);
        assert_eq!(exec_word(odd), r#""/srv/my data/100%%/$$HOME/\"q\"""#);
    }

    #[test]
    fn the_builder_renders_sections_keys_and_comments_in_order() {
        let mut u = Unit::default();
        u.comment("top").section("Unit").key("Description", "d");
        u.section("Service").blank().key("Type", "notify");
        assert_eq!(
            u.render(),
            "# top\n\n[Unit]\nDescription=d\n\n[Service]\n\nType=notify\n"
        );
    }
}
