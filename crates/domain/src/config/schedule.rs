//! `[[schedule]]`: when `drydock serve` runs each job, and the defaults that apply
//! when a config has none ([`DEFAULT_SCHEDULES`], written once here and listed in the
//! README).
//!
//! A schedule is validated at load like everything else: its cron expression parses
//! (5 fields, or 6 with leading seconds), it fires at least once in the next 10 years
//! (`0 0 31 2 *` never does), its timezone is a known IANA name, its services exist, and
//! it sets `priority`/`services` only on a job that takes them.

use std::collections::BTreeMap;
use std::time::Duration;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::duration_text;
use super::errors::Collector;
use crate::spans::KeyPath;
use crate::vocabulary::Priority;

/// The jobs a schedule can run, one engine operation each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Backup,
    Sync,
    Prune,
    Verify,
    Drill,
    Health,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Backup,
        JobKind::Sync,
        JobKind::Prune,
        JobKind::Verify,
        JobKind::Drill,
        JobKind::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Sync => "sync",
            JobKind::Prune => "prune",
            JobKind::Verify => "verify",
            JobKind::Drill => "drill",
            JobKind::Health => "health",
        }
    }

    /// The kind named `name` (`backup`, ...).
    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether `priority = [...]` means something for this job (which sources it backs up).
    pub fn takes_priority(self) -> bool {
        self == JobKind::Backup
    }

    /// Whether `services = [...]` means something for this job.
    pub fn takes_services(self) -> bool {
        matches!(self, JobKind::Backup | JobKind::Drill | JobKind::Health)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[schedule]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub job: JobKind,
    /// `MIN HOUR DOM MON DOW`, or with a leading seconds field.
    pub cron: String,
    /// Backup only: the priorities to back up (empty: critical and high).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<Priority>,
    /// Backup, drill and health: only these services (empty: every one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// IANA name the cron expression is read in; default: the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Starts each run up to this long after its slot (spreads hosts sharing a bucket).
    #[serde(
        default,
        with = "duration_text::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<Duration>,
}

/// A default schedule, as data.
#[derive(Debug, Clone, Copy)]
pub struct DefaultSchedule {
    pub job: JobKind,
    pub cron: &'static str,
    pub priority: &'static [Priority],
}

/// What `drydock serve` runs when the config has no `[[schedule]]` (the README's
/// table is this list). Backups sync their new snapshots to every remote when they
/// finish; the daily `sync` after them retries whatever a backup could not copy.
pub const DEFAULT_SCHEDULES: &[DefaultSchedule] = &[
    // Critical and high sources daily, medium weekly (Sunday), low monthly (the 1st).
    DefaultSchedule {
        job: JobKind::Backup,
        cron: "30 2 * * *",
        priority: &[Priority::Critical, Priority::High],
    },
    DefaultSchedule {
        job: JobKind::Backup,
        cron: "0 3 * * 0",
        priority: &[Priority::Medium],
    },
    DefaultSchedule {
        job: JobKind::Backup,
        cron: "30 3 1 * *",
        priority: &[Priority::Low],
    },
    DefaultSchedule {
        job: JobKind::Sync,
        cron: "0 4 * * *",
        priority: &[],
    },
    DefaultSchedule {
        job: JobKind::Prune,
        cron: "30 4 * * *",
        priority: &[],
    },
    DefaultSchedule {
        job: JobKind::Verify,
        cron: "0 5 * * 0",
        priority: &[],
    },
    DefaultSchedule {
        job: JobKind::Drill,
        cron: "0 6 * * 0",
        priority: &[],
    },
    DefaultSchedule {
        job: JobKind::Health,
        cron: "* * * * *",
        priority: &[],
    },
];

impl ScheduleConfig {
    /// The schedules a daemon runs: `configured`, or [`DEFAULT_SCHEDULES`] when there
    /// are none.
    pub fn effective(configured: &[ScheduleConfig]) -> Vec<ScheduleConfig> {
        if !configured.is_empty() {
            return configured.to_vec();
        }
        DEFAULT_SCHEDULES
            .iter()
            .map(|d| ScheduleConfig {
                job: d.job,
                cron: d.cron.to_string(),
                priority: d.priority.to_vec(),
                services: Vec::new(),
                timezone: None,
                jitter: None,
            })
            .collect()
    }

    /// The parsed cron expression (validated at load).
    pub fn parsed_cron(&self) -> Cron {
        parse_cron(&self.cron).expect("[[schedule]] cron was validated at load")
    }

    /// The timezone the expression is read in: its own, or the system's.
    pub fn time_zone(&self) -> TimeZone {
        match &self.timezone {
            Some(name) => TimeZone::get(name).expect("[[schedule]] timezone was validated at load"),
            None => TimeZone::system(),
        }
    }

    /// A stable name of this schedule (its job, expression, selection and timezone):
    /// the key its last slot is stored under, so editing a schedule starts it afresh.
    pub fn key(&self) -> String {
        let priority: Vec<&str> = self.priority.iter().map(|p| p.as_str()).collect();
        format!(
            "{} [{}] priority={} services={} tz={}",
            self.job,
            self.cron.split_whitespace().collect::<Vec<_>>().join(" "),
            priority.join(","),
            self.services.join(","),
            self.timezone.as_deref().unwrap_or("system")
        )
    }
}

/// A cron expression: 5 fields, or 6 with leading seconds (no year field).
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "`{text}` has {fields} fields; write 5 (MIN HOUR DOM MON DOW) or 6 with leading seconds, e.g. \"30 2 * * *\""
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| {
            format!("`{text}` is not a cron expression ({e}); write e.g. \"30 2 * * *\" (daily at 02:30)")
        })
}

/// How far ahead a schedule must fire at least once.
const MUST_FIRE_WITHIN_YEARS: i16 = 10;

pub(super) fn parse_schedules(
    value: Option<toml::Value>,
    c: &mut Collector<'_>,
) -> Vec<(usize, ScheduleConfig)> {
    let at = KeyPath::default().key("schedule");
    match value {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| c.section(&at.index(i), item).map(|s| (i, s)))
            .collect(),
        Some(_) => {
            c.push(
                &at,
                "must be a list of tables: write each schedule as [[schedule]]",
            );
            Vec::new()
        }
    }
}

/// The checks of every schedule; `services` are the config's service names (`None`
/// when `[services]` did not parse: unknown names are not reported then).
pub(super) fn validate_schedules<V>(
    c: &mut Collector<'_>,
    schedules: &[(usize, ScheduleConfig)],
    services: Option<&BTreeMap<String, V>>,
) {
    for (i, s) in schedules {
        let at = KeyPath::default().key("schedule").index(*i);
        let zone = match &s.timezone {
            None => Some(TimeZone::system()),
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    c.push(
                        &at.key("timezone"),
                        format!("unknown timezone `{name}`; use an IANA name such as \"Europe/Berlin\" or \"UTC\""),
                    );
                    None
                }
            },
        };
        match parse_cron(&s.cron) {
            Err(message) => c.push(&at.key("cron"), message),
            Ok(cron) => {
                if let Some(zone) = zone {
                    if let Err(message) = fires_soon_enough(&cron, &s.cron, zone) {
                        c.push(&at.key("cron"), message);
                    }
                }
            }
        }
        if !s.priority.is_empty() && !s.job.takes_priority() {
            c.push(
                &at.key("priority"),
                format!(
                    "a {} job takes no priority (only backup does); remove it",
                    s.job
                ),
            );
        }
        if !s.services.is_empty() && !s.job.takes_services() {
            c.push(
                &at.key("services"),
                format!(
                    "a {} job takes no services (only backup, drill and health do); remove it",
                    s.job
                ),
            );
        }
        if let Some(known) = services {
            for (j, name) in s.services.iter().enumerate() {
                if !known.contains_key(name) {
                    let names: Vec<&str> = known.keys().map(String::as_str).collect();
                    c.push(
                        &at.key("services").index(j),
                        format!(
                            "no service `{name}` in the config; known services: {}",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// `Ok` when `cron` fires at least once within [`MUST_FIRE_WITHIN_YEARS`] from now.
fn fires_soon_enough(cron: &Cron, text: &str, zone: TimeZone) -> Result<(), String> {
    let now = crate::clock::now().to_zoned(zone);
    let horizon = now
        .checked_add(jiff::Span::new().years(MUST_FIRE_WITHIN_YEARS))
        .map_err(|e| e.to_string())?;
    match cron.find_next_occurrence(&now, false) {
        Ok(next) if next <= horizon => Ok(()),
        _ => Err(format!(
            "`{text}` never fires (no time matches it in the next {MUST_FIRE_WITHIN_YEARS} years, e.g. 31 February); fix the day or month"
        )),
    }
}
