//! The scheduler on an injected clock: on-time runs, catch-up exactly once after
//! downtime, restarts and clock jumps, nothing twice when the clock goes back, DST
//! transition days, jitter, and the loop's bounded sleep.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::config::{JobKind, ScheduleConfig};
use drydock_state::Trigger;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::clock::ManualClock;

fn schedule(cron: &str, timezone: &str) -> Schedule {
    Schedule::new(ScheduleConfig {
        job: JobKind::Backup,
        cron: cron.into(),
        priority: Vec::new(),
        services: Vec::new(),
        timezone: Some(timezone.into()),
        jitter: None,
    })
}

fn at(t: &str) -> Timestamp {
    t.parse().unwrap()
}

fn scheduler(s: Vec<Schedule>, now: &str) -> (Scheduler, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(now)));
    (Scheduler::new(s, BTreeMap::new(), clock.clone()), clock)
}

/// Ticks every `step` from now until `until`, collecting what came due.
fn run_until(
    s: &mut Scheduler,
    clock: &ManualClock,
    step: SignedDuration,
    until: &str,
) -> Vec<Due> {
    let mut all = Vec::new();
    while clock.now() < at(until) {
        clock.advance(step);
        all.extend(s.tick());
    }
    all
}

#[test]
fn a_slot_runs_once_on_time() {
    let (mut s, clock) = scheduler(vec![schedule("0 * * * *", "UTC")], "2026-12-01T09:59:30Z");
    assert!(
        s.tick().is_empty(),
        "a new schedule does not run for the past"
    );
    let due = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(20),
        "2026-12-01T10:30:00Z",
    );
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].slot, at("2026-12-01T10:00:00Z"));
    assert_eq!(due[0].trigger, Trigger::Schedule);
    assert_eq!(due[0].slots, 1);
}

#[test]
fn downtime_over_several_slots_runs_once_to_catch_up() {
    let (mut s, clock) = scheduler(vec![schedule("0 * * * *", "UTC")], "2026-12-01T00:00:10Z");
    assert!(s.tick().is_empty());
    // Suspended (or down) for five and a half hours: five slots missed.
    clock.set(at("2026-12-01T05:30:00Z"));
    let due = s.tick();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].trigger, Trigger::CatchUp);
    assert_eq!(due[0].slots, 5);
    assert_eq!(due[0].slot, at("2026-12-01T05:00:00Z"));
    assert!(s.tick().is_empty(), "caught up once, not per missed slot");
    let due = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(30),
        "2026-12-01T06:01:00Z",
    );
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].trigger, Trigger::Schedule);
}

#[test]
fn a_restart_catches_up_from_the_recorded_slot_once() {
    let (mut first, clock) = scheduler(vec![schedule("30 2 * * *", "UTC")], "2026-12-01T02:00:00Z");
    let due = run_until(
        &mut first,
        &clock,
        SignedDuration::from_secs(60),
        "2026-12-01T03:00:00Z",
    );
    assert_eq!(due.len(), 1);
    let recorded = first.last_slots().clone();
    drop(first);
    // Down for two days; the new process starts from what the state database kept.
    clock.set(at("2026-12-03T09:00:00Z"));
    let mut second = Scheduler::new(vec![schedule("30 2 * * *", "UTC")], recorded, clock.clone());
    let due = second.tick();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].trigger, Trigger::CatchUp);
    assert_eq!(due[0].slots, 2);
    assert!(second.tick().is_empty());
}

#[test]
fn a_single_missed_slot_found_late_is_a_catch_up() {
    let (mut s, clock) = scheduler(vec![schedule("30 2 * * *", "UTC")], "2026-12-01T02:00:00Z");
    clock.set(at("2026-12-01T09:00:00Z"));
    let due = s.tick();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].trigger, due[0].slots), (Trigger::CatchUp, 1));
}

#[test]
fn a_clock_that_goes_back_runs_nothing_twice() {
    let (mut s, clock) = scheduler(vec![schedule("0 10 * * *", "UTC")], "2026-12-01T09:59:00Z");
    let due = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(30),
        "2026-12-01T10:01:00Z",
    );
    assert_eq!(due.len(), 1);
    // NTP (or a person) sets the clock two hours back: 10:00 comes again, but its slot
    // was taken.
    clock.set(at("2026-12-01T08:01:00Z"));
    let again = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(30),
        "2026-12-01T11:00:00Z",
    );
    assert!(again.is_empty(), "{again:?}");
    let next_day = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(60),
        "2026-12-02T10:01:00Z",
    );
    assert_eq!(next_day.len(), 1);
}

/// Local dates on which a daily job ran, ticking every 30 s over `from..until`.
fn local_run_days(cron: &str, zone: &str, from: &str, until: &str) -> Vec<String> {
    let (mut s, clock) = scheduler(vec![schedule(cron, zone)], from);
    let due = run_until(&mut s, &clock, SignedDuration::from_secs(30), until);
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    due.iter()
        .map(|d| {
            assert_eq!(d.trigger, Trigger::Schedule, "{d:?}");
            let local = d.slot.to_zoned(tz.clone());
            format!("{} {}", local.date(), local.time())
        })
        .collect()
}

#[test]
fn daily_0230_runs_once_on_both_dst_days_in_berlin() {
    // 2026-03-29: 02:00 -> 03:00 (02:30 does not exist); 2026-10-25: 03:00 -> 02:00
    // (02:30 happens twice).
    let spring = local_run_days(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-27T12:00:00Z",
        "2026-03-31T12:00:00Z",
    );
    assert_eq!(spring.len(), 4, "{spring:?}");
    let days: Vec<&str> = spring.iter().map(|d| &d[..10]).collect();
    assert_eq!(
        days,
        ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
    );
    let autumn = local_run_days(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-23T12:00:00Z",
        "2026-10-27T12:00:00Z",
    );
    let days: Vec<&str> = autumn.iter().map(|d| &d[..10]).collect();
    assert_eq!(
        days,
        ["2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27"],
        "{autumn:?}"
    );
}

#[test]
fn daily_jobs_run_once_on_both_dst_days_in_new_york() {
    // 2026-03-08: 02:00 -> 03:00; 2026-11-01: 02:00 -> 01:00 (01:30 happens twice).
    for cron in ["30 2 * * *", "30 1 * * *"] {
        let spring = local_run_days(
            cron,
            "America/New_York",
            "2026-03-06T18:00:00Z",
            "2026-03-10T18:00:00Z",
        );
        let days: Vec<&str> = spring.iter().map(|d| &d[..10]).collect();
        assert_eq!(
            days,
            ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"],
            "{cron}: {spring:?}"
        );
        let autumn = local_run_days(
            cron,
            "America/New_York",
            "2026-10-30T18:00:00Z",
            "2026-11-03T18:00:00Z",
        );
        let days: Vec<&str> = autumn.iter().map(|d| &d[..10]).collect();
        assert_eq!(
            days,
            ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"],
            "{cron}: {autumn:?}"
        );
    }
}

#[test]
fn the_loop_reads_the_clock_at_least_every_minute() {
    let (s, clock) = scheduler(vec![schedule("0 0 1 * *", "UTC")], "2026-12-01T09:00:00Z");
    assert_eq!(
        s.sleep_for(),
        MAX_SLEEP,
        "a monthly job is never one long sleep"
    );
    let (fast, _) = scheduler(
        vec![schedule("*/5 * * * * *", "UTC")],
        "2026-12-01T09:00:01Z",
    );
    assert!(
        fast.sleep_for() <= Duration::from_secs(4),
        "{:?}",
        fast.sleep_for()
    );
    clock.advance(SignedDuration::from_secs(3600));
    assert!(s.sleep_for() <= MAX_SLEEP);
}

#[test]
fn jitter_delays_a_slot_by_a_fixed_share() {
    let mut config = schedule("0 * * * *", "UTC").config;
    config.jitter = Some(Duration::from_secs(600));
    let (mut s, clock) = scheduler(vec![Schedule::new(config.clone())], "2026-12-01T09:59:00Z");
    let due = run_until(
        &mut s,
        &clock,
        SignedDuration::from_secs(1),
        "2026-12-01T10:11:00Z",
    );
    assert_eq!(due.len(), 1);
    let delay = Schedule::new(config).delay(at("2026-12-01T10:00:00Z"));
    assert!(delay < SignedDuration::from_secs(600), "{delay:?}");
    // It came due within a second of slot + delay, never before.
    assert_eq!(due[0].slot, at("2026-12-01T10:00:00Z"));
    assert_eq!(due[0].trigger, Trigger::Schedule);
}
