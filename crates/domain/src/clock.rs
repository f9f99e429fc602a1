//! The one place drydock asks what time it is, and the clock rules built on it.
//!
//! Backups, prune, `status` and the copy records read "now" through [`now`], so a test
//! can run the real binary with a wrong clock without changing the machine's clock:
//! **test hook only**, `DRYDOCK_TEST_NOW=<RFC 3339 instant>` is honoured only while
//! `DRYDOCK_TEST_CLOCK=1` is set as well (one variable set by accident does nothing;
//! an unparsable value is ignored). Never set them in production.
//!
//! The clock rules (README, "Clock rules"): a backup taken while the clock is earlier
//! than the newest backup in the copy is stored but warned about; prune refuses while
//! any backup of the stack lies more than [`FUTURE_TOLERANCE`] in the future; `latest`
//! is the newest by the stack's creation sequence ([`crate::Manifest::seq`]), not by
//! timestamp; a negative age is reported as a clock problem, never clamped to 0.

use std::time::Duration;

use jiff::Timestamp;

/// The test hook's variables (see the module doc).
pub const TEST_NOW_VAR: &str = "DRYDOCK_TEST_NOW";
pub const TEST_CLOCK_VAR: &str = "DRYDOCK_TEST_CLOCK";

/// How far in the future a backup may lie before prune refuses: NTP corrections and
/// hosts sharing a repository with slightly different clocks stay well inside it.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(10 * 60);

/// Now, or the test hook's instant when both of its variables are set.
pub fn now() -> Timestamp {
    if std::env::var(TEST_CLOCK_VAR).as_deref() == Ok("1") {
        if let Some(t) = std::env::var(TEST_NOW_VAR)
            .ok()
            .and_then(|v| v.parse::<Timestamp>().ok())
        {
            return t;
        }
    }
    Timestamp::now()
}

/// Signed seconds from `then` to `now`: negative when `then` lies in the future.
pub fn age_s(then: Timestamp, now: Timestamp) -> i64 {
    now.duration_since(then).as_secs()
}

/// Whether `then` lies in the future beyond [`FUTURE_TOLERANCE`].
pub fn is_future(then: Timestamp, now: Timestamp) -> bool {
    age_s(then, now) < -(FUTURE_TOLERANCE.as_secs() as i64)
}

/// "3d 4h" style, for messages.
pub fn human(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_beyond_tolerance_only() {
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let soon: Timestamp = "2026-12-01T00:05:00Z".parse().unwrap();
        let later: Timestamp = "2026-12-01T00:11:00Z".parse().unwrap();
        assert!(!is_future(soon, now));
        assert!(is_future(later, now));
        assert_eq!(age_s(later, now), -660);
        assert_eq!(human(90_000), "1d 1h");
    }
}
