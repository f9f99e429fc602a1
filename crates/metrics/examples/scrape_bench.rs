//! The scrape benchmark (`bench/metrics/run`): a state database filled through the
//! state crate's own record calls with 90 days of history for 50 sources in 2 copies
//! (a backup every 6 hours, each verified in both copies; a health run of every check
//! each minute, of which the state keeps the newest 2000; a drill of every source each
//! week), then 200 scrapes timed one by one; prints p50, p95 and max, with and without
//! opening the database (the daemon may do either).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use drydock_domain::Config;
use drydock_metrics::{DaemonFigures, Format};
use drydock_state::health::{CheckRecord, HealthRun, ServiceHealth};
use drydock_state::{BackupSourceRecord, CopyState, DrillRun, DrilledSourceRecord, StateDb};
use jiff::{SignedDuration, Timestamp};

const SERVICES: usize = 25;
const SOURCES_PER_SERVICE: usize = 2;
const DAYS: i64 = 90;
const BACKUPS_PER_DAY: i64 = 4;
const HEALTH_RUNS: usize = 2000;
const SCRAPES: usize = 200;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let secret = root.join("secret");
    std::fs::write(&secret, "bench-secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = format!("${{file:{}}}", secret.display());
    let mut toml = format!(
        "[stack]\nname = \"bench\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"{s}\"\n\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"garage\"\nbucket = \"bench\"\npath_style = true\naccess_key_id = \"{s}\"\nsecret_access_key = \"{s}\"\n"
    );
    for i in 0..SERVICES {
        toml.push_str(&format!(
            "\n[services.svc{i:02}]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"svc{i:02}.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads{i:02}\" }},\n]\n"
        ));
    }
    std::fs::write(root.join("drydock.toml"), toml).unwrap();
    let config = Config::load(&root.join("drydock.toml")).unwrap();

    let filling = Instant::now();
    let mut db = StateDb::open(&config.stack.state_dir).unwrap();
    let now = Timestamp::now();
    let start = now - SignedDuration::from_hours(24 * DAYS);
    let every = SignedDuration::from_hours(24 / BACKUPS_PER_DAY);
    let sources: Vec<(String, &str)> = (0..SERVICES)
        .flat_map(|i| ["db", "uploads"].map(|s| (format!("svc{i:02}"), s)))
        .collect();
    assert_eq!(sources.len(), SERVICES * SOURCES_PER_SERVICE);
    for n in 0..DAYS * BACKUPS_PER_DAY {
        let at = start + every * (n as i32);
        let id = format!("bench-{n:05}");
        let rows: Vec<BackupSourceRecord> = sources
            .iter()
            .map(|(service, source)| BackupSourceRecord {
                backup_id: id.clone(),
                service: service.clone(),
                source: source.to_string(),
                status: "ok".into(),
                at,
                duration_ms: 1000 + n as u64,
                logical_bytes: 1 << 30,
                stored_bytes: 1 << 20,
            })
            .collect();
        db.record_backup_sources(&rows).unwrap();
        for copy in ["local", "offsite"] {
            db.record_copy(copy, &id, CopyState::Verified, None)
                .unwrap();
        }
    }
    for week in 0..DAYS / 7 {
        let at = start + SignedDuration::from_hours(24 * 7 * week);
        db.record_drill(&DrillRun {
            kind: "sandbox".into(),
            started_at: at,
            finished_at: at,
            exit_code: 0,
            rto_ms: Some(60_000),
            rpo_ms: Some(3_600_000),
            report: None,
            sources: sources
                .iter()
                .map(|(service, source)| DrilledSourceRecord {
                    service: service.clone(),
                    source: source.to_string(),
                    status: "passed".into(),
                    backup_id: None,
                    rto_ms: Some(30_000),
                    rpo_ms: Some(3_600_000),
                    detail: None,
                })
                .collect(),
        })
        .unwrap();
    }
    for n in 0..HEALTH_RUNS {
        let at = now - SignedDuration::from_mins((HEALTH_RUNS - n) as i64);
        db.record_health(&HealthRun {
            at: at.to_string(),
            status: "healthy".into(),
            exit_code: 0,
            duration_ms: 40,
            services: (0..SERVICES)
                .map(|i| ServiceHealth {
                    service: format!("svc{i:02}"),
                    status: "healthy".into(),
                    checks: ["db", "uploads"]
                        .map(|c| CheckRecord {
                            name: c.into(),
                            kind: "sqlite".into(),
                            status: "healthy".into(),
                            latency_ms: 1.0,
                            attempts: 1,
                            message: "ok".into(),
                            details: serde_json::Value::Null,
                        })
                        .to_vec(),
                })
                .collect(),
        })
        .unwrap();
    }
    drop(db);
    println!(
        "filled in {:.1} s: {} sources x 2 copies, {} backups, {} drills, {} health runs",
        filling.elapsed().as_secs_f64(),
        sources.len(),
        DAYS * BACKUPS_PER_DAY,
        DAYS / 7,
        HEALTH_RUNS
    );

    let figures = DaemonFigures::default();
    let db = StateDb::open(&config.stack.state_dir).unwrap();
    let text = drydock_metrics::scrape(&config, &db, now, &figures, Format::Prometheus).unwrap();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    println!("one scrape: {} bytes, {series} series", text.len());
    // Where a scrape's time goes: each state query on its own.
    let time = |what: &str, f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..20 {
            f();
        }
        println!(
            "  {what}: {:.2} ms",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    };
    time("last_good_backups", &|| {
        drop(db.last_good_backups().unwrap())
    });
    time("last_passed_drills", &|| {
        drop(db.last_passed_drills().unwrap())
    });
    time("latest_health", &|| drop(db.latest_health().unwrap()));
    time("latest_health_run", &|| {
        drop(db.latest_health_run().unwrap())
    });
    time("pending_restores", &|| drop(db.pending_restores().unwrap()));
    let mut open_db = Vec::new();
    let mut scrape_only = Vec::new();
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let db = StateDb::open(&config.stack.state_dir).unwrap();
        let opened = t.elapsed();
        let u = Instant::now();
        let text =
            drydock_metrics::scrape(&config, &db, Timestamp::now(), &figures, Format::Prometheus)
                .unwrap();
        std::hint::black_box(text);
        scrape_only.push(u.elapsed());
        open_db.push(opened + u.elapsed());
    }
    report("scrape (database open)", &mut scrape_only);
    report("open + scrape", &mut open_db);
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).min(times.len()) - 1];
    println!(
        "{what}: {} scrapes, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        times.len(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
}
