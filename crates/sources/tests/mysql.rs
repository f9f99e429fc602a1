//! The MySQL/MariaDB adapter against real MariaDB servers (drydock-testkit), with an
//! in-memory repository double.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    assert_holds, assert_same, children_cmdlines, ctx, differences_now, kill_children_named,
    record, restore_stored, sandbox_db_name, scratch, MemStore,
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
        bin_dir: None,
        exec: false,
        exec_in: None,
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

fn database_exists(db: &MariaDb, name: &str) -> bool {
    db.exec(
        "mysql",
        &format!("SHOW DATABASES LIKE '{}'", name.replace('_', "\\_")),
    ) == name
}

fn sandbox_databases(db: &MariaDb) -> String {
    db.exec("mysql", "SHOW DATABASES LIKE '\\_drydock\\_sandbox\\_%'")
}

fn charset_of(db: &MariaDb, name: &str) -> String {
    db.exec(
        "mysql",
        &format!("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"),
    )
}

#[test]
fn sandbox_holds_the_backup_and_its_canary_and_is_dropped() {
    let db = MariaDb::start();
    db.exec(
        "mysql",
        "CREATE DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    );
    db.exec("app", SCHEMA);
    let src = source(&db, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    src.write_canary("drill-before-backup").unwrap();
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    assert_eq!(
        outcome.fingerprint.parts["_drydock_canary"].count, 1,
        "the canary is data like any other"
    );
    // Written after the backup: must not show up in the sandbox.
    src.write_canary("drill-after-backup").unwrap();

    let sandbox = src.sandbox(&ctx).unwrap();
    let hp = format!("127.0.0.1:{}", db.port());
    let name = sandbox_db_name(&sandbox.describe(), &hp);
    assert!(!sandbox.describe().contains(db.password()));
    let target = sandbox.target();
    assert_eq!(target.location(), format!("mysql {hp}/{name}"));
    assert!(database_exists(&db, &name));
    assert_eq!(
        charset_of(&db, &name),
        "utf8mb4\tutf8mb4_unicode_ci",
        "same character set and collation as the live database"
    );
    assert!(!target.has_data().unwrap(), "a sandbox starts empty");
    assert_eq!(target.read_canary().unwrap(), None);

    restore_stored(target, &store, &outcome, scratch.path()).unwrap();
    let got = assert_holds(target, &outcome.fingerprint, "rows", &ctx);
    assert_eq!(got.counts, outcome.counts);
    assert_eq!(
        target.read_canary().unwrap().as_deref(),
        Some("drill-before-backup")
    );
    assert_eq!(
        db.exec(&name, "SELECT double_it(21), COUNT(*) FROM big_orders"),
        db.exec("app", "SELECT double_it(21), COUNT(*) FROM big_orders"),
    );
    // The live database is untouched.
    assert_eq!(
        src.read_canary().unwrap().as_deref(),
        Some("drill-after-backup")
    );

    // A session still in the sandbox does not keep it alive.
    let mut lingering = db.connect(&name);
    lingering.query_drop("SELECT 1").unwrap();
    let other = src.sandbox(&ctx).unwrap();
    let other_name = sandbox_db_name(&other.describe(), &hp);
    assert_ne!(other_name, name);
    drop(sandbox);
    assert!(
        !database_exists(&db, &name),
        "dropping the sandbox drops it"
    );
    assert!(database_exists(&db, &other_name));
    drop(other);
    assert_eq!(sandbox_databases(&db), "");
    assert!(src.has_data().unwrap());
}

#[test]
fn canary_is_written_replaced_and_read() {
    let db = MariaDb::start();
    db.create_db("app");
    let src = source(&db, "app");
    assert_eq!(src.read_canary().unwrap(), None, "no table yet");
    src.write_canary("first").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("first"));
    src.write_canary("second ✓ 'quoted' 😀").unwrap();
    assert_eq!(
        src.read_canary().unwrap().as_deref(),
        Some("second ✓ 'quoted' 😀")
    );
    assert_eq!(
        db.exec(
            "app",
            "SELECT COUNT(*), MAX(token), MIN(written_at > UTC_TIMESTAMP() - INTERVAL 1 MINUTE) FROM _drydock_canary"
        ),
        "1\tsecond ✓ 'quoted' 😀\t1"
    );
    assert_eq!(
        db.exec(
            "mysql",
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = '_drydock_canary'"
        ),
        "InnoDB"
    );
    db.exec("app", "DELETE FROM _drydock_canary");
    assert_eq!(src.read_canary().unwrap(), None, "no row");
    src.write_canary("third").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("third"));
}

#[test]
fn sandbox_without_create_privilege_is_a_clear_error() {
    let db = MariaDb::start();
    db.create_db("app");
    db.exec(
        "app",
        "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100)) ENGINE=InnoDB; \
         INSERT INTO notes (body) SELECT CONCAT('n', seq) FROM seq_1_to_500",
    );
    db.exec(
        "mysql",
        "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw-Zq9'; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'app'@'127.0.0.1'",
    );
    let limited = source_with(
        format!("mysql://app@127.0.0.1:{}/app", db.port()),
        Some("app-pw-Zq9"),
    );
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let err = match limited.sandbox(&ctx) {
        Ok(s) => panic!("created {} without CREATE", s.describe()),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "mysql 127.0.0.1:{}/app: cannot create the drill sandbox (a throwaway database '_drydock_sandbox_",
            db.port()
        )),
        "{text}"
    );
    assert!(text.contains("ERROR 1044: Access denied"), "{text}");
    assert!(
        text.contains("GRANT ALL ON `\\_drydock\\_sandbox\\_%`.* TO 'app'@"),
        "{text}"
    );
    assert!(text.contains("throwaway MariaDB/MySQL instance"), "{text}");
    assert!(!text.contains("app-pw-Zq9"), "{text}");
    assert_eq!(sandbox_databases(&db), "");

    // Nor may it create the canary table: say which grant is missing.
    let err = limited.write_canary("t").unwrap_err();
    assert!(
        err.to_string()
            .contains("creating the drill canary table (table _drydock_canary)")
            && err
                .to_string()
                .contains("GRANT CREATE, SELECT, INSERT, DELETE ON `app`.* TO 'app'@"),
        "{err}"
    );
    assert_eq!(limited.read_canary().unwrap(), None);

    // The grant the message names is enough to create, fill and drop a sandbox.
    let backup = MemStore::default();
    let outcome = source(&db, "app").backup(&backup, &ctx).unwrap();
    db.exec(
        "mysql",
        "GRANT ALL ON `\\_drydock\\_sandbox\\_%`.* TO 'app'@'127.0.0.1'",
    );
    let sandbox = limited.sandbox(&ctx).unwrap();
    let name = sandbox_db_name(&sandbox.describe(), &format!("127.0.0.1:{}", db.port()));
    restore_stored(sandbox.target(), &backup, &outcome, scratch.path()).unwrap();
    assert_holds(sandbox.target(), &outcome.fingerprint, "rows", &ctx);
    drop(sandbox);
    assert!(!database_exists(&db, &name));
}

#[test]
fn test_data_populates_wipes_and_restores_exactly() {
    let db = MariaDb::start();
    db.create_db("app");
    common::assert_populate_wipe_restore(&source(&db, "app"));
}
