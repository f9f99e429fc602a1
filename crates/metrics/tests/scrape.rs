//! A real stack scraped: one service with a critical SQLite database and high-priority
//! files, a local repository and a real Garage S3 remote; a health run, a sandbox drill
//! and a backup through the engine library; then the metrics, read back with a
//! Prometheus text parser (`prometheus-parse`), linted by Debian's `promtool check
//! metrics`, and snapshotted with their timestamps redacted.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::plan::Selection;
use drydock_domain::{Config, NoEvents, Verdict};
use drydock_engine::RunContext;
use drydock_metrics::{BackupPeriod, DaemonFigures, Format, RunCount};
use drydock_state::StateDb;
use drydock_testkit::garage::GarageServer;
use jiff::Timestamp;

struct World {
    dir: tempfile::TempDir,
    config: Config,
    _garage: GarageServer,
}

fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    // Secret files must be private, or the config is refused.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("${{file:{}}}", path.display())
}

fn world() -> World {
    let garage = GarageServer::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let password = secret_file(root, "repo-password", "metrics-test-password");
    let key = secret_file(root, "s3-key", &garage.access_key_id);
    let secret = secret_file(root, "s3-secret", &garage.secret_access_key);
    std::fs::create_dir(root.join("uploads")).unwrap();
    std::fs::write(root.join("uploads/a.txt"), "first upload").unwrap();
    let db = rusqlite::Connection::open(root.join("app.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO users (name) VALUES ('ada'), ('grace');",
    )
    .unwrap();
    drop(db);
    let config = format!(
        "[stack]\nname = \"metrics\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"{password}\"\n\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nregion = \"{region}\"\nbucket = \"{bucket}\"\nprefix = \"metrics\"\npath_style = true\naccess_key_id = \"{key}\"\nsecret_access_key = \"{secret}\"\n\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n",
        endpoint = garage.endpoint(),
        region = drydock_testkit::garage::REGION,
        bucket = garage.bucket,
    );
    std::fs::write(root.join("drydock.toml"), config).unwrap();
    let config = Config::load(&root.join("drydock.toml")).unwrap();
    World {
        dir,
        config,
        _garage: garage,
    }
}

fn ctx() -> RunContext {
    RunContext::new(Arc::new(NoEvents))
}

/// `promtool check metrics` on `text`: its exit code and what it said.
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool did not start ({e}): install Debian's `prometheus` package (`apt-get install -y prometheus`, as .ci/run does)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Every sample as `name{k="v",...}` -> value, labels sorted.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected value {other:?} of {}", s.metric),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), value)
        })
        .collect()
}

fn unix_s(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

#[test]
fn a_real_backup_drill_and_health_run_scraped_parsed_and_linted() {
    let w = world();
    let health = drydock_engine::health::health(
        &w.config,
        &drydock_engine::health::HealthOptions {
            services: vec![],
            record: true,
        },
        &ctx(),
    )
    .unwrap();
    assert_eq!(health.verdict(), Verdict::Ok, "{health:#?}");
    let drill = drydock_engine::drill::drill(&w.config, &Default::default(), &ctx()).unwrap();
    assert_eq!(drill.verdict(), Verdict::Ok, "{drill:#?}");
    std::fs::write(w.dir.path().join("uploads/b.txt"), "second upload").unwrap();
    let backup = drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx()).unwrap();
    assert_eq!(backup.verdict(), Verdict::Ok, "{backup:#?}");
    assert_eq!(backup.copies.len(), 2, "{backup:#?}");

    let state = StateDb::open(&w.config.stack.state_dir).unwrap();
    let now = Timestamp::now();
    let figures = DaemonFigures {
        runs: vec![
            RunCount {
                job: "backup".into(),
                verdict: Verdict::Ok,
                count: 3,
            },
            RunCount {
                job: "backup".into(),
                verdict: Verdict::Warning,
                count: 1,
            },
        ],
        notifications_failed: 2,
        scheduler_last_tick: Some(now),
        // A schedule every hour for the files, the RPO target for the database.
        backup_periods: vec![BackupPeriod {
            service: "app".into(),
            source: "uploads".into(),
            period: Duration::from_secs(3600),
        }],
        ..Default::default()
    };
    let text =
        drydock_metrics::scrape(&w.config, &state, now, &figures, Format::Prometheus).unwrap();

    let (ok, said) = promtool(&text);
    assert!(ok, "promtool check metrics failed:\n{said}\n{text}");
    assert_eq!(said.trim(), "", "promtool found problems:\n{said}");

    let got = samples(&text);
    let at = |source: &str| {
        let r = backup.sources.iter().find(|r| r.source == source).unwrap();
        r.consistent_at.unwrap_or(backup.started_at)
    };
    for source in ["db", "uploads"] {
        for copy in ["local", "offsite"] {
            let key = format!(
                "drydock_backup_last_success_timestamp_seconds{{copy=\"{copy}\",service=\"app\",source=\"{source}\"}}"
            );
            assert_eq!(got.get(&key), Some(&unix_s(at(source))), "{key}\n{text}");
        }
        let labels = format!("{{service=\"app\",source=\"{source}\"}}");
        let record = backup.sources.iter().find(|r| r.source == source).unwrap();
        assert_eq!(
            got[&format!("drydock_backup_stored_bytes{labels}")],
            record.stored_bytes as f64
        );
        assert_eq!(
            got[&format!("drydock_backup_duration_seconds{labels}")],
            record.duration_ms as f64 / 1000.0
        );
        assert_eq!(
            got[&format!("drydock_rpo_seconds{labels}")],
            drydock_domain::clock::age_s(at(source), now) as f64
        );
        assert_eq!(got[&format!("drydock_backup_overdue{labels}")], 0.0);
        let drilled = drill.finished_at;
        assert_eq!(
            got[&format!("drydock_drill_last_success_timestamp_seconds{labels}")],
            unix_s(drilled)
        );
        assert!(got[&format!("drydock_drill_rto_seconds{labels}")] > 0.0);
    }
    // The RPO target is the default's for a critical source (the config sets none).
    let (_, rpo) = w
        .config
        .drill
        .targets_for(drydock_domain::Priority::Critical);
    assert_eq!(
        got["drydock_rpo_target_seconds{service=\"app\",source=\"db\"}"],
        rpo.as_secs_f64()
    );
    assert_eq!(
        got["drydock_backup_expected_period_seconds{service=\"app\",source=\"uploads\"}"],
        3600.0
    );
    assert_eq!(
        got["drydock_backup_expected_period_seconds{service=\"app\",source=\"db\"}"],
        rpo.as_secs_f64()
    );
    let health_series: Vec<_> = got
        .iter()
        .filter(|(k, _)| k.starts_with("drydock_health_status{"))
        .collect();
    assert!(!health_series.is_empty(), "{text}");
    assert!(health_series.iter().all(|(_, v)| **v == 0.0), "{text}");
    assert_eq!(
        got["drydock_runs_total{job=\"backup\",verdict=\"warning\"}"],
        1.0
    );
    assert_eq!(got["drydock_notifications_failed_total{}"], 2.0);
    assert_eq!(
        got["drydock_scheduler_last_tick_timestamp_seconds{}"],
        unix_s(now)
    );
    assert_eq!(got["drydock_restore_pending{service=\"app\"}"], 0.0);
    // Bounded: at most a dozen series per source and copy.
    assert!(got.len() <= 12 * 2 * 2 + 8, "{} series", got.len());
    // No id in any label: only names from the config and the fixed sets.
    assert!(!text.contains(&backup.id), "{text}");

    // Hours later with nothing run, the hourly files are overdue, the database is not.
    let later = now + jiff::SignedDuration::from_secs(2 * 3600);
    let later = samples(
        &drydock_metrics::scrape(&w.config, &state, later, &figures, Format::Prometheus).unwrap(),
    );
    assert_eq!(
        later["drydock_backup_overdue{service=\"app\",source=\"uploads\"}"],
        1.0
    );
    assert_eq!(
        later["drydock_backup_overdue{service=\"app\",source=\"db\"}"],
        0.0
    );

    // The snapshot: the whole exposition, times and sizes (which vary run to run)
    // redacted, so a renamed family, label or help text shows up in review.
    let redacted = redact(&text);
    insta::assert_snapshot!("prometheus_text", redacted);
    let open =
        drydock_metrics::scrape(&w.config, &state, now, &figures, Format::OpenMetrics).unwrap();
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains(
            "# TYPE drydock_runs counter\ndrydock_runs_total{job=\"backup\",verdict=\"ok\"} 3\n"
        ),
        "{open}"
    );
}

/// Values that differ between runs (times, durations, sizes, RPO) become `<value>`;
/// counts, flags and targets stay.
fn redact(text: &str) -> String {
    const VARYING: &[&str] = &[
        "_timestamp_seconds",
        "drydock_backup_duration_seconds",
        "_bytes",
        "drydock_rpo_seconds",
        "drydock_drill_rto_seconds",
    ];
    text.lines()
        .map(|line| {
            if !line.starts_with('#') && VARYING.iter().any(|v| line.contains(v)) {
                let (sample, _) = line.rsplit_once(' ').unwrap();
                format!("{sample} <value>")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_empty_state_has_every_family_and_marks_every_source_overdue() {
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "repo-password", "pw");
    std::fs::write(
        dir.path().join("drydock.toml"),
        format!("[stack]\nname = \"empty\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"{password}\"\n\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [ {{ kind = \"files\", name = \"uploads\", priority = \"low\", path = \"uploads\" }} ]\n"),
    )
    .unwrap();
    let config = Config::load(&dir.path().join("drydock.toml")).unwrap();
    let state = StateDb::open(&config.stack.state_dir).unwrap();
    let text = drydock_metrics::scrape(
        &config,
        &state,
        Timestamp::now(),
        &DaemonFigures::default(),
        Format::Prometheus,
    )
    .unwrap();
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool check metrics failed:\n{said}\n{text}");
    for family in drydock_metrics::families::ALL {
        assert!(
            text.contains(&format!("# TYPE {} ", family.exposed_name())),
            "{} missing:\n{text}",
            family.name
        );
    }
    let got = samples(&text);
    assert_eq!(
        got["drydock_backup_overdue{service=\"app\",source=\"uploads\"}"],
        1.0
    );
    assert!(!got.keys().any(|k| k.starts_with("drydock_rpo_seconds")));
}

#[test]
fn the_readme_lists_every_metric() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for family in drydock_metrics::families::ALL {
        assert!(
            readme.contains(&format!("`{}`", family.exposed_name())),
            "README.md's Metrics section does not list `{}`",
            family.exposed_name()
        );
    }
}

#[test]
fn format_follows_the_accept_header() {
    assert_eq!(Format::negotiate(None), Format::Prometheus);
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    assert!(Format::Prometheus
        .content_type()
        .starts_with("text/plain; version=0.0.4"));
}
