//! Two copies end to end, through the real binary: a local repository and a real S3
//! server (Garage), with a fault proxy in front of it where the network misbehaves.
//! The faults are the ones operators meet: the remote down for a whole run, dying
//! mid-upload, answering 5xx, a damaged local pack, a lost server (fresh machine) and
//! retention on both copies. Prune and sync killed midway are in `torture_crash.rs`.

mod common;

use std::path::PathBuf;

use common::{assert_verified, restic_s3, Stack};
use drydock_testkit::faultproxy::{FaultProxy, Faults};
use drydock_testkit::garage::GarageServer;
use drydock_testkit::postgres::PgServer;

/// A files stack (critical `app/docs`) with a few documents.
fn files_stack() -> (Stack, PathBuf) {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" }]\n",
    );
    let docs = stack.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for i in 0..20 {
        std::fs::write(
            docs.join(format!("doc{i}.txt")),
            format!("document {i} ").repeat(3000),
        )
        .unwrap();
    }
    (stack, docs)
}

fn copy<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["copies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no copy {name} in {report:#}"))
}

/// The status of `backup` in copy `name`, from `drydock backups --json`.
fn listed_status(stack: &Stack, backup: &str, name: &str) -> String {
    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    let b = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == backup)
        .unwrap_or_else(|| panic!("backup {backup} not listed: {list:#}"));
    let status = copy(b, name)["status"].as_str().unwrap().to_string();
    eprintln!("backup {backup} in {name}: {status} ({})", copy(b, name));
    status
}

fn restic_ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", common::text(out));
}

#[test]
fn backups_land_in_both_copies_verified_and_restic_reads_the_remote() {
    let garage = GarageServer::start();
    let (stack, _docs) = files_stack();
    let stack = stack.with_remote(&garage, &garage.endpoint(), "clinic");
    let out = stack.run(&["backup", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(copy(&report, "local")["status"], "verified");
    assert_eq!(copy(&report, "offsite")["status"], "verified");
    let id = report["id"].as_str().unwrap();
    assert_eq!(listed_status(&stack, id, "local"), "verified");
    assert_eq!(listed_status(&stack, id, "offsite"), "verified");

    // restic opens the remote copy on its own: every pack checks, drydock's tags show.
    restic_ok(&restic_s3(&garage, "clinic", &["check", "--read-data"]));
    let snaps = restic_s3(&garage, "clinic", &["snapshots", "--json"]);
    restic_ok(&snaps);
    let text = String::from_utf8_lossy(&snaps.stdout);
    assert!(text.contains(&format!("backup:{id}")), "{text}");
    assert!(text.contains("drydock-manifest"), "{text}");

    // The credentials appear nowhere drydock writes: output, state, the repository.
    let secret = &garage.secret_access_key;
    assert!(!common::text(&out).contains(secret.as_str()));
    let mut files = vec![stack.path().join("state/state.db")];
    files.extend(
        walkdir::WalkDir::new(stack.repo())
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf()),
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the S3 secret is in {}",
            f.display()
        );
    }

    // Nothing to do is a quick, clean sync.
    let (code, sync) = stack.json(&["sync"]);
    assert_eq!(code, 0, "{sync:#}");
    assert_eq!(sync["copies"][0]["already_present"], 1);
}

#[test]
fn an_unreachable_remote_is_a_warning_and_the_next_run_catches_up() {
    let garage = GarageServer::start();
    // Nothing listens at the remote's address for the first run.
    let port = drydock_testkit::free_port();
    let (stack, docs) = files_stack();
    let stack = stack.with_remote(&garage, &format!("http://127.0.0.1:{port}"), "down");
    let (code, first) = stack.json(&["backup"]);
    assert_eq!(code, 1, "a remote failure is a warning: {first:#}");
    assert_eq!(first["status"], "ok", "the local backup is good");
    assert_eq!(copy(&first, "local")["status"], "verified");
    let offsite = copy(&first, "offsite");
    assert_eq!(offsite["status"], "unsynced");
    assert!(
        offsite["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{first:#}"
    );
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(listed_status(&stack, first_id, "offsite"), "unknown");

    // The remote is back: the next backup brings the missed one over too.
    let _proxy = FaultProxy::start_on(port, garage.s3_port, Faults::default());
    assert_eq!(listed_status(&stack, first_id, "offsite"), "unsynced");
    std::fs::write(docs.join("doc0.txt"), "changed").unwrap();
    let (code, second) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{second:#}");
    let offsite = copy(&second, "offsite");
    assert_eq!(offsite["status"], "verified");
    assert_eq!(offsite["also_synced"][0], first_id, "{second:#}");
    assert_eq!(listed_status(&stack, first_id, "offsite"), "verified");
    restic_ok(&restic_s3(&garage, "down", &["check", "--read-data"]));
}

#[test]
fn a_remote_dying_mid_upload_leaves_nothing_counted_and_sync_completes() {
    let garage = GarageServer::start();
    let proxy = FaultProxy::start(
        garage.s3_port,
        Faults {
            cut_upload_after: Some(4096),
            ..Faults::default()
        },
    );
    let (stack, docs) = files_stack();
    // Incompressible, so its pack is far larger than what gets through.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(docs.join("scan.bin"), noise).unwrap();
    let stack = stack.with_remote(&garage, &proxy.endpoint(), "cut");
    let (code, report) = stack.json(&["backup"]);
    // The first small uploads (config, key) pass the cut; the packs do not.
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(copy(&report, "offsite")["status"], "unsynced");
    let id = report["id"].as_str().unwrap();
    let snaps = restic_s3(&garage, "cut", &["snapshots", "--json", "--no-lock"]);
    if snaps.status.success() {
        assert_eq!(
            String::from_utf8_lossy(&snaps.stdout).trim(),
            "[]",
            "no snapshot may exist for data that was cut short"
        );
    }
    assert_eq!(listed_status(&stack, id, "offsite"), "unsynced");

    proxy.set(Faults::default());
    let (code, sync) = stack.json(&["sync"]);
    assert_eq!(code, 0, "{sync:#}");
    assert_eq!(sync["copies"][0]["synced"][0], id);
    assert_eq!(listed_status(&stack, id, "offsite"), "verified");
    restic_ok(&restic_s3(&garage, "cut", &["check", "--read-data"]));
}

#[test]
fn a_flaky_remote_never_counts_missing_data_as_synced() {
    let garage = GarageServer::start();
    let proxy = FaultProxy::start(
        garage.s3_port,
        Faults {
            error_ratio: 0.2,
            ..Faults::default()
        },
    );
    let (stack, _docs) = files_stack();
    let stack = stack.with_remote(&garage, &proxy.endpoint(), "flaky");
    let (code, report) = stack.json(&["backup"]);
    let id = report["id"].as_str().unwrap().to_string();
    assert!(
        proxy
            .counters
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    proxy.set(Faults::default());
    match code {
        0 => {
            // Retries carried it: the remote copy must then be complete and readable.
            assert_eq!(copy(&report, "offsite")["status"], "verified");
            let (code, verify) = stack.json(&["verify", "--copy", "offsite", "--read-data"]);
            assert_eq!(code, 0, "{verify:#}");
            restic_ok(&restic_s3(&garage, "flaky", &["check", "--read-data"]));
        }
        1 => {
            // Retries ran out: then nothing may claim the backup is there.
            assert_eq!(copy(&report, "offsite")["status"], "unsynced");
            // `present`: the manifest arrived, but reading it back ran out of retries,
            // so it is not counted either.
            let listed = listed_status(&stack, &id, "offsite");
            assert!(
                listed == "unsynced" || listed == "present",
                "listed `{listed}` after exit 1: {report:#}"
            );
        }
        other => panic!("exit {other}: {report:#}"),
    }
}

#[test]
fn a_damaged_local_pack_is_named_and_restore_falls_back_to_the_remote() {
    let garage = GarageServer::start();
    let (stack, docs) = files_stack();
    let stack = stack.with_remote(&garage, &garage.endpoint(), "fallback");
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report:#}");
    let id = report["id"].as_str().unwrap();

    // Flip one byte in the local pack holding the documents.
    let largest = walkdir::WalkDir::new(stack.repo().join("data"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest.path()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(largest.path(), bytes).unwrap();
    let pack = largest.file_name().to_string_lossy().into_owned();

    let (code, verify) = stack.json(&["verify", "--copy", "local", "--read-data"]);
    assert_eq!(code, 2, "{verify:#}");
    let damaged = &verify["copies"][0]["damaged"][0];
    assert_eq!(damaged["object"], format!("pack {pack}"), "{verify:#}");
    assert_eq!(damaged["needed_by"][0]["backup_id"], id);
    assert_eq!(damaged["needed_by"][0]["sources"][0], "app/docs");
    // The remote copy is unaffected.
    let (code, verify) = stack.json(&["verify", "--copy", "offsite", "--read-data"]);
    assert_eq!(code, 0, "{verify:#}");

    std::fs::remove_dir_all(&docs).unwrap();
    let (code, restored) = stack.json(&["restore", "latest", "--all"]);
    assert_verified(code, &restored);
    assert_eq!(restored["sources"][0]["copy"], "offsite", "{restored:#}");
    let warnings = restored["warnings"].to_string();
    assert!(
        warnings.contains("reading copy `local` failed"),
        "the fallback is said: {warnings}"
    );
    assert_eq!(
        std::fs::read_to_string(docs.join("doc7.txt")).unwrap(),
        "document 7 ".repeat(3000)
    );
}

#[test]
fn a_fresh_machine_restores_from_the_remote_with_only_the_config() {
    let garage = GarageServer::start();
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql(
        "app",
        "CREATE TABLE patients (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE visits (id serial PRIMARY KEY, patient_id int REFERENCES patients(id), note text);
         INSERT INTO patients (name) SELECT 'patient ' || g FROM generate_series(1, 300) g;
         INSERT INTO visits (patient_id, note) SELECT 1 + g % 300, md5(g::text) FROM generate_series(1, 2000) g;",
    );
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
        pg.url("app")
    ))
    .env("TEST_PG_PASSWORD", pg.password())
    .with_remote(&garage, &garage.endpoint(), "burnt");
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report:#}");
    let id = report["id"].as_str().unwrap();

    // The server burns down: local repository and drydock's state are gone, and so is
    // the data.
    std::fs::remove_dir_all(stack.repo()).unwrap();
    std::fs::remove_dir_all(stack.path().join("state")).unwrap();
    pg.psql("app", "DROP TABLE visits; DROP TABLE patients;");

    assert_eq!(listed_status(&stack, id, "local"), "missing");
    assert_eq!(listed_status(&stack, id, "offsite"), "present");
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_verified(code, &restored);
    assert_eq!(restored["sources"][0]["copy"], "offsite");
    assert_eq!(restored["sources"][0]["backup_id"], id);
    assert_eq!(pg.psql("app", "SELECT count(*) FROM visits").trim(), "2000");
    assert!(
        !stack.repo().join("config").exists(),
        "a restore never creates a repository"
    );
}

/// Three backups on one day: `daily = 1` keeps the newest.
fn three_backups(stack: &Stack, docs: &std::path::Path) -> Vec<String> {
    (0..3)
        .map(|i| {
            std::fs::write(docs.join("doc0.txt"), format!("version {i} ").repeat(3000)).unwrap();
            let (code, report) = stack.json(&["backup"]);
            assert_eq!(code, 0, "{report:#}");
            report["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn deleted(report: &serde_json::Value, copy_name: &str) -> Vec<String> {
    copy(report, copy_name)["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["backup_id"], d["source"]))
        .collect()
}

#[test]
fn prune_applies_retention_to_both_copies_exactly_as_the_dry_run_said() {
    let garage = GarageServer::start();
    let (stack, docs) = files_stack();
    let stack = stack.with_remote(&garage, &garage.endpoint(), "retention");
    stack.append_config("\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n");
    let ids = three_backups(&stack, &docs);

    let (code, plan) = stack.json(&["prune", "--dry-run"]);
    assert_eq!(code, 0, "{plan:#}");
    for name in ["local", "offsite"] {
        assert_eq!(deleted(&plan, name).len(), 2, "{plan:#}");
        // The two older ones, in any order (ids made within one second sort by suffix).
        for older in &ids[..2] {
            assert!(
                deleted(&plan, name)
                    .iter()
                    .any(|d| d.contains(older.as_str())),
                "{plan:#}"
            );
        }
    }
    let (code, pruned) = stack.json(&["prune"]);
    assert_eq!(code, 0, "{pruned:#}");
    for name in ["local", "offsite"] {
        assert_eq!(
            deleted(&pruned, name),
            deleted(&plan, name),
            "dry run = prune"
        );
        assert_eq!(copy(&pruned, name)["status"], "pruned");
    }
    let (_, list) = stack.json(&["backups"]);
    let listed: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str()], "{list:#}");
    restic_ok(&stack.restic(&["check", "--read-data"]));
    restic_ok(&restic_s3(&garage, "retention", &["check", "--read-data"]));
    let (code, restored) =
        stack.json(&["restore", "latest", "--all", "--force", "--from", "offsite"]);
    assert_verified(code, &restored);

    // A sudden small backup (a dump that silently lost most of its data) stops all
    // deletion and says why.
    for i in 1..20 {
        std::fs::remove_file(docs.join(format!("doc{i}.txt"))).unwrap();
    }
    let (code, _) = stack.json(&["backup"]);
    assert_eq!(code, 0);
    let (code, plan) = stack.json(&["prune", "--dry-run", "--copy", "local"]);
    assert_eq!(code, 1, "{plan:#}");
    assert!(deleted(&plan, "local").is_empty(), "{plan:#}");
    assert!(
        copy(&plan, "local")["warnings"][0]
            .as_str()
            .unwrap()
            .contains("less than 50% of the median"),
        "{plan:#}"
    );

    // Without a record of the remote's newest backup being verified (a fresh state),
    // its prune is refused until it is verified.
    std::fs::remove_dir_all(stack.path().join("state")).unwrap();
    let (code, refused) = stack.json(&["prune", "--copy", "offsite"]);
    assert_eq!(code, 1, "{refused:#}");
    assert_eq!(copy(&refused, "offsite")["status"], "refused");
    assert!(refused
        .to_string()
        .contains("drydock verify --copy offsite"));
    let (code, _) = stack.json(&["verify", "--copy", "offsite"]);
    assert_eq!(code, 0);
    let (code, plan) = stack.json(&["prune", "--dry-run", "--copy", "offsite"]);
    assert_eq!(copy(&plan, "offsite")["status"], "planned", "{plan:#}");
    assert_eq!(code, 1, "the anomaly guard still holds: {plan:#}");

    // Unknown copies are named with the ones there are.
    let out = stack.run(&["prune", "--copy", "ofsite"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(common::text(&out).contains("the copies are: local, offsite"));
}
