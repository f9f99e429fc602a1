//! A failed restore never costs live data, for every engine (PostgreSQL, MariaDB,
//! Redis, SQLite, files, a Docker volume): the backup's stored data is damaged after the
//! backup, the restore over changed live data fails, and the live data is exactly as it was,
//! judged by tools drydock did not write (`pg_dump`, `mariadb-dump` + `CHECKSUM
//! TABLE`, Redis `DEBUG DIGEST`, `sqlite3 .dump`, a walk hashing every file). A
//! successful restore over live data swaps a copy in that was verified beside it
//! (PostgreSQL: a scratch database renamed in, its sessions ended; MariaDB: tables
//! renamed across, the database's character set kept), and a restore that began
//! replacing live data is owed (`status`, `health`) until one verifies.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::oracle::{lstat_walk, mariadb_oracle, pg_dump, redis_digest, sqlite_dump};
use common::Stack;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;

/// Every pack file of the local repository.
fn packs(stack: &Stack) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(stack.repo().join("data"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// Flips bytes in the middle of the largest pack written since `before`: the data of
/// the one big source backed up in between (manifests and trees are small).
fn damage_source_data(stack: &Stack, before: &BTreeSet<PathBuf>) {
    let newest = packs(stack)
        .difference(before)
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .cloned()
        .expect("the backup wrote a pack");
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&newest, bytes).unwrap();
}

/// Backs up, damages that backup's data, changes the live data, then restores over it
/// with `--force`: the restore must fail, and `oracle` must read the changed data back.
fn failed_restore_leaves_live_data(
    stack: &Stack,
    change: impl Fn(),
    oracle: impl Fn() -> String,
) -> serde_json::Value {
    let before = packs(stack);
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report:#}");
    damage_source_data(stack, &before);
    change();
    let live = oracle();
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_ne!(code, 0, "a restore from damaged data must fail: {report:#}");
    assert_eq!(report["verified"], false, "{report:#}");
    assert_eq!(
        oracle(),
        live,
        "the live data changed although the restore failed: {report:#}"
    );
    let (_, status) = stack.json(&["status"]);
    assert!(
        status["pending_restores"].as_array().unwrap().is_empty(),
        "nothing was replaced, so nothing is owed: {status:#}"
    );
    report
}

fn pg_stack(pg: &PgServer) -> Stack {
    Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
        pg.url("app")
    ))
    .env("TEST_PG_PASSWORD", pg.password())
}

/// Rows of random text: the archive does not compress away, so its pack is the largest.
const PG_ROWS: &str = "CREATE TABLE t (id int PRIMARY KEY, body text NOT NULL);
     INSERT INTO t SELECT i, md5(random()::text) || md5(random()::text) FROM generate_series(1, 20000) i;
     CREATE TABLE child (id int PRIMARY KEY, t_id int REFERENCES t(id));
     INSERT INTO child SELECT i, i FROM generate_series(1, 100) i;";

#[test]
fn postgres_failed_restore_keeps_the_live_database() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql("app", PG_ROWS);
    let stack = pg_stack(&pg);
    let report = failed_restore_leaves_live_data(
        &stack,
        || {
            pg.psql("app", "UPDATE t SET body = 'changed' WHERE id <= 10");
        },
        || pg_dump(&pg, "app"),
    );
    let note = report["sources"][0]["notes"].to_string();
    assert!(note.contains("was not changed"), "{report:#}");
    // No scratch database is left behind.
    let dbs = pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1");
    assert!(!dbs.contains("_drydock_"), "{dbs}");
}

#[test]
fn postgres_restore_swaps_in_a_verified_copy_and_ends_open_sessions() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql("app", PG_ROWS);
    let stack = pg_stack(&pg);
    assert_eq!(stack.json(&["backup"]).0, 0);
    let backed_up = pg_dump(&pg, "app");
    pg.psql(
        "app",
        "DELETE FROM child; DELETE FROM t WHERE id > 100; CREATE TABLE later (x int);",
    );
    // An application session holding the database open.
    let mut app = pg.connect("app");
    app.simple_query("SELECT 1").unwrap();
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(pg_dump(&pg, "app"), backed_up, "{report:#}");
    assert!(
        app.simple_query("SELECT 1").is_err(),
        "the replaced database's sessions were ended"
    );
    let dbs = pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1");
    assert!(!dbs.contains("_drydock_"), "{dbs}");
}

/// Without CREATEDB the archive goes into the live database in one transaction: a
/// failure rolls back, but the restore had begun replacing data, so it is owed until a
/// restore verifies; `status` lists it and `health` reports the service critical.
#[test]
fn postgres_restore_without_createdb_is_one_transaction_and_owed_until_verified() {
    let pg = PgServer::start();
    pg.create_user("app", "app-canary-pw", false);
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"postgres://app@127.0.0.1:{}/app\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
        pg.port()
    ))
    .env("TEST_PG_PASSWORD", "app-canary-pw");
    let owner = |sql: &str| {
        let mut c = postgres::Config::new()
            .host("127.0.0.1")
            .port(pg.port())
            .user("app")
            .password("app-canary-pw")
            .dbname("app")
            .connect(postgres::NoTls)
            .unwrap();
        c.batch_execute(sql).unwrap();
    };
    owner(PG_ROWS);
    let (code, good) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{good:#}");
    let good_id = good["id"].as_str().unwrap().to_string();
    let backed_up = pg_dump(&pg, "app");
    owner("UPDATE t SET body = 'second' WHERE id <= 5");
    let before = packs(&stack);
    assert_eq!(stack.json(&["backup"]).0, 0);
    damage_source_data(&stack, &before);
    owner("UPDATE t SET body = 'live' WHERE id <= 5");
    let live = pg_dump(&pg, "app");

    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_ne!(code, 0, "{report:#}");
    assert_eq!(pg_dump(&pg, "app"), live, "rolled back: {report:#}");
    let (_, status) = stack.json(&["status"]);
    let owed = &status["pending_restores"][0];
    assert_eq!(owed["service"], "db", "{status:#}");
    let (code, health) = stack.json(&["health"]);
    assert_eq!(code, 2, "{health:#}");
    let check = health["services"]["db"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore-owed")
        .cloned()
        .unwrap_or_else(|| panic!("{health:#}"));
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .starts_with("restore owed since "),
        "{check:#}"
    );

    let (code, report) = stack.json(&["restore", &good_id, "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(pg_dump(&pg, "app"), backed_up);
    let (_, status) = stack.json(&["status"]);
    assert!(
        status["pending_restores"].as_array().unwrap().is_empty(),
        "{status:#}"
    );
}

fn mariadb_stack(db: &MariaDb) -> Stack {
    Stack::new(&format!(
        "[services.shop]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_MY_PASSWORD}}\" }}]\n",
        db.url("shop")
    ))
    .env("TEST_MY_PASSWORD", db.password())
}

fn charset(db: &MariaDb) -> String {
    db.exec(
        "mysql",
        "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'",
    )
}

const MY_ROWS: &str = "CREATE TABLE t (id INT PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB;
     INSERT INTO t WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
         SELECT i, CONCAT(MD5(RAND()), MD5(RAND()), '🚢') FROM s;
     CREATE TABLE child (id INT PRIMARY KEY, t_id INT, FOREIGN KEY (t_id) REFERENCES t(id)) ENGINE=InnoDB;
     INSERT INTO child SELECT id, id FROM t WHERE id <= 100;";

#[test]
fn mariadb_failed_restore_keeps_the_live_database() {
    let db = MariaDb::start();
    db.exec(
        "mysql",
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    );
    db.exec(
        "shop",
        &format!("SET SESSION max_recursive_iterations = 100000; {MY_ROWS}"),
    );
    let stack = mariadb_stack(&db);
    failed_restore_leaves_live_data(
        &stack,
        || {
            db.exec("shop", "UPDATE t SET body = 'changed' WHERE id <= 10");
        },
        || mariadb_oracle(&db, "shop"),
    );
    let dbs = db.exec("mysql", "SHOW DATABASES");
    assert!(!dbs.contains("_drydock_"), "{dbs}");
}

/// The verified tables are renamed in (foreign keys intact), and a database recreated
/// by a restore keeps the backup's character set and collation, whatever the server's
/// defaults (latin1 here).
#[test]
fn mariadb_restore_renames_verified_tables_in_and_keeps_the_character_set() {
    let db = MariaDb::start();
    db.exec(
        "mysql",
        "SET GLOBAL character_set_server = 'latin1'; SET GLOBAL collation_server = 'latin1_swedish_ci';",
    );
    db.exec(
        "mysql",
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    );
    db.exec(
        "shop",
        &format!("SET SESSION max_recursive_iterations = 100000; {MY_ROWS}"),
    );
    let stack = mariadb_stack(&db);
    assert_eq!(stack.json(&["backup"]).0, 0);
    let backed_up = mariadb_oracle(&db, "shop");
    db.exec(
        "shop",
        "DELETE FROM child; DELETE FROM t WHERE id > 100; CREATE TABLE later (x INT);",
    );
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(mariadb_oracle(&db, "shop"), backed_up);
    assert_eq!(charset(&db), "utf8mb4 utf8mb4_unicode_ci");
    let dbs = db.exec("mysql", "SHOW DATABASES");
    assert!(!dbs.contains("_drydock_"), "{dbs}");
    // The foreign key came along and still holds.
    assert!(db
        .try_exec("shop", "INSERT INTO child VALUES (999999, 888888)")
        .is_err());

    // Gone entirely, on a latin1 server: recreated as the backup had it.
    db.exec("mysql", "DROP DATABASE shop");
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(charset(&db), "utf8mb4 utf8mb4_unicode_ci");
    db.exec(
        "shop",
        "CREATE TABLE emoji (s VARCHAR(10)); INSERT INTO emoji VALUES ('🚢');",
    );
}

#[test]
fn redis_failed_restore_keeps_the_live_instance() {
    let redis = RedisServer::start();
    redis.cli(&[
        "EVAL",
        "for i = 1, 20000 do redis.call('SET', 'k' .. i, redis.sha1hex(tostring(math.random())) .. redis.sha1hex(tostring(i))) end return 1",
        "0",
    ]);
    let stack = Stack::new(&format!(
        "[services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"critical\", url = \"{}\" }}]\n",
        redis.url()
    ));
    failed_restore_leaves_live_data(
        &stack,
        || {
            redis.cli(&["SET", "k1", "changed"]);
        },
        || redis_digest(&redis),
    );
}

#[test]
fn sqlite_failed_restore_keeps_the_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
         INSERT INTO t SELECT i, randomblob(200) FROM s;",
    )
    .unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}]\n",
        path.display()
    ));
    failed_restore_leaves_live_data(
        &stack,
        || {
            conn.execute("UPDATE t SET body = x'00' WHERE id <= 10", [])
                .unwrap();
        },
        || sqlite_dump(&path),
    );
}

#[test]
fn files_failed_restore_keeps_the_live_tree() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    let noise: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("sub/big.bin"), &noise).unwrap();
    std::fs::write(data.join("a.txt"), "backed up").unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"{}\" }}]\n",
        data.display()
    ));
    failed_restore_leaves_live_data(
        &stack,
        || std::fs::write(data.join("a.txt"), "changed since").unwrap(),
        || lstat_walk(&data),
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("data")]);
}

#[test]
fn volume_failed_restore_keeps_the_live_volume() {
    drydock_testkit::docker::require_docker();
    let volume = drydock_testkit::docker::Volume::create(
        &drydock_testkit::docker::unique("safety"),
        &[("drydock.backup", "critical")],
    );
    let root = volume.mountpoint();
    let noise: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), &noise).unwrap();
    std::fs::write(root.join("a.txt"), "backed up").unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"volume\", name = \"spool\", volume = \"{}\" }}]\n",
        volume.name
    ));
    failed_restore_leaves_live_data(
        &stack,
        || std::fs::write(volume.mountpoint().join("a.txt"), "changed since").unwrap(),
        || lstat_walk(&volume.mountpoint()),
    );
}
