//! `drydock serve` with real parts: the real binary with seconds-cron schedules backing
//! up a real SQLite database and a directory (and PostgreSQL and Redis), checked
//! through the HTTP API with a real HTTP client; an overlapping run skipped, not
//! doubled; `kill -9` mid-backup and a restart (the run is interrupted, no partial
//! backup is good); SIGTERM past the stop timeout; the token rules; a schedule that
//! never fires refused by `validate`. Notifications through the daemon: `serve_notify.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::serve::{agent, finished, stack_with_data, Serve, TOKEN};
use common::Stack;
use serde_json::Value;

#[test]
fn scheduled_backups_run_and_are_seen_through_the_api() {
    let stack = stack_with_data(
        "[[schedule]]\njob = \"backup\"\ncron = \"*/3 * * * * *\"\n\n[[schedule]]\njob = \"health\"\ncron = \"*/2 * * * * *\"\n",
    );
    let serve = Serve::start(&stack);
    // The events stream, subscribed before the runs we wait for.
    let mut events = agent().get(&serve.url("/api/v1/events")).call().unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let runs = serve.wait_runs(Duration::from_secs(90), "two good backups", |r| {
        finished(r, "backup", "ok") >= 2 && finished(r, "health", "ok") >= 1
    });
    for run in runs
        .iter()
        .filter(|r| r["kind"] == "backup" && r["verdict"] == "ok")
    {
        assert_eq!(run["trigger"], "schedule", "{run}");
        assert!(run["finished"].is_string(), "{run}");
        assert!(
            run["summary"].as_str().unwrap().contains("2 source(s)"),
            "{run}"
        );
    }
    let mut reader = BufReader::new(events.body_mut().as_reader());
    let mut seen = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("data:") {
            seen.push(line.clone());
            if line.contains("\"what\":\"finished\"") {
                break;
            }
        }
        line.clear();
    }
    assert!(
        seen.iter().any(|l| l.contains("\"what\":\"started\"")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l.contains("\"what\":\"event\"")),
        "{seen:#?}"
    );

    let (status, backups) = serve.get("/api/v1/backups");
    assert_eq!(status, 200);
    let text = backups.to_string();
    assert!(
        text.contains("app/db") || text.contains("\"db\""),
        "{backups:#}"
    );
    let (status, health) = serve.get("/api/v1/health");
    assert_eq!(status, 200);
    assert!(!health.as_array().unwrap().is_empty(), "{health:#}");
    let (status, drills) = serve.get("/api/v1/drills");
    assert_eq!((status, drills.is_array()), (200, true));
    let (status, healthz) = serve.get("/healthz");
    assert_eq!(status, 200, "{healthz}");
    assert_eq!(healthz["ok"], true);
    metrics_show_the_runs(&serve);
    dashboard_shows_the_stack(&serve);

    let code = serve.terminate();
    assert_eq!(code, 0);
    // No run is left open, and every backup the API called good is in the repository.
    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    assert!(
        !list.to_string().contains(TOKEN),
        "the token leaked into a report"
    );
}

/// The dashboard's pages after good backups: HTML naming the sources, their drill-down
/// page and a run's page, no secret, and a 404 page for a source that does not exist.
fn dashboard_shows_the_stack(serve: &Serve) {
    let page = |path: &str| -> (u16, String, String) {
        let mut r = agent().get(&serve.url(path)).call().unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        (status, content_type, r.body_mut().read_to_string().unwrap())
    };
    let (status, content_type, html) = page("/");
    assert_eq!(status, 200, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for expected in ["app", "db", "uploads", "backup"] {
        assert!(
            html.contains(expected),
            "`{expected}` not on the page:\n{html}"
        );
    }
    assert!(!html.contains(TOKEN), "the token leaked into the dashboard");
    let (status, _, html) = page("/sources/app/db");
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("db"), "{html}");
    let (status, _, html) = page("/sources/app/nothing-here");
    assert_eq!(status, 404, "{html}");
    let run = serve.runs()[0]["id"].as_i64().unwrap();
    let (status, _, html) = page(&format!("/runs/{run}"));
    assert_eq!(status, 200, "{html}");
}

/// `/metrics` after good backups: Prometheus text that Debian's `promtool` accepts, the
/// runs counted, each source's last success there, and no secret.
fn metrics_show_the_runs(serve: &Serve) {
    let mut r = agent().get(&serve.url("/metrics")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = r.body_mut().read_to_string().unwrap();
    let count = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` sample in:\n{text}"))
    };
    assert!(
        count("drydock_runs_total{job=\"backup\",verdict=\"ok\"}") >= 2.0,
        "{text}"
    );
    let last = count("drydock_backup_last_success_timestamp_seconds{service=\"app\",source=\"db\",copy=\"local\"}");
    assert!(last > 1.7e9, "{text}");
    assert!(!text.contains(TOKEN), "the token leaked into the metrics");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's `prometheus` package; .ci/run installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn api_status_is_the_cli_status_and_writes_need_the_token() {
    // A schedule that stays quiet during the test: nothing changes between the calls.
    let stack = stack_with_data("[[schedule]]\njob = \"prune\"\ncron = \"0 4 1 1 *\"\n");
    let (code, report) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{report:#}");
    let serve = Serve::start(&stack);
    let (status, api) = serve.get("/api/v1/status");
    assert_eq!(status, 200, "{api}");
    let (code, cli) = stack.json(&["status"]);
    assert_eq!(code, 0);
    assert_eq!(timeless(api), timeless(cli));

    let (status, body) = serve.post("/api/v1/jobs/health", None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = serve.post("/api/v1/jobs/health", Some("Bearer wrong-token"));
    assert_eq!(status, 403, "{body}");
    let (status, body) = serve.post("/api/v1/jobs/health", Some(TOKEN));
    assert_eq!(
        status, 403,
        "a token without `Bearer` is not a bearer token: {body}"
    );
    assert!(!body.to_string().contains(TOKEN));
    let (status, body) = serve.post("/api/v1/jobs/defrag", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 404, "{body}");
    // Refused writes changed nothing: no run was recorded.
    assert!(serve.runs().is_empty(), "{:#?}", serve.runs());

    let (status, body) = serve.post("/api/v1/jobs/backup", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 202, "{body}");
    let runs = serve.wait_runs(Duration::from_secs(60), "the API backup", |r| {
        finished(r, "backup", "ok") == 1
    });
    insta::assert_json_snapshot!("api_job_run", runs[0], {
        ".id" => "[id]",
        ".started" => "[time]",
        ".finished" => "[time]",
        ".host" => "[host]",
        ".pid" => "[pid]",
        ".summary" => insta::dynamic_redaction(|value, _| {
            // The backup id in the summary changes; the rest of the line does not.
            let text = value.as_str().unwrap_or_default();
            let rest = text.split_once(" ok: ").map(|(_, r)| r).unwrap_or(text);
            format!("backup [id] ok: {rest}")
        }),
    });
    assert_eq!(serve.terminate(), 0);
}

/// The status report with the values that move with the clock blanked.
fn timeless(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    if k == "generated_at" || k.ends_with("_s") || k.starts_with("age") {
                        *x = Value::Null;
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[test]
fn a_run_still_going_at_its_next_slot_is_skipped_not_doubled() {
    let stack = Stack::new(
        "[[schedule]]\njob = \"health\"\ncron = \"* * * * * *\"\n\n[services.web]\nruntime = { kind = \"none\" }\nhealth = [{ kind = \"command\", name = \"slow\", run = \"sleep 3\", timeout = \"10s\", retries = 0 }]\n",
    );
    let serve = Serve::start(&stack);
    // Before the first backup there is no repository: a 404 that says so, not a 500.
    let (status, body) = serve.get("/api/v1/backups");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no repository at"),
        "{body}"
    );
    let runs = serve.wait_runs(Duration::from_secs(60), "two slow runs and skips", |r| {
        finished(r, "health", "ok") >= 2 && finished(r, "health", "skipped") >= 2
    });
    let skipped: Vec<&Value> = runs.iter().filter(|r| r["verdict"] == "skipped").collect();
    assert!(
        skipped[0]["summary"]
            .as_str()
            .unwrap()
            .contains("still running"),
        "{skipped:#?}"
    );
    // The runs that did run never overlapped.
    let mut ran: Vec<(String, String)> = runs
        .iter()
        .filter(|r| r["verdict"] == "ok")
        .map(|r| {
            (
                r["started"].as_str().unwrap().to_string(),
                r["finished"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ran.sort();
    for pair in ran.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (end, next): (jiff::Timestamp, jiff::Timestamp) =
            (a.1.parse().unwrap(), b.0.parse().unwrap());
        assert!(end <= next, "two runs overlapped: {a:?} {b:?}");
    }
    assert!(
        serve.stderr().iter().any(|l| l.contains("skipped")),
        "{:#?}",
        serve.stderr()
    );
    assert_eq!(serve.terminate(), 0);
}

#[test]
fn kill_9_mid_backup_then_restart_marks_the_run_interrupted_and_nothing_partial_is_good() {
    let stack = stack_with_data("[[schedule]]\njob = \"prune\"\ncron = \"0 4 1 1 *\"\n");
    let (code, report) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{report:#}");
    let (_, before) = stack.json(&["backups"]);
    assert_eq!(
        before["backups"].as_array().map(Vec::len),
        Some(1),
        "{before:#}"
    );
    big_files(&stack);
    let serve = Serve::start(&stack);
    let (status, body) = serve.post("/api/v1/jobs/backup", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 202, "{body}");
    let runs = serve.wait_runs(Duration::from_secs(30), "the backup to start", |r| {
        r.iter()
            .any(|x| x["kind"] == "backup" && x["finished"].is_null())
    });
    let id = runs[0]["id"].clone();
    std::thread::sleep(Duration::from_millis(300));
    serve.kill_9();

    let serve = Serve::start(&stack);
    let runs = serve.runs();
    let run = runs.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(run["verdict"], "interrupted", "{run:#}");
    assert!(run["finished"].is_string());
    assert!(
        run["summary"]
            .as_str()
            .unwrap()
            .contains("nothing it left unfinished is recorded as good"),
        "{run}"
    );
    assert!(
        serve.stderr().iter().any(|l| l.contains("was interrupted")),
        "{:#?}",
        serve.stderr()
    );
    // No backup from the killed run is listed (only the one before it), so none is
    // taken for good.
    let (status, backups) = serve.get("/api/v1/backups");
    assert_eq!(status, 200, "{backups:#}");
    let (code, cli) = stack.json(&["backups"]);
    assert_eq!(code, 0);
    assert_eq!(backups, cli);
    assert_eq!(cli, before, "a partial backup is listed");
    // The daemon goes on: a new backup runs to the end.
    let (status, _) = serve.post("/api/v1/jobs/backup", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 202);
    serve.wait_runs(
        Duration::from_secs(120),
        "a backup after the restart",
        |r| finished(r, "backup", "ok") == 1,
    );
    assert_eq!(serve.terminate(), 0);
}

/// Enough incompressible data (96 MiB) that a backup is still running a moment
/// after it started.
fn big_files(stack: &Stack) {
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..12 {
        let data: Vec<u8> = (0..8 << 20)
            .map(|_| {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                rng_state as u8
            })
            .collect();
        std::fs::write(stack.path().join(format!("uploads/big-{i}.bin")), data).unwrap();
    }
}

#[test]
fn sigterm_past_the_stop_timeout_cancels_the_run_and_records_nothing_partial() {
    let stack = stack_with_data("[[schedule]]\njob = \"prune\"\ncron = \"0 4 1 1 *\"\n");
    let config = stack.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("stop_timeout = \"20s\"", "stop_timeout = \"500ms\""),
    )
    .unwrap();
    let (code, report) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{report:#}");
    let (_, before) = stack.json(&["backups"]);
    big_files(&stack);
    let serve = Serve::start(&stack);
    let (status, _) = serve.post("/api/v1/jobs/backup", Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 202);
    serve.wait_runs(Duration::from_secs(30), "the backup to start", |r| {
        r.iter()
            .any(|x| x["kind"] == "backup" && x["finished"].is_null())
    });
    let stderr = Arc::clone(&serve.stderr);
    assert_eq!(serve.terminate(), 0);
    let lines = stderr.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SIGTERM received; stopping")),
        "{lines:#?}"
    );
    // Restarted, the daemon finds no open run: the stop closed it as interrupted.
    let serve = Serve::start(&stack);
    assert!(
        !serve.stderr().iter().any(|l| l.contains("was interrupted")),
        "{:#?}",
        serve.stderr()
    );
    let runs = serve.runs();
    assert_eq!(runs[0]["verdict"], "interrupted", "{runs:#?}");
    let (_, after) = stack.json(&["backups"]);
    assert_eq!(after, before, "a cancelled backup is listed");
    assert_eq!(serve.terminate(), 0);
}

#[test]
fn a_non_loopback_listen_without_a_token_is_refused() {
    let stack = Stack::new("[services.app]\nruntime = { kind = \"none\" }\n");
    let out = stack.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    let text = common::text(&out);
    assert!(
        text.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{text}"
    );
    assert!(!stack.path().join("state/serve.lock").exists() || text.contains("token"));
}

#[test]
fn a_schedule_that_never_fires_is_a_validate_error() {
    let stack = Stack::new(
        "[[schedule]]\njob = \"backup\"\ncron = \"0 0 31 2 *\"\n\n[services.app]\nruntime = { kind = \"none\" }\n",
    );
    let out = stack.run(&["validate", "--offline"]);
    assert_ne!(out.status.code(), Some(0));
    let text = common::text(&out);
    assert!(
        text.contains("drydock.toml:11: schedule[0].cron: `0 0 31 2 *` never fires"),
        "{text}"
    );
}

#[test]
fn scheduled_backups_of_postgres_and_redis_run_through_the_daemon() {
    let pg = drydock_testkit::postgres::PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'v' || g FROM generate_series(1, 300) g;",
    );
    let redis = drydock_testkit::redis::RedisServer::start();
    redis.cli(&["SET", "greeting", "hello"]);
    let stack = Stack::new(&format!(
        "[[schedule]]\njob = \"backup\"\ncron = \"*/3 * * * * *\"\n\n[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n[services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"{}\" }}]\n",
        pg.url("app"),
        redis.url()
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    let serve = Serve::start(&stack);
    let runs = serve.wait_runs(Duration::from_secs(120), "a good backup", |r| {
        finished(r, "backup", "ok") >= 1
    });
    let run = runs.iter().find(|r| r["verdict"] == "ok").unwrap();
    assert!(
        run["summary"].as_str().unwrap().contains("2 source(s)"),
        "{run}"
    );
    assert_eq!(serve.terminate(), 0);
    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    let text = list.to_string();
    assert!(
        text.contains("postgres") && text.contains("redis"),
        "{list:#}"
    );
    assert!(
        !text.contains(pg.password()),
        "a secret leaked into a report"
    );
}
