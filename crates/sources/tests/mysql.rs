//! The MySQL/MariaDB adapter against real MariaDB servers (drydock-testkit), with an
//! in-memory repository double.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    assert_same, children_cmdlines, ctx, differences_now, kill_children_named, record, scratch,
    MemStore,
};
use drydock_domain::config::{MysqlSource, SourceKind};
use drydock_domain::{Priority, Secret};
use drydock_sources::mysql::Mysql;
use drydock_sources::{DataSource, SourceError};
use drydock_testkit::mariadb::MariaDb;
use mysql::prelude::Queryable;

fn source(db: &MariaDb, name: &str) -> Mysql {
    source_with(db.url(name), Some(db.password()))
}

fn source_with(url: String, password: Option<&str>) -> Mysql {
    Mysql::new(MysqlSource {
        name: None,
        priority: Priority::Critical,
        url,
        password: password.map(|p| Secret::from_env_value("MYSQL_PASSWORD", p)),
    })
}

// ---------------------------------------------------------------- data

const SCHEMA: &str = r#"
CREATE TABLE customers (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    email VARCHAR(200) UNIQUE,
    note TEXT NULL,
    created DATETIME(6) NOT NULL DEFAULT '2024-05-01 12:00:00',
    seen TIMESTAMP NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer_id INT NOT NULL,
    total DECIMAL(12,2),
    placed DATE,
    payload BLOB,
    ratio DOUBLE,
    FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE order_lines (
    order_id BIGINT,
    line INT,
    sku VARCHAR(50),
    qty INT,
    PRIMARY KEY (order_id, line),
    FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100)) ENGINE=MyISAM;
CREATE INDEX orders_placed ON orders (placed);
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 1000;
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('customer ', NEW.id));
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
INSERT INTO customers (name, email, note, seen)
    SELECT CONCAT('Kunde ', seq, ' 名前 ✓ ñ 😀'), CONCAT('c', seq, '@example.org'),
           IF(seq % 3 = 0, NULL, CONCAT('note ', seq)), IF(seq % 4 = 0, NULL, FROM_UNIXTIME(1700000000 + seq))
    FROM seq_1_to_2000;
INSERT INTO orders (customer_id, total, placed, payload, ratio)
    SELECT (seq % 2000) + 1, seq * 1.25, DATE_ADD('2024-01-01', INTERVAL seq % 365 DAY),
           IF(seq % 5 = 0, NULL, CONCAT(UNHEX(MD5(seq)), 0x00FF0A)), seq / 7
    FROM seq_1_to_3000;
INSERT INTO order_lines SELECT o.id, s.seq, CONCAT('SKU-', s.seq), s.seq * 2 FROM orders o JOIN seq_1_to_3 s;
INSERT INTO audit (what) VALUES ('created'), (NULL);
"#;

fn populate(db: &MariaDb, name: &str) {
    db.create_db(name);
    db.exec(name, SCHEMA);
}

// ---------------------------------------------------------------- tests

#[test]
fn round_trip_into_fresh_and_over_existing_database() {
    let db = MariaDb::start();
    populate(&db, "app");
    let src = source(&db, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    src.check().unwrap();
    assert!(src.has_data().unwrap());
    assert_eq!(src.location(), format!("mysql 127.0.0.1:{}/app", db.port()));

    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    assert_eq!(outcome.format, "mysql-dump-sql");
    let want_counts: BTreeMap<String, u64> = [
        ("tables".to_string(), 4),
        ("rows".to_string(), 2000 + 3000 + 9000 + 2),
    ]
    .into();
    assert_eq!(outcome.counts, want_counts);
    for part in ["customers", "orders", "order_lines", "audit", "schema:ddl"] {
        assert!(
            outcome.fingerprint.parts.contains_key(part),
            "missing part {part}: {:?}",
            outcome.fingerprint.parts.keys()
        );
    }
    let dump = String::from_utf8_lossy(store.stream.borrow().as_ref().unwrap()).into_owned();
    assert!(
        !dump.contains("USE `app`") && !dump.contains("CREATE DATABASE"),
        "the dump names no database"
    );
    assert!(
        dump.contains("TRIGGER customers_audit") && dump.contains("FUNCTION `double_it`"),
        "triggers and routines are dumped"
    );
    let live = src.inspect(&ctx).unwrap();
    assert_same(&live.fingerprint, &outcome.fingerprint, "live after backup");
    assert_eq!(live.counts, outcome.counts);
    let rec = record(SourceKind::Mysql, &outcome);

    // Into a freshly created, empty database (another name than the source's).
    db.create_db("fresh");
    let fresh = source(&db, "fresh");
    assert!(!fresh.has_data().unwrap());
    fresh.restore(&store.fetch(), &rec, &ctx).unwrap();
    let got = fresh.inspect(&ctx).unwrap();
    assert_same(
        &got.fingerprint,
        &outcome.fingerprint,
        "restored into an empty database",
    );

    // The same database, after a change and a stray table: recreated, then restored.
    db.exec("app", "CREATE TABLE stray (x INT); INSERT INTO stray VALUES (1); DELETE FROM order_lines WHERE order_id > 10");
    assert!(src.has_data().unwrap());
    src.restore(&store.fetch(), &rec, &ctx).unwrap();
    let again = src.inspect(&ctx).unwrap();
    assert_same(
        &again.fingerprint,
        &outcome.fingerprint,
        "restored over existing data",
    );
    assert_eq!(again.counts, outcome.counts);

    // Into a database that does not exist yet.
    let missing = source(&db, "brand_new");
    assert!(!missing.has_data().unwrap());
    missing.restore(&store.fetch(), &rec, &ctx).unwrap();
    assert_same(
        &missing.inspect(&ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored into a missing database",
    );

    // The restored data really is the data.
    assert_eq!(
        db.exec("brand_new", "SELECT c.name, c.note IS NULL, HEX(o.payload), double_it(3) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 4"),
        "Kunde 5 名前 ✓ ñ 😀\t0\tA87FF679A2F3E71D9181A67B7542122C00FF0A\t6"
    );
}

#[test]
fn concurrent_writers_do_not_break_consistency() {
    let db = MariaDb::start();
    db.create_db("app");
    db.exec(
        "app",
        "CREATE TABLE accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(200)) ENGINE=InnoDB;
         CREATE TABLE ledger (id INT AUTO_INCREMENT PRIMARY KEY, account BIGINT, amount INT, FOREIGN KEY (account) REFERENCES accounts (id)) ENGINE=InnoDB;
         INSERT INTO accounts (balance, note) SELECT seq, REPEAT(MD5(seq), 4) FROM seq_1_to_200000;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits) = (Arc::clone(&stop), Arc::clone(&commits));
        let mut conn = db.connect("app");
        std::thread::spawn(move || {
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = (i * 7919) % 200000 + 1;
                let mut tx = conn.start_transaction(mysql::TxOpts::default()).unwrap();
                tx.exec_drop(
                    "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                    (id,),
                )
                .unwrap();
                tx.exec_drop("INSERT INTO ledger (account, amount) VALUES (?, 1)", (id,))
                    .unwrap();
                tx.query_drop("INSERT INTO accounts (balance, note) VALUES (0, 'new')")
                    .unwrap();
                tx.commit().unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    drydock_testkit::wait_until(Duration::from_secs(10), || {
        commits.load(Ordering::Relaxed) > 50
    });

    let src = source(&db, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let store = MemStore::default();
    let before = commits.load(Ordering::Relaxed);
    let outcome = src.backup(&store, &ctx).unwrap();
    let during = commits.load(Ordering::Relaxed) - before;
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        during > 10,
        "the writer must have committed during the backup ({during} commits)"
    );

    let restored = source(&db, "restored");
    restored
        .restore(&store.fetch(), &record(SourceKind::Mysql, &outcome), &ctx)
        .unwrap();
    let got = restored.inspect(&ctx).unwrap();
    assert_same(
        &got.fingerprint,
        &outcome.fingerprint,
        "restored vs. backup under concurrent writes",
    );
    assert_eq!(got.counts, outcome.counts);

    let live = src.inspect(&ctx).unwrap();
    assert_ne!(
        live.fingerprint.digest, outcome.fingerprint.digest,
        "the live data moved on"
    );
    let diff = live.fingerprint.differences(&outcome.fingerprint, "rows");
    assert!(diff.iter().any(|d| d.starts_with("accounts:")), "{diff:?}");
}

#[test]
fn connection_faults_are_clear_and_keep_the_password_out() {
    let db = MariaDb::start();
    db.create_db("app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    let canary = "wrong-pw-canary-4711";
    let wrong = source_with(db.url("app"), Some(canary));
    let err = wrong.check().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        text.contains("authentication failed for user 'root'"),
        "{text}"
    );
    assert!(
        text.contains("${env:MYSQL_PASSWORD}"),
        "names the reference: {text}"
    );
    assert!(!text.contains(canary), "{text}");
    let err = wrong.backup(&MemStore::default(), &ctx).unwrap_err();
    assert!(
        matches!(err, SourceError::Connect { .. }) && !err.to_string().contains(canary),
        "{err}"
    );

    let port = drydock_testkit::free_port();
    let unreachable = source_with(
        format!("mysql://root@127.0.0.1:{port}/app"),
        Some(db.password()),
    );
    let err = unreachable.check().unwrap_err();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("is the server running at 127.0.0.1:{port}?")),
        "{err}"
    );

    let missing = source(&db, "no_such_db");
    let err = missing.check().unwrap_err();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("database 'no_such_db' does not exist"),
        "{err}"
    );
    assert!(!missing.has_data().unwrap());
    let err = missing.backup(&MemStore::default(), &ctx).unwrap_err();
    assert!(
        err.to_string().contains("no_such_db") && !err.to_string().contains(db.password()),
        "{err}"
    );

    // Without RELOAD there is no consistent backup: say which grant is missing.
    db.exec("mysql", "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw-Zq9'; GRANT ALL ON app.* TO 'app'@'127.0.0.1'");
    let limited = source_with(
        format!("mysql://app@127.0.0.1:{}/app", db.port()),
        Some("app-pw-Zq9"),
    );
    limited.check().unwrap();
    let err = limited.backup(&MemStore::default(), &ctx).unwrap_err();
    assert!(
        err.to_string().contains("GRANT RELOAD ON *.* TO 'app'"),
        "{err}"
    );
}

#[test]
fn dump_failing_mid_stream_is_a_tool_error_with_stderr() {
    let db = MariaDb::start();
    db.create_db("app");
    db.exec("app", "CREATE TABLE big (id INT PRIMARY KEY, filler VARCHAR(700)) ENGINE=InnoDB; INSERT INTO big SELECT seq, REPEAT(MD5(seq), 20) FROM seq_1_to_100000;");
    let src = source(&db, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    // The server ends the dump's session after the first bytes arrived.
    let admin = Mutex::new(db.connect("mysql"));
    let store = MemStore::with_hook(move || {
        let mut admin = admin.lock().unwrap();
        let ids: Vec<u64> = admin
            .query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT /*!40001 SQL_NO_CACHE */%'")
            .unwrap();
        assert_eq!(ids.len(), 1, "one dump session");
        admin.query_drop(format!("KILL {}", ids[0])).unwrap();
    });
    let err = src.backup(&store, &ctx).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(text.contains("mariadb-dump failed (exit status"), "{text}");
    assert!(
        text.contains("Lost connection") || text.contains("2013"),
        "the stderr tail is shown: {text}"
    );
    assert!(!text.contains(db.password()), "{text}");

    // The tool itself dies.
    let store = MemStore::with_hook(|| kill_children_named("mariadb-dump"));
    let err = src.backup(&store, &ctx).unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(err.to_string().contains("killed by signal 9"), "{err}");

    // A restore whose input is cut short fails with the client's own message.
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    let mut fetch = store.fetch();
    let data = fetch.stream.as_mut().unwrap();
    data.truncate(data.len() / 2);
    let err = source(&db, "restored")
        .restore(&fetch, &record(SourceKind::Mysql, &outcome), &ctx)
        .unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(err.to_string().contains("mariadb failed"), "{err}");
    assert!(!err.to_string().contains(db.password()));
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "no option file left behind"
    );
}

#[test]
fn secrets_never_reach_a_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let db = MariaDb::start();
    populate(&db, "app");
    // A password with everything an option file finds awkward.
    let password = r#"p#ss "w0rd' \ x;"#;
    db.exec(
        "mysql",
        &format!(
            "CREATE USER 'odd'@'127.0.0.1' IDENTIFIED BY '{}'; GRANT ALL ON *.* TO 'odd'@'127.0.0.1'",
            password.replace('\\', "\\\\").replace('\'', "\\'")
        ),
    );
    let url = |name: &str| format!("mysql://odd@127.0.0.1:{}/{name}", db.port());
    let src = source_with(url("app"), Some(password));
    src.check().unwrap();
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    let seen = Arc::new(Mutex::new(Vec::new()));
    let watch = {
        let seen = Arc::clone(&seen);
        let scratch = scratch.path().to_path_buf();
        move || {
            seen.lock().unwrap().extend(children_cmdlines());
            for f in std::fs::read_dir(&scratch).unwrap().flatten() {
                let mode = f.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is private", f.path().display());
            }
        }
    };
    let store = MemStore::with_hook(watch.clone());
    let outcome = src.backup(&store, &ctx).unwrap();
    let mut fetch = store.fetch();
    fetch.hook = Some(Box::new(watch));
    let restored = source_with(url("restored"), Some(password));
    restored
        .restore(&fetch, &record(SourceKind::Mysql, &outcome), &ctx)
        .unwrap();
    assert_same(
        &restored.inspect(&ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored",
    );

    let seen = seen.lock().unwrap();
    let dump = seen
        .iter()
        .find(|c| c.contains("mariadb-dump"))
        .unwrap_or_else(|| panic!("saw the dump: {seen:?}"));
    assert!(dump.contains(" --defaults-extra-file="), "{dump}");
    assert!(
        dump.split(' ')
            .nth(1)
            .unwrap()
            .starts_with("--defaults-extra-file="),
        "first argument: {dump}"
    );
    assert!(
        seen.iter().any(|c| c.contains("--binary-mode")),
        "saw the client: {seen:?}"
    );
    for cmd in seen.iter() {
        assert!(
            !cmd.contains(password) && !cmd.contains("w0rd"),
            "password in a command line: {cmd}"
        );
    }
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "no option file left behind"
    );
}

#[test]
fn a_changed_row_is_named() {
    let db = MariaDb::start();
    populate(&db, "app");
    let src = source(&db, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let outcome = src.backup(&MemStore::default(), &ctx).unwrap();

    db.exec(
        "app",
        "UPDATE order_lines SET qty = qty + 1 WHERE order_id = 17 AND line = 2",
    );
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert_eq!(
        diff,
        vec!["order_lines: same rows count (9000) but different content".to_string()]
    );

    db.exec(
        "app",
        "UPDATE order_lines SET qty = qty - 1 WHERE order_id = 17 AND line = 2",
    );
    assert!(
        differences_now(&src, &outcome.fingerprint, "rows", &ctx).is_empty(),
        "back to equal"
    );

    // NULL and the string 'NULL' (or '\N') are different values.
    db.exec("app", "UPDATE customers SET note = '\\\\N' WHERE id = 3");
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert!(diff.iter().any(|d| d.starts_with("customers:")), "{diff:?}");

    db.exec("app", "ALTER TABLE orders ADD COLUMN phone TEXT");
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert!(
        diff.iter().any(|d| d.starts_with("schema:ddl:")),
        "{diff:?}"
    );
}
