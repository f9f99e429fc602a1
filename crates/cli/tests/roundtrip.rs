//! One round trip per engine through the real binary, repository and servers:
//! backup, destroy, `restore latest`, verified by counts and fingerprints.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{assert_verified, Stack};
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;
use sha2::{Digest, Sha256};

fn backup_ok(stack: &Stack) -> serde_json::Value {
    let (code, report) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "backup failed: {report:#}");
    assert_eq!(report["status"], "ok", "{report:#}");
    report
}

#[test]
fn postgres_round_trip_readable_by_restic() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE owners (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE pets (id serial PRIMARY KEY, owner_id int REFERENCES owners(id), name text, photo bytea);
         INSERT INTO owners (name) SELECT 'owner ' || g FROM generate_series(1, 500) g;
         INSERT INTO pets (owner_id, name, photo) SELECT 1 + g % 500, 'pet ' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 3000) g;",
    );
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
        pg.url("app")
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    let report = backup_ok(&stack);
    let record = &report["sources"][0];
    assert_eq!(record["counts"]["rows"], 3500);
    assert_eq!(record["format"], "pg_dump-custom");

    // Debian's restic lists the snapshot with drydock's tags and dumps the exact bytes.
    let snaps = stack.restic(&["snapshots", "--json"]);
    assert!(snaps.status.success(), "{}", common::text(&snaps));
    let snaps: serde_json::Value = serde_json::from_slice(&snaps.stdout).unwrap();
    let tags: Vec<String> = snaps
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
        })
        .collect();
    for tag in [
        "kind:postgres",
        "priority:critical",
        "service:db",
        "source:postgres",
        &format!("backup:{}", report["id"].as_str().unwrap()),
    ] {
        assert!(
            tags.iter().any(|t| t == tag),
            "tag {tag} missing from {tags:?}"
        );
    }
    let dump = stack.restic(&[
        "dump",
        record["snapshot_id"].as_str().unwrap(),
        record["stored_path"].as_str().unwrap(),
    ]);
    assert!(dump.status.success(), "{}", common::text(&dump));
    assert_eq!(
        hex::encode(Sha256::digest(&dump.stdout)),
        record["sha256"].as_str().unwrap()
    );
    assert_eq!(
        dump.stdout.len() as u64,
        record["logical_bytes"].as_u64().unwrap()
    );
    assert!(
        dump.stdout.starts_with(b"PGDMP"),
        "a pg_dump custom-format archive"
    );

    pg.psql("postgres", "DROP DATABASE app");
    let (code, restored) = stack.json(&["restore", "latest", "--all"]);
    assert_verified(code, &restored);
    assert_eq!(pg.psql("app", "SELECT count(*) FROM pets").trim(), "3000");
}

#[test]
fn mariadb_round_trip() {
    let db = MariaDb::start();
    db.create_db("shop");
    db.exec(
        "shop",
        "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL) ENGINE=InnoDB;
         CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2), note TEXT NULL,
           FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
         INSERT INTO customers (name) VALUES ('ada'), ('grace'), ('Ünïcødé');
         INSERT INTO orders (customer_id, total, note) VALUES (1, 10.50, NULL), (2, 99.99, 'rush'), (3, 0.01, 'ok');",
    );
    let stack = Stack::new(&format!(
        "[services.mariadb]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", name = \"shop\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\" }}]\n",
        db.url("shop")
    ))
    .env("TEST_DB_PASSWORD", db.password());
    let report = backup_ok(&stack);
    assert_eq!(report["sources"][0]["counts"]["rows"], 6);
    db.exec("shop", "DROP TABLE orders; DROP TABLE customers;");
    let (code, restored) = stack.json(&["restore", "latest", "--service", "mariadb", "--force"]);
    assert_verified(code, &restored);
    assert_eq!(
        db.exec("shop", "SELECT name FROM customers WHERE id = 3")
            .trim(),
        "Ünïcødé"
    );
}

#[test]
fn redis_round_trip() {
    let redis = RedisServer::start_with_password("redis-canary-pw");
    for (k, v) in [("user:1", "ada"), ("user:2", "grace")] {
        redis.cli(&["SET", k, v]);
    }
    redis.cli(&["RPUSH", "queue", "a", "b", "c"]);
    redis.cli(&["HSET", "h", "f1", "v1", "f2", "v2"]);
    redis.cli(&["-n", "3", "SADD", "s", "x", "y"]);
    let stack = Stack::new(&format!(
        "[services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"{}\", password = \"${{env:TEST_REDIS_PASSWORD}}\" }}]\n",
        redis.url()
    ))
    .env("TEST_REDIS_PASSWORD", "redis-canary-pw");
    let report = backup_ok(&stack);
    assert_eq!(report["sources"][0]["counts"]["keys"], 5);
    redis.cli(&["FLUSHALL"]);
    let (code, restored) = stack.json(&["restore", "latest", "--all"]);
    assert_verified(code, &restored);
    assert_eq!(
        String::from_utf8_lossy(&redis.cli(&["LRANGE", "queue", "0", "-1"]).stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

/// A `process` runtime for a pretend app: a flag file says whether it runs.
fn process_runtime(dir: &Path) -> String {
    let flag = dir.join("app.running");
    format!(
        "runtime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", timeout = \"10s\" }}",
        f = flag.display()
    )
}

#[test]
fn sqlite_round_trip_stops_and_restarts_the_owning_service() {
    let stack_dir = tempfile::tempdir().unwrap();
    let db = stack_dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, n REAL, b BLOB);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
         INSERT INTO notes SELECT i, 'note ' || i, i / 3.0, randomblob(16) FROM c;",
    )
    .unwrap();
    drop(conn);
    let stack = Stack::new(&format!(
        "[services.app]\n{}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}]\n",
        process_runtime(stack_dir.path()),
        db.display()
    ));
    backup_ok(&stack);
    std::fs::write(&db, b"this is not a database any more").unwrap();
    std::fs::write(stack_dir.path().join("app.running"), "").unwrap();
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_verified(code, &restored);
    assert_eq!(
        restored["sources"][0]["service_action"],
        "stopped and started again"
    );
    assert!(
        stack_dir.path().join("app.running").exists(),
        "the service runs again"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(
        conn.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        2000
    );
}

#[test]
fn files_round_trip_with_hostile_names() {
    let data_dir = tempfile::tempdir().unwrap();
    let root = data_dir.path().join("data");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    let hostile: Vec<Vec<u8>> = vec![
        b"new\nline".to_vec(),
        b"-leading-dash".to_vec(),
        vec![b'b', 0xff, 0xfe, b'd'], // invalid UTF-8
        vec![b'x'; 255],
        b"spaces and 'quotes' \"too\"".to_vec(),
    ];
    for (i, name) in hostile.iter().enumerate() {
        std::fs::write(
            root.join(std::ffi::OsStr::from_bytes(name)),
            format!("content {i}"),
        )
        .unwrap();
    }
    std::fs::write(
        root.join("sub/deeper/big.bin"),
        (0..300_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::os::unix::fs::symlink("loop-b", root.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.join("loop-b")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("-leading-dash"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();

    let stack = Stack::new(&format!(
        "[services.web]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", name = \"uploads\", priority = \"critical\", path = \"{}\" }}]\n",
        root.display()
    ));
    let report = backup_ok(&stack);
    assert_eq!(report["sources"][0]["counts"]["symlinks"], 2);
    std::fs::remove_dir_all(&root).unwrap();
    let (code, restored) = stack.json(&["restore", "latest", "--all"]);
    assert_verified(code, &restored);
    for (i, name) in hostile.iter().enumerate() {
        let content = std::fs::read(root.join(std::ffi::OsStr::from_bytes(name))).unwrap();
        assert_eq!(content, format!("content {i}").as_bytes());
    }
    assert_eq!(
        std::fs::read_link(root.join("loop-a")).unwrap(),
        Path::new("loop-b")
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root.join("-leading-dash"))
                .unwrap()
                .permissions()
        ) & 0o777,
        0o751
    );
}

#[test]
fn redis_keys_expiring_after_the_backup_are_a_note_not_a_failure() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "durable", "stays"]);
    redis.cli(&["SET", "session:1", "short-lived", "PX", "12000"]);
    let stack = Stack::new(&format!(
        "[services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"{}\" }}]\n",
        redis.url()
    ));
    let report = backup_ok(&stack);
    assert_eq!(report["sources"][0]["counts"]["keys"], 1, "{report:#}");
    assert_eq!(report["sources"][0]["counts"]["expiring_keys"], 1);
    let expired = drydock_testkit::wait_until(std::time::Duration::from_secs(20), || {
        String::from_utf8_lossy(&redis.cli(&["EXISTS", "session:1"]).stdout).trim() == "0"
    });
    assert!(expired);
    redis.cli(&["FLUSHALL"]);
    let (code, restored) = stack.json(&["restore", "latest", "--all"]);
    assert_verified(code, &restored);
    let notes = restored["sources"][0]["notes"].as_array().unwrap();
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .contains("db0:expiring: missing (backup has 1 keys)"),
        "{notes:?}"
    );
}
