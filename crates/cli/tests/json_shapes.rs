//! The JSON users and scripts parse: snapshot-tested so a shape change is deliberate.
//! Values that change per run (ids, times, sizes, digests) are redacted.

mod common;

use common::Stack;

fn stack() -> Stack {
    let stack = Stack::new("[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" }]\n");
    std::fs::create_dir(stack.path().join("docs")).unwrap();
    std::fs::write(stack.path().join("docs/a.txt"), "alpha").unwrap();
    std::fs::create_dir(stack.path().join("docs/sub")).unwrap();
    std::fs::write(stack.path().join("docs/sub/b.txt"), "beta").unwrap();
    // The top directory's mode, owner and mtime are part of the fingerprint: fixed, so
    // the digests in the snapshots are too.
    use std::os::unix::fs::PermissionsExt;
    let docs = stack.path().join("docs");
    std::fs::set_permissions(&docs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::os::unix::fs::chown(&docs, Some(0), Some(0));
    std::fs::File::open(&docs)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
        .unwrap();
    stack
}

#[test]
fn backup_backups_restore_and_error_json_shapes() {
    let stack = stack();
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("backup", backup, {
        ".id" => "[id]", ".repository" => "[path]", ".started_at" => "[time]", ".finished_at" => "[time]", ".duration_ms" => "[ms]",
        ".sources[].snapshot_id" => "[snapshot]", ".sources[].consistent_at" => "[time]", ".sources[].duration_ms" => "[ms]",
        ".sources[].stored_bytes" => "[bytes]",
    });
    let (_, list) = stack.json(&["backups"]);
    insta::assert_json_snapshot!("backups", list, {
        ".repository" => "[path]", ".copies[].location" => "[path]", ".backups[].id" => "[id]", ".backups[].started_at" => "[time]", ".backups[].finished_at" => "[time]",
        ".backups[].stored_bytes" => "[bytes]", ".backups[].sources[].stored_bytes" => "[bytes]", ".backups[].copies[].verified_at" => "[time]",
    });
    let (code, verify) = stack.json(&["verify"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("verify", verify, {
        ".copies[].location" => "[path]", ".copies[].backups[].id" => "[id]",
    });
    let (code, prune) = stack.json(&["prune", "--dry-run"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("prune", prune, {
        ".copies[].location" => "[path]", ".copies[].sources[].decisions[].id" => "[id]",
        ".copies[].sources[].decisions[].reasons[0]" => "[daily bucket]",
        ".copies[].sources[].decisions[].reasons[1]" => "[weekly bucket]",
        ".copies[].sources[].decisions[].reasons[2]" => "[monthly bucket]",
    });
    let (code, populate) = stack.json(&["populate", "app", "--size", "64KB"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("populate", populate);
    let (code, status) = stack.json(&["status"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("status", status, {
        ".generated_at" => "[time]", ".services[].sources[].last_backup.id" => "[id]",
        ".services[].sources[].last_backup.at" => "[time]", ".services[].sources[].last_backup.age_s" => "[s]",
        ".services[].sources[].rpo_s" => "[s]",
    });
    let (code, restore) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("restore", restore, {
        ".rto_ms" => "[ms]", ".sources[].backup_id" => "[id]", ".sources[].duration_ms" => "[ms]",
    });
    let (code, error) = stack.json(&["restore", "20200101-000000-aaaaaa", "--all"]);
    assert_eq!(code, 3);
    insta::assert_json_snapshot!("error", error);
}

#[test]
fn init_from_compose_json_shape() {
    let stack = Stack::new("");
    std::fs::remove_file(stack.path().join("drydock.toml")).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/compose/docker-compose.yml"),
        stack.path().join("docker-compose.yml"),
    )
    .unwrap();
    let (code, init) = stack.json(&[
        "init",
        "--from-compose",
        "docker-compose.yml",
        "--project",
        "clinic",
    ]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("init", init);
}

#[test]
fn deploy_deployments_and_rollback_json_shapes() {
    // `db` (infra, files, no process) and `api` (app, a release directory).
    let stack = Stack::new("[services.db]\nrole = \"infra\"\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" }]\n\n[services.api]\nrole = \"app\"\nruntime = { kind = \"none\" }\ndeploy = { kind = \"release\", build = \"mkdir -p out && echo $DRYDOCK_REV > out/rev\", output = \"out\", target = \"releases-target\" }\n");
    std::fs::create_dir(stack.path().join("docs")).unwrap();
    std::fs::write(stack.path().join("docs/a.txt"), "alpha").unwrap();
    std::fs::write(
        stack.path().join(".gitignore"),
        "state/\nrepo/\nreleases-target/\ndocs/\n",
    )
    .unwrap();
    common::git::git(stack.path(), &["init", "-q", "-b", "main"]);
    common::git::commit(stack.path(), &[("src/app.py", "print('v1')\n")]);
    // Millis and step details carry times, backup ids and commits: redacted.
    let (code, first) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{first:#}");
    insta::assert_json_snapshot!("deploy", first, {
        ".commit" => "[commit]", ".backup" => "[id]", ".millis" => "[ms]",
        ".steps[].millis" => "[ms]", ".steps[].detail" => "[detail]",
        ".data[].backup" => "[id]",
        ".apps[].version" => "[release]", ".apps[].steps[].millis" => "[ms]", ".apps[].steps[].detail" => "[detail]",
    });
    common::git::commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let (code, second) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{second:#}");
    let (code, list) = stack.json(&["deployments"]);
    assert_eq!(code, 0, "{list:#}");
    insta::assert_json_snapshot!("deployments", list, {
        ".deployments[].commit" => "[commit]", ".deployments[].started_at" => "[time]",
        ".deployments[].finished_at" => "[time]", ".deployments[].millis" => "[ms]",
        ".deployments[].steps[].millis" => "[ms]", ".deployments[].steps[].detail" => "[detail]",
    });
    std::fs::write(stack.path().join("docs/b.txt"), "written by v2").unwrap();
    let (code, back) = stack.json(&["rollback", "--with-data", "--force"]);
    assert_eq!(code, 0, "{back:#}");
    insta::assert_json_snapshot!("rollback", back, {
        ".to_commit" => "[commit]", ".from_commit" => "[commit]", ".millis" => "[ms]",
        ".data.backup" => "[id]", ".data.taken_at" => "[time]", ".data.write_loss_secs" => "[secs]",
        ".apps[].version" => "[release]", ".apps[].previous" => "[release]",
        ".apps[].steps[].millis" => "[ms]", ".apps[].steps[].detail" => "[detail]",
    });
}
