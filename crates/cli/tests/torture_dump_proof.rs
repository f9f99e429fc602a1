//! A dump tool that exits 0 but lies: the stored dump must prove the snapshot, or the
//! source fails. The source's `bin_dir` points at wrapper scripts around the real
//! `pg_dump` / `mariadb-dump` that cut the output at 10, 50 and 90 % of its real size,
//! drop one table's data, or append garbage after a complete dump; each must fail the
//! critical source (exit 2), name the tool and what is missing, and record nothing, while
//! the real tool through the same wrappers passes. Cuts at random points follow (more
//! in full mode): each engine's cases are a torture scenario with its row in
//! RELIABILITY.md. Also: a drill whose own backup does
//! not restore exactly keeps that backup out of `latest`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::torture::{runs, Failure, Tally};
use common::Stack;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use rand::Rng;

/// A wrapper `name` in `bin` around `real`, whose behaviour is the word in `bin/mode`:
/// `ok`, `cut:PERCENT`, `drop` (runs the real tool with `drop_args` after its first
/// argument, which for mariadb-dump must stay `--defaults-extra-file`) or `garbage`.
fn wrapper(bin: &Path, name: &str, real: &Path, drop_args: &str) {
    let script = format!(
        r#"#!/bin/sh
set -e
mode=$(cat "$(dirname "$0")/mode")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
case "$mode" in
  ok) exec "{real}" "$@" ;;
  drop) first=$1; shift; exec "{real}" "$first" {drop_args} "$@" ;;
  garbage) "{real}" "$@"; printf 'this is not part of any dump\n' ;;
  cut:*)
    "{real}" "$@" > "$tmp"
    size=$(wc -c < "$tmp")
    head -c $((size * ${{mode#cut:}} / 100)) "$tmp" ;;
esac
"#,
        real = real.display()
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn set_mode(bin: &Path, mode: &str) {
    std::fs::write(bin.join("mode"), mode).unwrap();
}

/// The backups `backups --json` lists.
fn backup_count(stack: &Stack) -> usize {
    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    list["backups"].as_array().unwrap().len()
}

/// Runs every fault through `bin`'s wrappers as one torture scenario: the fixed cases
/// plus cuts at random points (more in full mode); each must fail the run with an error
/// naming `tool` and the expected problem, and record nothing new. A lying dump recorded
/// as a backup counts as data lost.
fn faults_fail_the_source(
    scenario: &str,
    test: &str,
    stack: &Stack,
    bin: &Path,
    tool: &str,
    dropped: &str,
) {
    let mut tally = Tally::new(scenario, "torture_dump_proof", test);
    set_mode(bin, "ok");
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(
        code, 0,
        "the real tool through the wrapper passes: {report:#}"
    );
    assert_eq!(backup_count(stack), 1);
    let mut cases: Vec<(String, Vec<String>)> = vec![
        ("cut:10".into(), vec!["ends early".into()]),
        ("cut:50".into(), vec!["ends early".into()]),
        ("cut:90".into(), vec!["ends early".into()]),
        (
            "drop".into(),
            vec![
                format!("no data for table {dropped}"),
                // PostgreSQL counts the snapshot's rows; MariaDB fingerprints them.
                if tool == "pg_dump" {
                    "the snapshot has ".into()
                } else {
                    "fingerprint: ".into()
                },
            ],
        ),
        ("garbage".into(), vec!["garbage after".into()]),
    ];
    for _ in 0..runs(3, 40) {
        let cut = tally.rng().random_range(1..100);
        cases.push((format!("cut:{cut}"), vec![format!("{tool} exited 0 but")]));
    }
    for (mode, expected) in cases {
        tally.trial(|_| {
            set_mode(bin, &mode);
            let (code, report) = stack.json(&["backup"]);
            if backup_count(stack) != 1 {
                return Err(Failure::DataLost(format!(
                    "{mode}: the lying dump was recorded as a backup (exit {code})"
                )));
            }
            let error = report["sources"][0]["error"].as_str().unwrap_or_default();
            if code != 2 || report["status"] != "failed" {
                return Err(format!("{mode}: exit {code}, status {}", report["status"]).into());
            }
            if !error.contains(&format!("{tool} exited 0 but")) {
                return Err(format!("{mode}: the error does not name the tool: {error}").into());
            }
            if let Some(e) = expected.iter().find(|e| !error.contains(e.as_str())) {
                return Err(format!("{mode}: the error does not say {e:?}: {error}").into());
            }
            if report["sources"][0].get("snapshot_id").is_some() {
                return Err(format!("{mode}: a snapshot id was reported").into());
            }
            Ok(())
        });
    }
    tally.finish();
    // `restore latest` still finds only the good backup.
    let (_, list) = stack.json(&["backups"]);
    let good = list["backups"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["backups"][0]["status"], "ok");
    set_mode(bin, "ok");
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(report.to_string().contains(&good), "{report:#}");
}

fn real_pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_dump").is_file())
        .collect();
    dirs.sort();
    dirs.pop().expect("PostgreSQL client tools")
}

#[test]
fn postgres_dumps_that_lie_fail_the_source() {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE customers (id serial PRIMARY KEY, name text); \
         INSERT INTO customers (name) SELECT 'c' || g || E'\\nline two' FROM generate_series(1, 3000) g; \
         CREATE TABLE orders (id bigint PRIMARY KEY, body text); \
         INSERT INTO orders SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 1200) g;",
    );
    let real = real_pg_bin();
    let bin = tempfile::tempdir().unwrap();
    wrapper(
        bin.path(),
        "pg_dump",
        &real.join("pg_dump"),
        "--exclude-table-data=public.orders",
    );
    std::os::unix::fs::symlink(real.join("pg_restore"), bin.path().join("pg_restore")).unwrap();
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\", bin_dir = \"{}\" }}]\n",
        pg.url("app"),
        bin.path().display()
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    faults_fail_the_source(
        "dump tools that lie: PostgreSQL",
        "postgres_dumps_that_lie_fail_the_source",
        &stack,
        bin.path(),
        "pg_dump",
        "public.orders",
    );
    let rows = pg.psql("app", "SELECT count(*) FROM orders");
    assert!(rows.contains("1200"), "{rows}");
}

#[test]
fn mariadb_dumps_that_lie_fail_the_source() {
    let db = MariaDb::start();
    db.create_db("shop");
    db.exec(
        "shop",
        "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT, photo BLOB); \
         INSERT INTO customers SELECT seq, CONCAT('it''s (', seq, ');\\n'), UNHEX('28293B27') FROM seq_1_to_3000; \
         CREATE TABLE orders (id INT PRIMARY KEY, body TEXT); \
         INSERT INTO orders SELECT seq, REPEAT('x', 300) FROM seq_1_to_1200;",
    );
    let bin = tempfile::tempdir().unwrap();
    let real = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} on PATH"))
    };
    wrapper(
        bin.path(),
        "mariadb-dump",
        &real("mariadb-dump"),
        "--ignore-table-data=shop.orders",
    );
    std::os::unix::fs::symlink(real("mariadb"), bin.path().join("mariadb")).unwrap();
    let stack = Stack::new(&format!(
        "[services.mariadb]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", name = \"shop\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\", bin_dir = \"{}\" }}]\n",
        db.url("shop"),
        bin.path().display()
    ))
    .env("TEST_DB_PASSWORD", db.password());
    faults_fail_the_source(
        "dump tools that lie: MariaDB",
        "mariadb_dumps_that_lie_fail_the_source",
        &stack,
        bin.path(),
        "mariadb-dump",
        "`orders`",
    );
    let rows = db.exec("shop", "SELECT COUNT(*) FROM orders");
    assert!(rows.contains("1200"), "{rows}");
}

#[test]
fn a_relative_bin_dir_is_refused_at_load() {
    let stack = Stack::new(
        "[services.db]\nruntime = { kind = \"external\" }\ndata = [{ kind = \"postgres\", priority = \"critical\", url = \"postgres://u@127.0.0.1:1/app\", bin_dir = \"pgsql/bin\" }]\n",
    );
    let out = stack.run(&["backup"]);
    let text = common::text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("bin_dir") && text.contains("not an absolute path"),
        "{text}"
    );
}

/// A drill whose own backup does not restore exactly marks it, so it never becomes
/// `latest`. Deterministic fault: the `mariadb` client in `bin_dir` drops the `orders`
/// INSERTs of the SQL it is fed (the drill's restore into its sandbox), so the sandbox
/// misses 1200 rows the manifest names; the stored backup itself is complete.
#[test]
fn a_drill_whose_backup_does_not_restore_exactly_keeps_it_out_of_latest() {
    let db = MariaDb::start();
    db.create_db("shop");
    db.exec(
        "shop",
        "CREATE TABLE orders (id INT PRIMARY KEY, body TEXT); \
         INSERT INTO orders SELECT seq, REPEAT('x', 30) FROM seq_1_to_1200;",
    );
    let bin = tempfile::tempdir().unwrap();
    let real = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} on PATH"))
    };
    std::os::unix::fs::symlink(real("mariadb-dump"), bin.path().join("mariadb-dump")).unwrap();
    let client = bin.path().join("mariadb");
    std::fs::write(
        &client,
        format!(
            "#!/bin/sh\nif [ \"$(cat \"$(dirname \"$0\")/mode\")\" = drop ]; then\n  awk '/^INSERT INTO `orders`/{{skip=1}} {{if(!skip)print}} skip && /;$/{{skip=0}}' | exec \"{}\" \"$@\"\nfi\nexec \"{}\" \"$@\"\n",
            real("mariadb").display(),
            real("mariadb").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stack = Stack::new(&format!(
        "[services.mariadb]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", name = \"shop\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\", bin_dir = \"{}\" }}]\n",
        db.url("shop"),
        bin.path().display()
    ))
    .env("TEST_DB_PASSWORD", db.password());
    set_mode(bin.path(), "ok");
    let (code, good) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{good:#}");
    let good = good["id"].as_str().unwrap().to_string();

    set_mode(bin.path(), "drop");
    let (code, drill) = stack.json(&["drill"]);
    assert_ne!(code, 0, "{drill:#}");
    let own = drill["backup"]["id"].as_str().unwrap().to_string();
    assert_ne!(own, good);
    let source = &drill["sources"][0];
    assert_eq!(source["status"], "failed", "{drill:#}");
    assert_eq!(source["backup_id"], own.as_str(), "{drill:#}");
    assert!(
        source["differences"].to_string().contains("orders"),
        "{drill:#}"
    );

    // The drill's backup is recorded (its dump was complete), but `latest` skips it.
    set_mode(bin.path(), "ok");
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0, "{restored:#}");
    let text = restored.to_string();
    assert!(text.contains(&good) && !text.contains(&own), "{restored:#}");
    // Also for the next drill that takes no backup of its own.
    let (_, again) = stack.json(&["drill", "--use-backup", "latest"]);
    assert_eq!(again["sources"][0]["backup_id"], good.as_str(), "{again:#}");
    assert_eq!(again["sources"][0]["status"], "passed", "{again:#}");
}
