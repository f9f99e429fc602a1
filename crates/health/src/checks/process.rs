//! `process`: the service's runtime says it runs; restarts and uptime against the
//! configured thresholds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_domain::config::duration_text;
use drydock_domain::config::health::ProcessCheck;
use drydock_runtimes::{Runtime, State};

use crate::{Check, Outcome, Status, Verdict};

pub struct ProcessState {
    config: ProcessCheck,
    runtime: Arc<dyn Runtime>,
}

impl ProcessState {
    pub fn new(config: ProcessCheck, runtime: Arc<dyn Runtime>) -> Self {
        ProcessState { config, runtime }
    }
}

impl Check for ProcessState {
    fn run(&self, _deadline: Instant) -> Outcome {
        let d = match self.runtime.details() {
            Ok(d) => d,
            Err(e) => {
                return Outcome::critical(format!(
                    "cannot ask the {} runtime: {e}",
                    self.runtime.kind()
                ))
            }
        };
        let mut v = Verdict::new();
        v.detail("runtime", self.runtime.kind());
        v.detail("state", d.state);
        v.detail("pids", &d.pids);
        v.detail("restart_count", d.restart_count);
        v.detail("uptime_secs", d.uptime_secs());
        v.detail("started_at", d.started_at.map(|t| t.to_string()));
        if let Some(h) = &d.health {
            v.detail("runtime_health", h);
        }
        if !d.notes.is_empty() {
            v.detail("notes", &d.notes);
        }
        match d.state {
            State::Running => {}
            State::Stopped => v.transient(format!(
                "not running{}",
                d.exit_code
                    .map(|c| format!(" (last exit code {c})"))
                    .unwrap_or_default()
            )),
            State::Missing => {
                v.detail("missing", true);
                v.problem(
                    Status::Critical,
                    "not deployed (the runtime knows no such service)",
                );
            }
            State::Unknown => v.problem(
                Status::Warning,
                format!(
                    "runtime `{}` cannot tell whether the service runs",
                    self.runtime.kind()
                ),
            ),
        }
        if d.health.as_deref() == Some("unhealthy") {
            v.problem(
                Status::Critical,
                "the runtime's own health check says unhealthy",
            );
        }
        if let (Some(max), Some(count)) = (self.config.max_restarts, d.restart_count) {
            if count > max {
                v.problem(
                    Status::Warning,
                    format!("restarted {count} times (more than {max})"),
                );
            }
        }
        if let (Some(min), Some(up)) = (self.config.min_uptime, d.uptime_secs()) {
            if d.state == State::Running && Duration::from_secs(up) < min {
                v.problem(
                    Status::Warning,
                    format!(
                        "up for only {up}s (less than {}); crash loop?",
                        duration_text::format(min)
                    ),
                );
            }
        }
        let ok = match (d.uptime_secs(), d.pids.first()) {
            (Some(up), Some(pid)) => format!(
                "running (PID {pid}, up {})",
                duration_text::format(Duration::from_secs(up))
            ),
            _ => "running".to_string(),
        };
        v.finish(ok)
    }
}
