//! The planner: given each schedule's last recorded slot and the wall clock's now,
//! which jobs are due.
//!
//! The rules (README, "Schedules"):
//! - Slots are computed on the wall clock in the schedule's timezone (croner on jiff's
//!   zoned times), and the loop re-reads the clock at least every [`MAX_SLEEP`]: a
//!   monotonic sleep until the next slot would miss or double runs across a suspend
//!   or a clock change.
//! - A schedule is due when its latest slot at or before now is later than its last
//!   recorded slot; that latest slot becomes the recorded one. However many slots were
//!   missed (downtime, suspend, a clock jump forward), the job runs **once** to catch
//!   up. A clock that goes back finds no slot later than the recorded one, so nothing
//!   runs twice.
//! - A schedule never seen before starts at now: it waits for its next slot rather
//!   than running for the past.
//! - `jitter` delays a slot's run by a fixed amount per slot (derived from the
//!   schedule and the slot, so a restart does not move it).
//!
//! `periods.rs`: each source's expected backup period, from these schedules
//! ([`BackupPeriods`]), for the metrics, the dashboard and the overdue watch.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use croner::Cron;
use drydock_domain::config::ScheduleConfig;
use drydock_state::Trigger;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::clock::Clock;

mod periods;
#[cfg(test)]
mod tests;

pub use periods::{BackupPeriods, MAX_FIRES};

/// The longest the loop sleeps before reading the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The shortest: a slot just passed is looked at again soon, not spun on.
const MIN_SLEEP: Duration = Duration::from_millis(50);

/// A slot run later than this after it came counts as a catch-up (the daemon was
/// down, suspended or the clock jumped), not as an on-time run.
const ON_TIME: SignedDuration = SignedDuration::from_secs(120);

/// One schedule, its expression parsed and timezone resolved.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub config: ScheduleConfig,
    /// Where its last slot is stored ([`ScheduleConfig::key`]).
    pub key: String,
    cron: Cron,
    zone: TimeZone,
}

impl Schedule {
    /// From a validated `[[schedule]]`.
    pub fn new(config: ScheduleConfig) -> Schedule {
        Schedule {
            key: config.key(),
            cron: config.parsed_cron(),
            zone: config.time_zone(),
            config,
        }
    }

    fn zoned(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.zone.clone())
    }

    /// The latest slot at or before `now`.
    fn latest_slot(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_previous_occurrence(&self.zoned(now), true)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The first slot after `after`.
    pub fn next_slot(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&self.zoned(after), false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// How long after `slot` its run starts: 0, or a fixed share of `jitter`.
    fn delay(&self, slot: Timestamp) -> SignedDuration {
        let Some(jitter) = self.config.jitter.filter(|j| !j.is_zero()) else {
            return SignedDuration::ZERO;
        };
        let mut h = std::hash::DefaultHasher::new();
        (&self.key, slot.as_second()).hash(&mut h);
        let ms = h.finish() % u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
        SignedDuration::from_millis(i64::try_from(ms).unwrap_or(0))
    }
}

/// A schedule whose slot came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Index in the scheduler's schedules.
    pub index: usize,
    pub key: String,
    /// The slot this run is for (recorded as the schedule's last).
    pub slot: Timestamp,
    /// `Schedule` on time; `CatchUp` for missed slots (several collapse into this one).
    pub trigger: Trigger,
    /// Slots this one run stands for (1 on time).
    pub slots: usize,
}

/// Every schedule with its last slot, and the clock.
pub struct Scheduler {
    schedules: Vec<Schedule>,
    last: BTreeMap<String, Timestamp>,
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    /// `last`: the recorded slots by schedule key; a schedule without one starts now.
    pub fn new(
        schedules: Vec<Schedule>,
        mut last: BTreeMap<String, Timestamp>,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        let now = clock.now();
        for s in &schedules {
            last.entry(s.key.clone()).or_insert(now);
        }
        Scheduler {
            schedules,
            last,
            clock,
        }
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// The recorded slot of every schedule (new ones: when the scheduler started).
    pub fn last_slots(&self) -> &BTreeMap<String, Timestamp> {
        &self.last
    }

    /// Reads the clock; returns the schedules due now, each once, and records their
    /// slots as taken.
    pub fn tick(&mut self) -> Vec<Due> {
        let now = self.clock.now();
        let mut due = Vec::new();
        for (index, s) in self.schedules.iter().enumerate() {
            let last = self.last[&s.key];
            let Some(slot) = s.latest_slot(now) else {
                continue;
            };
            if slot <= last || now < slot + s.delay(slot) {
                continue;
            }
            let slots = count_slots(s, last, slot);
            let late = now.duration_since(slot) > ON_TIME + s.delay(slot);
            let trigger = if slots > 1 || late {
                Trigger::CatchUp
            } else {
                Trigger::Schedule
            };
            due.push(Due {
                index,
                key: s.key.clone(),
                slot,
                trigger,
                slots,
            });
        }
        for d in &due {
            self.last.insert(d.key.clone(), d.slot);
        }
        due
    }

    /// How long the loop may sleep before the next tick: until the earliest next run,
    /// never longer than [`MAX_SLEEP`].
    pub fn sleep_for(&self) -> Duration {
        let now = self.clock.now();
        let earliest = self
            .schedules
            .iter()
            .filter_map(|s| {
                let after = self.last[&s.key].max(now);
                let next = s.next_slot(after)?;
                Some(next + s.delay(next))
            })
            .min();
        let until = earliest
            .map(|t| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP);
        until.clamp(MIN_SLEEP, MAX_SLEEP)
    }

    /// The next slot of every schedule, by index (for the API and the dashboard).
    pub fn next_slots(&self) -> Vec<(usize, Option<Timestamp>)> {
        let now = self.clock.now();
        self.schedules
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.next_slot(self.last[&s.key].max(now))))
            .collect()
    }
}

/// Slots after `last` up to and including `slot` (capped: only "one or more" matters
/// beyond a few).
fn count_slots(s: &Schedule, last: Timestamp, slot: Timestamp) -> usize {
    let mut n = 0;
    let mut at = last;
    while let Some(next) = s.next_slot(at) {
        if next > slot || n >= 1000 {
            break;
        }
        n += 1;
        at = next;
    }
    n.max(1)
}
