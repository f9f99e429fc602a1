//! `drydock serve` with real parts: the real binary with seconds-cron schedules backing
//! up a real SQLite database and a directory (and PostgreSQL and Redis), checked
//! through the HTTP API with a real HTTP client; an overlapping run skipped, not
//! doubled; `kill -9` mid-backup and a restart (the run is interrupted, no partial
//! backup is good); SIGTERM past the stop timeout; the token rules; a schedule that
//! never fires refused by `validate`; notifications through a real webhook (a failing
//! source; a source past its schedule's period, overdue once, then recovered).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Stack;
use serde_json::Value;

const TOKEN: &str = "serve-token-canary-9f3k";

/// A running `drydock serve`, its stderr collected.
struct Serve {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(stack: &Stack) -> Serve {
        let mut child = stack
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("DRYDOCK_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", stderr.lock().unwrap()));
        Serve {
            child,
            addr: addr.parse().unwrap(),
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// (status, JSON body) of a GET.
    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = agent().get(&self.url(path)).call().unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    fn post(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut req = agent().post(&self.url(path));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let mut r = req.send_empty().unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    fn runs(&self) -> Vec<Value> {
        let (status, runs) = self.get("/api/v1/jobs");
        assert_eq!(status, 200, "{runs}");
        runs.as_array().unwrap().clone()
    }

    /// Waits until `done(runs)` holds, at most `timeout`.
    fn wait_runs(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.runs();
            if done(&runs) {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {runs:#?}\nstderr: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, and the exit code.
    fn terminate(mut self) -> i32 {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn finished(runs: &[Value], kind: &str, verdict: &str) -> usize {
    runs.iter()
        .filter(|r| r["kind"] == kind && r["verdict"] == verdict)
        .count()
}

/// A stack with a SQLite database (critical) and a directory (high), token set.
fn stack_with_data(schedules: &str) -> Stack {
    let stack = Stack::new(&format!(
        "[serve]\ntoken = \"${{env:TEST_SERVE_TOKEN}}\"\nstop_timeout = \"20s\"\n\n{schedules}\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n"
    ))
    .env("TEST_SERVE_TOKEN", TOKEN);
    let conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO notes (body) SELECT 'note ' || i FROM n;",
    )
    .unwrap();
    std::fs::create_dir_all(stack.path().join("uploads/a")).unwrap();
    std::fs::write(stack.path().join("uploads/a/one.txt"), "one").unwrap();
    std::fs::write(stack.path().join("uploads/two.bin"), vec![7u8; 100_000]).unwrap();
    stack
}

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
        "[[schedule]]\njob = \"backup\"\ncron = \"0 {hour} * * *\"\npriority = [\"critical\"]\ntimezone = \"UTC\"\n\n[[schedule]]\njob = \"backup\"\ncron = \"0 {hour} * * 0\"\npriority = [\"high\"]\ntimezone = \"UTC\"\n\n[[schedule]]\njob = \"health\"\ncron = \"* * * * * *\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"${{env:TEST_HOOK_URL}}\"\n"
    ))
    .env("TEST_HOOK_URL", &hook_url);
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
            .map(|r| r.json())
            .filter(|m| m["job"] == "overdue")
            .collect()
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
        for secret in ["secret-hook-token-7w2", TOKEN, common::REPO_PASSWORD] {
            assert!(!text.contains(secret), "a secret in a notification: {text}");
        }
    }
    assert_eq!(serve.terminate(), 0);
}
