//! The rules over sequences of outcomes: one notification per change, none for a run
//! that fails like the last one, a reminder a day, success and start only when asked.

use drydock_domain::config::NotifyOn::{self, *};
use drydock_domain::Verdict;
use jiff::{Timestamp, ToSpan};

use super::*;
use crate::outcome::PartOutcome;

const HOUR: i64 = 3600;

/// Runs `runs` (seconds after the start, and the verdict of each subject) through the
/// rules, keeping the states as the database would, and returns the event each run
/// sends to a channel with `on`.
fn sequence(
    on: &[NotifyOn],
    every_run: bool,
    runs: &[(i64, &[(&str, Verdict)])],
) -> Vec<Option<Event>> {
    sequence_with(event_for, on, every_run, runs)
}

/// [`sequence`] with the event rule `rule` (the runs' or the overdue watch's).
fn sequence_with(
    rule: fn(&Changes, &[NotifyOn], bool) -> Option<Event>,
    on: &[NotifyOn],
    every_run: bool,
    runs: &[(i64, &[(&str, Verdict)])],
) -> Vec<Option<Event>> {
    let start: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut states: Vec<SubjectState> = Vec::new();
    runs.iter()
        .map(|(at, parts)| {
            let verdict = parts.iter().fold(Verdict::Ok, |v, (_, p)| v.worse(*p));
            let outcome = RunOutcome {
                job: "backup".into(),
                verdict,
                parts: parts
                    .iter()
                    .map(|(s, v)| PartOutcome {
                        subject: s.to_string(),
                        verdict: *v,
                    })
                    .collect(),
                failed: Vec::new(),
                look_closer: "drydock backups".into(),
                finished: start + at.seconds(),
            };
            let c = changes(&states, &outcome);
            for s in &c.states {
                states.retain(|o| o.subject != s.subject);
                states.push(s.clone());
            }
            rule(&c, on, every_run)
        })
        .collect()
}

const OK: Verdict = Verdict::Ok;
const FAIL: Verdict = Verdict::Failed;
const DEFAULT: &[NotifyOn] = &[Failure, Recovery];

#[test]
fn a_failure_is_sent_once_and_its_recovery_once() {
    let events = sequence(
        DEFAULT,
        false,
        &[
            (0, &[("db", OK)]),
            (HOUR, &[("db", FAIL)]),
            (2 * HOUR, &[("db", FAIL)]),
            (3 * HOUR, &[("db", FAIL)]),
            (4 * HOUR, &[("db", OK)]),
            (5 * HOUR, &[("db", OK)]),
        ],
    );
    assert_eq!(
        events,
        [
            None,
            Some(Event::Failure),
            None,
            None,
            Some(Event::Recovery),
            None
        ]
    );
}

#[test]
fn the_first_run_ever_failing_is_a_failure_and_a_first_success_is_silent() {
    assert_eq!(
        sequence(DEFAULT, false, &[(0, &[("db", FAIL)])]),
        [Some(Event::Failure)]
    );
    assert_eq!(sequence(DEFAULT, false, &[(0, &[("db", OK)])]), [None]);
}

#[test]
fn a_reminder_comes_at_most_daily_while_it_stays_failed() {
    let day = 24 * HOUR;
    let events = sequence(
        DEFAULT,
        false,
        &[
            (0, &[("db", FAIL)]),
            (day - 1, &[("db", FAIL)]),
            (day, &[("db", FAIL)]),
            (day + HOUR, &[("db", FAIL)]),
            (2 * day - 1, &[("db", FAIL)]),
            (2 * day, &[("db", FAIL)]),
        ],
    );
    assert_eq!(
        events,
        [
            Some(Event::Failure),
            None,
            Some(Event::Reminder),
            None,
            None,
            Some(Event::Reminder)
        ]
    );
}

#[test]
fn subjects_are_keyed_apart_and_a_new_failure_beats_a_recovery() {
    let events = sequence(
        DEFAULT,
        false,
        &[
            (0, &[("db", FAIL), ("files", OK)]),
            // db still fails: nothing; files newly fails: a failure.
            (HOUR, &[("db", FAIL), ("files", FAIL)]),
            // db recovers while files still fails: the recovery is sent.
            (2 * HOUR, &[("db", OK), ("files", FAIL)]),
            // A run about other subjects does not touch db's or files' state.
            (3 * HOUR, &[("redis", OK)]),
            (4 * HOUR, &[("files", OK)]),
        ],
    );
    assert_eq!(
        events,
        [
            Some(Event::Failure),
            Some(Event::Failure),
            Some(Event::Recovery),
            None,
            Some(Event::Recovery)
        ]
    );
}

#[test]
fn a_warning_is_not_a_failure() {
    let events = sequence(
        DEFAULT,
        false,
        &[
            (0, &[("db", Verdict::Warning)]),
            (HOUR, &[("db", Verdict::CouldNotRun)]),
            (2 * HOUR, &[("db", Verdict::Warning)]),
        ],
    );
    assert_eq!(events, [None, Some(Event::Failure), Some(Event::Recovery)]);
}

#[test]
fn success_only_when_asked_and_a_recovery_goes_to_who_asked_for_it() {
    let runs: &[(i64, &[(&str, Verdict)])] = &[
        (0, &[("db", OK)]),
        (HOUR, &[("db", FAIL)]),
        (2 * HOUR, &[("db", OK)]),
    ];
    assert_eq!(
        sequence(&[Success], false, runs),
        [Some(Event::Success), None, Some(Event::Success)]
    );
    assert_eq!(
        sequence(&[Failure, Recovery, Success], false, runs),
        [
            Some(Event::Success),
            Some(Event::Failure),
            Some(Event::Recovery)
        ]
    );
    assert_eq!(
        sequence(&[Recovery], false, runs),
        [None, None, Some(Event::Recovery)]
    );
    assert_eq!(sequence(&[Start], false, runs), [None, None, None]);
}

#[test]
fn a_dead_mans_switch_gets_every_run() {
    let runs: &[(i64, &[(&str, Verdict)])] = &[
        (0, &[("db", OK)]),
        (HOUR, &[("db", FAIL)]),
        (2 * HOUR, &[("db", FAIL)]),
        (3 * HOUR, &[("db", OK)]),
    ];
    assert_eq!(
        sequence(&[Failure, Success, Start], true, runs),
        [
            Some(Event::Success),
            Some(Event::Failure),
            Some(Event::Failure),
            Some(Event::Success)
        ]
    );
}

#[test]
fn a_job_without_parts_is_its_own_subject() {
    let start: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
    let outcome = RunOutcome {
        job: "prune".into(),
        verdict: Verdict::Failed,
        parts: Vec::new(),
        failed: vec!["the repository is locked".into()],
        look_closer: "drydock prune --dry-run".into(),
        finished: start,
    };
    let c = changes(&[], &outcome);
    assert_eq!(c.newly_failing, [""]);
    assert_eq!(c.states.len(), 1);
    assert_eq!(
        (
            c.states[0].job.as_str(),
            c.states[0].failing,
            c.states[0].notified_ms
        ),
        ("prune", true, start.as_millisecond())
    );
}

#[test]
fn the_overdue_watch_tells_changes_only_never_success_and_pings_a_switch_once() {
    // Checks every minute: fine, overdue for a day and a half, fine again.
    const MIN: i64 = 60;
    let checks: &[(i64, &[(&str, Verdict)])] = &[
        (0, &[("db/main", OK)]),
        (MIN, &[("db/main", FAIL)]),
        (2 * MIN, &[("db/main", FAIL)]),
        (MIN + 24 * HOUR, &[("db/main", FAIL)]),
        (2 * MIN + 24 * HOUR, &[("db/main", FAIL)]),
        (36 * HOUR, &[("db/main", OK)]),
        (36 * HOUR + MIN, &[("db/main", OK)]),
    ];
    let told = [
        None,
        Some(Event::Failure),
        None,
        Some(Event::Reminder),
        None,
        Some(Event::Recovery),
        None,
    ];
    assert_eq!(sequence_with(watch_event_for, DEFAULT, false, checks), told);
    // A channel that asked for success too gets no success per check.
    let all = &[Failure, Recovery, Success, Start];
    assert_eq!(sequence_with(watch_event_for, all, false, checks), told);
    // A dead man's switch without `recovery`: the failure (and reminder) as /fail, the
    // recovery as its success ping, nothing on the other checks.
    let switch = &[Failure, Success, Start];
    assert_eq!(
        sequence_with(watch_event_for, switch, true, checks),
        [
            None,
            Some(Event::Failure),
            None,
            Some(Event::Reminder),
            None,
            Some(Event::Success),
            None,
        ]
    );
    // Only `success`: the watch has nothing for it.
    assert!(sequence_with(watch_event_for, &[Success], false, checks)
        .iter()
        .all(Option::is_none));
}

#[test]
fn a_dead_mans_switch_is_not_told_success_while_another_job_still_fails() {
    let good = Changes::default();
    let failed = Changes {
        run_failed: true,
        ..Changes::default()
    };
    let elsewhere = |c: &Changes| Changes {
        failing_elsewhere: true,
        ..c.clone()
    };
    let switch = &[Failure, Recovery, Success, Start];
    // Nothing fails elsewhere: each run's own state.
    assert_eq!(event_for(&good, switch, true), Some(Event::Success));
    assert_eq!(event_for(&failed, switch, true), Some(Event::Failure));
    // An overdue source (or a failing backup) elsewhere: a good health run says nothing,
    // so the switch stays down; a failing run still says so.
    assert_eq!(event_for(&elsewhere(&good), switch, true), None);
    assert_eq!(
        event_for(&elsewhere(&failed), switch, true),
        Some(Event::Failure)
    );
    // A channel told of changes is not affected: its success is this job's.
    assert_eq!(
        event_for(&elsewhere(&good), &[Success], false),
        Some(Event::Success)
    );
    // The overdue watch recovers while a backup still fails: the switch hears nothing,
    // a webhook hears the watch's recovery.
    let recovered = Changes {
        recovered: vec!["db/main".into()],
        ..Changes::default()
    };
    assert_eq!(watch_event_for(&elsewhere(&recovered), switch, true), None);
    assert_eq!(
        watch_event_for(&elsewhere(&recovered), DEFAULT, false),
        Some(Event::Recovery)
    );
    assert_eq!(
        watch_event_for(&recovered, switch, true),
        Some(Event::Recovery)
    );
}
