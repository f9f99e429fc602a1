//! The in-place steps a destructive drill and `certify` share: stop a service and wipe
//! its data (the restore recorded as owed first), restore it in place and start it
//! again, and measure the test data `populate` wrote. A step that stops says the state
//! the service is left in and what the operator runs to recover; a restore cancelled
//! midway says so too, so the caller returns [`EngineError::Cancelled`] with the owed
//! record left for `status` to show.

use std::time::{Duration, Instant};

use drydock_domain::config::Config;
use drydock_domain::{Event, EventSink, SourceRecord};
use drydock_runtimes::State;
use drydock_state::StateDb;
use jiff::Timestamp;

use super::report::{ms, Step, TestDataCheck};
use crate::health::{self, ServiceStatus};
use crate::restore::{self, BackupRef, RestoreOptions, RestoreReport, RestoreStatus};
use crate::{populate, EngineError, RunContext};

/// How long a restored service may take to pass its health checks.
const HEALTH_WAIT: Duration = Duration::from_secs(120);

/// Why a wipe or a recovery stopped: the state the service is left in, and what the
/// operator runs to recover.
pub(crate) struct Stopped {
    pub state: String,
    pub recover: Option<String>,
    /// The run was cancelled (the reason): not a failed step, the caller returns
    /// [`EngineError::Cancelled`].
    pub cancelled: Option<String>,
}

impl Stopped {
    fn failed(state: String, recover: Option<String>) -> Stopped {
        Stopped {
            state,
            recover,
            cancelled: None,
        }
    }

    /// The cancellation to return instead of a failed step, if the run was cancelled.
    pub fn cancellation(&self) -> Option<EngineError> {
        self.cancelled
            .clone()
            .map(|reason| EngineError::Cancelled { reason })
    }
}

/// What the wipe left behind.
pub(crate) struct Wiped {
    /// The simulated failure: data written after a backup's consistent point is lost.
    pub failure_point: Timestamp,
}

/// What the recovery proved.
pub(crate) struct Recovered {
    pub restore: RestoreReport,
    pub health: ServiceStatus,
    /// Restore start to the service healthy again.
    pub recovered_ms: u64,
}

fn step(steps: &mut Vec<Step>, name: &str, clock: Instant) {
    steps.push(Step {
        name: name.to_string(),
        ms: ms(clock.elapsed()),
    });
}

/// Stops the service (when drydock may; databases restore over their protocol),
/// records the restore owed from `backup_id`, then wipes every source of `records`.
pub(crate) fn stop_and_wipe(
    config: &Config,
    service: &str,
    backup_id: &str,
    records: &[SourceRecord],
    state: &StateDb,
    events: &dyn EventSink,
    steps: &mut Vec<Step>,
) -> Result<Wiped, Stopped> {
    let svc = &config.services[service];
    let runtime = drydock_runtimes::build(service, &svc.runtime);
    let clock = Instant::now();
    let was_running = runtime.can_stop() && runtime.state().ok() == Some(State::Running);
    if was_running {
        events.emit(Event::Step {
            message: format!("stopping service `{service}`"),
        });
        runtime.stop().map_err(|e| {
            Stopped::failed(
                format!("could not be stopped ({e}); nothing was wiped, the data is as it was"),
                None,
            )
        })?;
        step(steps, "stop", clock);
    }
    if let Err(e) = state.set_pending_restore(
        service,
        backup_id,
        "its data was wiped on purpose (drill or certify)",
    ) {
        let start_again = was_running.then(|| runtime.start());
        return Err(Stopped::failed(
            format!(
                "the pending restore could not be recorded ({e}), so nothing was wiped{}",
                match start_again {
                    Some(Err(e)) => format!("; starting it again failed: {e}"),
                    Some(Ok(())) => "; it was started again".into(),
                    None => String::new(),
                }
            ),
            None,
        ));
    }
    let failure_point = Timestamp::now();
    wipe(config, service, backup_id, records, events, steps)?;
    Ok(Wiped { failure_point })
}

/// Wipes every source of `records`; the restore is already recorded as owed.
fn wipe(
    config: &Config,
    service: &str,
    backup_id: &str,
    records: &[SourceRecord],
    events: &dyn EventSink,
    steps: &mut Vec<Step>,
) -> Result<(), Stopped> {
    let svc = &config.services[service];
    let clock = Instant::now();
    for record in records {
        let source_config = svc
            .data
            .iter()
            .find(|d| d.name() == record.source)
            .expect("backed-up sources come from the config");
        events.emit(Event::Step {
            message: format!("wiping {}", record.label()),
        });
        drydock_sources::build(source_config).wipe().map_err(|e| {
            Stopped::failed(
                format!(
                    "wiping {} failed midway ({e}); its data may be partly gone and the service is stopped",
                    record.label()
                ),
                Some(restore_cmd(backup_id, service)),
            )
        })?;
    }
    step(steps, "wipe", clock);
    Ok(())
}

fn restore_cmd(backup_id: &str, service: &str) -> String {
    format!("drydock restore {backup_id} --service {service} --force")
}

/// Restores the service in place from `backup_id` (verified by `restore` itself),
/// starts it when drydock may, and waits for its health checks.
pub(crate) fn restore_and_start(
    config: &Config,
    service: &str,
    backup_id: &str,
    ctx: &RunContext,
    steps: &mut Vec<Step>,
) -> Result<Recovered, Stopped> {
    let restore_clock = Instant::now();
    let restored = restore_in_place(config, service, backup_id, ctx, steps)?;
    let health = start_and_wait_healthy(config, service, ctx, steps)?;
    Ok(Recovered {
        restore: restored,
        health,
        recovered_ms: ms(restore_clock.elapsed()),
    })
}

/// `drydock restore BACKUP --service SERVICE --force --stop`, which must verify.
fn restore_in_place(
    config: &Config,
    service: &str,
    backup_id: &str,
    ctx: &RunContext,
    steps: &mut Vec<Step>,
) -> Result<RestoreReport, Stopped> {
    let restore_cmd = restore_cmd(backup_id, service);
    let clock = Instant::now();
    let restored = restore::restore(
        config,
        &RestoreOptions {
            backup: BackupRef::Id(backup_id.to_string()),
            from: None,
            services: vec![service.to_string()],
            all: false,
            force: true,
            // Other containers using a wiped volume are stopped and started again too.
            stop: true,
            sources: vec![],
        },
        ctx,
    );
    step(steps, "restore and verify", clock);
    match restored {
        Ok(r) if r.verified => Ok(r),
        Ok(r) => {
            let why: Vec<String> = r
                .sources
                .iter()
                .filter(|s| s.status != RestoreStatus::Verified)
                .map(|s| {
                    format!(
                        "{}/{}: {}",
                        s.service,
                        s.source,
                        s.error.clone().unwrap_or_else(|| s.differences.join("; "))
                    )
                })
                .collect();
            Err(Stopped::failed(
                format!(
                    "its data was wiped and the restore from {backup_id} did not verify ({}); the service is stopped",
                    why.join(", ")
                ),
                Some(format!("{restore_cmd} (or from another backup: `drydock backups`)")),
            ))
        }
        Err(EngineError::Cancelled { reason }) => Err(Stopped {
            state: format!("its data was wiped and the restore was cancelled ({reason}); the service is stopped and owed a restore"),
            recover: Some(restore_cmd),
            cancelled: Some(reason),
        }),
        Err(e) => Err(Stopped::failed(
            format!("its data was wiped and the restore could not run ({e}); the service is stopped"),
            Some(restore_cmd),
        )),
    }
}

/// Starts the restored service when drydock may and waits for its health checks.
fn start_and_wait_healthy(
    config: &Config,
    service: &str,
    ctx: &RunContext,
    steps: &mut Vec<Step>,
) -> Result<ServiceStatus, Stopped> {
    let runtime = drydock_runtimes::build(service, &config.services[service].runtime);
    let clock = Instant::now();
    if runtime.can_stop() && runtime.state().ok() != Some(State::Running) {
        ctx.events().emit(Event::Step {
            message: format!("starting service `{service}`"),
        });
        runtime.start().map_err(|e| {
            Stopped::failed(
                format!("its data was restored and verified, but it did not start ({e})"),
                Some(format!(
                    "drydock heal {service} (or `drydock diagnose {service}`)"
                )),
            )
        })?;
    }
    let (health, gave_up) = health::wait_healthy(config, service, HEALTH_WAIT, || None);
    step(steps, "start and wait for health", clock);
    if health.status > ServiceStatus::Degraded {
        let failing: Vec<String> = health
            .checks
            .iter()
            .filter(|c| c.status != drydock_health::Status::Healthy)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        return Err(Stopped::failed(
            format!(
                "its data was restored and verified, but it is {} after {} s ({}){}",
                health.status.as_str(),
                HEALTH_WAIT.as_secs(),
                failing.join("; "),
                gave_up.map(|g| format!("; {g}")).unwrap_or_default()
            ),
            Some(format!("drydock diagnose {service}")),
        ));
    }
    Ok(health.status)
}

/// The test data `populate` wrote into `service/source`, measured in `live` now;
/// `None` when nothing was populated there.
pub(crate) fn test_data_check(
    state: &StateDb,
    service: &str,
    source: &str,
    live: Option<&dyn drydock_sources::DataSource>,
) -> Option<TestDataCheck> {
    let expected = populate::expected_test_data(state, service, source).ok()??;
    Some(match live.map(|s| s.measure_test_data()) {
        Some(Ok(measured)) => {
            let differences = measured.differences(&expected);
            TestDataCheck {
                matched: differences.is_empty(),
                differences,
            }
        }
        Some(Err(e)) => TestDataCheck {
            matched: false,
            differences: vec![format!("could not be measured: {e}")],
        },
        None => TestDataCheck {
            matched: false,
            differences: vec!["the source is no longer configured".into()],
        },
    })
}
