//! [`Notifier`]: the daemon's one handle on notifications. `run_started` and
//! `run_finished` decide what each channel is told (the rules in `changes.rs`) and
//! write it to the outbox, with the new states, in one transaction, before any attempt;
//! `deliver_due` (called on each tick) makes the attempts that are due and records
//! each result: sent, tried again later with exponential backoff (or the receiver's
//! `Retry-After`), or given up on (refused, or out of attempts or time). A new
//! `Notifier` on the same state directory carries on with what is still due.

use std::time::Duration;

use drydock_domain::config::NotifyConfig;
use drydock_state::{NewNotification, OutboxEntry, StateDb};
use jiff::Timestamp;
use serde::Serialize;

use crate::changes::{changes, event_for, watch_event_for, Changes};
use crate::channel::{Channel, Delivery};
use crate::error::NotifyError;
use crate::message::{capped, Message};
use crate::outcome::{Event, RunOutcome, RunStart, OVERDUE_JOB};

/// How deliveries are attempted; [`Default`] is what the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The most one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// The wait after the first failed attempt; doubled after each further one.
    pub first_retry: Duration,
    /// The longest wait between attempts (also caps `Retry-After`).
    pub max_retry: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Age (since queued) after which a notification is given up on: news of a
    /// failure a day late is noise.
    pub max_age: Duration,
    /// The most attempts one `deliver_due` makes (each may take `timeout`).
    pub batch: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(3600),
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            batch: 20,
        }
    }
}

/// One configured channel with its sender.
struct Configured {
    config: NotifyConfig,
    sender: Box<dyn Channel>,
}

/// What one attempt of `deliver_due` came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptReport {
    pub channel: String,
    pub event: String,
    pub idempotency_key: String,
    /// `sent`, `retry` or `failed`.
    pub result: &'static str,
    /// Why it did not go through (no secret in it).
    pub error: String,
    /// The next attempt, for `retry`.
    pub next_attempt_ms: Option<i64>,
}

/// The notifier of one stack on one host.
pub struct Notifier {
    db: StateDb,
    stack: String,
    host: String,
    channels: Vec<Configured>,
    /// Every secret value of the channels, removed from any error text stored.
    secrets: Vec<String>,
    policy: DeliveryPolicy,
}

impl Notifier {
    /// Opens the state database under `state_dir` for the stack `stack` on `host`,
    /// with the validated `[[notify]]` entries.
    pub fn open(
        state_dir: &std::path::Path,
        stack: &str,
        host: &str,
        configs: &[NotifyConfig],
        policy: DeliveryPolicy,
    ) -> Result<Notifier, NotifyError> {
        let db = StateDb::open(state_dir)?;
        let mut secrets: Vec<String> = configs
            .iter()
            .flat_map(|c| c.channel.spec().secrets())
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        // Longest first, so a secret holding another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Notifier {
            db,
            stack: stack.to_string(),
            host: host.to_string(),
            channels: configs
                .iter()
                .map(|config| Configured {
                    config: config.clone(),
                    sender: crate::channels::build(&config.channel),
                })
                .collect(),
            secrets,
            policy,
        })
    }

    /// The notifier of a loaded config: its state directory, stack name and channels;
    /// `host` is the name this host's backups are recorded under.
    pub fn for_config(
        config: &drydock_domain::config::Config,
        host: &str,
        policy: DeliveryPolicy,
    ) -> Result<Notifier, NotifyError> {
        Self::open(
            &config.stack.state_dir,
            &config.stack.name,
            host,
            &config.notify,
            policy,
        )
    }

    /// Queues a `start` notification for the channels that asked for one; returns how
    /// many were queued.
    pub fn run_started(&mut self, start: &RunStart) -> Result<usize, NotifyError> {
        let message = Message {
            event: Event::Start,
            stack: self.stack.clone(),
            host: self.host.clone(),
            job: start.job.clone(),
            verdict: None,
            title: format!("{}@{}: {} started", self.stack, self.host, start.job),
            failed: Vec::new(),
            recovered: Vec::new(),
            look_closer: start.look_closer.clone(),
            at: start.started.to_string(),
        };
        let queued: Vec<NewNotification> = self
            .channels
            .iter()
            .filter(|c| c.config.wants(Event::Start.asked_by()))
            .map(|c| queue(&c.config.name, &message, start.started))
            .collect();
        self.db.record_notifications(&[], &queued)?;
        Ok(queued.len())
    }

    /// Applies the state-change rules to a finished run, records the new states and
    /// queues what each channel is to be told; returns how many were queued. The
    /// caller logs an error and goes on: a notification never fails the job.
    pub fn run_finished(&mut self, outcome: &RunOutcome) -> Result<usize, NotifyError> {
        let before = self.db.notify_subjects(&outcome.job)?;
        let mut c = changes(&before, outcome);
        c.failing_elsewhere = self.failing_elsewhere(&outcome.job)?;
        let mut queued = Vec::new();
        for channel in &self.channels {
            let Some(event) = event_for(&c, &channel.config.on, channel.sender.every_run()) else {
                continue;
            };
            let message = self.message(event, outcome, &c, &before);
            queued.push(queue(&channel.config.name, &message, outcome.finished));
        }
        self.db.record_notifications(&c.states, &queued)?;
        Ok(queued.len())
    }

    /// Applies the state-change rules to one check of the overdue watch (job
    /// [`OVERDUE_JOB`], one part per source, failing when overdue) with
    /// [`watch_event_for`], and queues what each channel is to be told; returns how
    /// many were queued. The watch checks on every tick: a check that changes nothing
    /// writes nothing.
    pub fn overdue_checked(&mut self, outcome: &RunOutcome) -> Result<usize, NotifyError> {
        let before = self.db.notify_subjects(&outcome.job)?;
        let mut c = changes(&before, outcome);
        c.failing_elsewhere = self.failing_elsewhere(&outcome.job)?;
        let mut queued = Vec::new();
        for channel in &self.channels {
            let every_run = channel.sender.every_run();
            let Some(event) = watch_event_for(&c, &channel.config.on, every_run) else {
                continue;
            };
            let message = self.message(event, outcome, &c, &before);
            queued.push(queue(&channel.config.name, &message, outcome.finished));
        }
        let unchanged = c.states.iter().all(|s| before.contains(s));
        if queued.is_empty() && unchanged {
            return Ok(0);
        }
        self.db.record_notifications(&c.states, &queued)?;
        Ok(queued.len())
    }

    /// Makes the attempts that are due at `now` (at most the policy's batch, one after
    /// the other, each within its timeout) and records their results. It can block for
    /// `batch` x `timeout` when receivers hang: call it from its own thread, not from
    /// the one that starts jobs.
    pub fn deliver_due(&mut self, now: Timestamp) -> Result<Vec<AttemptReport>, NotifyError> {
        let now_ms = now.as_millisecond();
        let due = self.db.due_notifications(now_ms, self.policy.batch)?;
        let mut reports = Vec::new();
        for entry in due {
            let delivery = self.attempt(&entry);
            reports.push(self.record(&entry, delivery, now_ms)?);
        }
        Ok(reports)
    }

    /// How many notifications were ever given up on (`drydock_notifications_failed_total`).
    pub fn failed_total(&self) -> Result<u64, NotifyError> {
        Ok(self.db.failed_notifications_total()?)
    }

    /// The newest given-up notifications, newest first, for the dashboard.
    pub fn recent_failed(&self, limit: u32) -> Result<Vec<OutboxEntry>, NotifyError> {
        Ok(self.db.recent_failed_notifications(limit)?)
    }

    /// Whether a subject of a job other than `job` was last seen failing.
    fn failing_elsewhere(&self, job: &str) -> Result<bool, NotifyError> {
        Ok(self.db.failing_subjects()?.iter().any(|s| s.job != job))
    }

    fn attempt(&self, entry: &OutboxEntry) -> Delivery {
        let Some(channel) = self
            .channels
            .iter()
            .find(|c| c.config.name == entry.channel)
        else {
            return Delivery::Reject {
                error: format!("the channel `{}` is no longer in the config", entry.channel),
            };
        };
        match serde_json::from_str::<Message>(&entry.payload) {
            Ok(message) => {
                channel
                    .sender
                    .send(&message, &entry.idempotency_key, self.policy.timeout)
            }
            Err(e) => Delivery::Reject {
                error: format!("the queued notification cannot be read ({e})"),
            },
        }
    }

    fn record(
        &mut self,
        entry: &OutboxEntry,
        delivery: Delivery,
        now_ms: i64,
    ) -> Result<AttemptReport, NotifyError> {
        let mut report = AttemptReport {
            channel: entry.channel.clone(),
            event: entry.event.clone(),
            idempotency_key: entry.idempotency_key.clone(),
            result: "sent",
            error: String::new(),
            next_attempt_ms: None,
        };
        match delivery {
            Delivery::Sent => self.db.notification_sent(entry.id, now_ms)?,
            Delivery::Reject { error } => {
                report.result = "failed";
                report.error = self.redact(&error);
                self.db
                    .notification_failed(entry.id, now_ms, &report.error, true)?;
            }
            Delivery::Retry { error, after } => {
                let attempts = entry.attempts + 1;
                let wait = match after {
                    Some(after) => after.min(self.policy.max_retry),
                    None => backoff(&self.policy, attempts),
                };
                let next = now_ms + wait.as_millis() as i64;
                let too_old = next - entry.created_ms > self.policy.max_age.as_millis() as i64;
                let error = self.redact(&error);
                if attempts >= self.policy.max_attempts || too_old {
                    report.result = "failed";
                    report.error = format!("gave up after {attempts} attempt(s): {error}");
                    self.db
                        .notification_failed(entry.id, now_ms, &report.error, true)?;
                } else {
                    report.result = "retry";
                    report.error = error;
                    report.next_attempt_ms = Some(next);
                    self.db.notification_retry(entry.id, next, &report.error)?;
                }
            }
        }
        Ok(report)
    }

    /// `text` without any channel's secret value.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "[redacted]");
        }
        out
    }

    fn message(
        &self,
        event: Event,
        outcome: &RunOutcome,
        c: &Changes,
        before: &[drydock_state::SubjectState],
    ) -> Message {
        let named = |subjects: &[String]| {
            let names: Vec<&str> = subjects
                .iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect();
            match names.len() {
                0 => String::new(),
                1..=3 => format!(" ({})", names.join(", ")),
                n => format!(" ({}, and {} more)", names[..3].join(", "), n - 3),
            }
        };
        // The watch's words: a backup is overdue, not an `overdue` job that failed.
        let (who, failed_word, still_word, recovered_word) = if outcome.job == OVERDUE_JOB {
            (
                format!("{}@{}: backup", self.stack, self.host),
                "overdue",
                "still overdue",
                "no longer overdue",
            )
        } else {
            (
                format!("{}@{}: {}", self.stack, self.host, outcome.job),
                "failed",
                "still failing",
                "recovered",
            )
        };
        let title = match event {
            Event::Failure if c.newly_failing.is_empty() => format!("{who} {failed_word}"),
            Event::Failure => format!("{who} {failed_word}{}", named(&c.newly_failing)),
            Event::Reminder => {
                let since = before
                    .iter()
                    .filter(|s| s.failing && c.still_failing.contains(&s.subject))
                    .map(|s| s.since_ms)
                    .min()
                    .unwrap_or(outcome.finished.as_millisecond());
                let secs = (outcome.finished.as_millisecond() - since).max(0) / 1000;
                format!(
                    "{who} {still_word}{} for {}",
                    named(&c.still_failing),
                    drydock_domain::clock::human(secs as u64)
                )
            }
            Event::Recovery => format!("{who} {recovered_word}{}", named(&c.recovered)),
            // The watch's recovery, as a dead man's switch's success ping.
            Event::Success if outcome.job == OVERDUE_JOB => {
                format!("{who} {recovered_word}{}", named(&c.recovered))
            }
            Event::Success => format!("{who} succeeded"),
            Event::Start => format!("{who} started"),
        };
        let failing = event == Event::Failure || event == Event::Reminder || c.run_failed;
        let failed = if !failing {
            Vec::new()
        } else if outcome.failed.is_empty() {
            let mut subjects = c.newly_failing.clone();
            subjects.extend(c.still_failing.iter().cloned());
            capped(&subjects)
        } else {
            capped(&outcome.failed)
        };
        // The lines come from reports, which redact; a channel's own secret (a URL in
        // an error) is removed here as well.
        let clean = |lines: Vec<String>| lines.iter().map(|l| self.redact(l)).collect();
        Message {
            event,
            stack: self.stack.clone(),
            host: self.host.clone(),
            job: outcome.job.clone(),
            verdict: Some(outcome.verdict),
            title: self.redact(&title),
            failed: clean(failed),
            recovered: clean(capped(&c.recovered)),
            look_closer: self.redact(&outcome.look_closer),
            at: outcome.finished.to_string(),
        }
    }
}

/// The wait after `attempts` failed attempts: `first_retry` doubled each time, capped.
fn backoff(policy: &DeliveryPolicy, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    policy
        .first_retry
        .saturating_mul(factor)
        .min(policy.max_retry)
}

/// A new outbox row for `message` to `channel`, under a fresh idempotency key.
fn queue(channel: &str, message: &Message, at: Timestamp) -> NewNotification {
    NewNotification {
        idempotency_key: format!("drydock-{:032x}", rand::random::<u128>()),
        channel: channel.to_string(),
        event: message.event.as_str().to_string(),
        payload: serde_json::to_string(message).expect("a message serializes"),
        created_ms: at.as_millisecond(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = DeliveryPolicy::default();
        let waits: Vec<u64> = (1..=9).map(|n| backoff(&p, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(&p, u32::MAX).as_secs(), 3600);
    }
}
