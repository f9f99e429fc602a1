//! `drydock drill` through the real binary: a sandbox drill of a PostgreSQL + MariaDB +
//! Redis + SQLite + files stack, canaries, RTO/RPO targets, and corrupted backups.

mod common;

use common::Stack;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;

fn sqlite_and_files_stack(extra: &str) -> Stack {
    let stack = Stack::new(&format!(
        "{extra}[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n"
    ));
    let conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE projects (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
         INSERT INTO users SELECT i, 'user ' || i FROM c;
         INSERT INTO projects SELECT id, id, 'project of ' || name FROM users;",
    )
    .unwrap();
    std::fs::create_dir(stack.path().join("uploads")).unwrap();
    for i in 0..10 {
        std::fs::write(
            stack.path().join(format!("uploads/f{i}")),
            format!("file {i}").repeat(100),
        )
        .unwrap();
    }
    stack
}

#[test]
fn sandbox_drill_of_every_engine_passes_and_leaves_nothing_behind() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql("app", "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, 1000) g;");
    let my = MariaDb::start();
    my.create_db("shop");
    my.exec("shop", "CREATE TABLE o (id INT PRIMARY KEY, v TEXT); INSERT INTO o SELECT seq, MD5(seq) FROM seq_1_to_500;");
    let redis = RedisServer::start();
    redis.cli(&["SET", "k1", "v1"]);
    redis.cli(&["RPUSH", "l", "a", "b"]);
    let services = format!(
        "[services.pg]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n\
         [services.maria]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\" }}]\n\n\
         [services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"{}\" }}]\n\n",
        pg.url("app"),
        my.url("shop"),
        redis.url()
    );
    let stack = sqlite_and_files_stack(&services)
        .env("TEST_PG_PASSWORD", pg.password())
        .env("TEST_DB_PASSWORD", my.password());
    let (code, report) = stack.json(&["drill", "--report", "reports/weekly"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
    let sources = report["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5);
    for s in sources {
        assert_eq!(s["status"], "passed", "{s:#}");
        assert_eq!(s["fingerprint_matched"], true, "{s:#}");
        assert_eq!(s["canary"]["status"], "present", "{s:#}");
        assert!(
            s["rto_ms"].as_u64().is_some() && s["rpo_ms"].as_u64().is_some(),
            "{s:#}"
        );
        assert!(s["sandbox"].as_str().is_some(), "{s:#}");
    }
    assert_eq!(sources[0]["priority"], "critical", "critical sources first");
    let md = std::fs::read_to_string(stack.path().join("reports/weekly.md")).unwrap();
    assert!(
        md.contains("PASSED") && md.contains("| pg/postgres |") && md.contains("RTO"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.path().join("reports/weekly.json")).unwrap())
            .unwrap();
    assert_eq!(json["passed"], true);

    // Sandboxes are gone: no scratch databases left, no scratch files.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE '_drydock_sandbox_%'"
        )
        .trim(),
        "0"
    );
    assert!(!my
        .exec("shop", "SHOW DATABASES")
        .contains("_drydock_sandbox_"));
    let leftovers: Vec<_> = walkdir::WalkDir::new(stack.path().join("state/tmp"))
        .min_depth(1)
        .into_iter()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Production keeps its data (plus the canary).
    assert_eq!(pg.psql("app", "SELECT count(*) FROM t").trim(), "1000");
    assert!(pg
        .psql("app", "SELECT token FROM _drydock_canary")
        .contains("drill-"));
}

#[test]
fn a_canary_written_after_the_backup_is_reported_missing_and_targets_are_checked() {
    let stack = sqlite_and_files_stack("[drill]\nrto_target = \"5m\"\nrpo_target = \"5s\"\n\n");
    let (code, first) = stack.json(&["drill"]);
    assert_eq!(code, 0, "{first:#}");
    // A later canary: data written after the backup's consistent point.
    let conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    conn.execute(
        "UPDATE _drydock_canary SET token = 'written-later' WHERE id = 1",
        [],
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5500));
    let (code, report) = stack.json(&["drill", "app", "--use-backup", "latest"]);
    assert_eq!(
        code, 1,
        "passed, but the 5 s RPO target is missed: {report:#}"
    );
    assert_eq!(report["passed"], true);
    assert_eq!(report["targets_met"], false);
    let db = &report["sources"][0];
    assert_eq!(db["canary"]["status"], "not-in-backup", "{db:#}");
    assert!(db["rpo_ms"].as_u64().unwrap() >= 5500, "{db:#}");
    assert_eq!(db["rpo_met"], false);
    assert!(
        report.get("backup").is_none(),
        "no new backup with --use-backup"
    );
}

#[test]
fn a_corrupted_backup_fails_the_drill_naming_the_source() {
    let stack = sqlite_and_files_stack("");
    assert_eq!(stack.json(&["backup", "--all"]).0, 0);
    // Damage the sources' packs; the manifest is stored last, in its own data and tree
    // packs (the two newest), so the drill still finds the backup.
    let mut packs: Vec<_> = walkdir::WalkDir::new(stack.repo().join("data"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.into_path()))
        .collect();
    packs.sort();
    packs.truncate(packs.len().saturating_sub(2));
    assert!(!packs.is_empty());
    for (_, pack) in packs {
        let mut bytes = std::fs::read(&pack).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x55;
        std::fs::write(&pack, bytes).unwrap();
    }
    let (code, report) = stack.json(&["drill", "--use-backup", "latest"]);
    assert_eq!(code, 2, "{report:#}");
    let failed: Vec<_> = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{report:#}");
    for s in failed {
        assert!(
            s["error"]
                .as_str()
                .unwrap_or("")
                .contains("restore into the sandbox failed")
                || !s["differences"].as_array().unwrap().is_empty(),
            "{s:#}"
        );
    }
    let leftovers: Vec<_> = walkdir::WalkDir::new(stack.path().join("state/tmp"))
        .min_depth(1)
        .into_iter()
        .collect();
    assert!(
        leftovers.is_empty(),
        "sandboxes removed on failure too: {leftovers:?}"
    );
}

#[test]
fn a_drill_without_any_backup_could_not_run() {
    let stack = sqlite_and_files_stack("");
    assert_eq!(stack.json(&["backup", "--all"]).0, 0);
    let (code, report) = stack.json(&["drill", "--use-backup", "20200101-000000-aaaaaa"]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["sources"][0]["status"], "could-not-run");
    // A drill that did not run meets no target, in the JSON or in the Markdown report.
    assert_eq!(report["targets_met"], false, "{report:#}");
    for s in report["sources"].as_array().unwrap() {
        assert_ne!(s["rto_met"], true, "{s:#}");
        assert_ne!(s["rpo_met"], true, "{s:#}");
    }
    let files = report["report_files"].as_array().unwrap();
    let md = files
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".md"))
        .expect("a Markdown report");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("COULD NOT RUN"), "{md}");
    assert!(!md.contains(" met"), "a target is reported met:\n{md}");
    assert!(md.contains("not judged"), "{md}");
}

#[test]
fn a_backup_that_leaves_a_table_out_fails_the_drill_naming_it() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE patients (id serial PRIMARY KEY, name text); INSERT INTO patients (name) SELECT 'p' || g FROM generate_series(1, 300) g;
         CREATE TABLE audit_log (id serial PRIMARY KEY, line text); INSERT INTO audit_log (line) SELECT md5(g::text) FROM generate_series(1, 500) g;",
    );
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\", exclude_tables = [\"audit_log\"] }}]\n",
        pg.url("app")
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    let (code, report) = stack.json(&["drill"]);
    assert_eq!(code, 2, "{report:#}");
    let source = &report["sources"][0];
    assert_eq!(source["status"], "failed");
    // The restore itself matched its manifest: the table was never in the backup.
    assert_eq!(source["fingerprint_matched"], true, "{source:#}");
    assert_eq!(
        source["counts"]["tables"], 2,
        "patients and the canary: {source:#}"
    );
    let differences = source["differences"].to_string();
    assert!(
        differences.contains("table public.audit_log exists but is excluded from every backup"),
        "{differences}"
    );
    // Without the table, the same drill passes.
    pg.psql("app", "DROP TABLE audit_log");
    let (code, report) = stack.json(&["drill"]);
    assert_eq!(code, 0, "{report:#}");
}
