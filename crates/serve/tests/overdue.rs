//! The overdue watch over a real state database after a real backup (a directory
//! into a real repository, through the runner), its checks asked at chosen instants:
//! the periods from the schedules in effect (daily for one source, weekly for
//! another, none for a third measured against its RPO target), the same verdict as
//! the `drydock_backup_overdue` metric, and a source never backed up told only once
//! the daemon has watched it past its limit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::config::{JobKind, ScheduleConfig};
use drydock_domain::{Config, Priority, Verdict};
use drydock_serve::events::EventHub;
use drydock_serve::overdue::OverdueWatch;
use drydock_serve::runner::{Runner, Submitted};
use drydock_serve::schedule::{BackupPeriods, Schedule};
use drydock_serve::{JobRequest, NoNotifier, SystemClock};
use drydock_state::{StateDb, Trigger};
use jiff::{SignedDuration, Timestamp};

const HOUR: i64 = 3600;

/// `web/uploads` (critical, backed up daily), `docs/pages` (high, weekly) and
/// `cache/tiles` (medium: no schedule, never backed up).
fn config(dir: &Path) -> Config {
    for d in ["uploads", "pages", "tiles"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
        std::fs::write(dir.join(d).join("a.txt"), d).unwrap();
    }
    // SAFETY: only this test binary reads this variable.
    unsafe { std::env::set_var("OVERDUE_TEST_REPO_PW", "overdue-repo-pw") };
    let text = r#"[stack]
name = "t"
state_dir = "state"

[repository]
path = "repo"
password = "${env:OVERDUE_TEST_REPO_PW}"

[[schedule]]
job = "backup"
cron = "30 2 * * *"
priority = ["critical"]
timezone = "Europe/Berlin"

[[schedule]]
job = "backup"
cron = "0 3 * * 0"
priority = ["high"]

[services.web]
runtime = { kind = "none" }
data = [{ kind = "files", name = "uploads", priority = "critical", path = "uploads" }]

[services.docs]
runtime = { kind = "none" }
data = [{ kind = "files", name = "pages", priority = "high", path = "pages" }]

[services.cache]
runtime = { kind = "none" }
data = [{ kind = "files", name = "tiles", priority = "medium", path = "tiles" }]
"#;
    Config::from_text(&dir.join("drydock.toml"), text).unwrap()
}

fn periods(config: &Config, from: Timestamp) -> BackupPeriods {
    let schedules: Vec<Schedule> = ScheduleConfig::effective(&config.schedules)
        .into_iter()
        .map(Schedule::new)
        .collect();
    BackupPeriods::new(config, &schedules, from)
}

/// The metric's verdict for `service`/`source` in a scrape at `now`.
fn metric_overdue(
    config: &Config,
    db: &StateDb,
    periods: &BackupPeriods,
    now: Timestamp,
    service: &str,
    source: &str,
) -> bool {
    let figures = drydock_metrics::DaemonFigures {
        backup_periods: periods.for_metrics(),
        overdue_factor: config.serve.overdue_factor,
        ..Default::default()
    };
    let text = drydock_metrics::scrape(
        config,
        db,
        now,
        &figures,
        drydock_metrics::Format::Prometheus,
    )
    .unwrap();
    let series = format!("drydock_backup_overdue{{service=\"{service}\",source=\"{source}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    value == 1.0
}

#[test]
fn sources_past_their_schedule_are_overdue_with_their_age_and_period() {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(config(dir.path()));
    let runner = Runner::new(
        Arc::clone(&config),
        "test-host".into(),
        EventHub::default(),
        Arc::new(NoNotifier),
        Arc::new(SystemClock),
    );
    let since = Timestamp::now();
    let req = JobRequest {
        kind: JobKind::Backup,
        priority: vec![Priority::Critical, Priority::High],
        services: Vec::new(),
    };
    assert_eq!(
        runner.submit(req, Trigger::Api, "api backup", None),
        Submitted::Accepted
    );
    assert!(runner.wait_idle(Duration::from_secs(120)));
    let db = StateDb::open(&config.stack.state_dir).unwrap();
    let backed_up = db
        .last_good_backups()
        .unwrap()
        .iter()
        .map(|g| g.record.at)
        .max()
        .expect("the backup is recorded good");

    let periods = periods(&config, since);
    assert_eq!(
        periods.get("web", "uploads"),
        Some(Duration::from_secs(86_400))
    );
    assert_eq!(
        periods.get("docs", "pages"),
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(periods.get("cache", "tiles"), None, "no schedule covers it");

    let watch = OverdueWatch::new(Arc::clone(&config), &periods, since);
    let at = |hours: i64| backed_up + SignedDuration::from_secs(hours * HOUR);
    let overdue_parts = |now: Timestamp| -> Vec<String> {
        let check = watch.check(&db, now).unwrap();
        assert_eq!(check.job, "overdue");
        assert_eq!(check.look_closer, "drydock status");
        assert_eq!(check.parts.len(), 3, "one part per source: {check:#?}");
        let failing: Vec<String> = check
            .parts
            .iter()
            .filter(|p| p.verdict != Verdict::Ok)
            .map(|p| p.subject.clone())
            .collect();
        assert_eq!(check.failed.len(), failing.len(), "{check:#?}");
        assert_eq!(check.verdict == Verdict::Ok, failing.is_empty());
        failing
    };

    // An hour on: nothing overdue. The metric already counts the source never backed
    // up; the watch gives it the daemon's first 30 h (its RPO target x 1.25).
    assert!(overdue_parts(at(1)).is_empty());
    assert!(metric_overdue(
        &config,
        &db,
        &periods,
        at(1),
        "cache",
        "tiles"
    ));
    assert!(!metric_overdue(
        &config,
        &db,
        &periods,
        at(1),
        "web",
        "uploads"
    ));

    // 31 h on: the daily source is past 1.25 x 24 h, the weekly one is not; the
    // source never backed up now is, against its RPO target.
    let check = watch.check(&db, at(31)).unwrap();
    assert_eq!(
        overdue_parts(at(31)),
        ["cache/tiles", "web/uploads"],
        "{check:#?}"
    );
    assert!(
        check.failed.contains(
            &"web/uploads: last good backup 1d 7h ago; expected every 1d 0h (overdue past 1d 6h)"
                .to_string()
        ),
        "{check:#?}"
    );
    assert!(
        check.failed.contains(&"cache/tiles: no good backup yet; no backup schedule covers it, expected within its RPO target of 1d 0h (overdue past 1d 6h)".to_string()),
        "{check:#?}"
    );
    assert!(metric_overdue(
        &config,
        &db,
        &periods,
        at(31),
        "web",
        "uploads"
    ));
    assert!(!metric_overdue(
        &config,
        &db,
        &periods,
        at(31),
        "docs",
        "pages"
    ));

    // Nine days on: the weekly one too (past 8d 18h).
    assert_eq!(
        overdue_parts(at(9 * 24)),
        ["cache/tiles", "docs/pages", "web/uploads"]
    );
    assert!(metric_overdue(
        &config,
        &db,
        &periods,
        at(9 * 24),
        "docs",
        "pages"
    ));
}
