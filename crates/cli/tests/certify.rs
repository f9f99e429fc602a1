//! `drydock certify` through the real binary: an app service (SQLite + files, a
//! `process` runtime, a release deploy to a local folder, an HTTPS endpoint signed by a
//! test CA) in a stack that is a git repository walks the nine steps to PRODUCTION
//! READY; the wipe waits for confirmation; a failed step stops the routine and the next
//! run resumes there. A service drydock cannot deploy fails step 1 saying what to add,
//! and a second deploy that changes something (a hook that commits) fails step 3
//! naming what changed.

mod common;

use std::path::{Path, PathBuf};

use common::Stack;
use drydock_testkit::http::{HttpServer, Route, TestCa};
use serde_json::Value;

fn https(ca: &TestCa, port: u16) -> HttpServer {
    HttpServer::start_on(
        port,
        vec![Route::new("/health", 200, r#"{"status":"UP"}"#)],
        Some(ca.leaf(&["localhost", "127.0.0.1"], -1, 90)),
    )
}

/// The `app` service: a flag file is "the process", the release's restart starts it;
/// `check` is its external check; `extra` is appended to the config. The stack is a git
/// repository with one commit of `src/app.py` (and the config); the data is written
/// after, untracked.
fn app_stack(check: &str, extra: &str) -> (Stack, PathBuf) {
    let stack = Stack::new("");
    let flag = stack.path().join("app.running");
    stack.append_config(&format!(
        "[services.app]\nrole = \"app\"\nruntime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", timeout = \"10s\" }}\ndeploy = {{ kind = \"release\", build = \"mkdir -p out && echo $DRYDOCK_REV > out/rev\", output = \"out\", target = \"releases-target\", restart = \"touch '{f}'\" }}\nhealth = [\n  {check},\n  {{ kind = \"process\", name = \"running\" }},\n]\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n{extra}",
        f = flag.display()
    ));
    common::git::init(&stack, &[("src/app.py", "print('v1')\n")]);
    let dir = stack.path();
    rusqlite::Connection::open(dir.join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL); INSERT INTO orders (total) VALUES (9.5), (12.25);")
        .unwrap();
    std::fs::create_dir(dir.join("uploads")).unwrap();
    std::fs::write(dir.join("uploads/logo.png"), "png".repeat(100)).unwrap();
    (stack, flag)
}

fn statuses(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

/// The commit the release in `current` was built from.
fn live_rev(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("releases-target/current/rev"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn certify_deploys_recreates_and_reaches_production_ready_stopping_at_failures_and_resuming() {
    let ca = TestCa::new();
    let server = https(&ca, 0);
    let port = server.port();
    let (stack, flag) = app_stack(
        &format!("{{ kind = \"https\", name = \"site\", url = \"https://localhost:{port}/health\", ca_file = \"ca.pem\", json_field = \"status\", json_equals = \"UP\" }}"),
        "",
    );
    let dir = stack.path().to_path_buf();
    ca.write_pem(&dir.join("ca.pem"));
    let head = common::git::git(&dir, &["rev-parse", "HEAD"]);
    assert!(!flag.exists(), "nothing runs before the deploy");

    // Steps 1-7 run; step 8 wipes, so without a terminal or --force it stops there.
    let (code, refused) = stack.json(&["certify", "app"]);
    assert_eq!(code, 3, "{refused:#}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("stopped before step 8 (wipe)"), "{error}");
    assert!(
        flag.exists() && dir.join("app.db").exists(),
        "nothing was wiped"
    );
    // Step 1 deployed the release of HEAD, and step 3 deployed it again after
    // taking it down: three deployments (from scratch, recreate, the plain second).
    assert_eq!(live_rev(&dir), head);
    let (_, listed) = stack.json(&["deployments"]);
    let decisions: Vec<&str> = listed["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["skip", "app", "app"], "{listed:#}");

    // With --force it resumes at step 8 and finishes: every step passed.
    let (code, report) = stack.json(&["certify", "app", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "production-ready");
    assert_eq!(report["resumed_at"], 8);
    assert_eq!(statuses(&report), ["passed"; 9], "{report:#}");
    let step1 = &report["steps"][0];
    assert!(
        step1["detail"]
            .as_str()
            .unwrap()
            .contains("backup, deploy-app"),
        "{step1:#}"
    );
    let step3 = &report["steps"][2];
    let detail = step3["detail"].as_str().unwrap();
    assert!(
        detail.contains("stopped by its runtime `process`")
            && detail.contains("current unlinked and releases/")
            && detail.contains("changed nothing"),
        "{step3:#}"
    );
    assert_eq!(step3["metrics"]["decision"], "skip", "{step3:#}");
    let m = &report["metrics"];
    assert!(m["deploy_ms"].as_u64().unwrap() > 0, "{m:#}");
    assert_eq!(m["idempotency_changes"], 0, "{m:#}");
    assert!(
        m["rto_ms"].as_u64().is_some() && m["rpo_ms"].as_u64().is_some(),
        "{m:#}"
    );
    assert!(
        m["backup_logical_bytes"].as_u64().unwrap() > 2 << 20,
        "{m:#}"
    );
    assert_eq!(m["external_check_success_pct"], 100.0);
    // The app's own data, the test data and the service are back.
    let total: f64 = rusqlite::Connection::open(dir.join("app.db"))
        .unwrap()
        .query_row("SELECT sum(total) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 21.75);
    assert!(flag.exists(), "the app runs again");
    let md = std::fs::read_to_string(report["report_files"][1].as_str().unwrap()).unwrap();
    assert!(md.contains("Service status: **PRODUCTION READY**"), "{md}");
    assert!(
        md.contains(&format!("| deploy time | {} ms |", m["deploy_ms"])),
        "{md}"
    );
    assert!(
        md.contains("| idempotency (changes on a second deploy) | 0 |"),
        "{md}"
    );
    assert!(
        md.contains("| external check success rate | 100% |"),
        "{md}"
    );

    // From scratch with the endpoint down: step 2 fails with its reason and the routine
    // stops there.
    drop(server);
    let (code, report) = stack.json(&["certify", "app", "--restart", "--force"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "failed");
    assert_eq!(report["steps"][0]["status"], "passed", "{report:#}");
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

    // The endpoint is back: the next run resumes at step 2 and is ready again.
    let _server = https(&ca, port);
    let (code, report) = stack.json(&["certify", "app", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["resumed_at"], 2);
    assert_eq!(report["verdict"], "production-ready");
    assert_eq!(live_rev(&dir), head);
}

#[test]
fn a_service_drydock_cannot_deploy_fails_step_1_saying_what_to_add() {
    let stack = Stack::new(
        "[services.app]\nrole = \"app\"\nruntime = { kind = \"none\" }\nhealth = [{ kind = \"tcp\", name = \"port\", address = \"127.0.0.1:9\" }]\n\n[services.db]\nrole = \"infra\"\nruntime = { kind = \"external\" }\n",
    );
    let (code, report) = stack.json(&["certify", "app"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "failed");
    let detail = report["steps"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("app service without `deploy = { kind = ... }`")
            && detail.contains("kind = \"release\"")
            && detail.contains("drydock drill app"),
        "{detail}"
    );
    assert_eq!(
        statuses(&report)[1..],
        ["pending"; 8],
        "nothing runs after it"
    );

    let (code, report) = stack.json(&["certify", "db"]);
    assert_eq!(code, 2, "{report:#}");
    let detail = report["steps"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("infrastructure that drydock cannot deploy from scratch")
            && detail.contains("`external`"),
        "{detail}"
    );
    // Nothing was deployed.
    let (_, listed) = stack.json(&["deployments"]);
    assert_eq!(listed["deployments"], Value::Array(vec![]), "{listed:#}");
}

#[test]
fn a_second_deploy_that_changes_something_fails_step_3_naming_what_changed() {
    let server = HttpServer::start(vec![Route::new("/health", 200, "ok")], None);
    // Every deployment that ends well commits a change to the app's source: the next
    // plain deploy always finds something to deploy.
    let (stack, _flag) = app_stack(
        &format!(
            "{{ kind = \"http\", name = \"site\", url = \"http://127.0.0.1:{}/health\" }}",
            server.port()
        ),
        "\n[deploy.hooks]\npost_deploy = 'echo \"# bump\" >> src/app.py && git -c user.name=t -c user.email=t@example.invalid commit -qam bump'\n",
    );
    let (code, report) = stack.json(&["certify", "app", "--force"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "failed");
    assert_eq!(
        statuses(&report)[..4],
        ["passed", "passed", "failed", "pending"],
        "{report:#}"
    );
    let detail = report["steps"][2]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the second deploy is not idempotent")
            && detail.contains("decision `app`")
            && detail.contains("src/app.py (app)")
            && detail.contains("HEAD moved from")
            && detail.contains("deploy-app: live: app "),
        "{detail}"
    );
    let changes = report["metrics"]["idempotency_changes"].as_u64().unwrap();
    assert!(changes > 0, "{report:#}");
    assert!(
        detail.contains(&format!("changed {changes} thing(s)")),
        "{detail}"
    );
    let md = std::fs::read_to_string(report["report_files"][1].as_str().unwrap()).unwrap();
    assert!(
        md.contains("step 3 failed: the second deploy is not idempotent"),
        "{md}"
    );
}

#[test]
fn certify_while_another_deployment_runs_is_refused_and_records_nothing() {
    let server = HttpServer::start(vec![Route::new("/health", 200, "ok")], None);
    let (stack, _flag) = app_stack(
        &format!(
            "{{ kind = \"http\", name = \"site\", url = \"http://127.0.0.1:{}/health\" }}",
            server.port()
        ),
        "\n[deploy.hooks]\npre_deploy = \"sleep 4\"\n",
    );
    let mut running = stack
        .command(&["deploy"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, listed) = stack.json(&["deployments"]);
        if listed["deployments"][0]["outcome"] == "running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no deployment started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, refused) = stack.json(&["certify", "app"]);
    assert_eq!(code, 3, "{refused:#}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("another deployment holds"),
        "{refused:#}"
    );
    running.wait().unwrap();
    // Step 1 did not run: the next certify starts there.
    let db = drydock_state::StateDb::open(&stack.path().join("state")).unwrap();
    assert!(db.certify_steps("app").unwrap().is_empty());
}
