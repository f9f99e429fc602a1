//! Issue 12 item 3: one repository, several stacks. Two stacks with the same service
//! and source names (a `files` and a `sqlite` source) and different data share one
//! local repository; they back up, prune and verify at the same time, each lists and
//! restores only its own backups (an lstat walk with content hashes and `sqlite3 .dump`
//! as oracles), prune of one never removes the other's, `restic check --read-data`
//! passes afterwards. And the identity rule: the same stack name from another host is
//! refused with nothing stored, unless the config says the stack moved. The same with
//! one S3 bucket prefix (Garage) as the stacks' shared remote copy.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{restic_s3, Stack, REPO_PASSWORD};
use drydock_testkit::garage::GarageServer;
use sha2::{Digest, Sha256};

const SERVICES: &str = "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n  { kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" },\n]\n";

/// A stack folder named `name` (also its stack name) on host `host`, using `repo`.
fn stack(name: &str, host: &str, repo: &Path, extra: &str) -> Stack {
    let s = Stack::new("");
    std::fs::write(
        s.path().join("drydock.toml"),
        format!(
            "[stack]\nname = \"{name}\"\nstate_dir = \"state\"\nhost = \"{host}\"\n{extra}\n[repository]\npath = \"{}\"\npassword = \"${{env:TEST_REPO_PASSWORD}}\"\n\n{SERVICES}",
            repo.display()
        ),
    )
    .unwrap();
    s
}

/// Writes generation `generation` of `name`'s data: files and rows unique to both.
fn write_data(s: &Stack, name: &str, generation: u32) {
    let docs = s.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    for i in 0..5 {
        std::fs::write(
            docs.join(format!("doc{i}.txt")),
            format!("{name} gen {generation} doc {i} ").repeat(500),
        )
        .unwrap();
    }
    std::fs::write(
        docs.join("sub/only-in-gen.txt"),
        format!("{name}-{generation}"),
    )
    .unwrap();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('{name} {generation} a'), ('{name} {generation} b');"
    );
    let out = Command::new("sqlite3")
        .arg(s.path().join("app.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
}

/// The oracle: every entry under `docs` (lstat: kind, mode, size, SHA-256) and the
/// database's `.dump`.
fn oracle(s: &Stack) -> (BTreeMap<PathBuf, String>, String) {
    let root = s.path().join("docs");
    let mut tree = BTreeMap::new();
    for e in walkdir::WalkDir::new(&root).min_depth(1) {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let hash = if md.is_file() {
            hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
        } else {
            String::new()
        };
        tree.insert(
            e.path().strip_prefix(&root).unwrap().to_path_buf(),
            format!("{:o} {} {hash}", md.mode(), md.len()),
        );
    }
    let dump = Command::new("sqlite3")
        .arg(s.path().join("app.db"))
        .arg(".dump")
        .output()
        .unwrap();
    (tree, String::from_utf8(dump.stdout).unwrap())
}

fn spawn(s: &Stack, args: &[&str]) -> Child {
    let mut all = args.to_vec();
    all.push("--json");
    s.command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `args` in both stacks at once; returns each one's (exit code, JSON).
fn both(a: &Stack, b: &Stack, args: &[&str]) -> [(i32, serde_json::Value); 2] {
    let children = [spawn(a, args), spawn(b, args)];
    children.map(|c| {
        let out = c.wait_with_output().unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not JSON ({e}): {}", common::text(&out))
        });
        (out.status.code().unwrap_or(-1), v)
    })
}

fn backup_ids(s: &Stack) -> Vec<String> {
    let (code, list) = s.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

fn restic_check(repo: &Path) {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(["check", "--read-data"])
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "restic check: {}", common::text(&out));
}

fn snapshot_count(repo: &Path) -> usize {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(["snapshots", "--json", "--no-lock"])
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap()
        .len()
}

#[test]
fn two_stacks_share_one_local_repository_concurrently() {
    let shared = tempfile::tempdir().unwrap();
    let repo = shared.path().join("repo");
    let a = stack("alpha", "host-a", &repo, "");
    let b = stack("beta", "host-b", &repo, "");

    // The first backups create the repository: one first, so they do not race to init it.
    write_data(&a, "alpha", 1);
    write_data(&b, "beta", 1);
    let (code, r) = a.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    let (code, r) = b.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    for generation in 2..=3 {
        write_data(&a, "alpha", generation);
        write_data(&b, "beta", generation);
        for (code, r) in both(&a, &b, &["backup", "--all"]) {
            assert_eq!(code, 0, "{r:#}");
        }
    }
    let expected = [oracle(&a), oracle(&b)];

    // Each lists only its own three backups.
    let (ids_a, ids_b) = (backup_ids(&a), backup_ids(&b));
    assert_eq!(ids_a.len(), 3, "{ids_a:?}");
    assert_eq!(ids_b.len(), 3, "{ids_b:?}");
    assert!(ids_a.iter().all(|id| !ids_b.contains(id)));

    // Prune both at once (same day: each keeps its newest backup only) and verify.
    for (code, r) in both(&a, &b, &["prune"]) {
        assert_eq!(code, 0, "{r:#}");
        let deleted = r["copies"][0]["deleted"].as_array().unwrap();
        assert_eq!(deleted.len(), 4, "two backups x two sources: {r:#}");
    }
    assert_eq!(
        backup_ids(&a),
        ids_a[..1].to_vec(),
        "alpha keeps its newest"
    );
    assert_eq!(backup_ids(&b), ids_b[..1].to_vec(), "beta keeps its newest");
    for (code, r) in both(&a, &b, &["verify", "--read-data"]) {
        assert_eq!(code, 0, "{r:#}");
    }
    restic_check(&repo);

    // A second prune of alpha alone must leave beta whole.
    let (code, r) = a.json(&["prune"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(backup_ids(&b), ids_b[..1].to_vec());

    // Each restores its own data, exactly.
    for s in [&a, &b] {
        std::fs::remove_dir_all(s.path().join("docs")).unwrap();
        std::fs::remove_file(s.path().join("app.db")).unwrap();
    }
    for (code, r) in both(&a, &b, &["restore", "latest", "--all", "--force"]) {
        common::assert_verified(code, &r);
    }
    assert_eq!(oracle(&a), expected[0], "alpha restored alpha's data");
    assert_eq!(oracle(&b), expected[1], "beta restored beta's data");
    restic_check(&repo);
}

#[test]
fn the_same_stack_name_from_another_host_is_refused_unless_it_moved() {
    let shared = tempfile::tempdir().unwrap();
    let repo = shared.path().join("repo");
    let first = stack("app", "host-one", &repo, "");
    write_data(&first, "one", 1);
    let (code, r) = first.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    let snapshots = snapshot_count(&repo);

    let second = stack("app", "host-two", &repo, "");
    write_data(&second, "two", 1);
    let (code, r) = second.json(&["backup", "--all"]);
    assert_eq!(code, 3, "refused: {r:#}");
    let error = r["error"].as_str().unwrap();
    for needle in ["host-one", "host-two", "[stack] name", "moved_from"] {
        assert!(error.contains(needle), "`{needle}` in: {error}");
    }
    assert_eq!(snapshot_count(&repo), snapshots, "nothing was stored");
    assert_eq!(backup_ids(&first).len(), 1);

    // Declared as moved, the stack goes on from the other host, after the first's.
    let moved = stack("app", "host-two", &repo, "moved_from = \"host-one\"\n");
    write_data(&moved, "two", 1);
    let (code, r) = moved.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    let ids = backup_ids(&moved);
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ids[0],
        r["id"].as_str().unwrap(),
        "the moved stack's backup is latest"
    );
    restic_check(&repo);
}

#[test]
fn two_stacks_share_one_s3_copy_concurrently() {
    let garage = GarageServer::start();
    let locals = tempfile::tempdir().unwrap();
    let a = stack("alpha", "host-a", &locals.path().join("a"), "").with_remote(
        &garage,
        &garage.endpoint(),
        "fleet",
    );
    let b = stack("beta", "host-b", &locals.path().join("b"), "").with_remote(
        &garage,
        &garage.endpoint(),
        "fleet",
    );
    // The first backup creates the remote copy; then both at once.
    write_data(&a, "alpha", 1);
    write_data(&b, "beta", 1);
    let (code, r) = a.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    let (code, r) = b.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{r:#}");
    for generation in 2..=3 {
        write_data(&a, "alpha", generation);
        write_data(&b, "beta", generation);
        for (code, r) in both(&a, &b, &["backup", "--all"]) {
            assert_eq!(code, 0, "{r:#}");
        }
    }
    let expected = [oracle(&a), oracle(&b)];
    let (ids_a, ids_b) = (backup_ids(&a), backup_ids(&b));
    assert_eq!((ids_a.len(), ids_b.len()), (3, 3), "{ids_a:?} {ids_b:?}");

    for (code, r) in both(&a, &b, &["prune", "--copy", "offsite"]) {
        assert_eq!(code, 0, "{r:#}");
        assert_eq!(
            r["copies"][0]["deleted"].as_array().unwrap().len(),
            4,
            "{r:#}"
        );
    }
    for (code, r) in both(&a, &b, &["verify", "--copy", "offsite", "--read-data"]) {
        assert_eq!(code, 0, "{r:#}");
    }
    let out = restic_s3(&garage, "fleet", &["check", "--read-data"]);
    assert!(out.status.success(), "{}", common::text(&out));

    // Each restores its own newest backup from the shared remote.
    for s in [&a, &b] {
        std::fs::remove_dir_all(s.path().join("docs")).unwrap();
        std::fs::remove_file(s.path().join("app.db")).unwrap();
    }
    for (code, r) in both(
        &a,
        &b,
        &["restore", "latest", "--all", "--force", "--from", "offsite"],
    ) {
        common::assert_verified(code, &r);
    }
    assert_eq!(oracle(&a), expected[0], "alpha restored alpha's data");
    assert_eq!(oracle(&b), expected[1], "beta restored beta's data");
}
