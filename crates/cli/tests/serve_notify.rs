//! Notifications of `drydock serve` through a real webhook receiver
//! (`drydock_testkit::receiver`): a failing source notifies once and recovers once; a
//! source past its schedule's period (its last backup three days old, nothing run) is
//! overdue once, in the metrics and on the dashboard too, and recovers once a good
//! backup lands; no secret in any payload.

mod common;

use std::time::{Duration, Instant};

use common::serve::{agent, finished, stack_with_data, Serve, TOKEN};
use serde_json::Value;

#[test]
fn a_failing_source_notifies_once_then_its_recovery_through_a_real_webhook() {
    let hook = drydock_testkit::receiver::Receiver::start(
        Vec::new(),
        drydock_testkit::receiver::Reply::status(200),
    );
    let hook_url = hook.url("/hooks/T0/secret-hook-token-5u8");
    let stack = stack_with_data(
        "[[schedule]]\njob = \"backup\"\ncron = \"*/2 * * * * *\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"${env:TEST_HOOK_URL}\"\n",
    )
    .env("TEST_HOOK_URL", &hook_url);
    // The database file is garbage: every backup fails that source.
    let db = stack.path().join("app.db");
    let good = std::fs::read(&db).unwrap();
    std::fs::write(&db, vec![0x5a; 64 * 1024]).unwrap();
    let serve = Serve::start(&stack);
    serve.wait_runs(Duration::from_secs(90), "three failed backups", |r| {
        finished(r, "backup", "failed") >= 3
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Good again: the next good backup is a recovery.
    std::fs::write(&db, &good).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The backup job's notifications (the source is overdue as well meanwhile: the
    // overdue watch's own test is below).
    let events = || -> Vec<String> {
        hook.received()
            .iter()
            .filter(|r| r.json()["job"] == "backup")
            .map(|r| r.json()["event"].as_str().unwrap_or("").to_string())
            .collect()
    };
    while !events().iter().any(|e| e == "recovery") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = serve.stderr();
    serve.terminate();
    let all_received = hook.received();
    let received: Vec<_> = all_received
        .iter()
        .filter(|r| r.json()["job"] == "backup")
        .collect();
    assert_eq!(
        events(),
        ["failure", "recovery"],
        "one failure for several failing runs, then one recovery: {:#?}\ndaemon log: {log:#?}",
        received.iter().map(|r| r.body_text()).collect::<Vec<_>>()
    );
    let failure = received[0].json();
    assert_eq!(failure["job"], "backup", "{failure:#}");
    assert!(
        failure.to_string().contains("app/db"),
        "the failing source is named: {failure:#}"
    );
    for r in &all_received {
        assert!(r.header("Idempotency-Key").is_some());
        let text = r.body_text();
        assert!(!text.contains("secret-hook-token-5u8"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
}

/// `GET /metrics`' value of the series `series` (labels included).
fn metric(serve: &Serve, series: &str) -> f64 {
    let mut r = agent().get(&serve.url("/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` sample in:\n{text}"))
}

#[test]
fn a_source_past_its_schedule_is_overdue_once_then_recovers_through_a_real_webhook() {
    let hook = drydock_testkit::receiver::Receiver::start(
        Vec::new(),
        drydock_testkit::receiver::Reply::status(200),
    );
    let hook_url = hook.url("/hooks/T0/secret-hook-token-7w2");
    // The critical source daily, the high one weekly, both at an hour at least 11 h
    // away: nothing backs up on schedule during the test. Health every second keeps
    // the scheduler loop (and the overdue watch with it) going round.
    let hour = (jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour()
        + 12)
        % 24;
    let stack = stack_with_data(&format!(
        "[[schedule]]\njob = \"backup\"\ncron = \"0 {hour} * * *\"\npriority = [\"critical\"]\ntimezone = \"UTC\"\n\n[[schedule]]\njob = \"backup\"\ncron = \"0 {hour} * * 0\"\npriority = [\"high\"]\ntimezone = \"UTC\"\n\n[[schedule]]\njob = \"health\"\ncron = \"* * * * * *\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"${{env:TEST_HOOK_URL}}\"\n\n[[notify]]\nkind = \"healthchecks\"\nurl = \"${{env:TEST_PING_URL}}\"\n"
    ))
    .env("TEST_HOOK_URL", &hook_url)
    .env("TEST_PING_URL", &hook.url("/ping/check-uuid-3k9"));
    // The last backup was three days ago (the binary's test clock, for this run only).
    let three_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72);
    let out = stack
        .command(&["backup", "--all"])
        .env("DRYDOCK_TEST_CLOCK", "1")
        .env("DRYDOCK_TEST_NOW", three_days_ago.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));

    let serve = Serve::start(&stack);
    let overdue = || -> Vec<Value> {
        hook.received()
            .iter()
            .filter(|r| r.path.starts_with("/hooks/"))
            .map(|r| r.json())
            .filter(|m| m["job"] == "overdue")
            .collect()
    };
    // The dead man's switch's pings after its first `/fail`, as the path's last part
    // ("fail", "start", or "" for success).
    let pings_since_fail = || -> Vec<String> {
        let pings: Vec<String> = hook
            .received()
            .iter()
            .filter_map(|r| r.path.strip_prefix("/ping/check-uuid-3k9"))
            .map(|rest| rest.trim_start_matches('/').to_string())
            .collect();
        match pings.iter().position(|p| p == "fail") {
            Some(first) => pings[first..].to_vec(),
            None => Vec::new(),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while overdue().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no overdue notification: {:#?}",
            serve.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Each source's period comes from its schedule: the daily one is 3 days old, past
    // 1.25 x 24 h; the weekly one is not past 1.25 x 7 days (against the RPO target
    // of 24 h it would be).
    let series =
        |name: &str, source: &str| format!("{name}{{service=\"app\",source=\"{source}\"}}");
    assert_eq!(
        metric(
            &serve,
            &series("drydock_backup_expected_period_seconds", "db")
        ),
        86_400.0
    );
    assert_eq!(
        metric(
            &serve,
            &series("drydock_backup_expected_period_seconds", "uploads")
        ),
        604_800.0
    );
    assert_eq!(metric(&serve, &series("drydock_backup_overdue", "db")), 1.0);
    assert_eq!(
        metric(&serve, &series("drydock_backup_overdue", "uploads")),
        0.0
    );
    let page = || {
        agent()
            .get(&serve.url("/"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let html = page();
    assert!(
        html.contains("overdue (no recent backup in every copy): app/db</p>"),
        "only the daily source is overdue on the dashboard:\n{html}"
    );
    // Several passes of the loop later (a health run every second), still one.
    let runs_now = finished(&serve.runs(), "health", "ok");
    serve.wait_runs(Duration::from_secs(60), "five more health runs", |r| {
        finished(r, "health", "ok") >= runs_now + 5
    });
    assert_eq!(
        overdue().len(),
        1,
        "one overdue notification: {:#?}",
        overdue()
    );
    // The switch went down with the overdue source and stays down: the good health
    // runs since (each pings `/start`) never pinged success.
    let pings = pings_since_fail();
    assert!(
        !pings.is_empty() && pings.iter().all(|p| p == "fail" || p == "start"),
        "the switch is told success while a source is overdue: {pings:?}"
    );
    let told = &overdue()[0];
    assert_eq!(told["event"], "failure", "{told:#}");
    assert!(
        told["title"]
            .as_str()
            .unwrap()
            .ends_with(": backup overdue (app/db)"),
        "{told:#}"
    );
    let line = told["failed"][0].as_str().unwrap();
    assert!(
        line.starts_with(
            "app/db: last good backup 3d 0h ago; expected every 1d 0h (overdue past 1d 6h)"
        ),
        "{told:#}"
    );
    assert_eq!(told["failed"].as_array().unwrap().len(), 1, "{told:#}");
    assert_eq!(told["look_closer"], "drydock status");
    assert!(
        told["host"].is_string() && told["stack"] == "test",
        "{told:#}"
    );

    // A good backup lands: one recovery.
    let (status, body) = serve.post("/api/v1/jobs/backup", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while overdue().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no recovery: {:#?}\n{:#?}",
            overdue(),
            serve.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events: Vec<Value> = overdue().iter().map(|m| m["event"].clone()).collect();
    // With nothing failing any more, the switch is told success again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pings_since_fail().iter().any(String::is_empty) {
        assert!(
            Instant::now() < deadline,
            "no success ping after the recovery: {:?}",
            pings_since_fail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(events, ["failure", "recovery"], "{:#?}", overdue());
    assert!(
        overdue()[1]["title"]
            .as_str()
            .unwrap()
            .ends_with(": backup no longer overdue (app/db)"),
        "{:#?}",
        overdue()
    );
    assert_eq!(metric(&serve, &series("drydock_backup_overdue", "db")), 0.0);
    assert!(!page().contains("overdue (no recent"), "{}", page());
    for r in hook.received() {
        let text = r.body_text();
        for secret in [
            "secret-hook-token-7w2",
            "check-uuid-3k9",
            TOKEN,
            common::REPO_PASSWORD,
        ] {
            assert!(!text.contains(secret), "a secret in a notification: {text}");
        }
    }
    assert_eq!(serve.terminate(), 0);
}
