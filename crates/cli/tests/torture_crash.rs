//! Crashes, through the real binary and real servers:
//!
//! - `drydock backup` killed with SIGKILL at a uniformly random moment within an
//!   undisturbed backup's duration, per engine (PostgreSQL, MariaDB, Redis, SQLite,
//!   files, a Docker volume): sometimes drydock alone (its dump tools must not linger as orphans),
//!   sometimes its whole process group.
//! - `drydock restore` over changed live data killed at a random moment, per engine:
//!   afterwards the live data is exactly as it was with nothing owed, or `status` lists
//!   the owed restore and the next restore finishes it exactly.
//! - `drydock prune` and `drydock sync` with a remote copy (Garage) killed right after
//!   one of the lines they log (`-v --log-format json`), one step per trial.
//! - The durability order of a backup's writes, read from `strace`: every repository
//!   file appears only by a rename of a fsynced temporary file, and its directory is
//!   fsynced after the rename.
//!
//! After every crash: `drydock verify --read-data` passes on every copy, the backup list
//! is the previous one plus at most one complete backup, the latest backup restores and
//! verifies by fingerprint, the restored data equals what was live when that backup
//! was taken (an independent digest computed by the test), and the next run succeeds
//! without any manual unlock, reporting the stale lock it removed. Data lost: a backup
//! that was listed before the crash is gone or no longer restores exactly, or a
//! restore verified but brought back other data.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::torture::{runs, Failure, Tally};
use common::Stack;
use drydock_testkit::faultproxy::{FaultProxy, Faults};
use drydock_testkit::garage::GarageServer;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::Rng;
use sha2::{Digest, Sha256};

const BINARY: &str = "torture_crash";

// ---------------------------------------------------------------------------------
// Live data per engine: changed before each backup, digested independently of drydock.

/// One engine's live data.
trait Subject {
    /// The `[services.*]` part of the stack's config.
    fn services(&self) -> String;
    /// Extra environment the config refers to.
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Changes a few percent of the data, so each backup writes new chunks.
    fn change(&self, rng: &mut StdRng);
    /// A digest of all the data, computed without drydock.
    fn digest(&self) -> Result<String, String>;
    /// Scratch databases drydock made on the server and has not dropped.
    fn scratch_left(&self) -> Vec<String> {
        Vec::new()
    }
}

struct Postgres(PgServer);

impl Postgres {
    fn start() -> Postgres {
        let pg = PgServer::start();
        pg.create_db("app");
        pg.psql(
            "app",
            "CREATE TABLE t (id int PRIMARY KEY, body text NOT NULL);
             INSERT INTO t SELECT g, (SELECT string_agg(md5(g::text || '-' || k), '') FROM generate_series(1, 8) k)
               FROM generate_series(1, 30000) g;",
        );
        Postgres(pg)
    }
}

impl Subject for Postgres {
    fn services(&self) -> String {
        format!(
            "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
            self.0.url("app")
        )
    }
    fn env(&self) -> Vec<(String, String)> {
        vec![("TEST_PG_PASSWORD".into(), self.0.password().into())]
    }
    fn change(&self, rng: &mut StdRng) {
        let (k, salt) = (rng.random_range(0..40), rng.random::<u32>());
        self.0.psql(
            "app",
            &format!(
                "UPDATE t SET body = md5(id::text || '{salt}') || substr(body, 33) WHERE id % 40 = {k};
                 INSERT INTO t SELECT max(id) + 1, md5('{salt}') FROM t;"
            ),
        );
    }
    fn digest(&self) -> Result<String, String> {
        self.0
            .try_psql(
                "app",
                "SELECT count(*) || ':' || md5(string_agg(id || '=' || body, ',' ORDER BY id)) FROM t",
            )
            .map(|s| s.trim().to_string())
    }
    fn scratch_left(&self) -> Vec<String> {
        let names = self.0.psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE '\\_drydock\\_%'",
        );
        names.lines().map(str::to_string).collect()
    }
}

struct Mariadb(MariaDb);

impl Mariadb {
    fn start() -> Mariadb {
        let db = MariaDb::start();
        db.create_db("shop");
        db.exec(
            "shop",
            "CREATE TABLE t (id INT PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
             INSERT INTO t SELECT seq, CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), MD5(seq + 3), MD5(seq + 4), MD5(seq + 5), MD5(seq + 6), MD5(seq + 7))
               FROM seq_1_to_30000;",
        );
        Mariadb(db)
    }
}

impl Subject for Mariadb {
    fn services(&self) -> String {
        format!(
            "[services.mariadb]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", name = \"shop\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_DB_PASSWORD}}\" }}]\n",
            self.0.url("shop")
        )
    }
    fn env(&self) -> Vec<(String, String)> {
        vec![("TEST_DB_PASSWORD".into(), self.0.password().into())]
    }
    fn change(&self, rng: &mut StdRng) {
        let (k, salt) = (rng.random_range(0..40), rng.random::<u32>());
        self.0.exec(
            "shop",
            &format!(
                "UPDATE t SET body = CONCAT(MD5(CONCAT(id, '{salt}')), SUBSTR(body, 33)) WHERE id % 40 = {k};
                 INSERT INTO t SELECT MAX(id) + 1, MD5('{salt}') FROM t;"
            ),
        );
    }
    fn digest(&self) -> Result<String, String> {
        self.0
            .try_exec(
                "shop",
                "SET SESSION group_concat_max_len = 1073741824;
                 SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(id, '=', body ORDER BY id SEPARATOR ','))) FROM t;",
            )
            .map(|s| s.trim().to_string())
    }
    fn scratch_left(&self) -> Vec<String> {
        let names = self.0.exec(
            "mysql",
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_drydock\\_%'",
        );
        names.lines().map(str::to_string).collect()
    }
}

struct Redis(RedisServer);

const REDIS_KEYS: u32 = 300;

impl Redis {
    fn start() -> Redis {
        let redis = RedisServer::start_with_password("crash-redis-pw");
        // Server-side, so megabytes of hex noise do not go through hundreds of client calls.
        redis.cli(&[
            "EVAL",
            "for i = 1, tonumber(ARGV[1]) do local v = {} for j = 1, 200 do v[j] = redis.sha1hex(i .. ':' .. j) end redis.call('SET', 'k' .. i, table.concat(v)) end return 1",
            "0",
            &REDIS_KEYS.to_string(),
        ]);
        Redis(redis)
    }
}

impl Subject for Redis {
    fn services(&self) -> String {
        format!(
            "[services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_REDIS_PASSWORD}}\" }}]\n",
            self.0.url()
        )
    }
    fn env(&self) -> Vec<(String, String)> {
        vec![("TEST_REDIS_PASSWORD".into(), "crash-redis-pw".into())]
    }
    fn change(&self, rng: &mut StdRng) {
        let (k, salt) = (rng.random_range(0..40), rng.random::<u32>());
        self.0.cli(&[
            "EVAL",
            "for i = tonumber(ARGV[2]), tonumber(ARGV[1]), 40 do redis.call('SET', 'k' .. i, redis.sha1hex(ARGV[3] .. i) .. string.sub(redis.call('GET', 'k' .. i) or '', 41)) end redis.call('SET', 'extra:' .. ARGV[3], ARGV[3]) return 1",
            "0",
            &REDIS_KEYS.to_string(),
            &(k + 1).to_string(),
            &salt.to_string(),
        ]);
    }
    fn digest(&self) -> Result<String, String> {
        let out = std::process::Command::new(drydock_testkit::program("redis-cli"))
            .arg("-p")
            .arg(self.0.port().to_string())
            .env("REDISCLI_AUTH", "crash-redis-pw")
            .args([
                "EVAL",
                "local keys = redis.call('KEYS', '*') table.sort(keys) local acc = '' for _, k in ipairs(keys) do acc = redis.sha1hex(acc .. k .. '=' .. redis.call('GET', k)) end return #keys .. ':' .. acc",
                "0",
            ])
            .output()
            .map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!("redis digest: {}", common::text(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn start() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
                 WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 15000)
                 INSERT INTO t SELECT i, randomblob(512) FROM g;",
            )
            .unwrap();
        Sqlite { _dir: dir, path }
    }
}

impl Subject for Sqlite {
    fn services(&self) -> String {
        format!(
            "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"sqlite\", priority = \"critical\", path = \"{}\" }}]\n",
            self.path.display()
        )
    }
    fn change(&self, rng: &mut StdRng) {
        let k = rng.random_range(0..40);
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .execute_batch(&format!(
                "UPDATE t SET body = randomblob(512) WHERE id % 40 = {k};
                 INSERT INTO t (body) VALUES (randomblob(100));"
            ))
            .unwrap();
    }
    fn digest(&self) -> Result<String, String> {
        let db = rusqlite::Connection::open(&self.path).map_err(|e| e.to_string())?;
        let mut stmt = db
            .prepare("SELECT id, body FROM t ORDER BY id")
            .map_err(|e| e.to_string())?;
        let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
        let (mut hash, mut count) = (Sha256::new(), 0u64);
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let id: i64 = row.get(0).map_err(|e| e.to_string())?;
            let body: Vec<u8> = row.get(1).map_err(|e| e.to_string())?;
            hash.update(id.to_le_bytes());
            hash.update((body.len() as u64).to_le_bytes());
            hash.update(&body);
            count += 1;
        }
        Ok(format!("{count}:{}", hex::encode(hash.finalize())))
    }
}

struct Files {
    _dir: tempfile::TempDir,
    path: PathBuf,
    count: usize,
}

fn noise(rng: &mut impl Rng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rng.fill(bytes.as_mut_slice());
    bytes
}

impl Files {
    /// `count` files of 64 KiB of noise in ten folders.
    fn start(rng: &mut StdRng, count: usize) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uploads");
        for i in 0..count {
            let sub = path.join(format!("d{}", i % 10));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("f{i}.bin")), noise(rng, 64 << 10)).unwrap();
        }
        Files {
            _dir: dir,
            path,
            count,
        }
    }
}

impl Subject for Files {
    fn services(&self) -> String {
        format!(
            "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", name = \"uploads\", priority = \"critical\", path = \"{}\" }}]\n",
            self.path.display()
        )
    }
    fn change(&self, rng: &mut StdRng) {
        for _ in 0..5 {
            let i = rng.random_range(0..self.count);
            let file = self.path.join(format!("d{}/f{i}.bin", i % 10));
            std::fs::write(file, noise(rng, 64 << 10)).unwrap();
        }
        let extra = rng.random::<u32>();
        std::fs::write(self.path.join(format!("new-{extra}.bin")), noise(rng, 4096)).unwrap();
    }
    fn digest(&self) -> Result<String, String> {
        tree_digest(&self.path)
    }
}

/// A Docker named volume no container uses, filled through its host directory.
struct DockerVolume {
    volume: drydock_testkit::docker::Volume,
    count: usize,
}

impl DockerVolume {
    fn start(rng: &mut StdRng, count: usize) -> DockerVolume {
        drydock_testkit::docker::require_docker();
        let volume = drydock_testkit::docker::Volume::create(
            &drydock_testkit::docker::unique("crash"),
            &[("drydock.backup", "critical")],
        );
        let root = volume.mountpoint();
        for i in 0..count {
            std::fs::write(root.join(format!("f{i}.bin")), noise(rng, 64 << 10)).unwrap();
        }
        DockerVolume { volume, count }
    }
}

impl Subject for DockerVolume {
    fn services(&self) -> String {
        format!(
            "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"volume\", name = \"spool\", volume = \"{}\" }}]\n",
            self.volume.name
        )
    }
    fn change(&self, rng: &mut StdRng) {
        // A restore recreates the volume: its directory is looked up each time.
        let root = self.volume.mountpoint();
        for _ in 0..5 {
            let i = rng.random_range(0..self.count);
            std::fs::write(root.join(format!("f{i}.bin")), noise(rng, 64 << 10)).unwrap();
        }
        let extra = rng.random::<u32>();
        std::fs::write(root.join(format!("new-{extra}.bin")), noise(rng, 4096)).unwrap();
    }
    fn digest(&self) -> Result<String, String> {
        tree_digest(&self.volume.mountpoint())
    }
}

/// Paths and file contents, in order.
fn tree_digest(root: &Path) -> Result<String, String> {
    let mut hash = Sha256::new();
    let mut count = 0u64;
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        let rel = entry.path().strip_prefix(root).unwrap();
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).map_err(|e| e.to_string())?;
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
            count += 1;
        }
    }
    Ok(format!("{count}:{}", hex::encode(hash.finalize())))
}

// ---------------------------------------------------------------------------------
// Running drydock and reading what it says.

/// `drydock <args> --json`, its exit code and JSON; an error instead of a panic.
fn json(stack: &Stack, args: &[&str]) -> Result<(i32, serde_json::Value), String> {
    let mut all = args.to_vec();
    all.push("--json");
    let out = stack
        .command(&all)
        .output()
        .map_err(|e| format!("drydock {args:?}: {e}"))?;
    let value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "drydock {args:?} printed no JSON ({e}): {}",
            tail(&common::text(&out))
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), value))
}

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(1500);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// A listed backup: its id, status, and status in each copy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    id: String,
    started_at: jiff::Timestamp,
    status: String,
    copies: BTreeMap<String, String>,
}

fn listed(stack: &Stack) -> Result<Vec<Listed>, String> {
    let (code, list) = json(stack, &["backups"])?;
    if code != 0 {
        return Err(format!("drydock backups exited {code}: {list}"));
    }
    Ok(list["backups"]
        .as_array()
        .ok_or("drydock backups: no backups array")?
        .iter()
        .map(|b| Listed {
            id: b["id"].as_str().unwrap_or_default().to_string(),
            started_at: b["started_at"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
            status: b["status"].as_str().unwrap_or_default().to_string(),
            copies: b["copies"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            (
                                c["name"].as_str().unwrap_or_default().to_string(),
                                c["status"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// `verify --read-data` on every copy (or `copy`) must pass.
fn verify_read_data(stack: &Stack, copy: Option<&str>) -> Result<(), Failure> {
    let mut args = vec!["verify", "--read-data"];
    if let Some(c) = copy {
        args.extend(["--copy", c]);
    }
    let (code, report) = json(stack, &args)?;
    if code == 0 && report["ok"] == true {
        return Ok(());
    }
    let damaged_needed = report["copies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["damaged"].as_array().into_iter().flatten())
        .any(|d| d["needed_by"].as_array().is_some_and(|n| !n.is_empty()));
    // rustic's messages can embed a whole index: the start of each says what broke.
    let short = |v: &serde_json::Value| -> String {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        text.chars().take(400).collect()
    };
    let mut findings = Vec::new();
    for c in report["copies"].as_array().into_iter().flatten() {
        for key in ["error", "repository_errors", "damaged"] {
            match &c[key] {
                serde_json::Value::Null => {}
                serde_json::Value::Array(items) => findings.extend(
                    items
                        .iter()
                        .map(|i| format!("copy {}: {key}: {}", c["name"], short(i))),
                ),
                other => findings.push(format!("copy {}: {key}: {}", c["name"], short(other))),
            }
        }
    }
    let why = format!(
        "verify --read-data exited {code}: {}",
        if findings.is_empty() {
            tail(&report.to_string())
        } else {
            findings.join(" | ")
        }
    );
    Err(if damaged_needed {
        Failure::DataLost(why)
    } else {
        Failure::Failed(why)
    })
}

/// Restores backup `id` in place (from `from`, or drydock's choice) and checks both
/// drydock's verdict and the test's own digest of the live data.
fn restore_and_compare(
    stack: &Stack,
    subject: &dyn Subject,
    id: &str,
    from: Option<&str>,
    want: &str,
) -> Result<(), Failure> {
    let mut args = vec!["restore", id, "--all", "--force"];
    if let Some(f) = from {
        args.extend(["--from", f]);
    }
    let (code, report) = json(stack, &args)?;
    let sources_ok = report["sources"].as_array().is_some_and(|s| {
        s.iter().all(|s| {
            s["status"] == "verified" && s["differences"].as_array().is_some_and(|d| d.is_empty())
        })
    });
    if code != 0 || report["verified"] != true || !sources_ok {
        return Err(Failure::DataLost(format!(
            "backup {id} (from {}) did not restore verified: exit {code}: {}",
            from.unwrap_or("any copy"),
            tail(&report.to_string())
        )));
    }
    let got = subject.digest()?;
    if got != want {
        return Err(Failure::DataLost(format!(
            "backup {id} (from {}) restored verified, but the data is not what was backed up: digest {got}, want {want}",
            from.unwrap_or("any copy")
        )));
    }
    Ok(())
}

/// Files in the repository's `locks/` (restic-format locks; dot files are temporaries).
fn lock_files(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("locks"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// The processes of process group `pgid` still running (pid and name); zombies do not
/// count.
fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let name = stat[stat.find('(').map_or(0, |i| i + 1)..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push((pid, name));
        }
    }
    found
}

/// Spawns drydock `args` as the leader of its own process group.
fn spawn_in_group(stack: &Stack, args: &[&str], stderr: Stdio) -> Result<Child, String> {
    stack
        .command(args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("spawning drydock {args:?}: {e}"))
}

/// Kills drydock (and with `group` every process it started), reaps it, and fails when
/// anything of its group still runs 10 s later: an orphaned dump tool or server.
fn kill_and_reap(child: &mut Child, group: bool) -> Result<(), String> {
    let pid = child.id() as i32;
    if group {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    } else {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = group_members(pid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return Err(format!(
                "drydock was killed, but what it started still runs 10 s later: {left:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------
// 1. Crash during backup.

/// What the test knows of the backups: the digest of the live data each one took.
struct Known {
    digests: BTreeMap<String, String>,
}

fn backup_ok(stack: &Stack) -> Result<(String, serde_json::Value), String> {
    let (code, report) = json(stack, &["backup"])?;
    if code != 0 || report["status"] != "ok" {
        return Err(format!(
            "backup exited {code}: {}",
            tail(&report.to_string())
        ));
    }
    let id = report["id"]
        .as_str()
        .ok_or("backup report without id")?
        .to_string();
    Ok((id, report))
}

fn crash_during_backup(scenario: &str, test: &str, subject: &dyn Subject) {
    let mut tally = Tally::new(scenario, BINARY, test);
    let mut stack = Stack::new(&subject.services());
    for (k, v) in subject.env() {
        stack = stack.env(&k, &v);
    }
    let mut known = Known {
        digests: BTreeMap::new(),
    };
    // The first backup writes everything; the second, after a change like each trial's,
    // is the undisturbed duration the kill moments are drawn from.
    let (first, _) = backup_ok(&stack).unwrap();
    known.digests.insert(first, subject.digest().unwrap());
    subject.change(tally.rng());
    let digest = subject.digest().unwrap();
    let clock = Instant::now();
    let (second, _) = backup_ok(&stack).unwrap();
    let undisturbed = clock.elapsed();
    known.digests.insert(second, digest);
    eprintln!("torture: {scenario}: an undisturbed backup takes {undisturbed:?}");

    for _ in 0..runs(10, 50) {
        tally.trial(|rng| crash_backup_trial(&stack, subject, &mut known, undisturbed, rng));
    }
    tally.finish();
}

fn crash_backup_trial(
    stack: &Stack,
    subject: &dyn Subject,
    known: &mut Known,
    undisturbed: Duration,
    rng: &mut StdRng,
) -> Result<(), Failure> {
    subject.change(rng);
    let live = subject.digest()?;
    let before = listed(stack)?;
    let at = Duration::from_micros(rng.random_range(0..undisturbed.as_micros() as u64));
    let whole_group = rng.random_bool(0.5);

    let mut child = spawn_in_group(stack, &["backup", "--json"], Stdio::null())?;
    let killed_pid = child.id();
    std::thread::sleep(at);
    let finished = child.try_wait().map_err(|e| e.to_string())?;
    if finished.is_none() {
        kill_and_reap(&mut child, whole_group)?;
    }
    let what = format!(
        "killed {} at {at:?} of {undisturbed:?}{}",
        if whole_group {
            "process group"
        } else {
            "drydock alone"
        },
        if finished.is_some() {
            " (it had finished)"
        } else {
            ""
        }
    );

    // The list: what was there, plus at most one complete new backup.
    let after = listed(stack).map_err(|e| format!("{what}: {e}"))?;
    for old in &before {
        if !after.iter().any(|b| b.id == old.id) {
            return Err(Failure::DataLost(format!(
                "{what}: backup {} was listed before the crash and is gone",
                old.id
            )));
        }
    }
    let new: Vec<&Listed> = after
        .iter()
        .filter(|b| !before.iter().any(|o| o.id == b.id))
        .collect();
    if new.len() > 1 {
        return Err(format!("{what}: {} new backups listed: {new:?}", new.len()).into());
    }
    if let Some(b) = new.first() {
        if b.status != "ok" {
            return Err(format!("{what}: the new backup is listed as {}: {b:?}", b.status).into());
        }
        known.digests.insert(b.id.clone(), live.clone());
    } else if finished.is_some_and(|s| s.success()) {
        return Err(format!("{what}: the backup succeeded but is not listed").into());
    }
    let latest = after
        .iter()
        .max_by_key(|b| b.started_at)
        .map(|b| b.id.clone())
        .ok_or("no backup listed at all")?;

    // The next backup needs no manual unlock; a lock the killed run left is removed
    // and reported with its PID.
    let stale = lock_files(&stack.repo());
    let (next, report) = backup_ok(stack).map_err(|e| format!("{what}: next backup: {e}"))?;
    known.digests.insert(next, live.clone());
    if !stale.is_empty() {
        eprintln!("torture: {what}: the killed run left a lock; the next backup removed it");
        let warnings = report["warnings"].to_string();
        if !(warnings.contains("removed stale lock")
            && warnings.contains(&format!("pid {killed_pid}")))
        {
            return Err(format!(
                "{what}: {} lock file(s) were left, but the next backup did not report removing the stale lock of pid {killed_pid}: {warnings}",
                stale.len()
            )
            .into());
        }
    }
    if !lock_files(&stack.repo()).is_empty() {
        return Err(format!("{what}: lock files remain after the next backup").into());
    }
    // Scratch space of the killed run (partial dumps) must not pile up run after run.
    let scratch: Vec<String> = std::fs::read_dir(stack.path().join("state/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !scratch.is_empty() {
        return Err(format!(
            "{what}: the killed run's scratch space is still there after the next backup: state/tmp/{scratch:?}"
        )
        .into());
    }

    verify_read_data(stack, None).map_err(|f| prefix(&what, f))?;
    let want = known
        .digests
        .get(&latest)
        .ok_or_else(|| format!("{what}: latest backup {latest} is not one the test made"))?;
    restore_and_compare(stack, subject, &latest, None, want).map_err(|f| prefix(&what, f))
}

fn prefix(what: &str, failure: Failure) -> Failure {
    match failure {
        Failure::Failed(w) => Failure::Failed(format!("{what}: {w}")),
        Failure::DataLost(w) => Failure::DataLost(format!("{what}: {w}")),
    }
}

#[test]
fn crash_during_backup_postgres() {
    let subject = Postgres::start();
    crash_during_backup(
        "crash during backup: PostgreSQL",
        "crash_during_backup_postgres",
        &subject,
    );
}

#[test]
fn crash_during_backup_mariadb() {
    let subject = Mariadb::start();
    crash_during_backup(
        "crash during backup: MariaDB",
        "crash_during_backup_mariadb",
        &subject,
    );
}

#[test]
fn crash_during_backup_redis() {
    let subject = Redis::start();
    crash_during_backup(
        "crash during backup: Redis",
        "crash_during_backup_redis",
        &subject,
    );
}

#[test]
fn crash_during_backup_sqlite() {
    let subject = Sqlite::start();
    crash_during_backup(
        "crash during backup: SQLite",
        "crash_during_backup_sqlite",
        &subject,
    );
}

#[test]
fn crash_during_backup_docker_volume() {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(11);
    let subject = DockerVolume::start(&mut rng, 200);
    crash_during_backup(
        "crash during backup: Docker volume",
        "crash_during_backup_docker_volume",
        &subject,
    );
}

#[test]
fn crash_during_backup_files() {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(7);
    let subject = Files::start(&mut rng, 200);
    crash_during_backup(
        "crash during backup: files",
        "crash_during_backup_files",
        &subject,
    );
}

// ---------------------------------------------------------------------------------
// 1b. Crash during restore: the live data is as it was, or the restore is owed.

/// The restores `drydock status` says are owed.
fn owed_restores(stack: &Stack) -> Result<Vec<String>, String> {
    let (code, status) = json(stack, &["status"])?;
    if code != 0 {
        return Err(format!(
            "drydock status exited {code}: {}",
            tail(&status.to_string())
        ));
    }
    Ok(status["pending_restores"]
        .as_array()
        .ok_or("status without pending_restores")?
        .iter()
        .map(|p| p["service"].as_str().unwrap_or_default().to_string())
        .collect())
}

fn crash_during_restore(scenario: &str, test: &str, subject: &dyn Subject) {
    let mut tally = Tally::new(scenario, BINARY, test);
    let mut stack = Stack::new(&subject.services());
    for (k, v) in subject.env() {
        stack = stack.env(&k, &v);
    }
    let (id, _) = backup_ok(&stack).unwrap();
    let backed_up = subject.digest().unwrap();
    // An undisturbed restore over changed data: the span the kill moments come from.
    subject.change(tally.rng());
    let clock = Instant::now();
    restore_and_compare(&stack, subject, &id, None, &backed_up).unwrap();
    let undisturbed = clock.elapsed();
    eprintln!("torture: {scenario}: an undisturbed restore takes {undisturbed:?}");
    for _ in 0..runs(6, 30) {
        tally.trial(|rng| crash_restore_trial(&stack, subject, &id, &backed_up, undisturbed, rng));
    }
    tally.finish();
}

/// Kills a restore over changed live data at a random moment. Afterwards the live data
/// is exactly what it was, with nothing owed; or the restore is owed (`status` lists
/// it) and the next restore finishes it; or it had completed. Anything else is data
/// lost.
fn crash_restore_trial(
    stack: &Stack,
    subject: &dyn Subject,
    id: &str,
    backed_up: &str,
    undisturbed: Duration,
    rng: &mut StdRng,
) -> Result<(), Failure> {
    subject.change(rng);
    let live = subject.digest()?;
    let at = Duration::from_micros(rng.random_range(0..undisturbed.as_micros() as u64));
    let whole_group = rng.random_bool(0.5);
    let mut child = spawn_in_group(
        stack,
        &["restore", id, "--all", "--force", "--json"],
        Stdio::null(),
    )?;
    std::thread::sleep(at);
    let finished = child.try_wait().map_err(|e| e.to_string())?;
    if finished.is_none() {
        kill_and_reap(&mut child, whole_group)?;
    }
    let what = format!(
        "restore killed ({}) at {at:?} of {undisturbed:?}{}",
        if whole_group {
            "process group"
        } else {
            "drydock alone"
        },
        if finished.is_some() {
            " (it had finished)"
        } else {
            ""
        }
    );
    let now = subject.digest().map_err(|e| format!("{what}: {e}"))?;
    let owed = owed_restores(stack).map_err(|e| format!("{what}: {e}"))?;
    if owed.is_empty() {
        if now != live && now != backed_up {
            return Err(Failure::DataLost(format!(
                "{what}: the live data is neither what it was nor the backup (digest {now}), and status shows no owed restore"
            )));
        }
        if now == backed_up && finished.is_none_or(|s| !s.success()) && live != backed_up {
            eprintln!("torture: {what}: killed after the swap and its verification");
        }
    }
    // The next restore finishes an owed one, clears the record, and removes the scratch
    // databases the killed run left.
    restore_and_compare(stack, subject, id, None, backed_up).map_err(|f| prefix(&what, f))?;
    let still = owed_restores(stack).map_err(|e| format!("{what}: {e}"))?;
    if !still.is_empty() {
        return Err(
            format!("{what}: the next restore verified, but status still owes {still:?}").into(),
        );
    }
    let left = subject.scratch_left();
    if !left.is_empty() {
        return Err(
            format!("{what}: scratch databases left after the next restore: {left:?}").into(),
        );
    }
    Ok(())
}

#[test]
fn crash_during_restore_postgres() {
    let subject = Postgres::start();
    crash_during_restore(
        "crash during restore: PostgreSQL",
        "crash_during_restore_postgres",
        &subject,
    );
}

#[test]
fn crash_during_restore_mariadb() {
    let subject = Mariadb::start();
    crash_during_restore(
        "crash during restore: MariaDB",
        "crash_during_restore_mariadb",
        &subject,
    );
}

#[test]
fn crash_during_restore_redis() {
    let subject = Redis::start();
    crash_during_restore(
        "crash during restore: Redis",
        "crash_during_restore_redis",
        &subject,
    );
}

#[test]
fn crash_during_restore_sqlite() {
    let subject = Sqlite::start();
    crash_during_restore(
        "crash during restore: SQLite",
        "crash_during_restore_sqlite",
        &subject,
    );
}

#[test]
fn crash_during_restore_files() {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(17);
    let subject = Files::start(&mut rng, 200);
    crash_during_restore(
        "crash during restore: files",
        "crash_during_restore_files",
        &subject,
    );
}

#[test]
fn crash_during_restore_docker_volume() {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(19);
    let subject = DockerVolume::start(&mut rng, 200);
    crash_during_restore(
        "crash during restore: Docker volume",
        "crash_during_restore_docker_volume",
        &subject,
    );
}

// ---------------------------------------------------------------------------------
// 2. Crash during prune and sync, with a remote copy.

/// A files stack whose remote copy `offsite` lives in Garage behind a fault proxy.
struct RemoteRig {
    garage: GarageServer,
    prefix: String,
    proxy: FaultProxy,
    stack: Stack,
    files: Files,
    known: Known,
}

impl RemoteRig {
    fn start(rng: &mut StdRng, prefix: &str, retention: &str) -> RemoteRig {
        let garage = GarageServer::start();
        let proxy = FaultProxy::start(garage.s3_port, Faults::default());
        let files = Files::start(rng, 50);
        let stack = Stack::new(&files.services()).with_remote(&garage, &proxy.endpoint(), prefix);
        stack.append_config(retention);
        RemoteRig {
            garage,
            prefix: prefix.to_string(),
            proxy,
            stack,
            files,
            known: Known {
                digests: BTreeMap::new(),
            },
        }
    }

    /// Lock files in either copy: the local `locks/` folder and the bucket's (restic
    /// lists those).
    fn lock_files(&self) -> Result<usize, String> {
        let out = common::restic_s3(&self.garage, &self.prefix, &["list", "locks", "--no-lock"]);
        if !out.status.success() {
            return Err(format!("restic list locks: {}", tail(&common::text(&out))));
        }
        let remote = String::from_utf8_lossy(&out.stdout).lines().count();
        Ok(lock_files(&self.stack.repo()).len() + remote)
    }

    /// Changes the data and backs it up into both copies.
    fn backup(&mut self, rng: &mut StdRng) -> Result<String, String> {
        self.files.change(rng);
        let live = self.files.digest()?;
        let (id, report) = backup_ok(&self.stack)?;
        for copy in report["copies"].as_array().into_iter().flatten() {
            if copy["status"] != "verified" {
                return Err(format!("backup {id}: copy not verified: {copy}"));
            }
        }
        self.known.digests.insert(id.clone(), live);
        Ok(id)
    }
}

/// The lines `drydock <args> -v --log-format json` logs in an undisturbed run.
fn logged_steps(stack: &Stack, args: &[&str]) -> Result<Vec<String>, String> {
    let mut all = args.to_vec();
    all.extend(["-v", "--log-format", "json"]);
    let out = stack.run(&all);
    if out.status.code().unwrap_or(-1) > 1 {
        return Err(format!("drydock {args:?}: {}", tail(&common::text(&out))));
    }
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(step_message)
        .collect())
}

/// The message of a JSON log line (the line itself when it is not JSON).
fn step_message(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["fields"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| line.to_string())
}

/// The lines that start a step (rustic's "reading index...", drydock's "copy `local`:
/// removing 1 source backup(s)"), numbered from 1: killing right after one lands inside
/// that step. Its "finished." and chatter ("using no cache") add no new moment.
fn step_starts(lines: &[String]) -> Vec<(usize, String)> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l.as_str(), "" | "finished." | "using no cache"))
        .map(|(i, l)| (i + 1, l.clone()))
        .collect()
}

/// `count` of the steps' line numbers: every step in turn from a random one, so a full
/// run kills once in each step and a quick one in a few random ones.
fn pick_steps(steps: &[(usize, String)], count: usize, rng: &mut StdRng) -> Vec<usize> {
    let offset = rng.random_range(0..steps.len());
    (0..count)
        .map(|t| steps[(offset + t) % steps.len()].0)
        .collect()
}

/// How a run that was to be killed after its `n`-th log line ended.
struct Killed {
    pid: u32,
    /// It finished before that line came.
    finished: bool,
    last_line: String,
}

/// Runs `drydock <args> -v --log-format json` and kills it (SIGKILL) right after its
/// `n`-th line on stderr.
fn kill_after_line(stack: &Stack, args: &[&str], n: usize) -> Result<Killed, String> {
    let mut all = args.to_vec();
    all.extend(["-v", "--log-format", "json"]);
    let mut child = spawn_in_group(stack, &all, Stdio::piped())?;
    let pid = child.id();
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = 0;
    let mut last_line = String::new();
    let mut finished = true;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        seen += 1;
        last_line = step_message(&line);
        if seen == n {
            finished = false;
            kill_and_reap(&mut child, true)?;
            break;
        }
    }
    if finished {
        let _ = child.wait();
    }
    drop(rx);
    let _ = reader.join();
    Ok(Killed {
        pid,
        finished,
        last_line,
    })
}

/// A re-run after a crash: it must complete, and any warning must be the stale lock of
/// the killed process being removed.
fn rerun_completes(
    rig: &RemoteRig,
    args: &[&str],
    killed: &Killed,
    done: &str,
) -> Result<serde_json::Value, String> {
    let left = rig.lock_files()?;
    let stack = &rig.stack;
    let (code, report) = json(stack, args)?;
    let copies = report["copies"].as_array().cloned().unwrap_or_default();
    let all_done = !copies.is_empty() && copies.iter().all(|c| c["status"] == done);
    let warnings: Vec<String> = copies
        .iter()
        .flat_map(|c| c["warnings"].as_array().cloned().unwrap_or_default())
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect();
    let only_stale_locks = warnings
        .iter()
        .all(|w| w.contains("removed stale lock") && w.contains(&format!("pid {}", killed.pid)));
    if !all_done || code > 1 || (code == 1 && (warnings.is_empty() || !only_stale_locks)) {
        return Err(format!(
            "drydock {args:?} after the crash exited {code}: {}",
            tail(&report.to_string())
        ));
    }
    // A lock the killed run left in a copy was found stale and removed, and said so.
    let reported = report.to_string().matches("removed stale lock").count();
    if reported < left {
        return Err(format!(
            "{left} lock file(s) were left by the killed run (pid {}), but the re-run reported removing {reported}: {}",
            killed.pid,
            tail(&report.to_string())
        ));
    }
    if left > 0 {
        eprintln!(
            "torture: the killed run left {left} lock file(s); the re-run removed and reported them"
        );
    }
    let after = rig.lock_files()?;
    if after > 0 {
        return Err(format!(
            "{after} lock file(s) remain after the re-run of drydock {args:?}"
        ));
    }
    Ok(report)
}

/// Every backup listed in a copy restores from that copy, verified, with the data it
/// took.
fn every_listed_backup_restores(rig: &RemoteRig, what: &str) -> Result<(), Failure> {
    for b in listed(&rig.stack)? {
        for (copy, status) in &b.copies {
            if !matches!(status.as_str(), "verified" | "present") {
                continue;
            }
            let want = rig
                .known
                .digests
                .get(&b.id)
                .ok_or_else(|| format!("{what}: backup {} is not one the test made", b.id))?;
            restore_and_compare(&rig.stack, &rig.files, &b.id, Some(copy), want)
                .map_err(|f| prefix(what, f))?;
        }
    }
    Ok(())
}

#[test]
fn crash_during_prune() {
    let mut tally = Tally::new(
        "crash during prune (local + S3 remote)",
        BINARY,
        "crash_during_prune",
    );
    let mut rig = RemoteRig::start(
        tally.rng(),
        "prune",
        "\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n",
    );
    // The steps of an undisturbed prune that deletes something.
    for _ in 0..2 {
        rig.backup(tally.rng()).unwrap();
    }
    let steps = step_starts(&logged_steps(&rig.stack, &["prune"]).unwrap());
    eprintln!("torture: prune's steps (line, message): {steps:?}");
    assert!(steps.len() > 10, "prune -v logs its steps: {steps:?}");
    for n in pick_steps(&steps, runs(3, steps.len()), tally.rng()) {
        tally.trial(|rng| crash_prune_trial(&mut rig, n, rng));
    }
    tally.finish();
}

fn crash_prune_trial(rig: &mut RemoteRig, n: usize, rng: &mut StdRng) -> Result<(), Failure> {
    // The backup the last prune kept is what the policy deletes now.
    let newest = rig.backup(rng)?;
    let before = listed(&rig.stack)?;
    let killed = kill_after_line(&rig.stack, &["prune"], n)?;
    let what = if killed.finished {
        format!("prune finished before its line {n}")
    } else {
        format!("prune killed after line {n} ({:?})", killed.last_line)
    };
    let after = listed(&rig.stack).map_err(|e| format!("{what}: {e}"))?;
    if let Some(extra) = after.iter().find(|b| !before.iter().any(|o| o.id == b.id)) {
        return Err(format!("{what}: a backup appeared: {extra:?}").into());
    }
    let newest_there = |list: &[Listed]| {
        list.iter().any(|b| {
            b.id == newest
                && ["local", "offsite"].iter().all(|c| {
                    b.copies
                        .get(*c)
                        .is_some_and(|s| matches!(s.as_str(), "verified" | "present"))
                })
        })
    };
    if !newest_there(&after) {
        return Err(Failure::DataLost(format!(
            "{what}: the newest backup {newest}, which the policy keeps, is not in both copies: {after:?}"
        )));
    }
    rerun_completes(rig, &["prune"], &killed, "pruned").map_err(|e| format!("{what}: {e}"))?;
    let pruned = listed(&rig.stack)?;
    if !newest_there(&pruned) {
        return Err(Failure::DataLost(format!(
            "{what}: after the re-run the newest backup {newest} is not in both copies: {pruned:?}"
        )));
    }
    if pruned.len() != 1 {
        return Err(format!(
            "{what}: daily = 1 keeps one backup, but after the re-run {} are listed: {pruned:?}",
            pruned.len()
        )
        .into());
    }
    verify_read_data(&rig.stack, None).map_err(|f| prefix(&what, f))?;
    every_listed_backup_restores(rig, &what)
}

#[test]
fn crash_during_sync() {
    let mut tally = Tally::new(
        "crash during sync (local to S3 remote)",
        BINARY,
        "crash_during_sync",
    );
    let mut rig = RemoteRig::start(tally.rng(), "sync", "");
    rig.backup(tally.rng()).unwrap();
    let pending = backup_while_remote_down(&mut rig, tally.rng()).unwrap();
    let steps = step_starts(&logged_steps(&rig.stack, &["sync"]).unwrap());
    eprintln!("torture: sync of {pending}: steps (line, message): {steps:?}");
    assert!(steps.len() > 3, "sync -v logs its steps: {steps:?}");
    for n in pick_steps(&steps, runs(3, steps.len()), tally.rng()) {
        tally.trial(|rng| crash_sync_trial(&mut rig, n, rng));
    }
    tally.finish();
}

/// A backup made while the remote refuses connections: stored locally, unsynced there.
fn backup_while_remote_down(rig: &mut RemoteRig, rng: &mut StdRng) -> Result<String, String> {
    rig.proxy.set(Faults {
        down: true,
        ..Faults::default()
    });
    rig.files.change(rng);
    let live = rig.files.digest()?;
    let result = json(&rig.stack, &["backup"]);
    rig.proxy.set(Faults::default());
    let (code, report) = result?;
    let id = report["id"].as_str().unwrap_or_default().to_string();
    if code != 1 || report["status"] != "ok" || id.is_empty() {
        return Err(format!(
            "a backup with the remote down should warn (exit 1) and be good locally; exit {code}: {}",
            tail(&report.to_string())
        ));
    }
    rig.known.digests.insert(id.clone(), live);
    Ok(id)
}

fn crash_sync_trial(rig: &mut RemoteRig, n: usize, rng: &mut StdRng) -> Result<(), Failure> {
    let pending = backup_while_remote_down(rig, rng)?;
    let before = listed(&rig.stack)?;
    let killed = kill_after_line(&rig.stack, &["sync"], n)?;
    let what = if killed.finished {
        format!("sync finished before its line {n}")
    } else {
        format!("sync killed after line {n} ({:?})", killed.last_line)
    };
    let after = listed(&rig.stack).map_err(|e| format!("{what}: {e}"))?;
    for old in &before {
        if !after.iter().any(|b| b.id == old.id) {
            return Err(Failure::DataLost(format!(
                "{what}: backup {} was listed before the crash and is gone",
                old.id
            )));
        }
    }
    let report =
        rerun_completes(rig, &["sync"], &killed, "synced").map_err(|e| format!("{what}: {e}"))?;
    let synced = listed(&rig.stack)?;
    let everywhere = synced.iter().all(|b| {
        ["local", "offsite"]
            .iter()
            .all(|c| b.copies.get(*c).is_some_and(|s| s == "verified"))
    });
    if !everywhere || !synced.iter().any(|b| b.id == pending) {
        return Err(format!(
            "{what}: after the re-run ({}) not every backup is verified in both copies: {synced:?}",
            tail(&report.to_string())
        )
        .into());
    }
    verify_read_data(&rig.stack, None).map_err(|f| prefix(&what, f))?;
    let want = rig.known.digests[&pending].clone();
    restore_and_compare(&rig.stack, &rig.files, &pending, Some("offsite"), &want)
        .map_err(|f| prefix(&what, f))
}

// ---------------------------------------------------------------------------------
// 3. Durability order, from strace.

#[test]
fn durability_order_of_backup_writes() {
    let mut tally = Tally::new(
        "durability order: every repository file is fsynced, renamed into place, its directory fsynced",
        BINARY,
        "durability_order_of_backup_writes",
    );
    for _ in 0..runs(1, 3) {
        tally.trial(durability_trial);
    }
    tally.finish();
}

fn durability_trial(rng: &mut StdRng) -> Result<(), Failure> {
    let files = Files::start(rng, 50);
    let stack = Stack::new(&files.services());
    let mut earlier = BTreeSet::new();
    // The first backup creates the repository (config, key) too; the second adds to it.
    for round in 0..2 {
        if round == 1 {
            files.change(rng);
        }
        let trace = stack.path().join(format!("strace-{round}.txt"));
        let out = std::process::Command::new("strace")
            .args(["-f", "-y", "-qq", "-s", "1024", "-o"])
            .arg(&trace)
            .args([
                "-e",
                "trace=openat,rename,renameat,renameat2,fsync,fdatasync,link,linkat,write,close",
            ])
            .arg(env!("CARGO_BIN_EXE_drydock"))
            .args(["backup", "--json"])
            .current_dir(stack.path())
            .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| format!("strace: {e} (is strace installed?)"))?;
        if out.status.code() != Some(0) {
            return Err(format!("backup under strace: {}", tail(&common::text(&out))).into());
        }
        let text = std::fs::read_to_string(&trace).map_err(|e| e.to_string())?;
        let repo = stack.repo().canonicalize().map_err(|e| e.to_string())?;
        let written = repository_files(&repo)
            .into_iter()
            .filter(|f| !earlier.contains(f))
            .collect::<Vec<_>>();
        if written.is_empty() {
            return Err(format!("round {round}: the backup wrote no repository file").into());
        }
        let problems = check_durability(&text, &repo, stack.path(), &written);
        if !problems.is_empty() {
            return Err(format!(
                "round {round}: {} of {} new repository files were not written durably, e.g.:\n{}",
                problems.len(),
                written.len(),
                problems[..problems.len().min(5)].join("\n")
            )
            .into());
        }
        earlier.extend(written);
    }
    Ok(())
}

/// The repository's files that restic defines: config, keys, packs, index, snapshots
/// (drydock's manifests are snapshots too); temporaries have other names.
fn repository_files(repo: &Path) -> Vec<PathBuf> {
    let mut found = vec![repo.join("config")];
    for dir in ["keys", "data", "index", "snapshots"] {
        found.extend(
            walkdir::WalkDir::new(repo.join(dir))
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy();
                    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
                })
                .map(|e| e.path().to_path_buf()),
        );
    }
    found
}

/// One traced call: its name, its quoted path arguments, and the paths of its fd
/// arguments (`-y`).
#[derive(Debug)]
struct Call {
    name: String,
    paths: Vec<PathBuf>,
    fds: Vec<PathBuf>,
    args: String,
}

fn parse_trace(text: &str, cwd: &Path) -> Vec<Call> {
    let mut calls = Vec::new();
    for line in text.lines() {
        // "PID name(args) = ret" or "PID name(args <unfinished ...>"; a "<... resumed>"
        // line only carries the result.
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let Some(open) = rest.find('(') else { continue };
        let name = rest[..open].to_string();
        let args = &rest[open + 1..];
        let args = args
            .rfind(") = ")
            .map_or(args, |end| &args[..end])
            .trim_end_matches(" <unfinished ...>");
        let mut paths = Vec::new();
        let mut fds = Vec::new();
        let bytes = args.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    let end = args[i + 1..].find('"').map_or(args.len(), |e| i + 1 + e);
                    let p = PathBuf::from(&args[i + 1..end]);
                    paths.push(if p.is_absolute() { p } else { cwd.join(p) });
                    i = end + 1;
                }
                b'<' => {
                    let end = args[i + 1..].find('>').map_or(args.len(), |e| i + 1 + e);
                    fds.push(PathBuf::from(&args[i + 1..end]));
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
        calls.push(Call {
            name,
            paths,
            fds,
            args: args.to_string(),
        });
    }
    calls
}

/// What is wrong with how each of `files` came to be, one line per file.
fn check_durability(text: &str, repo: &Path, cwd: &Path, files: &[PathBuf]) -> Vec<String> {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let calls = parse_trace(text, &cwd);
    let canon = |p: &Path| -> PathBuf {
        // The trace shows paths as drydock passed them; the repository may be reached
        // through a symlinked temp dir.
        p.parent()
            .and_then(|d| d.canonicalize().ok())
            .map(|d| d.join(p.file_name().unwrap_or_default()))
            .unwrap_or_else(|| p.to_path_buf())
    };
    let mut problems = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(repo)
            .unwrap_or(file)
            .display()
            .to_string();
        let written_in_place = calls.iter().any(|c| {
            c.name == "openat"
                && c.paths.iter().any(|p| canon(p) == *file)
                && (c.args.contains("O_WRONLY") || c.args.contains("O_RDWR"))
        });
        if written_in_place {
            problems.push(format!("{rel}: opened for writing under its final name"));
            continue;
        }
        let Some((at, from)) = calls.iter().enumerate().rev().find_map(|(i, c)| {
            let renames = matches!(
                c.name.as_str(),
                "rename" | "renameat" | "renameat2" | "link" | "linkat"
            );
            (renames && c.paths.len() == 2 && canon(&c.paths[1]) == *file)
                .then(|| (i, canon(&c.paths[0])))
        }) else {
            problems.push(format!("{rel}: never renamed (or linked) into place"));
            continue;
        };
        let synced_before = calls[..at].iter().any(|c| {
            matches!(c.name.as_str(), "fsync" | "fdatasync") && c.fds.first() == Some(&from)
        });
        if !synced_before {
            problems.push(format!(
                "{rel}: its temporary file {} was not fsynced before the rename",
                from.display()
            ));
            continue;
        }
        let dir = file.parent().unwrap_or(repo).to_path_buf();
        let dir_synced_after = calls[at + 1..]
            .iter()
            .any(|c| c.name == "fsync" && c.fds.first() == Some(&dir));
        if !dir_synced_after {
            problems.push(format!(
                "{rel}: its directory was not fsynced after the rename"
            ));
        }
    }
    problems
}
