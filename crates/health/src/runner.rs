//! Runs checks concurrently: one thread per check, each with its own deadline
//! (`timeout`, retries included) and up to `retries` further attempts after a critical
//! one, pausing `backoff`, `2 * backoff`, `4 * backoff`, ... between them while time
//! remains. The caller gets each result by its check's deadline (plus a short grace):
//! a check still stuck then is reported as timed out and its thread is left to finish
//! on its own, so five hanging targets cost one timeout, not five.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{millis, Check, Outcome, Status};

/// A check to run, with its place in the stack.
pub struct Planned {
    pub service: String,
    pub name: String,
    pub kind: &'static str,
    pub check: Arc<dyn Check>,
    pub timeout: Duration,
    pub retries: u32,
}

/// Timing shared by all checks of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunPolicy {
    /// The first pause between attempts; doubled each time.
    pub backoff: Duration,
    /// How long past the deadline a result is still waited for before the check is
    /// declared timed out (threads need a moment to hand their answer over).
    pub grace: Duration,
}

impl Default for RunPolicy {
    fn default() -> Self {
        RunPolicy {
            backoff: Duration::from_millis(100),
            grace: Duration::from_millis(50),
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub service: String,
    pub name: String,
    pub kind: String,
    pub status: Status,
    /// Duration of the last attempt in milliseconds.
    pub latency_ms: f64,
    pub message: String,
    pub attempts: u32,
    pub details: Map<String, Value>,
}

/// Runs every planned check at once; results come back in the order given.
pub fn run_all(planned: Vec<Planned>, policy: RunPolicy) -> Vec<CheckResult> {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, CheckResult)>();
    let mut slots: Vec<Option<CheckResult>> = Vec::with_capacity(planned.len());
    let mut meta = Vec::with_capacity(planned.len());
    for (index, p) in planned.into_iter().enumerate() {
        let deadline = started + p.timeout;
        meta.push((
            p.service.clone(),
            p.name.clone(),
            p.kind,
            p.timeout,
            deadline,
        ));
        slots.push(None);
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("check-{}-{}", p.service, p.name))
            .spawn(move || {
                let result = run_one(&p, deadline, policy);
                let _ = tx.send((index, result));
            });
        if let Err(e) = spawned {
            let (service, name, kind, _, _) = &meta[index];
            slots[index] = Some(failed(
                service,
                name,
                kind,
                0,
                format!("could not start the check: {e}"),
            ));
        }
    }
    drop(tx);
    // Wait for the earliest pending deadline at a time, so a short-timeout check that
    // hangs is given up on at its own deadline, not at the longest one.
    loop {
        let pending = slots
            .iter()
            .zip(&meta)
            .filter(|(slot, _)| slot.is_none())
            .map(|(_, m)| m.4)
            .min();
        let Some(next) = pending else { break };
        let left = (next + policy.grace).saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((index, result)) => slots[index] = Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                for (slot, (service, name, kind, timeout, deadline)) in slots.iter_mut().zip(&meta)
                {
                    if slot.is_none() && *deadline + policy.grace <= now {
                        *slot = Some(timed_out(service, name, kind, *timeout));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    slots
        .into_iter()
        .zip(meta)
        .map(|(slot, (service, name, kind, timeout, _))| {
            slot.unwrap_or_else(|| timed_out(&service, &name, kind, timeout))
        })
        .collect()
}

fn timed_out(service: &str, name: &str, kind: &str, timeout: Duration) -> CheckResult {
    let mut r = failed(
        service,
        name,
        kind,
        0,
        format!(
            "no answer within the {} timeout",
            drydock_domain::config::duration_text::format(timeout)
        ),
    );
    r.latency_ms = millis(timeout);
    r.details.insert("timed_out".into(), Value::Bool(true));
    r
}

fn failed(service: &str, name: &str, kind: &str, attempts: u32, message: String) -> CheckResult {
    CheckResult {
        service: service.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
        status: Status::Critical,
        latency_ms: 0.0,
        message,
        attempts,
        details: Map::new(),
    }
}

/// Attempts one check until it is not critical, a finding is definitive, retries are
/// used up, or the next attempt would start past the deadline.
fn run_one(p: &Planned, deadline: Instant, policy: RunPolicy) -> CheckResult {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| p.check.run(deadline)))
            .unwrap_or_else(|_| {
                Outcome::critical("the check failed unexpectedly (panic); see the log").definitive()
            });
        let latency = began.elapsed();
        let outcome = if Instant::now() > deadline && outcome.status == Status::Critical {
            // An attempt that ran out of time says so, whatever its I/O error was.
            let mut o = outcome;
            if !o.message.contains("timed out") {
                o.message = format!("{} (timed out)", o.message);
            }
            o.retry = false;
            o
        } else {
            outcome
        };
        let pause = policy.backoff.saturating_mul(1 << (attempt - 1).min(16));
        let again = outcome.status == Status::Critical
            && outcome.retry
            && attempt <= p.retries
            && Instant::now() + pause < deadline;
        if !again {
            tracing::debug!(service = %p.service, check = %p.name, status = %outcome.status, attempt, "check finished");
            return CheckResult {
                service: p.service.clone(),
                name: p.name.clone(),
                kind: p.kind.to_string(),
                status: outcome.status,
                latency_ms: millis(latency),
                message: outcome.message,
                attempts: attempt,
                details: outcome.details,
            };
        }
        tracing::info!(service = %p.service, check = %p.name, attempt, message = %outcome.message, "check failed; retrying in {} ms", pause.as_millis());
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Fails `fail_first` times, then is healthy.
    struct Flaky {
        calls: AtomicU32,
        fail_first: u32,
    }

    impl Check for Flaky {
        fn run(&self, _deadline: Instant) -> Outcome {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                Outcome::critical(format!("attempt {} refused", n + 1))
            } else {
                Outcome::healthy("ok")
            }
        }
    }

    /// Blocks far past any deadline.
    struct Hangs;

    impl Check for Hangs {
        fn run(&self, _deadline: Instant) -> Outcome {
            std::thread::sleep(Duration::from_secs(30));
            Outcome::healthy("never seen")
        }
    }

    fn plan(name: &str, check: Arc<dyn Check>, timeout: Duration, retries: u32) -> Planned {
        Planned {
            service: "svc".into(),
            name: name.into(),
            kind: "test",
            check,
            timeout,
            retries,
        }
    }

    #[test]
    fn a_blip_is_retried_with_backoff_and_a_persistent_failure_is_reported() {
        let policy = RunPolicy {
            backoff: Duration::from_millis(10),
            ..RunPolicy::default()
        };
        let blip = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: 2,
        });
        let down = Arc::new(Flaky {
            calls: AtomicU32::new(0),
            fail_first: u32::MAX,
        });
        let started = Instant::now();
        let results = run_all(
            vec![
                plan("blip", blip.clone(), Duration::from_secs(5), 3),
                plan("down", down.clone(), Duration::from_secs(5), 3),
            ],
            policy,
        );
        assert_eq!(results[0].status, Status::Healthy);
        assert_eq!(results[0].attempts, 3);
        assert_eq!(results[1].status, Status::Critical);
        assert_eq!(results[1].attempts, 4, "first attempt + 3 retries");
        assert_eq!(results[1].message, "attempt 4 refused");
        assert_eq!(down.calls.load(Ordering::SeqCst), 4);
        // Pauses of 10, 20 and 40 ms were taken.
        assert!(started.elapsed() >= Duration::from_millis(70));
    }

    #[test]
    fn hanging_checks_cost_one_timeout_together_and_say_so() {
        let started = Instant::now();
        let timeout = Duration::from_millis(300);
        let mut planned: Vec<Planned> = (0..5)
            .map(|i| plan(&format!("hang{i}"), Arc::new(Hangs), timeout, 3))
            .collect();
        planned.push(plan(
            "fine",
            Arc::new(Flaky {
                calls: AtomicU32::new(0),
                fail_first: 0,
            }),
            timeout,
            3,
        ));
        let results = run_all(planned, RunPolicy::default());
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        for r in &results[..5] {
            assert_eq!(r.status, Status::Critical);
            assert!(
                r.message.contains("no answer within the 300ms timeout"),
                "{}",
                r.message
            );
            assert_eq!(r.details["timed_out"], true);
        }
        assert_eq!(results[5].status, Status::Healthy);
    }

    #[test]
    fn a_definitive_failure_is_not_retried() {
        struct Expired(AtomicU32);
        impl Check for Expired {
            fn run(&self, _deadline: Instant) -> Outcome {
                self.0.fetch_add(1, Ordering::SeqCst);
                Outcome::critical("certificate expired").definitive()
            }
        }
        let check = Arc::new(Expired(AtomicU32::new(0)));
        let results = run_all(
            vec![plan("tls", check.clone(), Duration::from_secs(2), 3)],
            RunPolicy::default(),
        );
        assert_eq!(results[0].attempts, 1);
        assert_eq!(check.0.load(Ordering::SeqCst), 1);
    }
}
