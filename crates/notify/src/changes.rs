//! The state-change rules: which (job, subject) keys went from ok to failing (a
//! failure), from failing to ok (a recovery), which stay failing (a reminder at most
//! every [`REMINDER_EVERY_MS`]), and what each channel is sent for one run. Pure
//! functions over the last notified states, so the rules are tested over sequences of
//! outcomes without a receiver.

use std::collections::BTreeMap;

use drydock_domain::config::NotifyOn;
use drydock_state::SubjectState;

use crate::outcome::{is_failing, Event, RunOutcome};

/// A reminder while something stays failed: at most daily.
pub const REMINDER_EVERY_MS: i64 = 24 * 3600 * 1000;

/// What one run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Subjects that were fine (or never seen) and fail now.
    pub newly_failing: Vec<String>,
    /// Subjects that failed before and still do.
    pub still_failing: Vec<String>,
    /// Subjects that failed before and are fine now.
    pub recovered: Vec<String>,
    /// A reminder is due: something still fails and the last failure or reminder was
    /// queued at least [`REMINDER_EVERY_MS`] ago.
    pub reminder_due: bool,
    /// The run as a whole failed.
    pub run_failed: bool,
    /// The subject states to record.
    pub states: Vec<SubjectState>,
    /// A subject of another job still fails (set by the caller, which knows them). A
    /// dead man's switch speaks for the whole stack, so it is not told "success" then.
    pub failing_elsewhere: bool,
}

/// The changes `outcome` makes to the `before` states of its job (other subjects of
/// the job, not in this run, keep theirs).
pub fn changes(before: &[SubjectState], outcome: &RunOutcome) -> Changes {
    let now = outcome.finished.as_millisecond();
    let known: BTreeMap<&str, &SubjectState> =
        before.iter().map(|s| (s.subject.as_str(), s)).collect();
    let parts: Vec<(&str, bool)> = if outcome.parts.is_empty() {
        vec![("", is_failing(outcome.verdict))]
    } else {
        outcome
            .parts
            .iter()
            .map(|p| (p.subject.as_str(), is_failing(p.verdict)))
            .collect()
    };
    let mut c = Changes {
        run_failed: is_failing(outcome.verdict),
        ..Changes::default()
    };
    let mut last_notified = 0;
    for (subject, failing) in &parts {
        let was = known.get(subject).copied();
        let was_failing = was.is_some_and(|s| s.failing);
        match (was_failing, *failing) {
            (false, true) => c.newly_failing.push(subject.to_string()),
            (true, true) => {
                c.still_failing.push(subject.to_string());
                last_notified = last_notified.max(was.map_or(0, |s| s.notified_ms));
            }
            (true, false) => c.recovered.push(subject.to_string()),
            (false, false) => {}
        }
    }
    c.reminder_due = c.newly_failing.is_empty()
        && !c.still_failing.is_empty()
        && now - last_notified >= REMINDER_EVERY_MS;
    let notify_failing = !c.newly_failing.is_empty() || c.reminder_due;
    for (subject, failing) in parts {
        let was = known.get(subject).copied();
        let since_ms = match was {
            Some(s) if s.failing == failing => s.since_ms,
            _ => now,
        };
        let notified_ms = match was {
            _ if failing && notify_failing => now,
            Some(s) if failing => s.notified_ms,
            _ => 0,
        };
        c.states.push(SubjectState {
            job: outcome.job.clone(),
            subject: subject.to_string(),
            failing,
            since_ms,
            notified_ms,
        });
    }
    c
}

/// The one event a channel with `on` is sent for a run with `changes`, if any.
/// `every_run`: the channel wants each run's state (a dead man's switch), not changes;
/// a good run while another job still fails tells it nothing, so the switch stays down
/// (an every-minute health run would otherwise undo an overdue backup's failure ping).
pub fn event_for(changes: &Changes, on: &[NotifyOn], every_run: bool) -> Option<Event> {
    let wants = |event: Event| on.contains(&event.asked_by());
    let recovered = !changes.recovered.is_empty();
    let all_good = !changes.run_failed && !changes.failing_elsewhere;
    let candidates: [(bool, Event); 4] = if every_run {
        [
            (changes.run_failed, Event::Failure),
            (all_good, Event::Success),
            (all_good && recovered, Event::Recovery),
            (false, Event::Reminder),
        ]
    } else {
        [
            (!changes.newly_failing.is_empty(), Event::Failure),
            (changes.reminder_due, Event::Reminder),
            (recovered, Event::Recovery),
            (!changes.run_failed, Event::Success),
        ]
    };
    candidates
        .into_iter()
        .find(|(applies, event)| *applies && wants(*event))
        .map(|(_, event)| event)
}

/// The one event a channel with `on` is sent for a check of the overdue watch
/// ([`crate::OVERDUE_JOB`]), if any. The watch is not a run: it only tells changes
/// (an overdue source, a reminder at most daily, a recovery), never `success`, and a
/// dead man's switch (`every_run`) is not pinged on every check; it gets the failure,
/// and the recovery as the success ping it understands when `recovery` is not asked
/// for; while another job still fails, the switch is told nothing of a recovery.
pub fn watch_event_for(changes: &Changes, on: &[NotifyOn], every_run: bool) -> Option<Event> {
    let wants = |event: Event| on.contains(&event.asked_by());
    let recovered = !changes.recovered.is_empty();
    let switch_recovers = every_run && !changes.failing_elsewhere;
    let candidates: [(bool, Event); 4] = [
        (!changes.newly_failing.is_empty(), Event::Failure),
        (changes.reminder_due, Event::Reminder),
        (
            recovered && (!every_run || switch_recovers),
            Event::Recovery,
        ),
        (recovered && switch_recovers, Event::Success),
    ];
    candidates
        .into_iter()
        .find(|(applies, event)| *applies && wants(*event))
        .map(|(_, event)| event)
}

#[cfg(test)]
mod tests;
