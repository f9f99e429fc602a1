//! `drydock demo`: the whole cycle on an embedded stack, no servers needed.
//!
//! It builds a small stack in a folder (a SQLite database of customers → orders →
//! order items, over 1 MB, and a directory of uploads), writes its `drydock.toml`,
//! backs it up, wipes it, restores it and proves the restore exact — the same code
//! paths `drydock backup` and `drydock restore` use on a real stack.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use drydock_domain::config::Config;
use drydock_domain::plan::Selection;
use drydock_domain::Event;
use jiff::Timestamp;
use serde::Serialize;

use crate::backup::{self, BackupReport};
use crate::restore::{self, BackupRef, RestoreOptions, RestoreReport};
use crate::EngineError;
use crate::RunContext;

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub verified: bool,
    pub dir: String,
    pub config: String,
    pub populate: Populated,
    pub backup: BackupReport,
    /// When the demo destroyed the data.
    pub wiped_at: Timestamp,
    pub restore: RestoreReport,
    /// Restore start to last verification passed.
    pub rto_ms: u64,
    /// Data lost had the failure been real: from the backup's consistent point to the wipe.
    pub rpo_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Populated {
    pub customers: u64,
    pub orders: u64,
    pub order_items: u64,
    pub database_bytes: u64,
    pub files: u64,
    pub file_bytes: u64,
}

/// Runs the demo in `dir` (created if missing; must be empty or absent).
pub fn run(dir: &Path, ctx: &RunContext) -> Result<DemoReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    let err = |cause: std::io::Error| EngineError::State {
        path: dir.to_path_buf(),
        cause,
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(err)?.next().is_some() {
        return Err(EngineError::Refused(format!(
            "demo folder {} is not empty; give an empty or new folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    let dir = std::path::absolute(dir).map_err(err)?;

    events.emit(Event::Step {
        message: format!("building the demo stack in {}", dir.display()),
    });
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("uploads")).map_err(err)?;
    let db = app.join("app.db");
    let mut populated = populate_database(&db).map_err(|e| EngineError::State {
        path: db.clone(),
        cause: std::io::Error::other(e.to_string()),
    })?;
    let (files, file_bytes) = populate_files(&app.join("uploads")).map_err(err)?;
    populated.files = files;
    populated.file_bytes = file_bytes;

    let config_path = write_config(&dir).map_err(err)?;
    let config = Config::load(&config_path)
        .map_err(|e| EngineError::Refused(format!("demo config invalid (a drydock bug): {e}")))?;

    events.emit(Event::Step {
        message: "backing up".into(),
    });
    let backup = backup::backup(&config, &Selection::all(), ctx)?;

    events.emit(Event::Step {
        message: "simulating a disaster: deleting the database and the uploads".into(),
    });
    std::fs::remove_file(&db).map_err(err)?;
    std::fs::remove_dir_all(app.join("uploads")).map_err(err)?;
    let wiped_at = Timestamp::now();

    events.emit(Event::Step {
        message: "restoring the latest backup".into(),
    });
    let clock = Instant::now();
    let opts = RestoreOptions {
        backup: BackupRef::Latest,
        from: None,
        services: vec![],
        all: true,
        force: true,
        stop: false,
        sources: vec![],
    };
    let restore = restore::restore(&config, &opts, ctx)?;
    let rto_ms = clock.elapsed().as_millis() as u64;

    let consistent = backup
        .sources
        .iter()
        .filter_map(|s| s.consistent_at)
        .min()
        .unwrap_or(backup.started_at);
    let rpo_ms = wiped_at.duration_since(consistent).as_millis().max(0) as u64;
    let verified = backup.verdict() == drydock_domain::Verdict::Ok && restore.verified;
    Ok(DemoReport {
        verified,
        dir: dir.display().to_string(),
        config: config_path.display().to_string(),
        populate: populated,
        backup,
        wiped_at,
        restore,
        rto_ms,
        rpo_ms,
    })
}

fn write_config(dir: &Path) -> std::io::Result<PathBuf> {
    // The repository password lives in a private file referenced from the config, as a
    // real stack would keep it: never in the config itself.
    let password: String = (0..32)
        .map(|_| format!("{:x}", rand::random_range(0..16u8)))
        .collect();
    let pw_path = dir.join("repository.password");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pw_path)?
        .write_all(password.as_bytes())?;
    let config = format!(
        r#"# The demo stack drydock built for `drydock demo`.
[stack]
name = "demo"
state_dir = "state"

[repository]
path = "repo"
password = "${{file:{pw}}}"

[services.app]
role = "app"
# No process owns these files in the demo, so there is nothing to stop.
runtime = {{ kind = "none" }}
data = [
  {{ kind = "sqlite", name = "db", priority = "critical", path = "app/app.db" }},
  {{ kind = "files", name = "uploads", priority = "high", path = "app/uploads", exclude = ["*.tmp"] }},
]
"#,
        pw = pw_path.display()
    );
    let path = dir.join("drydock.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// Deterministic pseudo-random numbers, so every demo holds the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

const WORDS: &[&str] = &[
    "anchor",
    "ballast",
    "bilge",
    "bosun",
    "bow",
    "cargo",
    "compass",
    "deck",
    "dock",
    "galley",
    "hatch",
    "hull",
    "keel",
    "knot",
    "mast",
    "mooring",
    "port",
    "quay",
    "rudder",
    "sail",
    "starboard",
    "stern",
    "tide",
    "wharf",
];

fn populate_database(path: &Path) -> rusqlite::Result<Populated> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), placed_at TEXT NOT NULL, note TEXT);
         CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), sku TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price REAL NOT NULL, photo BLOB);
         CREATE INDEX orders_by_customer ON orders(customer_id);
         CREATE INDEX items_by_order ON order_items(order_id);",
    )?;
    let mut rng = Lcg(0xd0c4);
    let (customers, orders, items) = (2_000u64, 8_000u64, 24_000u64);
    let tx = conn.transaction()?;
    {
        let mut c = tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4)")?;
        for id in 1..=customers {
            let name = format!("{} {}", rng.pick(WORDS), rng.pick(WORDS));
            c.execute(rusqlite::params![
                id,
                name,
                format!("customer{id}@example.test"),
                format!("2026-{:02}-{:02}", 1 + rng.next() % 12, 1 + rng.next() % 28)
            ])?;
        }
        let mut o = tx.prepare("INSERT INTO orders VALUES (?1, ?2, ?3, ?4)")?;
        for id in 1..=orders {
            let note: Option<String> = (!rng.next().is_multiple_of(3)).then(|| {
                (0..12)
                    .map(|_| rng.pick(WORDS))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            o.execute(rusqlite::params![
                id,
                1 + rng.next() % customers,
                format!(
                    "2026-11-{:02}T{:02}:00:00Z",
                    1 + rng.next() % 21,
                    rng.next() % 24
                ),
                note
            ])?;
        }
        let mut i = tx.prepare("INSERT INTO order_items VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for id in 1..=items {
            let photo: Option<Vec<u8>> =
                (id % 4 == 0).then(|| (0..64).map(|_| rng.next() as u8).collect());
            i.execute(rusqlite::params![
                id,
                1 + rng.next() % orders,
                format!("SKU-{:05}", rng.next() % 5000),
                1 + rng.next() % 9,
                (rng.next() % 10_000) as f64 / 100.0,
                photo
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let database_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Populated {
        customers,
        orders,
        order_items: items,
        database_bytes,
        files: 0,
        file_bytes: 0,
    })
}

fn populate_files(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut rng = Lcg(0x0f11e5);
    let (mut files, mut bytes) = (0u64, 0u64);
    for folder in ["invoices", "photos/2026", "exports"] {
        std::fs::create_dir_all(dir.join(folder))?;
    }
    for n in 0..24 {
        let text: String = (0..2_000)
            .map(|_| rng.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ");
        let path = dir.join("invoices").join(format!("invoice-{n:04}.txt"));
        std::fs::write(&path, &text)?;
        files += 1;
        bytes += text.len() as u64;
    }
    for n in 0..12 {
        let data: Vec<u8> = (0..48_000).map(|_| rng.next() as u8).collect();
        std::fs::write(
            dir.join("photos/2026").join(format!("photo-{n:03}.jpg")),
            &data,
        )?;
        files += 1;
        bytes += data.len() as u64;
    }
    std::fs::write(dir.join("exports/latest.csv"), "id,total\n1,10.00\n")?;
    std::os::unix::fs::symlink("latest.csv", dir.join("exports/current.csv"))?;
    // Excluded by the demo config: scratch files an app would not need back.
    std::fs::write(dir.join("exports/partial.tmp"), "half-written")?;
    Ok((files + 1, bytes + 17))
}

impl DemoReport {
    /// Ok when the demo's restore verified, else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.verified {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Failed
        }
    }
}
