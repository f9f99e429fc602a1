//! Infrastructure recreated by a deployment (decisions `infra`, `recreate`, and `heal`
//! when the heal did not fix it), after the pre-deploy backup:
//!
//! - [`can_recreate`]: every service's runtime can be recreated (compose with its
//!   file, a process, no process at all; an `external` service is left to its operator,
//!   its data still backed up and compared); asked before anything changes;
//! - [`preflight`]: each runtime answers (a Docker daemon that is down fails here),
//!   every source has a good backup to come back to, and the state volume and the
//!   data folders the runtimes know have free space for twice the largest source;
//! - [`recreate`]: each service recreated by its runtime (graceful stop, new
//!   definition, start), then its health checks polled until they pass or the
//!   `[deploy.recreate]` deadline ends;
//! - [`compare`]: each source's live data against its newest good backup (the
//!   pre-deploy one), by fingerprint: `same`, `changed`, or unreadable (`missing`);
//! - [`restore`]: the sources that are missing or changed, from that backup, each
//!   restore verified against the manifest, retried up to `restore_attempts` times.
//!
//! Every failure says what changed so far and the commands that recover (the
//! deployment is then `needs-rollback`, unless nothing was touched yet).

use std::path::{Path, PathBuf};
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::Selection;
use serde::Serialize;

use crate::health::{self, HealthOptions, ServiceStatus};
use crate::restore::{BackupRef, RestoreOptions};
use crate::verify::{good_backups, verify_live, LiveStatus};
use crate::RunContext;

/// Free space wanted beside the data, as a multiple of the largest source.
pub(super) const FREE_SPACE_FACTOR: u64 = 2;

/// Why a rebuild step stopped, and what the operator can do.
#[derive(Debug, Clone)]
pub(super) struct InfraFailure {
    pub cause: String,
    pub fix: String,
}

/// One source as the comparison of live data with its backup found it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    /// `service/source`.
    pub source: String,
    /// `same`, `changed`, `missing` (unreadable: the database, the folder is gone).
    pub status: &'static str,
    /// The backup it was compared with.
    pub backup: Option<String>,
    /// What differs (by fingerprint part), or why it could not be read.
    pub differences: Vec<String>,
}

impl SourceCheck {
    pub fn needs_restore(&self) -> bool {
        self.status != "same"
    }
}

/// Err: the services whose runtime cannot be recreated, each with why and what to do.
pub(super) fn can_recreate(config: &Config, services: &[String]) -> Result<(), String> {
    let refused: Vec<String> = services
        .iter()
        .filter_map(|name| {
            let rt = drydock_runtimes::build(name, &config.services[name].runtime);
            rt.can_recreate().err().map(|why| format!("{name}: {why}"))
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused.join("; "))
    }
}

/// Checks that nothing is recreated without a way back: every runtime answers, every
/// source has a good backup, and there is room for twice the largest source.
/// `largest` is the largest source's size in bytes, from the pre-deploy backup.
pub(super) fn preflight(
    config: &Config,
    services: &[String],
    largest: u64,
    ctx: &RunContext,
) -> Result<String, InfraFailure> {
    let nothing_changed = |cause: String, fix: &str| InfraFailure {
        cause,
        fix: format!("nothing was recreated; {fix}, then deploy again"),
    };
    let mut folders: Vec<PathBuf> = vec![config.stack.state_dir.clone()];
    for name in services {
        let rt = drydock_runtimes::build(name, &config.services[name].runtime);
        if let Err(e) = rt.state() {
            return Err(nothing_changed(
                format!("the runtime of {name} does not answer: {e}"),
                "start it (for Docker: `systemctl start docker`)",
            ));
        }
        folders.extend(rt.data_paths());
    }
    let selection = every_source_of(services);
    let backups = good_backups(config, &selection, ctx).map_err(|e| InfraFailure {
        cause: format!("looking for the backups to come back to: {e}"),
        fix: recover_by_hand(services, None),
    })?;
    let without: Vec<&str> = backups
        .iter()
        .filter(|(_, backup)| backup.is_none())
        .map(|(source, _)| source.as_str())
        .collect();
    if !without.is_empty() {
        return Err(nothing_changed(
            format!("no good backup to come back to for {}", without.join(", ")),
            "take one (`drydock backup --all --service ...`) and make sure it is ok",
        ));
    }
    let want = largest.saturating_mul(FREE_SPACE_FACTOR);
    for folder in &folders {
        let Some(free) = free_bytes(folder) else {
            continue;
        };
        if free < want {
            return Err(nothing_changed(
                format!(
                    "{} has {} free, less than {FREE_SPACE_FACTOR} x the largest source ({})",
                    folder.display(),
                    bytesize::ByteSize(free),
                    bytesize::ByteSize(largest)
                ),
                "free space there",
            ));
        }
    }
    Ok(format!(
        "runtimes answer, every source has a good backup, {} free wanted ({FREE_SPACE_FACTOR} x the largest source) is there",
        bytesize::ByteSize(want)
    ))
}

/// Free bytes of the file system holding `path` (or its nearest existing parent).
fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Recreates each service with its runtime, then waits for its health checks.
pub(super) fn recreate(
    config: &Config,
    services: &[String],
    ctx: &RunContext,
) -> Result<String, InfraFailure> {
    let mut done = Vec::new();
    for name in services {
        ctx.check_cancelled().map_err(|e| InfraFailure {
            cause: e.to_string(),
            fix: recover_by_hand(services, None),
        })?;
        let rt = drydock_runtimes::build(name, &config.services[name].runtime);
        if rt.kind() == "external" {
            done.push(format!(
                "{name}: not recreated (runtime external: its operator's)"
            ));
            continue;
        }
        let started = Instant::now();
        rt.recreate().map_err(|e| InfraFailure {
            cause: format!("recreating {name}: {e}"),
            fix: recover_by_hand(services, None),
        })?;
        done.push(format!("{name} in {} ms", started.elapsed().as_millis()));
    }
    let done = done.join(", ");
    // A recreated service whose data is gone fails the checks that read its data (a
    // database that does not exist yet) until the restore brings it back: then the
    // gate is the one after the restore. With its data there it must pass now.
    let now_sick = sick(config, services, ctx)?;
    if now_sick.is_empty() {
        return Ok(format!("recreated {done}; healthy"));
    }
    let checks = compare(config, services, ctx)?;
    if checks.iter().any(SourceCheck::needs_restore) {
        return Ok(format!(
            "recreated {done}; not healthy yet ({}) while its data is missing or differs ({}): restored next, then checked again",
            now_sick.join(", "),
            describe(&checks)
        ));
    }
    let healthy = wait_healthy(config, services, ctx)?;
    Ok(format!("recreated {done}; {healthy}"))
}

/// Polls the services' health checks every `health_interval` until none is unhealthy
/// or missing, or `health_deadline` passed.
fn wait_healthy(
    config: &Config,
    services: &[String],
    ctx: &RunContext,
) -> Result<String, InfraFailure> {
    let settings = &config.deploy.recreate;
    let started = Instant::now();
    let deadline = started + settings.health_deadline;
    loop {
        let sick = sick(config, services, ctx)?;
        if sick.is_empty() {
            return Ok(format!(
                "healthy after {} ms",
                started.elapsed().as_millis()
            ));
        }
        if Instant::now() + settings.health_interval > deadline {
            return Err(InfraFailure {
                cause: format!(
                    "not healthy within {} s: {}",
                    settings.health_deadline.as_secs(),
                    sick.join(", ")
                ),
                fix: recover_by_hand(services, None),
            });
        }
        ctx.check_cancelled().map_err(|e| InfraFailure {
            cause: e.to_string(),
            fix: recover_by_hand(services, None),
        })?;
        std::thread::sleep(settings.health_interval);
    }
}

/// One round of the services' health checks: each unhealthy or missing service with
/// the checks that failed.
fn sick(
    config: &Config,
    services: &[String],
    ctx: &RunContext,
) -> Result<Vec<String>, InfraFailure> {
    let report = health::health(
        config,
        &HealthOptions {
            services: services.to_vec(),
            record: false,
        },
        ctx,
    )
    .map_err(|e| InfraFailure {
        cause: format!("health checks: {e}"),
        fix: recover_by_hand(services, None),
    })?;
    Ok(report
        .services
        .iter()
        .filter(|(_, h)| matches!(h.status, ServiceStatus::Unhealthy | ServiceStatus::Missing))
        .map(|(name, h)| {
            let why: Vec<String> = h
                .checks
                .iter()
                .filter(|c| c.status != drydock_health::Status::Healthy)
                .map(|c| format!("{}: {}", c.name, c.message))
                .collect();
            format!("{name} ({})", why.join("; "))
        })
        .collect())
}

/// Each source of `services` against its newest good backup.
pub(super) fn compare(
    config: &Config,
    services: &[String],
    ctx: &RunContext,
) -> Result<Vec<SourceCheck>, InfraFailure> {
    let selection = every_source_of(services);
    let live = verify_live(config, &selection, ctx).map_err(|e| InfraFailure {
        cause: format!("comparing the live data with the backup: {e}"),
        fix: recover_by_hand(services, None),
    })?;
    Ok(live
        .sources
        .into_iter()
        .map(|s| SourceCheck {
            status: match s.status {
                LiveStatus::Same => "same",
                LiveStatus::Changed => "changed",
                LiveStatus::Error | LiveStatus::NoBackup => "missing",
            },
            source: s.source,
            backup: s.backup_id,
            differences: s.differences,
        })
        .collect())
}

/// Restores `checks` that need it from their backups, each verified, up to
/// `restore_attempts` times; Ok: what was restored.
pub(super) fn restore(
    config: &Config,
    checks: &[SourceCheck],
    ctx: &RunContext,
) -> Result<String, InfraFailure> {
    let attempts = config.deploy.recreate.restore_attempts;
    let mut restored = Vec::new();
    for check in checks.iter().filter(|c| c.needs_restore()) {
        let Some(backup) = check.backup.clone() else {
            return Err(InfraFailure {
                cause: format!("{}: no good backup to restore it from", check.source),
                fix: recover_by_hand(std::slice::from_ref(&check.source), None),
            });
        };
        let service = check
            .source
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let opts = RestoreOptions {
            backup: BackupRef::Id(backup.clone()),
            services: vec![service.clone()],
            sources: vec![check.source.clone()],
            // The deployment asked before (or was forced): see execute.rs.
            force: true,
            stop: true,
            ..RestoreOptions::default()
        };
        let mut last = String::new();
        let mut verified = false;
        for attempt in 1..=attempts {
            if attempt > 1 {
                std::thread::sleep(config.deploy.recreate.health_interval * (attempt - 1));
            }
            ctx.check_cancelled().map_err(|e| InfraFailure {
                cause: e.to_string(),
                fix: recover_by_hand(std::slice::from_ref(&service), Some(&backup)),
            })?;
            match crate::restore::restore(config, &opts, ctx) {
                Ok(r) if r.verified => {
                    verified = true;
                    let mut notes = vec!["verified".to_string()];
                    if attempt > 1 {
                        notes.push(format!("attempt {attempt}"));
                    }
                    notes.extend(r.sources.iter().filter_map(|s| s.service_action.clone()));
                    restored.push(format!(
                        "{} from {backup} ({})",
                        check.source,
                        notes.join(", ")
                    ));
                    break;
                }
                Ok(r) => {
                    last = format!(
                        "restored but not verified: {}",
                        r.sources
                            .iter()
                            .flat_map(|s| s.differences.iter().cloned().chain(s.error.clone()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
                Err(e) => last = e.to_string(),
            }
        }
        if !verified {
            return Err(InfraFailure {
                cause: format!(
                    "{}: restore from {backup} failed {attempts} time(s): {last}",
                    check.source
                ),
                fix: recover_by_hand(&[service], Some(&backup)),
            });
        }
    }
    if restored.is_empty() {
        return Ok("nothing to restore: the live data equals the backup".into());
    }
    // A file-level restore stopped and started the service: it must be healthy again.
    let mut services: Vec<String> = checks
        .iter()
        .filter(|c| c.needs_restore())
        .map(|c| c.source.split('/').next().unwrap_or_default().to_string())
        .collect();
    services.dedup();
    let healthy = wait_healthy(config, &services, ctx).map_err(|f| InfraFailure {
        cause: format!("restored {}, but {}", restored.join(", "), f.cause),
        fix: f.fix,
    })?;
    Ok(format!("restored {}; {healthy}", restored.join(", ")))
}

/// Puts the recreated services back on their definition at `previous` (the last good
/// deployment's commit: its compose file, written beside the current one and removed
/// after), waits for their health checks, and brings back from the backup the data that
/// is missing (and, with `replace_changed`, what differs). Ok: what was done; Err: what
/// is left for an operator.
pub(super) fn roll_back(
    config: &Config,
    services: &[String],
    previous: Option<&str>,
    backup: Option<&str>,
    replace_changed: bool,
    ctx: &RunContext,
) -> Result<String, InfraFailure> {
    let by_hand = |cause: String| InfraFailure {
        cause,
        fix: recover_by_hand(services, backup),
    };
    let previous = previous.ok_or_else(|| {
        by_hand(
            "no earlier good deployment is recorded, so there is no definition to go back to"
                .into(),
        )
    })?;
    let repo = super::changes::GitRepo::at(config.dir()).map_err(|e| by_hand(e.to_string()))?;
    let mut put_back = Vec::new();
    for name in services {
        let rt = drydock_runtimes::build(name, &config.services[name].runtime);
        if matches!(rt.kind(), "external" | "none") {
            continue; // nothing of it was recreated
        }
        let Some(file) = rt.definition() else {
            return Err(by_hand(format!(
                "{name}: runtime `{}` has no definition file drydock can go back to",
                rt.kind()
            )));
        };
        let text = repo
            .file_at(previous, &file)
            .map_err(|e| by_hand(format!("{name}: {e}")))?;
        let name_of = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let earlier = file.with_file_name(format!(
            ".drydock-rollback-{}",
            name_of.unwrap_or_else(|| "definition".into())
        ));
        std::fs::write(&earlier, text)
            .map_err(|e| by_hand(format!("writing {}: {e}", earlier.display())))?;
        let recreated = rt.recreate_from(&earlier);
        let _ = std::fs::remove_file(&earlier);
        recreated.map_err(|e| by_hand(format!("{name}: recreating from {previous}: {e}")))?;
        put_back.push(name.clone());
    }
    let healthy = wait_healthy(config, services, ctx)?;
    let checks = compare(config, services, ctx)?;
    let changed: Vec<&SourceCheck> = checks.iter().filter(|c| c.status == "changed").collect();
    if !changed.is_empty() && !replace_changed {
        return Err(by_hand(format!(
            "put back on {previous}, {healthy}, but live data differs from the backup: {}",
            describe(&changed.into_iter().cloned().collect::<Vec<_>>())
        )));
    }
    let restored = restore(config, &checks, ctx)?;
    Ok(format!(
        "{} put back on the definition of {}; {healthy}; {restored}",
        if put_back.is_empty() {
            "nothing recreated needed".to_string()
        } else {
            put_back.join(", ")
        },
        &previous[..previous.len().min(12)]
    ))
}

/// A line per check for a step's detail.
pub(super) fn describe(checks: &[SourceCheck]) -> String {
    checks
        .iter()
        .map(|c| {
            if c.differences.is_empty() {
                format!("{}: {}", c.source, c.status)
            } else {
                format!("{}: {} ({})", c.source, c.status, c.differences.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What brings `services` back by hand after a rebuild stopped.
pub(super) fn recover_by_hand(services: &[String], backup: Option<&str>) -> String {
    let names: Vec<&str> = services
        .iter()
        .map(|s| s.split('/').next().unwrap_or(s))
        .collect();
    let s: String = names.iter().map(|s| format!(" --service {s}")).collect();
    format!(
        "check the service(s) with `drydock diagnose{s}`; to go back, check out the previous revision and recreate them (e.g. `git checkout PREVIOUS && docker compose up -d --force-recreate`), then `drydock restore {}{s} --force` and `drydock verify --live`",
        backup.unwrap_or("latest")
    )
}

/// Every source of `services`, whatever its priority.
fn every_source_of(services: &[String]) -> Selection {
    Selection {
        all: true,
        services: services.to_vec(),
        ..Selection::default()
    }
}
