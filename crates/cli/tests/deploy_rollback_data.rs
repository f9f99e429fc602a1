//! `drydock rollback --with-data` end to end, through the real binary, with a real
//! PostgreSQL: an app (a release directory) deployed twice, the second version writing
//! to the database (and then migrating its schema); the rollback reports the writes it
//! would lose, table by table, refuses without a confirmation, offers the app-only
//! rollback while no schema changed, and with `--force` puts back both the app and the
//! database exactly as they were before the second deploy (judged by `pg_dump`).

mod common;

use common::git::{commit, init};
use common::oracle::pg_dump;
use common::Stack;
use drydock_testkit::postgres::PgServer;
use serde_json::Value;

/// `db` (infra, an external PostgreSQL) and `api` (app, a release directory in `target`).
fn stack(pg: &PgServer, target: &std::path::Path) -> Stack {
    let stack = Stack::new(&format!(
        "[services.db]\nrole = \"infra\"\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n[services.api]\nrole = \"app\"\nruntime = {{ kind = \"none\" }}\ndeploy = {{ kind = \"release\", build = \"mkdir -p out && echo $DRYDOCK_REV > out/rev\", output = \"out\", target = \"{}\" }}\n",
        pg.url("shop"),
        target.display()
    ))
    .env("TEST_PG_PASSWORD", pg.password());
    init(&stack, &[("src/app.py", "print('v1')\n")]);
    stack
}

fn deploy(stack: &Stack) -> Value {
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "ok", "{report:#}");
    report
}

fn live_rev(target: &std::path::Path) -> String {
    std::fs::read_to_string(target.join("current/rev"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn rollback_with_data_reports_the_lost_writes_offers_app_only_and_restores_exactly() {
    let pg = PgServer::start();
    pg.create_db("shop");
    pg.psql(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL);
         INSERT INTO orders SELECT i, i * 1.5 FROM generate_series(1, 3000) i;",
    );
    let releases = tempfile::tempdir().unwrap();
    let target = releases.path().join("api");
    let stack = stack(&pg, &target);

    // v1: the first deployment (everything counts as changed).
    let first = deploy(&stack);
    let v1 = first["commit"].as_str().unwrap().to_string();
    assert_eq!(live_rev(&target), v1);

    // v2: an app change, deployed with its pre-deploy backup.
    let before_v2 = pg_dump(&pg, "shop");
    commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let second = deploy(&stack);
    assert_eq!(second["decision"], "app", "{second:#}");
    let backup = second["backup"].as_str().unwrap().to_string();
    assert_ne!(live_rev(&target), v1);

    // v2 writes (no migration): rolling back with data would lose them, and the app
    // alone can go back without losing them. Nobody to ask and no --force: refused.
    pg.psql(
        "shop",
        "INSERT INTO orders SELECT i, 1 FROM generate_series(3001, 3010) i;",
    );
    let written = pg_dump(&pg, "shop");
    let out = stack.run(&["rollback", "--with-data"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("restoring backup {backup}"))
            && text.contains("public.orders: 3000 rows in backup, 3010 now")
            && text.contains("No schema changed since that backup")
            && text.contains("`drydock rollback` without --with-data"),
        "{text}"
    );
    assert_eq!(
        pg_dump(&pg, "shop"),
        written,
        "a refused rollback changes nothing"
    );
    assert_ne!(live_rev(&target), v1);

    // Then v2 migrates: the offer of an app-only rollback is gone.
    pg.psql("shop", "ALTER TABLE orders ADD COLUMN note text;");
    let out = stack.run(&["rollback", "--with-data"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("schema:ddl") && !text.contains("No schema changed"),
        "{text}"
    );

    // With --force: the app and the database as they were before v2.
    let (code, report) = stack.json(&["rollback", "--with-data", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "ok", "{report:#}");
    let data = &report["data"];
    assert_eq!(
        (&data["backup"], &data["verified"], &data["schema_changed"]),
        (
            &Value::from(backup.as_str()),
            &Value::from(true),
            &Value::from(true)
        ),
        "{report:#}"
    );
    let lost = data["lost"][0]["differences"].as_array().unwrap();
    assert!(
        lost.iter()
            .any(|d| d == "public.orders: 3000 rows in backup, 3010 now"),
        "{lost:?}"
    );
    assert_eq!(pg_dump(&pg, "shop"), before_v2);
    assert_eq!(live_rev(&target), v1);
    // Recorded as a rollback; the next plan diffs against v1 again.
    let (_, list) = stack.json(&["deployments"]);
    assert_eq!(list["deployments"][0]["kind"], "rollback", "{list:#}");
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(
        plan["changes"]["from"],
        Value::from(v1.as_str()),
        "{plan:#}"
    );
}
