//! Bad input and faults through the real binary: unreachable and wrongly authenticated
//! servers, a dump tool killed mid-stream, refusing to overwrite. (Secrets never leaking
//! and private files under any umask: `torture_secrets.rs`.) And a prune that cannot
//! remove a manifest (its file made immutable) leaving that backup whole.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Stack;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;

fn pg_stack(pg: &PgServer, password: &str) -> Stack {
    Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"high\", path = \"files\" }}]\n",
        pg.url("app")
    ))
    .env("TEST_PG_PASSWORD", password)
}

#[test]
fn wrong_password_fails_the_run_names_the_source_and_records_nothing() {
    let pg = PgServer::start();
    pg.create_db("app");
    let stack = pg_stack(&pg, "wrong-canary-password");
    std::fs::create_dir(stack.path().join("files")).unwrap();
    std::fs::write(stack.path().join("files/a.txt"), "a").unwrap();
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["status"], "failed");
    let db = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "db")
        .unwrap();
    assert_eq!(db["status"], "failed");
    let error = db["error"].as_str().unwrap();
    assert!(
        error.contains("postgres 127.0.0.1:") && error.contains("authentication failed"),
        "{error}"
    );
    assert!(
        db.get("snapshot_id").is_none(),
        "a failed source has no snapshot: {db:#}"
    );
    assert!(!report.to_string().contains("wrong-canary-password"));
    // The files source did get stored, and the manifest marks the database as failed.
    let (_, list) = stack.json(&["backups"]);
    let sources = list["backups"][0]["sources"].as_array().unwrap();
    assert!(sources
        .iter()
        .any(|s| s["service"] == "db" && s["status"] == "failed"));
    let snaps = stack.restic(&["snapshots", "--json", "--tag", "kind:postgres"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&snaps.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn unreachable_server_and_missing_database_are_named() {
    let pg = PgServer::start();
    let stack = pg_stack(&pg, pg.password());
    std::fs::create_dir(stack.path().join("files")).unwrap();
    let (code, report) = stack.json(&["backup", "--service", "db"]);
    assert_eq!(code, 2);
    let error = report["sources"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("\"app\"") || error.contains("`app`") || error.contains("database app"),
        "names the missing database: {error}"
    );
    let mut pg = pg;
    pg.stop();
    let (code, report) = stack.json(&["backup", "--service", "db"]);
    assert_eq!(code, 2);
    let error = report["sources"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert_eq!(
        report["recorded"], false,
        "nothing stored, nothing recorded"
    );
}

/// A `mariadb-dump` that emits part of the real dump, complains, and dies by SIGKILL.
fn crashing_dump_on_path(bin: &Path) {
    let real = ["/usr/bin/mariadb-dump", "/usr/bin/mysqldump"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    let script = format!("#!/bin/sh\n{real} \"$@\" | head -c 3000\necho 'simulated crash: out of memory' >&2\nkill -9 $$\n");
    for name in ["mariadb-dump", "mysqldump"] {
        let p = bin.join(name);
        std::fs::write(&p, &script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_dump_killed_mid_stream_leaves_no_good_snapshot_and_the_next_backup_succeeds() {
    let db = MariaDb::start();
    db.create_db("shop");
    db.exec("shop", "CREATE TABLE t (id INT PRIMARY KEY, body TEXT); INSERT INTO t SELECT seq, REPEAT('x', 500) FROM seq_1_to_2000;");
    let stack = Stack::new(&format!(
        "[services.mariadb]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", name = \"shop\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\" }}]\n",
        db.url("shop")
    ))
    .env("TEST_DB_PASSWORD", db.password());
    let bin = tempfile::tempdir().unwrap();
    crashing_dump_on_path(bin.path());
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = stack
        .command(&["backup", "--json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = report["sources"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("killed by signal 9") && error.contains("simulated crash: out of memory"),
        "{error}"
    );
    assert!(!error.contains(db.password()));
    let snaps = stack.restic(&["snapshots", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&snaps.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0,
        "the partial dump's snapshot is deleted and no manifest is written"
    );

    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["sources"][0]["counts"]["rows"], 2000);
}

#[test]
fn restore_over_existing_data_without_force_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.txt"), "backed up").unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"{}\" }}]\n",
        data.display()
    ));
    assert_eq!(stack.json(&["backup"]).0, 0);
    std::fs::write(data.join("a.txt"), "changed since").unwrap();
    let out = stack.run(&["restore", "latest", "--all"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("already holds data") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("a.txt")).unwrap(),
        "changed since"
    );
    // With --force it is replaced and verified.
    let (code, report) = stack.json(&["restore", "latest", "--all", "--force"]);
    common::assert_verified(code, &report);
    assert_eq!(
        std::fs::read_to_string(data.join("a.txt")).unwrap(),
        "backed up"
    );
}

#[test]
fn external_runtime_blocks_file_level_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}]\n",
        db.display()
    ));
    assert_eq!(stack.json(&["backup"]).0, 0);
    let out = stack.run(&["restore", "latest", "--all", "--force"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("does not let drydock stop it"),
        "{}",
        common::text(&out)
    );
}

/// Runs drydock under a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_a_terminal(stack: &Stack, args: &str, answer: &str) -> (i32, String) {
    let cmd = format!("'{}' {args}", env!("CARGO_BIN_EXE_drydock"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(stack.path())
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_overwriting_needs_the_stack_name_typed() {
    let stack = Stack::new("[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", priority = \"critical\", path = \"data\" }]\n");
    let data = stack.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a"), "backed up").unwrap();
    assert_eq!(stack.json(&["backup"]).0, 0);
    std::fs::write(data.join("a"), "newer").unwrap();

    let (code, screen) = on_a_terminal(&stack, "restore latest --all", "yes");
    assert_eq!(code, 3, "{screen}");
    assert!(
        screen.contains("Type the stack name `test` to continue")
            && screen.contains("not confirmed"),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(data.join("a")).unwrap(), "newer");

    let (code, screen) = on_a_terminal(&stack, "restore latest --all", "test");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("restore verified"), "{screen}");
    assert_eq!(
        std::fs::read_to_string(data.join("a")).unwrap(),
        "backed up"
    );
}

/// `chattr` on `path` (`+i`: the file can be neither changed nor removed, even by root).
fn chattr(flag: &str, path: &Path) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Takes the immutable flag off again, whatever the test does.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

/// A prune that cannot remove the manifest of a backup it drops (its snapshot file made
/// immutable) must not have removed that backup's data either: the backup stays whole,
/// `verify --read-data` passes, and the next prune completes. Manifests used to go in one
/// batch with the data, so the data could go while the manifest stayed: a backup listed
/// with its source missing, failing every verify from then on (found by `torture_s3`).
#[test]
fn a_prune_that_cannot_remove_a_manifest_leaves_that_backup_whole() {
    let s = Stack::new("[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", priority = \"critical\", path = \"docs\" }]\n");
    std::fs::create_dir(s.path().join("docs")).unwrap();
    let mut ids = Vec::new();
    for v in ["v1", "v2"] {
        std::fs::write(s.path().join("docs/a.txt"), v).unwrap();
        let (code, r) = s.json(&["backup"]);
        assert_eq!(code, 0, "{r:#}");
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    // The first backup's manifest snapshot: the one prune (same day) removes.
    let out = s.restic(&[
        "snapshots",
        "--json",
        "--no-lock",
        "--tag",
        "drydock-manifest",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let snaps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = snaps
        .iter()
        .find(|x| {
            x["tags"]
                .to_string()
                .contains(&format!("backup:{}", ids[0]))
        })
        .expect("the first backup's manifest")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = s.repo().join("snapshots").join(&manifest);
    if !chattr("+i", &file) {
        eprintln!("skipped: chattr +i is not available here (needs root and ext4/xfs/btrfs)");
        return;
    }
    let guard = Immutable(file);
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    assert_ne!(code, 0, "the manifest could not be removed: {r:#}");
    drop(guard);

    // Nothing of the dropped backup is half gone.
    let (code, v) = s.json(&["verify", "--read-data"]);
    assert_eq!(code, 0, "{v:#}");
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    assert_eq!(code, 0, "{r:#}");
    let (_, list) = s.json(&["backups"]);
    let listed: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str()]);
    let (code, v) = s.json(&["verify", "--read-data"]);
    assert_eq!(code, 0, "{v:#}");
    let out = s.restic(&["check", "--read-data"]);
    assert!(out.status.success(), "{}", common::text(&out));
}
