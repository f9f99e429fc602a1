//! `drydock health`, `diagnose` and `heal` through the real binary, with the faults
//! operators meet: PostgreSQL killed, a service that crashes on start (bad config),
//! its port taken by another process, a target that accepts connections and never
//! answers. PostgreSQL runs under `pg_ctl` as an operator's `process` runtime would.

mod common;

use std::time::Instant;

use common::Stack;
use drydock_testkit::http::{HttpServer, PortHog, Route, SilentListener};
use drydock_testkit::postgres::{PgCtl, PgServer};

/// A stack whose service `db` is `pg` run by `pg_ctl`, with a postgres and a process
/// check (1 s timeout: a wrong listener must not slow the test).
fn pg_stack(pg: &PgServer, ctl: &PgCtl) -> Stack {
    Stack::new(&format!(
        "[services.db]\nrole = \"infra\"\nruntime = {{ kind = \"process\", start = \"{}\", stop = \"{}\", status = \"{}\", log_file = \"{}\", pid_file = \"{}\", data_dir = \"{}\", timeout = \"30s\" }}\nhealth = [\n  {{ kind = \"postgres\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\", timeout = \"1s\" }},\n  {{ kind = \"process\" }},\n]\n",
        ctl.start,
        ctl.stop,
        ctl.status,
        ctl.log_file.display(),
        ctl.pid_file.display(),
        ctl.data_dir.display(),
        pg.url("postgres"),
    ))
    .env("TEST_PG_PASSWORD", pg.password())
}

/// Runs a shell command (a pg_ctl one) and asserts it worked.
fn sh(command: &str) {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}: {}", common::text(&out));
}

fn issue<'a>(report: &'a serde_json::Value, pattern: &str) -> &'a serde_json::Value {
    report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pattern"] == pattern)
        .unwrap_or_else(|| panic!("no `{pattern}` issue in {report:#}"))
}

#[test]
fn killed_postgres_is_reported_diagnosed_and_healed() {
    let mut pg = PgServer::start();
    let ctl = pg.pg_ctl();
    sh(&ctl.start);
    let stack = pg_stack(&pg, &ctl);

    let (code, report) = stack.json(&["health"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["services"]["db"]["checks"][0]["status"], "healthy");

    // kill -9 the postmaster: its children follow, the PID file stays behind.
    let pid: i32 = std::fs::read_to_string(&ctl.pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(drydock_testkit::wait_until(
        std::time::Duration::from_secs(10),
        || pg.try_psql("postgres", "SELECT 1").is_err()
    ));
    // Until the orphaned postmaster is reaped (init here does it lazily), pg_ctl
    // still sees its PID and says "running".
    let stopped = drydock_testkit::wait_until(std::time::Duration::from_secs(20), || {
        !std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&ctl.status)
            .output()
            .unwrap()
            .status
            .success()
    });
    assert!(stopped, "pg_ctl status still says running");
    // A line with the password lands in the log: diagnose must not show it.
    let mut log = std::fs::read_to_string(&ctl.log_file).unwrap();
    log.push_str(&format!(
        "LOG:  client used password={} for user postgres\n",
        pg.password()
    ));
    std::fs::write(&ctl.log_file, log).unwrap();

    let (code, report) = stack.json(&["health"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["status"], "unhealthy");
    let db = &report["services"]["db"];
    assert_eq!(db["status"], "unhealthy");
    assert!(
        db["checks"][0]["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{db:#}"
    );
    assert_eq!(db["checks"][1]["message"], "not running");
    let out = stack.run(&["health"]);
    let text = common::text(&out);
    assert!(
        text.contains("stack test: unhealthy") && text.contains("db ") && text.contains("critical"),
        "{text}"
    );

    let (code, report) = stack.json(&["diagnose"]);
    assert_eq!(code, 2, "{report:#}");
    let down = issue(&report, "not_running");
    assert_eq!(down["severity"], "critical");
    let evidence = down["evidence"].to_string();
    assert!(evidence.contains("stale PID file"), "{evidence}");
    assert!(evidence.contains("last log line:"), "{evidence}");
    assert!(!report["logs"]["db"].as_array().unwrap().is_empty());
    assert_eq!(report["services"]["db"]["runtime"]["state"], "stopped");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("db is unhealthy: service is not running"),
        "{}",
        report["summary"]
    );
    let all = report.to_string();
    assert!(
        !all.contains(pg.password()),
        "a secret leaked into diagnose"
    );
    assert!(all.contains("password=[REDACTED]"));

    let (code, report) = stack.json(&["heal", "--backoff", "200ms", "--wait", "20s"]);
    assert_eq!(code, 0, "{report:#}");
    let db = &report["services"][0];
    assert_eq!(db["outcome"], "fixed");
    assert_eq!(db["before"], "unhealthy");
    assert_eq!(db["after"], "healthy");
    assert_eq!(db["attempts"][0]["action"], "start");
    assert_eq!(db["attempts"][0]["ok"], true);

    let (code, report) = stack.json(&["health", "db"]);
    assert_eq!(code, 0, "{report:#}");
    // Every run was recorded.
    let state = rusqlite::Connection::open(stack.path().join("state/state.db")).unwrap();
    let runs: i64 = state
        .query_row("SELECT COUNT(*) FROM health_runs", [], |r| r.get(0))
        .unwrap();
    assert!(runs >= 3, "{runs} runs recorded");
    let last: String = state
        .query_row(
            "SELECT status FROM health_services WHERE service = 'db' ORDER BY run_id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "healthy");
    sh(&ctl.stop);
}

#[test]
fn a_service_that_crashes_on_start_is_tried_three_times_then_declared_not_fixable() {
    let mut pg = PgServer::start();
    let ctl = pg.pg_ctl();
    let conf = ctl.data_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nwork_mem = 'plenty'\n");
    std::fs::write(&conf, text).unwrap();
    let stack = pg_stack(&pg, &ctl);

    let (code, report) = stack.json(&["heal", "--dry-run"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["services"][0]["outcome"], "would-try");
    assert!(report["services"][0]["attempts"]
        .as_array()
        .unwrap()
        .is_empty());

    let began = Instant::now();
    let (code, report) = stack.json(&["heal", "--backoff", "200ms", "--wait", "5s"]);
    assert_eq!(code, 2, "{report:#}");
    let db = &report["services"][0];
    assert_eq!(db["outcome"], "not-fixable");
    let attempts = db["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{db:#}");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1);
        assert_eq!(a["action"], "start");
        assert_eq!(a["ok"], false);
        assert!(
            a["message"].as_str().unwrap().contains("start failed"),
            "{a:#}"
        );
    }
    // Exponential backoff: 200 ms, then 400 ms, none after the last attempt.
    assert_eq!(attempts[0]["backoff_ms"], 200);
    assert_eq!(attempts[1]["backoff_ms"], 400);
    assert!(attempts[2]["backoff_ms"].is_null());
    assert!(began.elapsed().as_millis() >= 600);
    let config_error = db["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pattern"] == "configuration_error")
        .unwrap_or_else(|| panic!("{db:#}"));
    assert!(
        config_error["evidence"]
            .to_string()
            .contains("invalid value for parameter \\\"work_mem\\\""),
        "{config_error:#}"
    );
    let needs = db["needs"].as_str().unwrap();
    assert!(
        needs.contains("recreated") && needs.contains("restored from the latest verified backup"),
        "{needs}"
    );

    // The failed starts are remembered: diagnose calls it a crash loop.
    let (code, report) = stack.json(&["diagnose"]);
    assert_eq!(code, 2, "{report:#}");
    let crash_loop = issue(&report, "crash_loop");
    assert!(
        crash_loop["details"]
            .as_str()
            .unwrap()
            .contains("heal: 3 failed start attempts in the last hour"),
        "{crash_loop:#}"
    );

    let out = stack.run(&["heal", "--backoff", "100ms", "--wait", "2s"]);
    assert_eq!(out.status.code(), Some(2));
    let text = common::text(&out);
    assert!(text.contains("attempt 3 (start"), "{text}");
    assert!(text.contains("cannot be fixed by heal"), "{text}");
}

#[test]
fn a_port_held_by_another_process_is_named_with_its_pid() {
    let mut pg = PgServer::start();
    let ctl = pg.pg_ctl();
    let hog = PortHog::start(pg.port());
    let stack = pg_stack(&pg, &ctl);

    let (code, report) = stack.json(&["diagnose", "--lines", "20"]);
    assert_eq!(code, 2, "{report:#}");
    let conflict = issue(&report, "port_in_use");
    assert_eq!(conflict["severity"], "critical");
    let details = conflict["details"].as_str().unwrap();
    assert!(
        details.contains(&format!(
            "127.0.0.1:{} is held by PID {}",
            pg.port(),
            hog.pid()
        )),
        "{details}"
    );
    assert!(details.contains("python3"), "{details}");
    let port = &report["services"]["db"]["ports"][0];
    assert_eq!(port["pid"], hog.pid());
    assert_eq!(port["listening"], true);

    // Heal tries, PostgreSQL cannot bind, and the log says so.
    let (code, report) = stack.json(&["heal", "--backoff", "100ms", "--wait", "2s"]);
    assert_eq!(code, 2, "{report:#}");
    let db = &report["services"][0];
    let evidence = db["diagnosis"].to_string();
    assert!(evidence.contains("Address already in use"), "{evidence}");
    assert!(
        evidence.contains(&format!("PID {}", hog.pid())),
        "{evidence}"
    );
}

#[test]
fn a_silent_target_times_out_while_the_others_report_on_time() {
    let silent = SilentListener::start();
    let hanging = HttpServer::start(vec![Route::hanging("/health")], None);
    let fine = HttpServer::start(vec![Route::new("/health", 200, "ok")], None);
    let stack = Stack::new(&format!(
        "[services.api]\nruntime = {{ kind = \"external\" }}\nhealth = [\n  {{ kind = \"http\", name = \"hangs\", url = \"{}\", timeout = \"1s\" }},\n  {{ kind = \"tcp\", name = \"silent-ok\", address = \"127.0.0.1:{}\", timeout = \"1s\" }},\n  {{ kind = \"redis\", name = \"silent-redis\", url = \"redis://127.0.0.1:{}\", timeout = \"1s\" }},\n  {{ kind = \"postgres\", name = \"silent-pg\", url = \"postgres://app@127.0.0.1:{}/app\", timeout = \"1s\" }},\n  {{ kind = \"http\", name = \"fine\", url = \"{}\" }},\n]\n",
        hanging.url("/health"),
        silent.port(),
        silent.port(),
        silent.port(),
        fine.url("/health"),
    ));
    let (code, report) = stack.json(&["health"]);
    assert_eq!(code, 2, "{report:#}");
    let checks = report["services"]["api"]["checks"].as_array().unwrap();
    let by = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap();
    for name in ["hangs", "silent-redis", "silent-pg"] {
        assert_eq!(by(name)["status"], "critical", "{:#}", by(name));
    }
    assert!(
        by("hangs")["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{:#}",
        by("hangs")
    );
    // Accepting connections is all a tcp check asks.
    assert_eq!(by("silent-ok")["status"], "healthy");
    assert_eq!(by("fine")["status"], "healthy");
    // Concurrent: three 1 s timeouts cost about one second, not three.
    assert!(report["duration_ms"].as_u64().unwrap() < 2500, "{report:#}");

    // drydock may not start or stop an external service: heal says so and changes nothing.
    let (code, report) = stack.json(&["heal"]);
    assert_eq!(code, 2, "{report:#}");
    let api = &report["services"][0];
    assert_eq!(api["outcome"], "not-fixable");
    assert!(api["attempts"].as_array().unwrap().is_empty());
    assert!(
        api["summary"]
            .as_str()
            .unwrap()
            .contains("runtime `external`"),
        "{api:#}"
    );
    // Merely down, and not drydock's to start: the operator starts it; no backup needed.
    let needs = api["needs"].as_str().unwrap().to_lowercase();
    assert!(
        needs.contains("start it yourself; drydock cannot start external services")
            && !needs.contains("recreated"),
        "{api:#}"
    );
}

#[test]
fn diagnose_and_heal_agree_that_a_down_external_service_is_the_operators_to_start() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let stack = Stack::new(&format!(
        "[services.api]\nruntime = {{ kind = \"external\" }}\nhealth = [{{ kind = \"tcp\", name = \"port\", address = \"127.0.0.1:{port}\", timeout = \"1s\" }}]\n"
    ));
    let (code, report) = stack.json(&["diagnose"]);
    assert_eq!(code, 2, "{report:#}");
    let fixes: Vec<&str> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["suggested_fix"].as_str().unwrap())
        .collect();
    assert!(
        fixes
            .iter()
            .any(|f| f.contains("Start it yourself; drydock cannot start external services")),
        "{report:#}"
    );
    assert!(
        fixes
            .iter()
            .all(|f| !f.contains("drydock heal") && !f.contains("SERVICE")),
        "{report:#}"
    );
    let (code, report) = stack.json(&["heal"]);
    assert_eq!(code, 2, "{report:#}");
    let needs = report["services"][0]["needs"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        needs.contains("start it yourself; drydock cannot start external services"),
        "{report:#}"
    );
}

#[test]
fn unknown_services_are_refused_and_services_without_checks_use_their_data() {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"sqlite\", priority = \"high\", path = \"app.db\" }]\n",
    );
    let (code, report) = stack.json(&["health", "nope"]);
    assert_eq!(code, 3, "{report:#}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("no service `nope`"),
        "{report:#}"
    );
    // app.db does not exist yet: derived checks find that.
    let (code, report) = stack.json(&["health"]);
    assert_eq!(code, 2, "{report:#}");
    let app = &report["services"]["app"];
    assert_eq!(app["declared"], false);
    assert_eq!(app["checks"][0]["kind"], "sqlite");
    assert!(app["checks"][0]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    rusqlite::Connection::open(stack.path().join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let (code, report) = stack.json(&["health"]);
    assert_eq!(code, 0, "{report:#}");
    let (code, report) = stack.json(&["diagnose"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["summary"],
        "all 1 service(s) healthy; nothing to diagnose"
    );
    let (code, report) = stack.json(&["heal"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["services"][0]["outcome"], "healthy");
}

#[test]
fn health_diagnose_and_heal_json_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "starting\nFATAL: could not bind: Address already in use\n",
    )
    .unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"process\", start = \"exit 1\", stop = \"true\", status = \"test -e {}\", log_file = \"{}\" }}\nhealth = [{{ kind = \"command\", run = \"echo ok\" }}, {{ kind = \"process\", retries = 0 }}]\n\n[services.web]\nruntime = {{ kind = \"none\" }}\nhealth = [{{ kind = \"command\", name = \"slow\", run = \"echo slow; exit 1\", warn_exit_codes = [1] }}]\n",
        flag.display(),
        log.display()
    ));
    let (code, health) = stack.json(&["health"]);
    assert_eq!(code, 2);
    insta::assert_json_snapshot!("health", health, {
        ".timestamp" => "[time]", ".duration_ms" => "[ms]",
        ".services.*.checks[].latency_ms" => "[ms]", ".services.*.checks[].details.latency_ms" => "[ms]",
    });
    let (code, diagnose) = stack.json(&["diagnose", "--lines", "5"]);
    assert_eq!(code, 2);
    insta::assert_json_snapshot!("diagnose", diagnose, {
        ".timestamp" => "[time]", ".resource_usage.cpu" => "[usage]", ".resource_usage.memory" => "[usage]", ".resource_usage.disk" => "[usage]",
        ".services.*.checks[].latency_ms" => "[ms]", ".services.*.checks[].details.latency_ms" => "[ms]",
        ".services.*.resources.disks[].total_bytes" => "[bytes]", ".services.*.resources.disks[].free_bytes" => "[bytes]",
        ".services.*.resources.disks[].free_pct" => "[pct]", ".services.*.log_source" => "[path]",
    });
    let (code, heal) = stack.json(&["heal", "--dry-run", "--backoff", "1s"]);
    assert_eq!(code, 1);
    insta::assert_json_snapshot!("heal", heal, { ".timestamp" => "[time]" });
}
