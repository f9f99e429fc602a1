//! `drydock heal`: bounded, non-destructive fixes for unhealthy services. A stopped
//! service is started, a running but failing one restarted, then its checks are
//! polled until they pass; at most three attempts, with exponential backoff between
//! them, every attempt logged and reported. What heal cannot fix it says so, with the
//! diagnosis and the plain statement that the service needs recreating from a backup,
//! or, for a service drydock may not start (`external`), that the operator starts it.
//! Heal never deletes data and never recreates anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::Config;
use drydock_domain::{Event, EventSink, Verdict};
use drydock_runtimes::State;
use serde::{Deserialize, Serialize};

use crate::diagnose::{self, DiagnoseOptions, Issue};
use crate::health::{self, ServiceStatus};
use crate::EngineError;
use crate::RunContext;

/// Attempts per service, at most.
pub const MAX_ATTEMPTS: u32 = 3;

/// What `heal` tries. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct HealOptions {
    /// Services to heal (default: every unhealthy service).
    pub services: Vec<String>,
    /// Only show what would be done.
    #[cfg_attr(feature = "clap", arg(long))]
    pub dry_run: bool,
    // Attempts per service (1 to `MAX_ATTEMPTS`); not a command-line flag: the bound is
    // part of heal's promise.
    #[cfg_attr(feature = "clap", arg(skip = MAX_ATTEMPTS))]
    pub attempts: u32,
    /// How long to wait for the checks to pass after each start, e.g. 30s.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value = "30s", value_parser = parse_duration)
    )]
    pub wait: Duration,
    /// Pause after the first failed attempt (doubled after each further one), e.g. 2s.
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value = "2s", value_parser = parse_duration)
    )]
    pub backoff: Duration,
}

#[cfg(feature = "clap")]
fn parse_duration(s: &str) -> Result<Duration, String> {
    drydock_domain::config::duration_text::parse(s)
}

impl Default for HealOptions {
    fn default() -> Self {
        HealOptions {
            services: Vec::new(),
            dry_run: false,
            attempts: MAX_ATTEMPTS,
            backoff: Duration::from_secs(2),
            wait: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealOutcome {
    /// Nothing to do.
    Healthy,
    /// Only warnings: restarting would not help.
    Degraded,
    /// Was unhealthy, is healthy now.
    Fixed,
    /// Still unhealthy after the attempts, or nothing heal may do.
    NotFixable,
    /// Dry run: this is what would be tried.
    WouldTry,
}

/// One start or restart.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    /// `start` or `restart`.
    pub action: String,
    pub at: String,
    /// Whether the checks passed afterwards.
    pub ok: bool,
    pub message: String,
    pub duration_ms: u64,
    /// The pause taken before the next attempt.
    pub backoff_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceHeal {
    pub service: String,
    pub before: ServiceStatus,
    pub after: ServiceStatus,
    pub outcome: HealOutcome,
    /// What was (or, in a dry run, would be) done, in a sentence.
    pub summary: String,
    pub attempts: Vec<Attempt>,
    /// The diagnosis when heal could not fix the service.
    pub diagnosis: Vec<Issue>,
    /// The last log lines (redacted) when heal could not fix the service.
    pub logs: Vec<String>,
    /// What has to happen instead, when heal cannot fix it.
    pub needs: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealReport {
    pub timestamp: String,
    pub dry_run: bool,
    /// Every selected service is healthy (or only degraded) now.
    pub fixed: bool,
    /// The verdict; in JSON the exit code it maps to, as always.
    #[serde(
        rename = "exit_code",
        serialize_with = "drydock_domain::verdict::as_exit_code"
    )]
    pub verdict: Verdict,
    pub services: Vec<ServiceHeal>,
}

/// Runs `drydock heal`.
pub fn heal(
    config: &Config,
    opts: &HealOptions,
    ctx: &RunContext,
) -> Result<HealReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let selected = health::select(config, &opts.services)?;
    let attempts = opts.attempts.clamp(1, MAX_ATTEMPTS);
    let timestamp = jiff::Timestamp::now();
    let before = health::check_services(config, &selected, None);
    let mut services = Vec::new();
    for (name, h) in &before {
        let result = match h.status {
            ServiceStatus::Healthy => done(name, h.status, HealOutcome::Healthy, "healthy; nothing to do".into()),
            ServiceStatus::Degraded => done(
                name,
                h.status,
                HealOutcome::Degraded,
                "degraded (a warning threshold), not something a restart fixes; see `drydock diagnose`".into(),
            ),
            ServiceStatus::Missing => not_fixable(
                config,
                name,
                h.status,
                Vec::new(),
                "it is not deployed, and heal does not create services".into(),
            ),
            ServiceStatus::Unhealthy => heal_service(config, name, h.status, opts, attempts, &events),
        };
        services.push(result);
    }
    let fixed = services.iter().all(|s| {
        matches!(
            s.outcome,
            HealOutcome::Healthy | HealOutcome::Degraded | HealOutcome::Fixed
        )
    });
    let verdict = if opts.dry_run {
        if services
            .iter()
            .any(|s| s.outcome == HealOutcome::NotFixable)
        {
            Verdict::Failed
        } else if services.iter().any(|s| s.outcome == HealOutcome::WouldTry) {
            Verdict::Warning
        } else {
            Verdict::Ok
        }
    } else if fixed {
        Verdict::Ok
    } else {
        Verdict::Failed
    };
    Ok(HealReport {
        timestamp: timestamp
            .round(jiff::Unit::Second)
            .unwrap_or(timestamp)
            .to_string(),
        dry_run: opts.dry_run,
        fixed,
        verdict,
        services,
    })
}

fn done(name: &str, status: ServiceStatus, outcome: HealOutcome, summary: String) -> ServiceHeal {
    ServiceHeal {
        service: name.to_string(),
        before: status,
        after: status,
        outcome,
        summary,
        attempts: Vec::new(),
        diagnosis: Vec::new(),
        logs: Vec::new(),
        needs: None,
    }
}

/// The service cannot be fixed by heal: the diagnosis and what has to happen instead.
fn not_fixable(
    config: &Config,
    name: &str,
    before: ServiceStatus,
    attempts: Vec<Attempt>,
    why: String,
) -> ServiceHeal {
    let diagnosis = diagnose::diagnose(
        config,
        &DiagnoseOptions {
            services: vec![name.to_string()],
            lines: 20,
        },
        &RunContext::default(),
    );
    let (issues, logs, after) = match diagnosis {
        Ok(mut d) => (
            d.issues,
            d.logs.remove(name).unwrap_or_default(),
            d.services.get(name).map(|s| s.status).unwrap_or(before),
        ),
        Err(e) => (Vec::new(), vec![format!("(diagnosis failed: {e})")], before),
    };
    let runtime = health::runtime_of(name, &config.services[name]);
    // Agrees with `diagnose`: a service drydock may not start is the operator's to
    // start, not a case for recreating it from a backup.
    let needs = if matches!(runtime.kind(), "external" | "none") {
        format!(
            "{name} cannot be fixed by heal: {why}. {}.",
            diagnose::start_it_yourself(runtime.kind())
        )
    } else {
        format!(
            "{name} cannot be fixed by heal: {why}. It needs to be recreated and its data restored from the latest verified backup (`drydock restore latest --service {name}` once it is redeployed)."
        )
    };
    tracing::error!(service = %name, "{needs}");
    ServiceHeal {
        service: name.to_string(),
        before,
        after,
        outcome: HealOutcome::NotFixable,
        summary: why,
        attempts,
        diagnosis: issues,
        logs,
        needs: Some(needs),
    }
}

fn heal_service(
    config: &Config,
    name: &str,
    before: ServiceStatus,
    opts: &HealOptions,
    attempts: u32,
    events: &Arc<dyn EventSink>,
) -> ServiceHeal {
    let runtime = health::runtime_of(name, &config.services[name]);
    if matches!(runtime.kind(), "external" | "none") {
        return not_fixable(
            config,
            name,
            before,
            Vec::new(),
            format!(
                "its runtime `{}` does not let drydock start or stop it",
                runtime.kind()
            ),
        );
    }
    if opts.dry_run {
        return dry_run(name, before, runtime.as_ref(), opts, attempts);
    }
    let mut log = Vec::new();
    for attempt in 1..=attempts {
        let tried = attempt_once(config, name, &runtime, opts, (attempt, attempts), events);
        let ok = tried.ok;
        let pause = tried.backoff_ms.map(Duration::from_millis);
        log.push(tried);
        if ok {
            break;
        }
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
    }
    conclude(config, name, before, log, attempts)
}

/// Start when stopped, restart when running.
fn action_for(state: State) -> &'static str {
    if state == State::Running {
        "restart"
    } else {
        "start"
    }
}

/// What a heal would do, without doing it.
fn dry_run(
    name: &str,
    before: ServiceStatus,
    runtime: &dyn drydock_runtimes::Runtime,
    opts: &HealOptions,
    attempts: u32,
) -> ServiceHeal {
    let state = runtime.state().unwrap_or(State::Unknown);
    let first_action = action_for(state);
    let mut pauses = Vec::new();
    for i in 1..attempts {
        pauses.push(format!(
            "{} s",
            opts.backoff.as_secs_f64() * f64::from(1 << (i - 1))
        ));
    }
    done(
        name,
        before,
        HealOutcome::WouldTry,
        format!(
            "would {first_action} it ({state}) and wait up to {} s for its checks; up to {attempts} attempts{}",
            opts.wait.as_secs(),
            if pauses.is_empty() { String::new() } else { format!(", pausing {} between them", pauses.join(", ")) }
        ),
    )
    .with_outcome(HealOutcome::WouldTry)
}

/// One attempt (number `n` of `of`): start or restart, wait for the checks, record it;
/// the pause before the next attempt when it failed.
fn attempt_once(
    config: &Config,
    name: &str,
    runtime: &Arc<dyn drydock_runtimes::Runtime>,
    opts: &HealOptions,
    (attempt, attempts): (u32, u32),
    events: &Arc<dyn EventSink>,
) -> Attempt {
    let state = runtime.state().unwrap_or(State::Unknown);
    let action = action_for(state);
    let at = jiff::Timestamp::now();
    let began = Instant::now();
    events.emit(Event::Step {
        message: format!("{name}: attempt {attempt}/{attempts}: {action}"),
    });
    tracing::warn!(service = %name, attempt, action, "heal: {action} (was {state})");
    let acted = if action == "restart" {
        runtime.restart()
    } else {
        runtime.start()
    };
    let (ok, message) = match acted {
        Err(e) => (false, format!("{action} failed: {e}")),
        Ok(()) => wait_after(config, name, runtime, action, opts),
    };
    let pause =
        (!ok && attempt < attempts).then(|| opts.backoff.saturating_mul(1 << (attempt - 1)));
    tracing::warn!(service = %name, attempt, ok, "heal attempt: {message}");
    record_attempt(config, name, attempt, action, ok, &message, at);
    Attempt {
        attempt,
        action: action.to_string(),
        at: at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string(),
        ok,
        message,
        duration_ms: began.elapsed().as_millis() as u64,
        backoff_ms: pause.map(|p| p.as_millis() as u64),
    }
}

/// Waits for the checks after `action`: (healthy, what happened), noticing a service
/// that stops again (a crash loop).
fn wait_after(
    config: &Config,
    name: &str,
    runtime: &Arc<dyn drydock_runtimes::Runtime>,
    action: &str,
    opts: &HealOptions,
) -> (bool, String) {
    let rt = runtime.clone();
    let started = Instant::now();
    let (h, died) = health::wait_healthy(config, name, opts.wait, || match rt.state() {
        Ok(State::Running) => None,
        Ok(s) => Some(format!(
            "it {s} again {:.1} s after starting (crash loop?)",
            started.elapsed().as_secs_f64()
        )),
        Err(_) => None,
    });
    if h.status <= ServiceStatus::Degraded {
        (
            true,
            format!(
                "{action}ed; checks pass after {:.1} s",
                started.elapsed().as_secs_f64()
            ),
        )
    } else if let Some(reason) = died {
        (false, format!("{action}ed, but {reason}"))
    } else {
        let failing: Vec<String> = h
            .checks
            .iter()
            .filter(|c| c.status == drydock_health::Status::Critical)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        (
            false,
            format!(
                "{action}ed, but still unhealthy after {} s: {}",
                opts.wait.as_secs(),
                failing.join("; ")
            ),
        )
    }
}

/// The verdict is a fresh, full check (with retries), not the last poll.
fn conclude(
    config: &Config,
    name: &str,
    before: ServiceStatus,
    log: Vec<Attempt>,
    attempts: u32,
) -> ServiceHeal {
    let after = health::check_services(config, &[name.to_string()], None)
        .remove(name)
        .map(|h| h.status)
        .unwrap_or(ServiceStatus::Unhealthy);
    if after <= ServiceStatus::Degraded {
        let n = log.len();
        let action = log.last().map(|a| a.action.clone()).unwrap_or_default();
        ServiceHeal {
            service: name.to_string(),
            before,
            after,
            outcome: HealOutcome::Fixed,
            summary: format!("fixed: {action}ed on attempt {n} of {attempts}; checks pass"),
            attempts: log,
            diagnosis: Vec::new(),
            logs: Vec::new(),
            needs: None,
        }
    } else {
        let n = log.len();
        not_fixable(
            config,
            name,
            before,
            log,
            format!("still {} after {n} attempt(s) to start it", after.as_str()),
        )
    }
}

/// Keeps the attempt in the state database (for `diagnose`); a failure to record is
/// logged, not fatal: the attempt itself is in the report and the log.
fn record_attempt(
    config: &Config,
    service: &str,
    attempt: u32,
    action: &str,
    ok: bool,
    message: &str,
    at: jiff::Timestamp,
) {
    let record = drydock_state::health::HealAttemptRecord {
        at: at.to_string(),
        at_ms: at.as_millisecond(),
        service: service.to_string(),
        attempt,
        action: action.to_string(),
        ok,
        message: message.to_string(),
    };
    let result = drydock_state::StateDb::open(&config.stack.state_dir)
        .and_then(|mut db| db.record_heal_attempt(&record));
    if let Err(e) = result {
        tracing::warn!(service = %service, "heal attempt not recorded: {e}");
    }
}

impl ServiceHeal {
    fn with_outcome(mut self, outcome: HealOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}

impl HealReport {
    /// The verdict (also in the JSON, as `exit_code`).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }
}
