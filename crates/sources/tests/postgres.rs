//! The PostgreSQL adapter against real servers (drydock-testkit), with an in-memory
//! repository double.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    assert_holds, assert_same, children_cmdlines, ctx, differences_now, kill_children_named,
    record, restore_stored, sandbox_db_name, scratch, MemStore,
};
use drydock_domain::config::{PostgresSource, SourceKind};
use drydock_domain::{Priority, Secret};
use drydock_sources::postgres::Postgres;
use drydock_sources::{DataSource, SourceError};
use drydock_testkit::postgres::PgServer;

fn source(pg: &PgServer, db: &str) -> Postgres {
    source_with(pg.url(db), Some(pg.password()))
}

fn source_with(url: String, password: Option<&str>) -> Postgres {
    Postgres::new(PostgresSource {
        name: None,
        priority: Priority::Critical,
        url,
        password: password.map(|p| Secret::from_env_value("PGPASSWORD", p)),
        exclude_tables: vec![],
        bin_dir: None,
        exec: false,
        exec_in: None,
    })
}

// ---------------------------------------------------------------- data

const SCHEMA: &str = r#"
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    note text,
    created timestamptz NOT NULL DEFAULT '2024-05-01 12:00:00+02'
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    total numeric(12,2),
    placed date,
    payload bytea
);
CREATE TABLE order_lines (
    order_id bigint REFERENCES orders(id) ON DELETE CASCADE,
    line int,
    sku text,
    qty int CHECK (qty > 0),
    price double precision,
    PRIMARY KEY (order_id, line)
);
CREATE INDEX orders_placed ON orders (placed);
CREATE SEQUENCE invoice_no START 1000;
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 1000;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO customers (name, email, note)
    SELECT 'Kunde ' || i || ' 名前 ✓ ñ', 'c' || i || '@example.org', CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END
    FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, total, placed, payload)
    SELECT (i % 2000) + 1, i * 1.25, date '2024-01-01' + i % 365,
           CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') || '\x00ff0a'::bytea END
    FROM generate_series(1, 3000) i;
INSERT INTO order_lines SELECT o.id, l, 'SKU-' || l, l * 2, 0.1 * l FROM orders o, generate_series(1, 3) l;
SELECT nextval('invoice_no'), nextval('invoice_no'), nextval('invoice_no');
"#;

fn populate(pg: &PgServer, db: &str) {
    pg.create_db(db);
    pg.psql(db, SCHEMA);
}

// ---------------------------------------------------------------- tests

#[test]
fn round_trip_into_fresh_and_over_existing_database() {
    let pg = PgServer::start();
    populate(&pg, "app");
    let src = source(&pg, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    src.check().unwrap();
    assert!(src.has_data().unwrap());
    assert_eq!(
        src.location(),
        format!("postgres 127.0.0.1:{}/app", pg.port())
    );

    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    assert_eq!(outcome.format, "pg_dump-custom");
    assert!(store
        .stream
        .borrow()
        .as_ref()
        .unwrap()
        .starts_with(b"PGDMP"));
    let want_counts: BTreeMap<String, u64> = [
        ("tables".to_string(), 3),
        ("rows".to_string(), 2000 + 3000 + 9000),
        ("sequences".to_string(), 3),
    ]
    .into();
    assert_eq!(outcome.counts, want_counts);
    for part in [
        "public.customers",
        "public.orders",
        "public.order_lines",
        "seq:public.invoice_no",
        "seq:public.customers_id_seq",
        "seq:public.orders_id_seq",
        "schema:ddl",
    ] {
        assert!(
            outcome.fingerprint.parts.contains_key(part),
            "missing part {part}: {:?}",
            outcome.fingerprint.parts.keys()
        );
    }
    assert_eq!(
        outcome.fingerprint.parts["seq:public.invoice_no"].digest,
        "1002:true"
    );
    let live = src.inspect(&ctx).unwrap();
    assert_same(&live.fingerprint, &outcome.fingerprint, "live after backup");
    assert_eq!(live.counts, outcome.counts);
    let rec = record(SourceKind::Postgres, &outcome);

    // Into a freshly created, empty database.
    pg.create_db("fresh");
    let fresh = source(&pg, "fresh");
    assert!(!fresh.has_data().unwrap());
    fresh.restore(&store.fetch(), &rec, &ctx).unwrap();
    assert_same(
        &fresh.inspect(&ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored into an empty database",
    );

    // Again over the now non-empty database, with a stray table that must go.
    pg.psql("fresh", "CREATE TABLE stray (x int); INSERT INTO stray VALUES (1); DELETE FROM order_lines WHERE order_id > 10");
    assert!(fresh.has_data().unwrap());
    fresh.restore(&store.fetch(), &rec, &ctx).unwrap();
    let again = fresh.inspect(&ctx).unwrap();
    assert_same(
        &again.fingerprint,
        &outcome.fingerprint,
        "restored over existing data",
    );
    assert_eq!(again.counts, outcome.counts);

    // Into a database that does not exist yet.
    let missing = source(&pg, "brand_new");
    assert!(!missing.has_data().unwrap());
    missing.restore(&store.fetch(), &rec, &ctx).unwrap();
    assert_same(
        &missing.inspect(&ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored into a missing database",
    );

    // The restored data really is the data (not just the digests).
    assert_eq!(
        pg.psql("brand_new", "SELECT name, note IS NULL, encode(payload, 'hex') FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.id = 4"),
        "Kunde 5 名前 ✓ ñ|f|a87ff679a2f3e71d9181a67b7542122c00ff0a"
    );
    assert_eq!(pg.psql("brand_new", "SELECT nextval('invoice_no')"), "1003");
}

#[test]
fn concurrent_writers_do_not_break_consistency() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, balance int NOT NULL, note text);
         CREATE TABLE ledger (id serial PRIMARY KEY, account bigint REFERENCES accounts(id), amount int);
         INSERT INTO accounts (balance, note) SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 200000) i;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits) = (Arc::clone(&stop), Arc::clone(&commits));
        let mut client = pg.connect("app");
        std::thread::spawn(move || {
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = (i * 7919) % 200000 + 1;
                let mut tx = client.transaction().unwrap();
                tx.execute(
                    "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
                    &[&id],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO ledger (account, amount) VALUES ($1, 1)",
                    &[&id],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO accounts (balance, note) VALUES (0, 'new')",
                    &[],
                )
                .unwrap();
                tx.commit().unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    drydock_testkit::wait_until(Duration::from_secs(10), || {
        commits.load(Ordering::Relaxed) > 50
    });

    let src = source(&pg, "app");
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

    let restored = source(&pg, "restored");
    restored
        .restore(
            &store.fetch(),
            &record(SourceKind::Postgres, &outcome),
            &ctx,
        )
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
    assert!(
        diff.iter().any(|d| d.starts_with("public.accounts:")),
        "{diff:?}"
    );
}

#[test]
fn connection_faults_are_clear_and_keep_the_password_out() {
    let pg = PgServer::start();
    pg.create_db("app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    let canary = "wrong-pw-canary-4711";
    let wrong = source_with(pg.url("app"), Some(canary));
    let err = wrong.check().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        text.contains("authentication failed for user \"postgres\""),
        "{text}"
    );
    assert!(
        text.contains("${env:PGPASSWORD}"),
        "names the reference: {text}"
    );
    assert!(!text.contains(canary), "{text}");
    let err = wrong.backup(&MemStore::default(), &ctx).unwrap_err();
    assert!(
        matches!(err, SourceError::Connect { .. }) && !err.to_string().contains(canary),
        "{err}"
    );

    let no_password = source_with(pg.url("app"), None);
    let text = no_password.check().unwrap_err().to_string();
    assert!(
        text.contains("password") && text.contains("postgres"),
        "{text}"
    );

    let port = drydock_testkit::free_port();
    let unreachable = source_with(
        format!("postgres://postgres@127.0.0.1:{port}/app"),
        Some(pg.password()),
    );
    let err = unreachable.check().unwrap_err();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("is the server running at 127.0.0.1:{port}?")),
        "{err}"
    );

    let missing = source(&pg, "no_such_db");
    let err = missing.check().unwrap_err();
    assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("database \"no_such_db\" does not exist"),
        "{err}"
    );
    let err = missing.backup(&MemStore::default(), &ctx).unwrap_err();
    assert!(err.to_string().contains("no_such_db"), "{err}");
    assert!(!err.to_string().contains(pg.password()));
}

#[test]
fn dump_failing_mid_stream_is_a_tool_error_with_stderr() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql("app", "CREATE TABLE big (id int, filler text); INSERT INTO big SELECT i, repeat(md5(i::text), 20) FROM generate_series(1, 300000) i;");
    let src = source(&pg, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    // The server ends pg_dump's session after the first bytes arrived.
    let admin = Mutex::new(pg.connect("postgres"));
    let store = MemStore::with_hook(move || {
        let mut admin = admin.lock().unwrap();
        let killed = admin
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump'", &[])
            .unwrap();
        assert_eq!(killed.len(), 1, "one pg_dump session");
    });
    let err = src.backup(&store, &ctx).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(text.contains("pg_dump failed (exit status 1)"), "{text}");
    // Depending on timing the server says "terminating connection" or the client
    // "server closed the connection"; either way pg_dump's own error line is shown.
    assert!(
        text.contains("pg_dump: error:")
            && (text.contains("terminating connection")
                || text.contains("server closed the connection")),
        "the stderr tail is shown: {text}"
    );
    assert!(!text.contains(pg.password()), "{text}");

    // The tool itself dies.
    let store = MemStore::with_hook(|| kill_children_named("pg_dump"));
    let err = src.backup(&store, &ctx).unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(err.to_string().contains("killed by signal 9"), "{err}");

    // A restore whose input is cut short fails with pg_restore's own message.
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    let mut fetch = store.fetch();
    let data = fetch.stream.as_mut().unwrap();
    data.truncate(data.len() / 2);
    let err = source(&pg, "restored")
        .restore(&fetch, &record(SourceKind::Postgres, &outcome), &ctx)
        .unwrap_err();
    assert!(matches!(err, SourceError::Tool { .. }), "{err:?}");
    assert!(err.to_string().contains("pg_restore failed"), "{err}");
    assert!(!err.to_string().contains(pg.password()));
}

#[test]
fn secrets_never_reach_a_command_line() {
    let pg = PgServer::start();
    populate(&pg, "app");
    let src = source(&pg, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = {
        let seen = Arc::clone(&seen);
        MemStore::with_hook(move || seen.lock().unwrap().extend(children_cmdlines()))
    };
    let outcome = src.backup(&store, &ctx).unwrap();
    let mut fetch = store.fetch();
    {
        let seen = Arc::clone(&seen);
        fetch.hook = Some(Box::new(move || {
            seen.lock().unwrap().extend(children_cmdlines())
        }));
    }
    source(&pg, "restored")
        .restore(&fetch, &record(SourceKind::Postgres, &outcome), &ctx)
        .unwrap();

    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .any(|c| c.contains("pg_dump") && c.contains("--snapshot=")),
        "saw pg_dump: {seen:?}"
    );
    assert!(
        seen.iter().any(|c| c.contains("pg_restore")),
        "saw pg_restore: {seen:?}"
    );
    for cmd in seen.iter() {
        assert!(
            !cmd.contains(pg.password()),
            "password in a command line: {cmd}"
        );
    }
    // Nothing left behind in the scratch directory.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

/// The data of `db` as `pg_dump --data-only` writes it (the oracle), without its
/// per-dump `\restrict` key lines.
fn pg_dump_data(pg: &PgServer, db: &str) -> String {
    let out = std::process::Command::new(drydock_testkit::program("pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U"])
        .arg(pg.superuser())
        .args(["--data-only", "--format=plain", db])
        .env("PGPASSWORD", pg.password())
        // The oracle writes both databases alike: "odd" has its own settings.
        .env("PGTZ", "UTC")
        .env("PGOPTIONS", "-c bytea_output=hex")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A table's rows are digested from the archive as `pg_dump` wrote them and from a
/// live or restored database as drydock reads them back with COPY: both must write
/// every value alike, whatever the database's own settings for writing values (time
/// zone, byte arrays, float digits, date and interval styles), for the columns COPY
/// writes differently (time stamps with a zone, intervals, floats, money, bytea, JSON,
/// arrays, escapes), and for columns COPY leaves out (generated, dropped) or a table
/// with none at all.
#[test]
fn row_digests_agree_whatever_the_databases_settings() {
    let pg = PgServer::start();
    pg.create_db("odd");
    pg.psql(
        "odd",
        r#"
CREATE TABLE kinds (
    id int PRIMARY KEY, at timestamptz, d date, iv interval, f float8, r real, m money,
    b bytea, j jsonb, a text[], t text, gone int,
    twice int GENERATED ALWAYS AS (id * 2) STORED
);
ALTER TABLE kinds DROP COLUMN gone;
INSERT INTO kinds (id, at, d, iv, f, r, m, b, j, a, t)
    SELECT g, '2024-03-01 12:34:56.789+05:30'::timestamptz + g * interval '1 hour 1 second',
           date '2024-02-28' + g, make_interval(days => g, secs => g / 7.0), g / 3.0, g / 7.0,
           g * 1.01, decode(md5(g::text), 'hex') || '\x00'::bytea,
           jsonb_build_object('k', g, 's', E'tab\there'), ARRAY['x', NULL, E'new\nline'],
           CASE WHEN g % 4 = 0 THEN NULL ELSE E'back\\slash ' || g END
    FROM generate_series(1, 500) g;
CREATE TABLE no_columns ();
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
ALTER DATABASE odd SET timezone = 'Asia/Kathmandu';
ALTER DATABASE odd SET bytea_output = 'escape';
ALTER DATABASE odd SET extra_float_digits = 0;
ALTER DATABASE odd SET DateStyle = 'SQL, DMY';
ALTER DATABASE odd SET IntervalStyle = 'sql_standard';
"#,
    );
    let src = source(&pg, "odd");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    for table in ["public.kinds", "public.no_columns"] {
        assert!(
            outcome.fingerprint.parts[table].digest.starts_with("x3:"),
            "{table}: {:?}",
            outcome.fingerprint.parts[table]
        );
    }
    assert_eq!(outcome.fingerprint.parts["public.kinds"].count, 500);
    assert_eq!(outcome.fingerprint.parts["public.no_columns"].count, 2);
    let live = src.inspect(&ctx).unwrap();
    assert_same(&live.fingerprint, &outcome.fingerprint, "live after backup");

    // Restored into a database without those settings: same digests, and the oracle
    // sees the same data.
    pg.create_db("plain");
    let plain = source(&pg, "plain");
    let rec = record(SourceKind::Postgres, &outcome);
    plain.restore(&store.fetch(), &rec, &ctx).unwrap();
    assert_same(
        &plain.inspect_as(&rec, &ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored",
    );
    assert_eq!(pg_dump_data(&pg, "plain"), pg_dump_data(&pg, "odd"));

    // One value moved by a microsecond is a different row.
    pg.psql(
        "plain",
        "UPDATE kinds SET at = at + interval '1 microsecond' WHERE id = 250",
    );
    assert_eq!(
        differences_now(&plain, &outcome.fingerprint, "rows", &ctx),
        vec!["public.kinds: same rows count (500) but different content".to_string()]
    );
}

#[test]
fn a_changed_row_is_named() {
    let pg = PgServer::start();
    populate(&pg, "app");
    let src = source(&pg, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let outcome = src.backup(&MemStore::default(), &ctx).unwrap();

    pg.psql(
        "app",
        "UPDATE order_lines SET qty = qty + 1 WHERE order_id = 17 AND line = 2",
    );
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert_eq!(
        diff,
        vec!["public.order_lines: same rows count (9000) but different content".to_string()]
    );

    pg.psql(
        "app",
        "DELETE FROM order_lines WHERE order_id = 18; SELECT nextval('invoice_no')",
    );
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert!(
        diff.contains(&"public.order_lines: 9000 rows in backup, 8997 now".to_string()),
        "{diff:?}"
    );
    assert!(
        diff.iter().any(|d| d.starts_with("seq:public.invoice_no:")),
        "{diff:?}"
    );

    pg.psql("app", "ALTER TABLE customers ADD COLUMN phone text");
    let diff = differences_now(&src, &outcome.fingerprint, "rows", &ctx);
    assert!(
        diff.iter().any(|d| d.starts_with("schema:ddl:")),
        "{diff:?}"
    );
}

#[test]
fn restore_without_createdb_cleans_into_the_existing_database() {
    let pg = PgServer::start();
    pg.create_user("app", "app-pw-Zq9", false);
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let url = format!("postgres://app@127.0.0.1:{}/app", pg.port());
    let src = source_with(url, Some("app-pw-Zq9"));
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    {
        let mut c = postgres::Config::new()
            .host("127.0.0.1")
            .port(pg.port())
            .user("app")
            .password("app-pw-Zq9")
            .dbname("app")
            .connect(postgres::NoTls)
            .unwrap();
        c.batch_execute("CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'n' || i FROM generate_series(1, 500) i;")
            .unwrap();
    }
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    pg.psql("app", "DELETE FROM notes WHERE id % 2 = 0");
    src.restore(
        &store.fetch(),
        &record(SourceKind::Postgres, &outcome),
        &ctx,
    )
    .unwrap();
    assert_same(
        &src.inspect(&ctx).unwrap().fingerprint,
        &outcome.fingerprint,
        "restored with --clean",
    );
}

fn database_exists(pg: &PgServer, name: &str) -> bool {
    pg.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

#[test]
fn sandbox_holds_the_backup_and_its_canary_and_is_dropped() {
    let pg = PgServer::start();
    populate(&pg, "app");
    let src = source(&pg, "app");
    let scratch = scratch();
    let ctx = ctx(scratch.path());

    src.write_canary("drill-before-backup").unwrap();
    let store = MemStore::default();
    let outcome = src.backup(&store, &ctx).unwrap();
    assert_eq!(
        outcome.fingerprint.parts["public._drydock_canary"].count, 1,
        "the canary is data like any other"
    );
    // Written after the backup: must not show up in the sandbox.
    src.write_canary("drill-after-backup").unwrap();

    let sandbox = src.sandbox(&ctx).unwrap();
    let hp = format!("127.0.0.1:{}", pg.port());
    let name = sandbox_db_name(&sandbox.describe(), &hp);
    assert!(!sandbox.describe().contains(pg.password()));
    let target = sandbox.target();
    assert_eq!(target.location(), format!("postgres {hp}/{name}"));
    assert!(database_exists(&pg, &name));
    assert_eq!(
        pg.psql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'")
        ),
        "postgres",
        "owned by the url's user"
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
    // The live database is untouched.
    assert_eq!(
        src.read_canary().unwrap().as_deref(),
        Some("drill-after-backup")
    );

    // A session still in the sandbox does not keep it alive.
    let mut lingering = pg.connect(&name);
    lingering.simple_query("SELECT 1").unwrap();
    let other = src.sandbox(&ctx).unwrap();
    let other_name = sandbox_db_name(&other.describe(), &hp);
    assert_ne!(other_name, name);
    drop(sandbox);
    assert!(
        !database_exists(&pg, &name),
        "dropping the sandbox drops it"
    );
    assert!(database_exists(&pg, &other_name));
    drop(other);
    assert!(!database_exists(&pg, &other_name));
    assert!(database_exists(&pg, "app"));
    assert!(src.has_data().unwrap());
}

#[test]
fn canary_is_written_replaced_and_read() {
    let pg = PgServer::start();
    pg.create_user("app", "app-pw-Zq9", false);
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let src = source_with(
        format!("postgres://app@127.0.0.1:{}/app", pg.port()),
        Some("app-pw-Zq9"),
    );
    assert_eq!(src.read_canary().unwrap(), None, "no table yet");
    src.write_canary("first").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("first"));
    src.write_canary("second ✓ 'quoted'").unwrap();
    assert_eq!(
        src.read_canary().unwrap().as_deref(),
        Some("second ✓ 'quoted'")
    );
    assert_eq!(
        pg.psql(
            "app",
            "SELECT count(*), max(token), bool_and(written_at > now() - interval '1 minute') FROM public._drydock_canary"
        ),
        "1|second ✓ 'quoted'|t"
    );
    pg.psql("app", "DELETE FROM public._drydock_canary");
    assert_eq!(src.read_canary().unwrap(), None, "no row");
    src.write_canary("third").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("third"));
}

#[test]
fn sandbox_without_createdb_is_a_clear_error() {
    let pg = PgServer::start();
    pg.create_user("app", "app-pw-Zq9", false);
    pg.psql("postgres", "CREATE DATABASE app OWNER app");
    let src = source_with(
        format!("postgres://app@127.0.0.1:{}/app", pg.port()),
        Some("app-pw-Zq9"),
    );
    let scratch = scratch();
    let err = match src.sandbox(&ctx(scratch.path())) {
        Ok(s) => panic!("created {} without CREATEDB", s.describe()),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!("postgres 127.0.0.1:{}/app: cannot create the drill sandbox (a throwaway database \"_drydock_sandbox_", pg.port())),
        "{text}"
    );
    assert!(
        text.contains("permission denied to create database"),
        "{text}"
    );
    assert!(text.contains("ALTER ROLE \"app\" CREATEDB"), "{text}");
    assert!(text.contains("throwaway PostgreSQL instance"), "{text}");
    assert!(!text.contains("app-pw-Zq9"), "{text}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE '\\_drydock\\_sandbox\\_%'"
        ),
        "0"
    );

    // The fix the message names works.
    pg.psql("postgres", "ALTER ROLE app CREATEDB");
    let sandbox = src.sandbox(&ctx(scratch.path())).unwrap();
    let name = sandbox_db_name(&sandbox.describe(), &format!("127.0.0.1:{}", pg.port()));
    sandbox.target().write_canary("in the sandbox").unwrap();
    drop(sandbox);
    assert!(!database_exists(&pg, &name));
}

#[test]
fn canary_without_create_on_the_schema_is_a_clear_error() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.create_user("reader", "reader-pw-Zq9", false);
    pg.psql("app", "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let src = source_with(
        format!("postgres://reader@127.0.0.1:{}/app", pg.port()),
        Some("reader-pw-Zq9"),
    );
    assert_eq!(src.read_canary().unwrap(), None);
    let err = src.write_canary("t").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("creating the drill canary table (table public._drydock_canary)")
            && text.contains("permission denied for schema public")
            && text.contains("Fix: GRANT CREATE ON SCHEMA public TO \"reader\"")
            && text
                .contains("GRANT SELECT, INSERT, UPDATE ON public._drydock_canary TO \"reader\""),
        "{text}"
    );
    // Once an owner created the table and granted access, writing needs no CREATE.
    pg.psql("app", "CREATE TABLE public._drydock_canary (id int PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL); \
                    GRANT SELECT, INSERT, UPDATE ON public._drydock_canary TO reader");
    src.write_canary("granted").unwrap();
    src.write_canary("granted again").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("granted again"));
}

/// ~7 M rows (pgbench scale 70): backup and inspect times. Slow; run with --ignored.
#[test]
#[ignore]
fn pgbench_scale_70_timing() {
    let pg = PgServer::start();
    pg.create_db("bench");
    let status = std::process::Command::new(drydock_testkit::program("pgbench"))
        .args([
            "-i",
            "-q",
            "-s",
            "70",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
            "bench",
        ])
        .env("PGPASSWORD", pg.password())
        .status()
        .unwrap();
    assert!(status.success());
    let src = source(&pg, "bench");
    let scratch = scratch();
    let ctx = ctx(scratch.path());
    let t = std::time::Instant::now();
    let live = src.inspect(&ctx).unwrap();
    eprintln!("inspect: {:?} for {:?}", t.elapsed(), live.counts);
    let t = std::time::Instant::now();
    let outcome = src.backup(&MemStore::default(), &ctx).unwrap();
    eprintln!(
        "backup: {:?}, {} bytes",
        t.elapsed(),
        outcome.stored.logical_bytes
    );
    assert_same(&live.fingerprint, &outcome.fingerprint, "pgbench");
}

#[test]
fn test_data_populates_wipes_and_restores_exactly() {
    let pg = PgServer::start();
    populate(&pg, "app");
    common::assert_populate_wipe_restore(&source(&pg, "app"));
    // The application's own tables came back with the test set.
    assert_eq!(
        pg.psql("app", "SELECT count(*) FROM customers").trim(),
        "2000"
    );
}
