//! Each source's expected backup period, from the backup schedules in effect: what
//! `drydock_backup_expected_period_seconds`, the dashboard's overdue cells and the
//! overdue watch measure a source's newest good backup against.
//!
//! - A schedule's period is the longest gap between two consecutive fire times over
//!   the next year (or its next [`MAX_FIRES`] fire times, for one that fires more
//!   often), plus its `jitter` (a run may start that much after its slot): daily
//!   02:30 is 24 h, weekly 7 d, monthly (the 1st) 31 d, weekdays only 3 d.
//! - The gaps are those of the expression itself, read in UTC: a cron expression's
//!   gaps are the same in every timezone except across a DST change, where a daily
//!   02:30 job runs 23 h or 25 h after the one before. That hour is well inside the
//!   overdue factor's margin (1.25 x 24 h = 30 h), and reading it in the schedule's
//!   zone would make every daily schedule 25 h all year.
//! - A source is covered by a backup schedule when the schedule's selection
//!   (`priority`, default critical and high; `services`, default all) takes it, the
//!   same plan `drydock backup` makes. Several schedules covering a source: the
//!   shortest period. A source no backup schedule covers has no period: the metrics
//!   and the dashboard measure it against its RPO target instead.

use std::collections::BTreeMap;
use std::time::Duration;

use drydock_domain::config::{Config, JobKind};
use drydock_domain::plan::{self, Selection};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::Schedule;

/// How far ahead fire times are looked at: a year, so that monthly and yearly
/// patterns show.
const HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The most fire times looked at: a schedule firing every 10 s reaches it after
/// 55 h, enough to see a gap over a night or a weekend that a shorter look misses.
pub const MAX_FIRES: usize = 20_000;

impl Schedule {
    /// The longest gap between consecutive fire times after `from` (see the module
    /// doc), plus the jitter; `None` when it fires fewer than twice.
    pub fn period(&self, from: Timestamp) -> Option<Duration> {
        let end = from.checked_add(HORIZON).ok()?;
        let mut at = from.to_zoned(TimeZone::UTC);
        let mut previous: Option<Timestamp> = None;
        let mut longest: Option<SignedDuration> = None;
        let mut fires = 0;
        while let Ok(next) = self.cron.find_next_occurrence(&at, false) {
            let t = next.timestamp();
            if let Some(p) = previous {
                let gap = t.duration_since(p);
                longest = Some(longest.map_or(gap, |l| l.max(gap)));
            }
            fires += 1;
            // Past the horizon only once two fire times give one gap (a schedule of
            // the 29th of February fires once in four years).
            if (t > end && fires >= 2) || fires >= MAX_FIRES {
                break;
            }
            previous = Some(t);
            at = next;
        }
        let gap = Duration::try_from(longest?).ok()?;
        Some(gap + self.config.jitter.unwrap_or_default())
    }
}

/// The expected period of every source a backup schedule covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupPeriods {
    by_source: BTreeMap<(String, String), Duration>,
}

impl BackupPeriods {
    /// The periods of `config`'s sources under `schedules` (the schedules in effect),
    /// looking ahead from `from`.
    pub fn new(config: &Config, schedules: &[Schedule], from: Timestamp) -> BackupPeriods {
        let mut by_source: BTreeMap<(String, String), Duration> = BTreeMap::new();
        for s in schedules.iter().filter(|s| s.config.job == JobKind::Backup) {
            let Some(period) = s.period(from) else {
                continue;
            };
            let selection = Selection {
                all: false,
                priorities: s.config.priority.clone(),
                services: s.config.services.clone(),
            };
            // A selection that takes no source (validated services, priorities no
            // source has) covers none.
            let Ok(planned) = plan::plan(config, &selection) else {
                continue;
            };
            for p in planned {
                by_source
                    .entry((p.service.to_string(), p.source.name().to_string()))
                    .and_modify(|d| *d = (*d).min(period))
                    .or_insert(period);
            }
        }
        BackupPeriods { by_source }
    }

    /// The period of `service`/`source`; `None` when no backup schedule covers it.
    pub fn get(&self, service: &str, source: &str) -> Option<Duration> {
        self.by_source
            .get(&(service.to_string(), source.to_string()))
            .copied()
    }

    /// As the metrics take them.
    pub fn for_metrics(&self) -> Vec<drydock_metrics::BackupPeriod> {
        self.by_source
            .iter()
            .map(
                |((service, source), period)| drydock_metrics::BackupPeriod {
                    service: service.clone(),
                    source: source.clone(),
                    period: *period,
                },
            )
            .collect()
    }

    /// As the dashboard takes them (seconds).
    pub fn for_dashboard(&self) -> BTreeMap<(String, String), u64> {
        self.by_source
            .iter()
            .map(|(k, d)| (k.clone(), d.as_secs()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drydock_domain::config::ScheduleConfig;
    use drydock_domain::Priority;

    const DAY: u64 = 86_400;

    fn schedule(cron: &str, priority: &[Priority], services: &[&str]) -> Schedule {
        Schedule::new(ScheduleConfig {
            job: JobKind::Backup,
            cron: cron.into(),
            priority: priority.to_vec(),
            services: services.iter().map(|s| s.to_string()).collect(),
            timezone: Some("Europe/Berlin".into()),
            jitter: None,
        })
    }

    fn from() -> Timestamp {
        "2026-12-02T08:00:00Z".parse().unwrap()
    }

    fn period(cron: &str) -> Option<u64> {
        schedule(cron, &[], &[]).period(from()).map(|d| d.as_secs())
    }

    /// Two services: `db` with a critical and a medium source, `web` with a high and a
    /// low one, and a source of priority none.
    fn config() -> Config {
        // SAFETY: nextest runs each test in its own process; only these tests read it.
        unsafe { std::env::set_var("PERIODS_TEST_PW", "periods-pw") };
        let text = "[stack]\nname = \"t\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${env:PERIODS_TEST_PW}\"\n\n[services.db]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"main\", priority = \"critical\", path = \"a\" },\n  { kind = \"files\", name = \"archive\", priority = \"medium\", path = \"b\" },\n]\n\n[services.web]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"uploads\", priority = \"high\", path = \"c\" },\n  { kind = \"files\", name = \"logs\", priority = \"low\", path = \"d\" },\n  { kind = \"files\", name = \"cache\", priority = \"none\", path = \"e\" },\n]\n";
        Config::from_text(std::path::Path::new("/nonexistent/drydock.toml"), text).unwrap()
    }

    #[test]
    fn daily_weekly_monthly_and_workdays() {
        assert_eq!(
            period("30 2 * * *"),
            Some(DAY),
            "daily, across a DST change too"
        );
        assert_eq!(period("0 3 * * 0"), Some(7 * DAY), "weekly");
        assert_eq!(
            period("30 3 1 * *"),
            Some(31 * DAY),
            "monthly: the longest month"
        );
        assert_eq!(period("0 2 * * 1-5"), Some(3 * DAY), "Friday to Monday");
        assert_eq!(period("0 */6 * * *"), Some(6 * 3600));
        assert_eq!(period("*/2 * * * * *"), Some(2), "a seconds schedule");
        // Every 10 s in office hours: the night is the gap, not the 10 s.
        assert_eq!(period("*/10 * 9-16 * * *"), Some(16 * 3600 + 10));
        assert_eq!(period("0 0 1 1 *"), Some(365 * DAY), "yearly");
        // Once in four years: past the horizon, still a period.
        assert_eq!(period("0 0 29 2 *"), Some((3 * 365 + 366) * DAY));
    }

    #[test]
    fn jitter_is_added() {
        let mut s = schedule("30 2 * * *", &[], &[]);
        s.config.jitter = Some(Duration::from_secs(600));
        assert_eq!(s.period(from()), Some(Duration::from_secs(DAY + 600)));
    }

    #[test]
    fn the_default_schedules_cover_each_priority_with_its_period() {
        let config = config();
        let schedules: Vec<Schedule> = ScheduleConfig::effective(&[])
            .into_iter()
            .map(Schedule::new)
            .collect();
        let p = BackupPeriods::new(&config, &schedules, from());
        let secs = |svc: &str, src: &str| p.get(svc, src).map(|d| d.as_secs());
        assert_eq!(secs("db", "main"), Some(DAY), "critical: daily");
        assert_eq!(secs("web", "uploads"), Some(DAY), "high: daily");
        assert_eq!(secs("db", "archive"), Some(7 * DAY), "medium: weekly");
        assert_eq!(secs("web", "logs"), Some(31 * DAY), "low: monthly");
        assert_eq!(
            secs("web", "cache"),
            None,
            "priority none is never backed up"
        );
        assert_eq!(p.for_metrics().len(), 4);
        assert_eq!(p.for_dashboard()[&("db".into(), "main".into())], DAY);
    }

    #[test]
    fn several_schedules_give_the_shortest_and_an_uncovered_source_has_none() {
        let config = config();
        let schedules = vec![
            // Default priorities (critical, high), every service: daily.
            schedule("30 2 * * *", &[], &[]),
            // Only `db`'s critical source, hourly as well.
            schedule("0 * * * *", &[Priority::Critical], &["db"]),
            // Medium, only in `web` (which has none): covers nothing.
            schedule("0 3 * * 0", &[Priority::Medium], &["web"]),
            // Not a backup: no period for anyone.
            Schedule::new(ScheduleConfig {
                job: JobKind::Prune,
                cron: "* * * * *".into(),
                priority: Vec::new(),
                services: Vec::new(),
                timezone: None,
                jitter: None,
            }),
        ];
        let p = BackupPeriods::new(&config, &schedules, from());
        let secs = |svc: &str, src: &str| p.get(svc, src).map(|d| d.as_secs());
        assert_eq!(
            secs("db", "main"),
            Some(3600),
            "the shortest of daily and hourly"
        );
        assert_eq!(secs("web", "uploads"), Some(DAY));
        assert_eq!(
            secs("db", "archive"),
            None,
            "medium is covered by no schedule"
        );
        assert_eq!(secs("web", "logs"), None);
        assert_eq!(p.for_metrics().len(), 2);
    }
}
