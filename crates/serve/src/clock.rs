//! The wall clock the scheduler reads, behind [`Clock`] so the real scheduler code runs
//! in tests on an injected clock ([`ManualClock`]) that jumps, goes back and crosses
//! DST transitions in microseconds.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// What time it is on the wall.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock, through `drydock_domain::clock::now` (so the binary's test
/// hook for a wrong clock applies to the daemon too).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        drydock_domain::clock::now()
    }
}

/// A clock that says what it is told: for tests of the scheduler.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Sets the time (forwards or backwards: a clock jump).
    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    /// Moves the time by `by` (negative: backwards).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.checked_add(by).expect("test clock within range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}
