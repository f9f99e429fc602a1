//! `drydock deploy` recreating infrastructure, through the real binary, for every
//! engine (PostgreSQL, MariaDB, Redis, SQLite, files, a Docker volume): each service's
//! `process` runtime has a `recreate` command that, like a recreation gone wrong, loses
//! some of its data. The deployment must back up first, recreate, compare the live data
//! with that backup, restore exactly what was lost, and leave the data as it was before
//! the deploy, judged by tools drydock did not write (`pg_dump`, `mariadb-dump` +
//! `CHECKSUM TABLE`, Redis `DEBUG DIGEST`, `sqlite3 .dump`, an `lstat` walk). And the
//! other branches of the matrix that rebuild: a heal that fails, a service that is not
//! deployed at all, a backup that fails (nothing recreated), a restore not confirmed,
//! a recreation that never becomes healthy, a runtime drydock cannot recreate.

mod common;

use std::path::{Path, PathBuf};

use common::git::{commit, deployed, init};
use common::oracle::{lstat_walk, mariadb_oracle, pg_dump, redis_digest, sqlite_dump};
use common::Stack;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;
use serde_json::Value;

/// A folder for the services' data, flags and recreate scripts (outside the stack's
/// git repository).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An infra service `name` run by a flag file, whose `recreate` runs `damage`
    /// between stopping and starting; `data` is its `data = [...]` entry.
    fn service(&self, name: &str, damage: &str, data: &str) -> String {
        let flag = self.path(&format!("{name}.running"));
        std::fs::write(&flag, "").unwrap();
        let script = self.path(&format!("recreate-{name}.sh"));
        std::fs::write(
            &script,
            format!(
                "set -e\nrm -f '{f}'\necho recreated >> '{log}'\n{damage}\ntouch '{f}'\n",
                f = flag.display(),
                log = self.path(&format!("{name}.recreated")).display()
            ),
        )
        .unwrap();
        format!(
            "[services.{name}]\nrole = \"infra\"\nruntime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", recreate = \"sh '{s}'\", timeout = \"5s\" }}\ndata = [{data}]\n\n",
            f = flag.display(),
            s = script.display()
        )
    }

    /// How many times `name` was recreated.
    fn recreated(&self, name: &str) -> usize {
        std::fs::read_to_string(self.path(&format!("{name}.recreated")))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// A stack whose folder is a git repository with a deployment of its first commit
/// recorded; `commit_infra_change` then makes the next deploy an `infra` one.
fn stack_at(services: &str) -> Stack {
    let stack = Stack::new(services);
    let first = init(&stack, &[("compose.yaml", "services: {}\n")]);
    deployed(&stack, &first);
    stack
}

fn commit_infra_change(stack: &Stack) {
    commit(stack.path(), &[("compose.yaml", "services: { db: {} }\n")]);
}

fn actions(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// `deploy --force` of an infra change that must end ok through every rebuild step.
fn infra_deploy_that_restores(stack: &Stack) -> Value {
    let (code, report) = stack.json(&["deploy", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (report["decision"].as_str(), report["outcome"].as_str()),
        (Some("infra"), Some("ok")),
        "{report:#}"
    );
    assert_eq!(
        actions(&report),
        [
            "backup done",
            "recreate done",
            "verify done",
            "restore done"
        ],
        "{report:#}"
    );
    report
}

/// `deployments` and `status` both show the last deployment as `needs-rollback`.
fn assert_recorded_as_needing_an_operator(stack: &Stack) {
    let (_, list) = stack.json(&["deployments"]);
    assert_eq!(
        list["deployments"][0]["outcome"], "needs-rollback",
        "{list:#}"
    );
    let (_, status) = stack.json(&["status"]);
    assert_eq!(
        status["last_deployment"]["outcome"], "needs-rollback",
        "{status:#}"
    );
}

fn data_status(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn sqlite_with_rows(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000)
         INSERT INTO t SELECT i, randomblob(100) FROM s;",
    )
    .unwrap();
}

fn tree_with_files(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "kept").unwrap();
    std::fs::write(dir.join("sub/b.txt"), "also kept").unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
}

#[test]
fn an_infra_change_recreates_every_engine_and_restores_exactly_what_the_recreation_lost() {
    drydock_testkit::docker::require_docker();
    let work = Work::new();
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, body text NOT NULL);
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 3000) i;",
    );
    let maria = MariaDb::start();
    maria.create_db("shop");
    maria.exec(
        "shop",
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;
         INSERT INTO items WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 500)
             SELECT i, CONCAT('item ', i) FROM s;",
    );
    let redis = RedisServer::start();
    redis.cli(&[
        "EVAL",
        "for i = 1, 2000 do redis.call('SET', 'k' .. i, 'v' .. i) end redis.call('HSET', 'h', 'a', '1') return 1",
        "0",
    ]);
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let uploads = work.path("uploads");
    tree_with_files(&uploads);
    let volume =
        drydock_testkit::docker::Volume::create(&drydock_testkit::docker::unique("infra"), &[]);
    std::fs::write(volume.mountpoint().join("spool.txt"), "queued").unwrap();

    let psql = drydock_testkit::program("psql");
    let mariadb = drydock_testkit::program("mariadb");
    let redis_cli = drydock_testkit::program("redis-cli");
    let mut services = String::new();
    services += &work.service(
        "pg",
        &format!(
            "PGPASSWORD='{}' '{}' -h 127.0.0.1 -p {} -U {} -d app -v ON_ERROR_STOP=1 -q -c 'DELETE FROM t WHERE id > 2900'",
            pg.password(),
            psql.display(),
            pg.port(),
            pg.superuser()
        ),
        &format!(
            "{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}",
            pg.url("app")
        ),
    );
    services += &work.service(
        "maria",
        &format!(
            "MYSQL_PWD='{}' '{}' -h 127.0.0.1 -P {} -u {} shop -e 'DROP TABLE items'",
            maria.password(),
            mariadb.display(),
            maria.port(),
            maria.user()
        ),
        &format!(
            "{{ kind = \"mysql\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_MY_PASSWORD}}\" }}",
            maria.url("shop")
        ),
    );
    services += &work.service(
        "cache",
        &format!(
            "'{}' -p {} DEL k1 k2 h > /dev/null",
            redis_cli.display(),
            redis.port()
        ),
        &format!(
            "{{ kind = \"redis\", priority = \"high\", url = \"{}\" }}",
            redis.url()
        ),
    );
    services += &work.service(
        "lite",
        &format!("sqlite3 '{}' 'DELETE FROM t WHERE id <= 10'", db.display()),
        &format!(
            "{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}",
            db.display()
        ),
    );
    services += &work.service(
        "files",
        &format!(
            "rm '{u}/a.txt'; echo changed > '{u}/sub/b.txt'",
            u = uploads.display()
        ),
        &format!(
            "{{ kind = \"files\", priority = \"high\", path = \"{}\" }}",
            uploads.display()
        ),
    );
    services += &work.service(
        "spool",
        &format!("rm '{}/spool.txt'", volume.mountpoint().display()),
        &format!(
            "{{ kind = \"volume\", name = \"spool\", volume = \"{}\" }}",
            volume.name
        ),
    );
    let stack = stack_at(&services)
        .env("TEST_PG_PASSWORD", pg.password())
        .env("TEST_MY_PASSWORD", maria.password());
    commit_infra_change(&stack);

    let before = [
        pg_dump(&pg, "app"),
        mariadb_oracle(&maria, "shop"),
        redis_digest(&redis),
        sqlite_dump(&db),
        lstat_walk(&uploads),
        lstat_walk(&volume.mountpoint()),
    ];

    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["decision"], "infra", "{plan:#}");

    let report = infra_deploy_that_restores(&stack);
    for name in ["pg", "maria", "cache", "lite", "files", "spool"] {
        assert_eq!(work.recreated(name), 1, "{name} recreated once");
    }
    // Every source lost something in its recreation, and each was restored.
    let statuses = data_status(&report);
    assert_eq!(statuses.len(), 6, "{report:#}");
    assert!(
        statuses
            .iter()
            .all(|(_, s)| s == "changed" || s == "missing"),
        "{statuses:?}"
    );
    let restore = &report["steps"][3]["detail"];
    for label in ["pg/", "maria/", "cache/", "lite/", "files/", "spool/"] {
        assert!(restore.as_str().unwrap().contains(label), "{restore}");
    }
    // The backup, six recreations and six restores.
    assert_eq!(report["changes"], 13, "{report:#}");

    let after = [
        pg_dump(&pg, "app"),
        mariadb_oracle(&maria, "shop"),
        redis_digest(&redis),
        sqlite_dump(&db),
        lstat_walk(&uploads),
        lstat_walk(&volume.mountpoint()),
    ];
    assert_eq!(after, before);
    // And the history has it as a good deployment: a second deploy skips.
    let (code, again) = stack.json(&["deploy"]);
    assert_eq!(
        (code, again["decision"].as_str()),
        (0, Some("skip")),
        "{again:#}"
    );
    assert_eq!(work.recreated("pg"), 1);
}

/// SQLite and files, whose recreation keeps or loses data as `damage_*` say.
fn local_stack(work: &Work, damage_db: &str, damage_files: &str) -> Stack {
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let uploads = work.path("uploads");
    tree_with_files(&uploads);
    let services = work.service(
        "lite",
        damage_db,
        &format!(
            "{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}",
            db.display()
        ),
    ) + &work.service(
        "files",
        damage_files,
        &format!(
            "{{ kind = \"files\", priority = \"high\", path = \"{}\" }}",
            uploads.display()
        ),
    );
    stack_at(&services)
}

#[test]
fn a_recreation_that_keeps_the_data_restores_nothing() {
    let work = Work::new();
    let stack = local_stack(&work, "true", "true");
    commit_infra_change(&stack);
    let before = (
        sqlite_dump(&work.path("app.db")),
        lstat_walk(&work.path("uploads")),
    );
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        data_status(&report),
        [
            ("files/files".to_string(), "same".to_string()),
            ("lite/sqlite".to_string(), "same".to_string())
        ],
        "{report:#}"
    );
    assert!(
        report["steps"][3]["detail"]
            .as_str()
            .unwrap()
            .contains("nothing to restore"),
        "{report:#}"
    );
    // The backup and two recreations; no restore.
    assert_eq!(report["changes"], 3);
    assert_eq!(
        (
            sqlite_dump(&work.path("app.db")),
            lstat_walk(&work.path("uploads"))
        ),
        before
    );
}

#[test]
fn differing_data_is_not_replaced_without_a_confirmation_and_the_fix_it_names_restores_it() {
    let work = Work::new();
    let db = work.path("app.db");
    let stack = local_stack(
        &work,
        &format!("sqlite3 '{}' 'DELETE FROM t WHERE id <= 10'", db.display()),
        "true",
    );
    commit_infra_change(&stack);
    let before = sqlite_dump(&db);
    // No terminal to ask, no --force: the restore is refused, the recreation's damage
    // stays, and the report says what to run.
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["outcome"], "needs-rollback", "{report:#}");
    assert_eq!(report["failure"]["step"], "restore", "{report:#}");
    let fix = report["failure"]["fix"].as_str().unwrap();
    let backup = report["backup"].as_str().unwrap();
    let command = format!("drydock restore {backup} --all --source lite/sqlite --force");
    assert!(fix.contains(&command), "{fix}");
    assert_ne!(sqlite_dump(&db), before);
    assert_recorded_as_needing_an_operator(&stack);
    // The operator decides the difference is a loss and runs the command named.
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let (code, restored) = stack.json(&args);
    common::assert_verified(code, &restored);
    assert_eq!(
        restored["sources"].as_array().unwrap().len(),
        1,
        "{restored:#}"
    );
    assert_eq!(sqlite_dump(&db), before);
}

#[test]
fn a_missing_source_after_the_recreation_is_restored_without_asking() {
    let work = Work::new();
    let db = work.path("app.db");
    let stack = local_stack(&work, &format!("rm -f '{}'*", db.display()), "true");
    commit_infra_change(&stack);
    let before = sqlite_dump(&db);
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        data_status(&report).contains(&("lite/sqlite".to_string(), "missing".to_string())),
        "{report:#}"
    );
    assert_eq!(sqlite_dump(&db), before);
}

#[test]
fn a_failed_backup_stops_the_infra_deploy_before_anything_is_recreated() {
    let work = Work::new();
    let stack = local_stack(&work, "true", "true");
    commit_infra_change(&stack);
    // A file where the repository's folder should be: no backup can be stored.
    std::fs::write(stack.path().join("repo"), "not a repository").unwrap();
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["outcome"], "failed", "{report:#}");
    assert_eq!(report["failure"]["step"], "backup", "{report:#}");
    assert_eq!((work.recreated("lite"), work.recreated("files")), (0, 0));
}

#[test]
fn a_recreation_that_never_becomes_healthy_needs_a_rollback_and_says_how() {
    let work = Work::new();
    // The recreate script fails after stopping the service (`set -e`).
    let stack = local_stack(&work, "false", "true");
    commit_infra_change(&stack);
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["outcome"], "needs-rollback", "{report:#}");
    assert_eq!(report["failure"]["step"], "recreate", "{report:#}");
    let fix = report["failure"]["fix"].as_str().unwrap();
    assert!(
        fix.contains("drydock restore") && fix.contains("--service lite"),
        "{fix}"
    );
    assert_recorded_as_needing_an_operator(&stack);
}

#[test]
fn a_runtime_drydock_cannot_recreate_refuses_the_plan_before_anything_changes() {
    let work = Work::new();
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let stack = stack_at(&format!(
        "[services.db]\nrole = \"infra\"\nruntime = {{ kind = \"docker\", container = \"some-db\" }}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}]\n",
        db.display()
    ));
    commit_infra_change(&stack);
    let out = stack.run(&["deploy"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("cannot recreate db") && text.contains("nothing was changed"),
        "{text}"
    );
    // No backup was taken: nothing changed at all.
    assert!(!stack.path().join("repo/config").exists(), "{text}");
}

#[test]
fn a_heal_that_fails_rebuilds_from_a_backup() {
    let work = Work::new();
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let flag = work.path("lite.running");
    let installed = work.path("lite.installed");
    // Stopped, and its start command fails until the service is installed again (a
    // broken install): the heal's restart cannot fix it; its recreation, which
    // reinstalls it and loses rows, can.
    let script = work.path("recreate.sh");
    std::fs::write(
        &script,
        format!(
            "sqlite3 '{}' 'DELETE FROM t WHERE id <= 10'\ntouch '{}' '{}'\n",
            db.display(),
            installed.display(),
            flag.display()
        ),
    )
    .unwrap();
    let stack = stack_at(&format!(
        "[services.lite]\nrole = \"infra\"\nruntime = {{ kind = \"process\", start = \"test -e '{i}' && touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{f}'\", recreate = \"sh '{s}'\", timeout = \"5s\" }}\nhealth = [{{ kind = \"process\", retries = 0 }}]\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{d}\" }}]\n",
        i = installed.display(),
        f = flag.display(),
        s = script.display(),
        d = db.display()
    ));
    let before = sqlite_dump(&db);
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(
        (code, plan["decision"].as_str()),
        (0, Some("heal")),
        "{plan:#}"
    );
    let (code, report) = stack.json(&["deploy", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        actions(&report),
        [
            "diagnose done",
            "heal done",
            "backup done",
            "recreate done",
            "restore done",
            "verify done"
        ],
        "{report:#}"
    );
    assert!(flag.exists());
    assert_eq!(sqlite_dump(&db), before);
}

#[test]
fn a_service_not_deployed_is_recreated_and_its_data_restored_from_the_newest_backup() {
    let work = Work::new();
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let flag = work.path("lite.running");
    std::fs::write(&flag, "").unwrap();
    let gone = work.path("lite.gone");
    // Status exits 4 (not deployed) while `gone` exists; the recreation deploys it
    // again, with an empty database.
    let script = work.path("recreate.sh");
    std::fs::write(
        &script,
        format!(
            "rm -f '{g}' '{d}'*\nsqlite3 '{d}' 'CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)'\ntouch '{f}'\n",
            g = gone.display(),
            d = db.display(),
            f = flag.display()
        ),
    )
    .unwrap();
    let stack = stack_at(&format!(
        "[services.lite]\nrole = \"infra\"\nruntime = {{ kind = \"process\", start = \"touch '{f}'\", stop = \"rm -f '{f}'\", status = \"test -e '{g}' && exit 4; test -e '{f}'\", recreate = \"sh '{s}'\", timeout = \"5s\" }}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{d}\" }}]\n",
        f = flag.display(),
        g = gone.display(),
        s = script.display(),
        d = db.display()
    ));
    let (code, backup) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{backup:#}");
    let before = sqlite_dump(&db);
    std::fs::write(&gone, "").unwrap();
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(
        (code, plan["decision"].as_str()),
        (0, Some("recreate")),
        "{plan:#}"
    );
    let (code, report) = stack.json(&["deploy", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        actions(&report)[1..],
        ["recreate done", "restore done", "verify done"],
        "{report:#}"
    );
    assert_eq!(sqlite_dump(&db), before);
}

/// A Compose project with one Redis service `cache` on a free port and no volume for its
/// data (a recreated container starts empty: the mistake a deployment must catch),
/// up and recorded as deployed at the first commit.
struct ComposeRedis {
    stack: Stack,
    compose: drydock_testkit::docker::ComposeProject,
    image: String,
    port: u16,
}

impl ComposeRedis {
    fn start() -> ComposeRedis {
        drydock_testkit::docker::require_docker();
        let image = drydock_testkit::docker::redis_image();
        let port = drydock_testkit::free_port();
        let project = drydock_testkit::docker::unique("infra");
        let stack = Stack::new(&format!(
            "[services.cache]\nrole = \"infra\"\nruntime = {{ kind = \"compose\", project = \"{project}\", service = \"cache\", file = \"compose.yaml\", stop_timeout = \"5s\", health_timeout = \"10s\" }}\ndata = [{{ kind = \"redis\", priority = \"critical\", url = \"redis://127.0.0.1:{port}\" }}]\n"
        ));
        let compose = drydock_testkit::docker::ComposeProject::new(
            &project,
            &stack.path().join("compose.yaml"),
            &[],
        );
        let redis = ComposeRedis {
            stack,
            compose,
            image,
            port,
        };
        let first = init(&redis.stack, &[("compose.yaml", &redis.file("", "one"))]);
        redis.compose.run(&["up", "-d"]);
        deployed(&redis.stack, &first);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while redis.cli(&["PING"]) != "PONG" {
            assert!(
                std::time::Instant::now() < deadline,
                "redis in compose did not answer"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        redis
    }

    /// The compose file, with `extra` arguments for redis-server and a `release` label.
    fn file(&self, extra: &str, label: &str) -> String {
        format!(
            "services:\n  cache:\n    image: {}\n    command: [\"redis-server\", \"--dir\", \"/data\", \"--protected-mode\", \"no\"{extra}]\n    ports: [\"127.0.0.1:{}:6379\"]\n    labels: {{ release: \"{label}\" }}\n",
            self.image, self.port
        )
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(drydock_testkit::program("redis-cli"))
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn a_compose_service_recreated_without_its_data_gets_it_back() {
    let redis = ComposeRedis::start();
    let (stack, compose) = (&redis.stack, &redis.compose);
    redis.cli(&[
        "EVAL",
        "for i = 1, 1000 do redis.call('SET', 'k' .. i, 'v' .. i) end return 1",
        "0",
    ]);
    let before = redis.cli(&["DEBUG", "DIGEST"]);
    // The container's id and its `release` label.
    let container = || {
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.Id}} {{index .Config.Labels \"release\"}}",
            ])
            .arg(compose.container("cache"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (id_before, label) = container()
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert_eq!(label, "one");
    commit(stack.path(), &[("compose.yaml", &redis.file("", "two"))]);

    let report = infra_deploy_that_restores(stack);
    // A new container, from the new compose file, holding the data again.
    let after = container();
    assert!(
        !after.starts_with(&id_before) && after.ends_with(" two"),
        "{after}"
    );
    assert_eq!(data_status(&report)[0].1, "changed", "{report:#}");
    assert_eq!(redis.cli(&["DEBUG", "DIGEST"]), before);
}

#[test]
fn a_compose_service_that_fails_after_recreation_is_put_back_on_the_last_good_compose_file() {
    let redis = ComposeRedis::start();
    let stack = &redis.stack;
    let cli = |args: &[&str]| redis.cli(args);
    cli(&["SET", "order:1", "paid"]);
    let before = cli(&["DEBUG", "DIGEST"]);
    // The new compose file starts a server that exits at once (a bad option).
    commit(
        stack.path(),
        &[(
            "compose.yaml",
            &redis.file(", \"--no-such-option\", \"x\"", "one"),
        )],
    );
    let (code, report) = stack.json(&["deploy", "--force"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["outcome"], "rolled-back", "{report:#}");
    assert_eq!(report["failure"]["step"], "recreate", "{report:#}");
    let cause = report["failure"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("rolled back: cache put back on the definition of"),
        "{cause}"
    );
    // Running the old definition again, with its data restored from the backup; the
    // rollback's temporary compose file is gone.
    assert_eq!(cli(&["DEBUG", "DIGEST"]), before);
    assert_eq!(cli(&["GET", "order:1"]), "paid");
    assert!(!stack.path().join(".drydock-rollback-compose.yaml").exists());
    // Not a good deployment: the next plan still diffs against the first commit.
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(
        (code, plan["decision"].as_str()),
        (0, Some("infra")),
        "{plan:#}"
    );
}

#[test]
fn too_little_free_space_for_twice_the_largest_source_stops_before_anything_is_recreated() {
    let work = Work::new();
    let uploads = work.path("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    // 2 MiB that do not compress; the state volume gets 3 MiB: less than 2 x 2 MiB.
    let noise: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(uploads.join("big.bin"), noise).unwrap();
    let services = work.service(
        "files",
        "true",
        &format!(
            "{{ kind = \"files\", priority = \"high\", path = \"{}\" }}",
            uploads.display()
        ),
    );
    let stack = Stack::new(&services);
    let Some(_state) = common::tmpfs::Tmpfs::mount(&stack.path().join("state"), 3 * 1024) else {
        panic!("this test needs root to mount a tmpfs");
    };
    let first = init(&stack, &[("compose.yaml", "services: {}\n")]);
    deployed(&stack, &first);
    commit_infra_change(&stack);
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["outcome"], "failed", "{report:#}");
    assert_eq!(report["failure"]["step"], "recreate", "{report:#}");
    let cause = report["failure"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("less than 2 x the largest source"),
        "{cause}"
    );
    assert!(
        report["failure"]["fix"]
            .as_str()
            .unwrap()
            .starts_with("nothing was recreated"),
        "{report:#}"
    );
    assert_eq!(work.recreated("files"), 0);
}

#[test]
fn a_restore_that_keeps_failing_is_retried_then_stops_with_the_state_kept_and_reported() {
    let work = Work::new();
    let redis = RedisServer::start();
    redis.cli(&[
        "EVAL",
        "for i = 1, 500 do redis.call('SET', 'k' .. i, 'v' .. i) end return 1",
        "0",
    ]);
    let redis_cli = drydock_testkit::program("redis-cli");
    let dead_port = drydock_testkit::free_port();
    // The recreation loses keys and leaves the server a replica of a master that is not
    // there: read-only, so every restore into it fails.
    let services = work.service(
        "cache",
        &format!(
            "'{c}' -p {p} DEL k1 k2 k3 > /dev/null && '{c}' -p {p} REPLICAOF 127.0.0.1 {dead_port} > /dev/null",
            c = redis_cli.display(),
            p = redis.port()
        ),
        &format!(
            "{{ kind = \"redis\", priority = \"critical\", url = \"{}\" }}",
            redis.url()
        ),
    );
    let stack = stack_at(&format!(
        "{services}[deploy.recreate]\nhealth_interval = \"200ms\"\nrestore_attempts = 2\n"
    ));
    commit_infra_change(&stack);
    let (code, report) = stack.json(&["deploy", "--force"]);
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["outcome"], "needs-rollback", "{report:#}");
    assert_eq!(report["failure"]["step"], "restore", "{report:#}");
    let cause = report["failure"]["cause"].as_str().unwrap();
    assert!(cause.contains("failed 2 time(s)"), "{cause}");
    let fix = report["failure"]["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "drydock restore {} --service cache --force",
            report["backup"].as_str().unwrap()
        )),
        "{fix}"
    );
    // The live data is as the recreation left it: the restore changed nothing.
    let out = redis.cli(&["DBSIZE"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "497");
    assert_recorded_as_needing_an_operator(&stack);
}

#[test]
fn a_heal_that_fixes_it_skips_the_rebuild_and_deploys_the_app() {
    let work = Work::new();
    let db = work.path("app.db");
    sqlite_with_rows(&db);
    let services = work.service(
        "lite",
        "exit 1",
        &format!(
            "{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}",
            db.display()
        ),
    );
    let target = work.path("releases");
    let stack = stack_at(&format!(
        "{services}[services.api]\nrole = \"app\"\nruntime = {{ kind = \"none\" }}\ndeploy = {{ kind = \"release\", build = \"mkdir -p out && echo $DRYDOCK_REV > out/rev\", output = \"out\", target = \"{}\" }}\n",
        target.display()
    ));
    // The service stopped (its flag gone), nothing changed in the infrastructure; the
    // app changed. Its start works: the heal fixes it.
    std::fs::remove_file(work.path("lite.running")).unwrap();
    let v2 = commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let before = sqlite_dump(&db);
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(
        (code, plan["decision"].as_str()),
        (0, Some("heal")),
        "{plan:#}"
    );
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        actions(&report),
        [
            "diagnose done",
            "heal done",
            "backup skipped",
            "recreate skipped",
            "restore skipped",
            "verify skipped",
            "deploy-app done"
        ],
        "{report:#}"
    );
    assert!(work.path("lite.running").exists(), "healed: running again");
    assert_eq!(work.recreated("lite"), 0);
    assert_eq!(sqlite_dump(&db), before);
    assert_eq!(
        std::fs::read_to_string(target.join("current/rev"))
            .unwrap()
            .trim(),
        v2
    );
}
