//! `drydock certify` through the real binary: an app service (SQLite + files, a
//! `process` runtime, an HTTPS endpoint signed by a test CA) walks the nine steps; the
//! wipe waits for confirmation; a failed step stops the routine and the next run
//! resumes there; steps that need deploying say so and keep the verdict incomplete.

mod common;

use common::Stack;
use drydock_testkit::http::{HttpServer, Route, TestCa};

fn https(ca: &TestCa, port: u16) -> HttpServer {
    HttpServer::start_on(
        port,
        vec![Route::new("/health", 200, r#"{"status":"UP"}"#)],
        Some(ca.leaf(&["localhost", "127.0.0.1"], -1, 90)),
    )
}

#[test]
fn certify_walks_the_routine_stops_at_failures_resumes_and_reports() {
    let ca = TestCa::new();
    let server = https(&ca, 0);
    let port = server.port();
    let stack = Stack::new("");
    let dir = stack.path().to_path_buf();
    ca.write_pem(&dir.join("ca.pem"));
    let flag = dir.join("app.running");
    stack.append_config(&format!(
        "[services.app]\nrole = \"app\"\nruntime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", timeout = \"10s\" }}\nhealth = [\n  {{ kind = \"https\", name = \"site\", url = \"https://localhost:{port}/health\", ca_file = \"ca.pem\", json_field = \"status\", json_equals = \"UP\" }},\n  {{ kind = \"process\", name = \"running\" }},\n]\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n",
        f = flag.display()
    ));
    rusqlite::Connection::open(dir.join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders (total) VALUES (9.5), (12.25);")
        .unwrap();
    std::fs::create_dir(dir.join("uploads")).unwrap();
    std::fs::write(dir.join("uploads/logo.png"), "png".repeat(100)).unwrap();
    std::fs::write(&flag, "").unwrap();

    // Steps 1-7 run; step 8 wipes, so without a terminal or --force it stops there.
    let (code, refused) = stack.json(&["certify", "app"]);
    assert_eq!(code, 3, "{refused:#}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("stopped before step 8 (wipe)"), "{error}");
    assert!(
        flag.exists() && dir.join("app.db").exists(),
        "nothing was wiped"
    );

    // With --force it resumes at step 8 and finishes: incomplete, because deploying is
    // not available yet, but every step drydock can run passed.
    let (code, report) = stack.json(&["certify", "app", "--force"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(report["resumed_at"], 8);
    let status: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        [
            "not-available",
            "passed",
            "not-available",
            "passed",
            "passed",
            "passed",
            "passed",
            "passed",
            "passed"
        ],
        "{report:#}"
    );
    let m = &report["metrics"];
    assert!(
        m["rto_ms"].as_u64().is_some() && m["rpo_ms"].as_u64().is_some(),
        "{m:#}"
    );
    assert!(
        m["backup_logical_bytes"].as_u64().unwrap() > 2 << 20,
        "{m:#}"
    );
    assert_eq!(m["external_check_success_pct"], 100.0);
    assert!(m["deploy_ms"].is_null() && m["idempotency_changes"].is_null());
    // The app's own data, the test data and the service are back.
    let total: f64 = rusqlite::Connection::open(dir.join("app.db"))
        .unwrap()
        .query_row("SELECT sum(total) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 21.75);
    assert!(flag.exists(), "the app runs again");
    let md = std::fs::read_to_string(report["report_files"][1].as_str().unwrap()).unwrap();
    assert!(md.contains("NOT production ready — incomplete"), "{md}");
    assert!(
        md.contains("| external check success rate | 100% |"),
        "{md}"
    );
    assert!(!md.contains("**PRODUCTION READY**"), "{md}");

    // From scratch with the endpoint down: step 2 fails with its reason and the routine
    // stops there.
    drop(server);
    let (code, report) = stack.json(&["certify", "app", "--restart", "--force"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "failed");
    assert_eq!(report["steps"][1]["status"], "failed");
    assert!(
        report["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("site (https)"),
        "{report:#}"
    );
    assert_eq!(
        report["steps"][2]["status"], "pending",
        "nothing after a failed step"
    );

    // The endpoint is back: the next run resumes at step 2.
    let _server = https(&ca, port);
    let (code, report) = stack.json(&["certify", "app", "--force"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["resumed_at"], 2);
    assert_eq!(report["steps"][8]["status"], "passed");
}
