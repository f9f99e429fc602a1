//! Tortures stored data: one random object of a repository (a pack in `data/`, an index
//! file, a snapshot file) has a bit flipped, is truncated or is deleted, in the local
//! copy or (through the S3 API, straight at Garage) in the remote copy. The fixture is a
//! stack with a files source and a SQLite database, three backups apart by changes
//! (so some packs are shared between backups and some are not), synced to the remote;
//! it is built once and copied for each trial (repository, state, remote prefix), so
//! trials are independent.
//!
//! Each trial checks:
//! - `drydock verify --read-data --copy <damaged copy>` exits non-zero and names the
//!   object (its id) in what it prints;
//! - every backup restored `--from` the damaged copy either verifies and equals what was
//!   backed up, or fails leaving each source's target as it was (never wrong data); a
//!   restore that fails must be one verify named as needing the damaged pack;
//! - every backup restored without `--from` (the local copy first, the other copy as
//!   fallback) verifies and equals what was backed up.
//!
//! Data lost: a restore that exits 0 or says verified with data different from the
//! backup, a failed restore that left a target changed, or a backup no copy restores.
//!
//! `damaged_data_is_uploaded_again_by_the_next_backup_or_sync` checks the repair half
//! (Kopia #3492: deduplication never re-uploading a lost blob).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::torture::{runs, Failure, Tally};
use common::Stack;
use drydock_storage::s3::S3Client;
use drydock_storage::{S3Options, S3Tuning};
use drydock_testkit::garage::{GarageServer, REGION};
use rand::seq::IndexedRandom;
use rand::Rng;

/// What one backup holds: the documents and the database's rows.
#[derive(Debug, Clone, PartialEq)]
struct Content {
    docs: Vec<(PathBuf, Vec<u8>)>,
    rows: Vec<(i64, String)>,
}

struct Backup {
    id: String,
    content: Content,
}

fn read_docs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::files_under(dir)
}

fn read_rows(db: &Path) -> Vec<(i64, String)> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return vec![];
    };
    let Ok(mut stmt) = conn.prepare("SELECT id, body FROM notes ORDER BY id") else {
        return vec![];
    };
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default();
    rows
}

fn content_of(stack: &Stack) -> Content {
    Content {
        docs: read_docs(&stack.path().join("docs")),
        rows: read_rows(&stack.path().join("app.db")),
    }
}

/// Version `v` of the live data. Documents 0-3 change with every version, 4-11 only at
/// 3; the scan only at 3; the database grows and changes a few rows.
fn write_version(stack: &Stack, v: u32) {
    let docs = stack.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..12u32 {
        let version = if i < 4 || v >= 3 { v } else { 1 };
        std::fs::write(
            docs.join(format!("doc{i}.txt")),
            format!("document {i} version {version} ").repeat(1500),
        )
        .unwrap();
    }
    let scan_version = if v >= 3 { 3 } else { 1 };
    let scan: Vec<u8> = (0..150_000u32)
        .map(|i| ((i ^ scan_version).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(docs.join("scan.bin"), scan).unwrap();
    let mut conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
    for i in 0..60 {
        tx.execute(
            "INSERT INTO notes (body) VALUES (?1)",
            [format!("note {i} of version {v}")],
        )
        .unwrap();
    }
    tx.execute(
        &format!("UPDATE notes SET body = body || ' edited in {v}' WHERE id % 7 = {v}"),
        [],
    )
    .unwrap();
    tx.commit().unwrap();
}

const SERVICES: &str = "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n  { kind = \"sqlite\", name = \"db\", priority = \"high\", path = \"app.db\" },\n]\n";

struct Fixture {
    garage: GarageServer,
    stack: Stack,
    bucket: S3Client,
    backups: Vec<Backup>,
}

impl Fixture {
    fn build() -> Fixture {
        let garage = GarageServer::start();
        let stack = Stack::new(SERVICES).with_remote(&garage, &garage.endpoint(), "fixture");
        let mut backups = Vec::new();
        for v in 1..=3 {
            write_version(&stack, v);
            let (code, report) = stack.json(&["backup"]);
            assert_eq!(code, 0, "fixture backup {v}: {report:#}");
            backups.push(Backup {
                id: report["id"].as_str().unwrap().to_string(),
                content: content_of(&stack),
            });
        }
        let bucket = S3Client::new(&S3Options {
            endpoint: garage.endpoint(),
            region: REGION.into(),
            bucket: garage.bucket.clone(),
            prefix: String::new(),
            path_style: true,
            access_key_id: garage.access_key_id.clone(),
            secret_access_key: garage.secret_access_key.clone(),
            tuning: S3Tuning::default(),
        })
        .unwrap();
        Fixture {
            garage,
            stack,
            bucket,
            backups,
        }
    }

    /// A copy of the fixture: the stack folder (config, repository, state, live data at
    /// version 3) and the remote under its own prefix.
    fn copy(&self, prefix: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.stack.path().display()))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let config = dir.path().join("drydock.toml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("prefix = \"fixture\"", &format!("prefix = \"{prefix}\""));
        std::fs::write(&config, text).unwrap();
        for object in self.bucket.list("fixture/").unwrap() {
            let bytes = self.bucket.get(&object.key).unwrap().unwrap();
            let key = format!("{prefix}/{}", object.key.strip_prefix("fixture/").unwrap());
            self.bucket.put(&key, &bytes).unwrap();
        }
        Stack {
            dir,
            env: self.stack.env.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    FlipBit,
    Truncate,
    Delete,
}

/// One stored object, by its key relative to the repository root (`data/ab/ab12..`).
struct Object {
    key: String,
    id: String,
}

impl Object {
    fn kind(&self) -> &str {
        self.key.split('/').next().unwrap_or("")
    }
}

/// Where the damage goes: the local repository or the trial's prefix in the bucket.
enum Place<'a> {
    Local(PathBuf),
    Remote(&'a S3Client, String),
}

impl Place<'_> {
    fn name(&self) -> &'static str {
        match self {
            Place::Local(_) => "local",
            Place::Remote(..) => "offsite",
        }
    }

    fn list(&self, dir: &str) -> Vec<Object> {
        let keys: Vec<String> = match self {
            Place::Local(root) => walkdir::WalkDir::new(root.join(dir))
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .map(|e| {
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Place::Remote(bucket, prefix) => bucket
                .list(&format!("{prefix}/{dir}/"))
                .unwrap()
                .into_iter()
                .map(|o| {
                    o.key
                        .strip_prefix(&format!("{prefix}/"))
                        .unwrap()
                        .to_string()
                })
                .collect(),
        };
        let mut objects: Vec<Object> = keys
            .into_iter()
            .map(|key| Object {
                id: key.rsplit('/').next().unwrap().to_string(),
                key,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    fn read(&self, key: &str) -> Vec<u8> {
        match self {
            Place::Local(root) => std::fs::read(root.join(key)).unwrap(),
            Place::Remote(bucket, prefix) => {
                bucket.get(&format!("{prefix}/{key}")).unwrap().unwrap()
            }
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) {
        match self {
            Place::Local(root) => {
                // Repository files are read-only; the damage comes from outside.
                let path = root.join(key);
                let _ = std::fs::remove_file(&path);
                std::fs::write(path, bytes).unwrap();
            }
            Place::Remote(bucket, prefix) => bucket.put(&format!("{prefix}/{key}"), bytes).unwrap(),
        }
    }

    fn delete(&self, key: &str) {
        match self {
            Place::Local(root) => std::fs::remove_file(root.join(key)).unwrap(),
            Place::Remote(bucket, prefix) => bucket.delete(&format!("{prefix}/{key}")).unwrap(),
        }
    }

    fn damage(&self, object: &Object, damage: Damage, rng: &mut impl Rng) -> String {
        match damage {
            Damage::Delete => {
                self.delete(&object.key);
                "deleted".into()
            }
            Damage::FlipBit => {
                let mut bytes = self.read(&object.key);
                let at = rng.random_range(0..bytes.len());
                let bit = rng.random_range(0..8);
                bytes[at] ^= 1 << bit;
                self.write(&object.key, &bytes);
                format!("bit {bit} of byte {at} of {} flipped", bytes.len())
            }
            Damage::Truncate => {
                let bytes = self.read(&object.key);
                let keep = rng.random_range(0..bytes.len());
                self.write(&object.key, &bytes[..keep]);
                format!("truncated from {} to {keep} bytes", bytes.len())
            }
        }
    }
}

/// Live data no backup holds, so a failed restore that touched it shows.
fn write_sentinel(stack: &Stack) -> Content {
    let docs = stack.path().join("docs");
    let _ = std::fs::remove_dir_all(&docs);
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("live.txt"), "live data written after the backups").unwrap();
    let db = stack.path().join("app.db");
    let _ = std::fs::remove_file(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes (body) VALUES ('live');")
        .unwrap();
    content_of(stack)
}

/// Restores `backup` (from `from`, or the default copy order) over sentinel data and
/// checks the outcome per source. Returns whether it restored and verified.
fn restore_checked(
    stack: &Stack,
    backup: &Backup,
    from: Option<&str>,
    what: &str,
) -> Result<bool, Failure> {
    let before = write_sentinel(stack);
    let mut args = vec!["restore", backup.id.as_str(), "--all", "--force"];
    if let Some(copy) = from {
        args.extend(["--from", copy]);
    }
    let (code, report) = stack.json(&args);
    let after = content_of(stack);
    let verified = code == 0 && report["verified"] == true;
    if !verified {
        let text = report.to_string();
        eprintln!(
            "  restore {} from {from:?}: exit {code}: {}",
            backup.id,
            &text[..text.len().min(600)]
        );
    }
    // Per source: exactly the backup, or exactly as it was.
    let docs_ok = after.docs == backup.content.docs || after.docs == before.docs;
    let rows_ok = after.rows == backup.content.rows || after.rows == before.rows;
    if !docs_ok || !rows_ok {
        return Err(Failure::DataLost(format!(
            "{what}: restore {} (from {from:?}, exit {code}) left {} neither as backed up nor as it was: {report}",
            backup.id,
            if docs_ok { "the database" } else { "the documents" }
        )));
    }
    if verified && after != backup.content {
        return Err(Failure::DataLost(format!(
            "{what}: restore {} (from {from:?}) verified, but the data differs from the backup",
            backup.id
        )));
    }
    if code == 0 && !verified {
        return Err(Failure::DataLost(format!(
            "{what}: restore {} exited 0 without verifying: {report}",
            backup.id
        )));
    }
    Ok(verified)
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// Damages one object, then the checks of the module doc. With `repair`, also the
/// next backup and sync must bring the copy back to a clean `verify --read-data`.
fn trial(
    fixture: &Fixture,
    n: usize,
    remote: bool,
    repair: bool,
    rng: &mut impl Rng,
) -> Result<(), Failure> {
    let prefix = format!("trial-{n}");
    let stack = fixture.copy(&prefix);
    let place = if remote {
        Place::Remote(&fixture.bucket, prefix.clone())
    } else {
        Place::Local(stack.repo())
    };
    let copy = place.name();
    let dir = *["data", "data", "data", "index", "snapshots"]
        .choose(rng)
        .unwrap();
    let objects = place.list(dir);
    let object = objects
        .choose(rng)
        .ok_or_else(|| format!("no objects in {copy} {dir}/"))?;
    let damage = *[Damage::FlipBit, Damage::Truncate, Damage::Delete]
        .choose(rng)
        .unwrap();
    // A deleted snapshot file leaves no id to name; the backup it belonged to is its name.
    let owner = if object.kind() == "snapshots" {
        let listing = if remote {
            common::restic_s3(
                &fixture.garage,
                &prefix,
                &["snapshots", "--json", "--no-lock"],
            )
        } else {
            stack.restic(&["snapshots", "--json", "--no-lock"])
        };
        let all: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap_or_default();
        all.as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == object.id.as_str()))
            .and_then(|s| s["tags"].as_array())
            .and_then(|tags| {
                tags.iter()
                    .find_map(|t| t.as_str()?.strip_prefix("backup:").map(str::to_string))
            })
    } else {
        None
    };
    let how = place.damage(object, damage, rng);
    let what = format!("{copy} {} {} {how}", object.kind(), short(&object.id));
    eprintln!("trial {n}: {what}");

    let out = stack.run(&["verify", "--read-data", "--copy", copy, "--json"]);
    let said = common::text(&out);
    if out.status.success() {
        return Err(Failure::Failed(format!(
            "{what}: verify --read-data --copy {copy} exited 0: {said}"
        )));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // Named by its id, or (deleted snapshot) by the backup it belonged to marked not ok.
    let owner_flagged = owner.as_ref().is_some_and(|b| {
        report["copies"][0]["backups"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["id"] == b.as_str()))
            .and_then(|x| x["sources"].as_array())
            .is_some_and(|sources| sources.iter().any(|s| s["status"] != "ok"))
    });
    // A deleted index file has no id left to name: what it leaves, blobs the index no
    // longer knows, is named instead (as damage, or as the backups they belong to).
    let damage_listed = report["copies"][0]["damaged"]
        .as_array()
        .is_some_and(|d| !d.is_empty())
        || report["copies"][0]["backups"]
            .as_array()
            .is_some_and(|all| {
                all.iter().any(|b| {
                    b["sources"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["status"] != "ok"))
                })
            });
    let named = said.contains(short(&object.id))
        || (damage == Damage::Delete && owner_flagged)
        || (damage == Damage::Delete && object.kind() == "index" && damage_listed);
    if !named {
        return Err(Failure::Failed(format!(
            "{what}: verify exited {:?} without naming {}: {said}",
            out.status.code(),
            object.id
        )));
    }
    // The backups verify says need the damaged object (for packs).
    let needing: Vec<String> = report["copies"][0]["damaged"]
        .as_array()
        .map(|d| {
            d.iter()
                .flat_map(|o| o["needed_by"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n["backup_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    for backup in &fixture.backups {
        let restored = restore_checked(&stack, backup, Some(copy), &what)?;
        if !restored
            && object.kind() == "data"
            && !needing.is_empty()
            && !needing.contains(&backup.id)
        {
            return Err(Failure::Failed(format!(
                "{what}: restore {} --from {copy} failed, but verify named only {needing:?} as needing the damaged pack",
                backup.id
            )));
        }
        if !restored
            && object.kind() == "snapshots"
            && owner.as_ref().is_some_and(|o| *o != backup.id)
        {
            return Err(Failure::Failed(format!(
                "{what}: restore {} --from {copy} failed, though the damaged snapshot file belonged to backup {}",
                backup.id,
                owner.as_deref().unwrap_or_default()
            )));
        }
        if !restored {
            // The other copy is whole: the default order must find it.
            if !restore_checked(&stack, backup, None, &what)? {
                return Err(Failure::DataLost(format!(
                    "{what}: backup {} restores from no copy, though only {copy} is damaged",
                    backup.id
                )));
            }
        }
    }

    if repair {
        // The latest data again, backed up: deduplication must not trust the damaged
        // object; then the remote is synced and both copies read clean.
        restore_checked(&stack, &fixture.backups[2], None, &what)?;
        let (code, report) = stack.json(&["backup"]);
        if code != 0 {
            return Err(format!("{what}: the next backup exited {code}: {report}").into());
        }
        let (code, sync) = stack.json(&["sync"]);
        if code != 0 {
            return Err(format!("{what}: sync exited {code}: {sync}").into());
        }
        let (code, report) = stack.json(&["verify", "--read-data", "--copy", copy]);
        if code != 0 {
            return Err(Failure::Failed(format!(
                "{what}: after the next backup and sync, verify --read-data --copy {copy} still exits {code}: {report}"
            )));
        }
    }
    Ok(())
}

fn run_trials(scenario: &str, test: &str, count: usize, repair: bool) {
    let fixture = Fixture::build();
    let mut tally = Tally::new(scenario, "torture_corruption", test);
    for n in 0..count {
        // Local and remote in turn: half the trials each.
        let remote = n % 2 == 1;
        tally.trial(|rng| trial(&fixture, n, remote, repair, rng));
    }
    tally.finish();
}

#[test]
fn corruption_is_named_and_never_restored_as_good_data() {
    run_trials(
        "Corruption: bit flip, truncation, deletion (local and remote)",
        "corruption_is_named_and_never_restored_as_good_data",
        runs(20, 100),
        false,
    );
}

#[test]
fn damaged_data_is_uploaded_again_by_the_next_backup_or_sync() {
    run_trials(
        "Corruption repaired by the next backup or sync",
        "damaged_data_is_uploaded_again_by_the_next_backup_or_sync",
        runs(4, 20),
        true,
    );
}
