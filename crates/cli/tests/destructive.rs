//! Destructive drills and test data, through the real binary against real servers: a
//! PostgreSQL service and an app (SQLite + files) run by a `process` runtime are
//! populated, wiped, restored in place, started and verified; the refusals happen
//! before anything is stopped; an interrupted drill leaves a pending restore that
//! `status` and `drill` name and `restore` completes.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Stack;
use drydock_testkit::postgres::PgServer;

/// The app's runtime: a flag file that exists while it "runs".
fn process_runtime(dir: &Path) -> String {
    let flag = dir.join("app.running");
    format!(
        "runtime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", timeout = \"10s\" }}",
        f = flag.display()
    )
}

struct World {
    stack: Stack,
    pg: PgServer,
    app_db: PathBuf,
}

impl World {
    fn running(&self) -> bool {
        self.stack.path().join("app.running").exists()
    }
}

fn world() -> World {
    let pg = PgServer::start();
    pg.create_db("clinic");
    pg.psql(
        "clinic",
        "CREATE TABLE patients (id serial PRIMARY KEY, name text); INSERT INTO patients (name) SELECT 'p' || g FROM generate_series(1, 700) g;",
    );
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n[services.app]\n{}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"high\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n",
        pg.url("clinic"),
        process_runtime(Path::new("STACK")),
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    // The runtime's flag file lives in the stack folder, known only now.
    let config = stack.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("STACK", &stack.path().display().to_string());
    std::fs::write(&config, text).unwrap();
    let app_db = stack.path().join("app.db");
    rusqlite::Connection::open(&app_db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');")
        .unwrap();
    std::fs::create_dir(stack.path().join("uploads")).unwrap();
    std::fs::write(stack.path().join("uploads/scan.pdf"), "scan ".repeat(500)).unwrap();
    std::fs::write(stack.path().join("app.running"), "").unwrap();
    World { stack, pg, app_db }
}

#[test]
fn a_destructive_drill_wipes_restores_starts_and_proves_every_source() {
    let w = world();
    for service in ["db", "app"] {
        let (code, report) = w.stack.json(&["populate", service, "--seed", "9"]);
        assert_eq!(code, 0, "{report:#}");
        for s in report["sources"].as_array().unwrap() {
            assert!(s["measured"]["content_bytes"].as_u64().unwrap() >= 2 << 20);
            assert_eq!(s["measured"], s["expected"], "{report:#}");
        }
    }
    let (code, report) = w.stack.json(&["drill", "--destructive", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["kind"], "destructive");
    assert_eq!(report["passed"], true, "{:#}", report["services"]);
    for svc in report["services"].as_array().unwrap() {
        assert_eq!(svc["status"], "recovered", "{svc:#}");
        assert_eq!(svc["health"], "healthy", "{svc:#}");
        let steps: Vec<&str> = svc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(
            steps.contains(&"wipe") && steps.contains(&"restore and verify"),
            "{steps:?}"
        );
    }
    let sources = report["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    for s in sources {
        assert_eq!(s["status"], "passed", "{s:#}");
        assert_eq!(s["canary"]["status"], "present", "{s:#}");
        assert_eq!(s["test_data"]["matched"], true, "{s:#}");
        assert!(s["rto_ms"].as_u64().is_some() && s["rpo_ms"].as_u64().is_some());
    }
    // The data is back and the app runs again.
    assert_eq!(
        w.pg.psql("clinic", "SELECT count(*) FROM patients").trim(),
        "700"
    );
    let notes: String = rusqlite::Connection::open(&w.app_db)
        .unwrap()
        .query_row("SELECT body FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(notes, "keep me");
    assert!(w.running(), "the app was started again");
    // Reports in Markdown and JSON.
    let files = report["report_files"].as_array().unwrap();
    let md = std::fs::read_to_string(files[1].as_str().unwrap()).unwrap();
    assert!(
        md.contains("Destructive drill of stack `test`: PASSED"),
        "{md}"
    );
    assert!(md.contains("service `app`: recovered"), "{md}");
}

#[test]
fn a_destructive_drill_is_refused_before_anything_is_stopped() {
    let w = world();
    let untouched = |w: &World| {
        assert!(w.running(), "the app was stopped");
        assert!(w.app_db.exists() && w.stack.path().join("uploads/scan.pdf").exists());
        assert_eq!(
            w.pg.psql("clinic", "SELECT count(*) FROM patients").trim(),
            "700"
        );
    };
    // No backup to restore from.
    let (code, report) = w.stack.json(&[
        "drill",
        "--destructive",
        "--force",
        "--use-backup",
        "latest",
    ]);
    assert_eq!(code, 3, "{report:#}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("no verified backup"),
        "{report:#}"
    );
    untouched(&w);

    // A backup whose verification drydock has no record of (a fresh state) is not
    // good enough either.
    let (code, _) = w.stack.json(&["backup"]);
    assert_eq!(code, 0);
    std::fs::remove_dir_all(w.stack.path().join("state")).unwrap();
    let (code, report) = w.stack.json(&[
        "drill",
        "app",
        "--destructive",
        "--force",
        "--use-backup",
        "latest",
    ]);
    assert_eq!(code, 3, "{report:#}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("`drydock verify`"),
        "{report:#}"
    );
    untouched(&w);

    // Without a terminal and without --force, nothing is wiped.
    let (code, report) = w.stack.json(&["drill", "app", "--destructive"]);
    assert_eq!(code, 3, "{report:#}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("DELETES the data of app/db, app/uploads"),
        "{report:#}"
    );
    untouched(&w);

    // The drill's own backup fails (the database is down): nothing is stopped either.
    let mut pg = w.pg;
    pg.stop();
    let w = World { pg, ..w };
    let (code, report) = w.stack.json(&["drill", "--destructive", "--force"]);
    assert!(code == 2 || code == 3, "{report:#}");
    assert!(w.running() && w.app_db.exists(), "nothing was touched");
}

#[test]
fn an_interrupted_destructive_drill_is_named_by_status_and_drill_and_completed_by_restore() {
    let w = world();
    // A bigger database makes the restore take a moment after the wipe.
    rusqlite::Connection::open(&w.app_db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
             INSERT INTO blobs SELECT i, randomblob(2048) FROM c;",
        )
        .unwrap();
    let mut interrupted = false;
    for _ in 0..5 {
        let mut child = w
            .stack
            .command(&["drill", "app", "--destructive", "--force"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // SIGTERM the moment the database file is gone: after the wipe, before the
        // restore put it back.
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.app_db.exists() && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .ok();
        child.wait().unwrap();
        if !w.app_db.exists() {
            interrupted = true;
            break;
        }
    }
    assert!(
        interrupted,
        "could not catch the drill between wipe and restore"
    );

    let out = w.stack.run(&["status"]);
    let text = common::text(&out);
    assert!(
        text.contains("app") && text.contains("needs a restore"),
        "{text}"
    );
    let (_, status) = w.stack.json(&["status"]);
    let pending = &status["pending_restores"][0];
    assert_eq!(pending["service"], "app", "{status:#}");
    let backup = pending["backup_id"].as_str().unwrap().to_string();

    let (code, refused) = w.stack.json(&["drill", "app"]);
    assert_eq!(code, 3, "{refused:#}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("drydock restore {backup} --service app --force")),
        "{message}"
    );

    let (code, restored) = w
        .stack
        .json(&["restore", &backup, "--service", "app", "--force"]);
    common::assert_verified(code, &restored);
    assert!(w.app_db.exists());
    let (_, status) = w.stack.json(&["status"]);
    assert!(
        status["pending_restores"].as_array().unwrap().is_empty(),
        "{status:#}"
    );
    let (code, report) = w.stack.json(&["drill", "app", "--use-backup", "latest"]);
    assert_eq!(code, 0, "{report:#}");
}
