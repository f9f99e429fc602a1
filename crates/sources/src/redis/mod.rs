//! Redis instances.
//!
//! Backup streams a consistent RDB the way `redis-cli --rdb` does (a replication
//! sync; the password goes to redis-cli through `REDISCLI_AUTH`, never argv), or, when
//! that is refused, asks for a BGSAVE and copies the file if drydock can read the
//! server's directory. The RDB is then read whole by drydock's own reader (`rdb_parse`:
//! every encoding walked, the CRC-64 checked), which gives the counts and fingerprint,
//! while the file is stored (a backup whose RDB does not read whole fails, and the
//! engine discards what it stored). An RDB holding a stream or module data is loaded
//! into a throwaway `redis-server` on loopback instead, and fingerprinted from there.
//!
//! The fingerprint reads every value logically per type (never through DUMP for the
//! ordinary types: its bytes depend on the encoding), one part per non-empty database,
//! on two connections at once (`fingerprint::READERS`): the server answers one while
//! drydock hashes the other's replies.
//!
//! Restore reads the fetched RDB the same way and proves it is the backup's before the
//! live instance changes, then writes every key with `RESTORE ... REPLACE ABSTTL`, each
//! payload cut from the file (`restore_rdb`), on two connections at once: no server
//! but the target. An RDB with a stream or module data is loaded into a throwaway
//! server, proven there and moved with pipelined DUMP + RESTORE.
//!
//! This file implements [`DataSource`]; the jobs it calls have a file each: `connect` (the
//! handle, endpoint, connections), `rdb` (fetching and checking RDB files), `rdb_parse` (reading one
//! without a server), `restore_rdb` (writing its keys into the target), `fingerprint`, `throwaway` (a private server loading an RDB) and `sandbox`.

mod connect;
mod fingerprint;
mod rdb;
mod rdb_parse;
mod restore_rdb;
mod sandbox;
mod throwaway;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use drydock_domain::config::{RedisSource, SourceKind};
use drydock_domain::{Event, Secret, SourceRecord};
use redis::{Connection, Value};
use sha2::{Digest, Sha256};

use crate::common::{joined, store_file};
use crate::testdata::{self, FileRecord, Project, TestData, TestMeasures, User, REDIS_PREFIX};
use crate::{
    BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox, SourceContext, SourceError,
    Store,
};

use fingerprint::{keyspace, Described, SCAN_COUNT};
use rdb::{check_rdb_magic, create_private, HashingWriter};
use rdb_parse::{fingerprint_rdb, RdbError};
use sandbox::RedisSandbox;
use throwaway::Throwaway;

pub use connect::Redis;
pub use fingerprint::fingerprint_instance;
pub use sandbox::CANARY_KEY;

impl DataSource for Redis {
    fn kind(&self) -> SourceKind {
        SourceKind::Redis
    }

    fn location(&self) -> String {
        format!("redis {}", self.hostport())
    }

    fn restore_mode(&self) -> RestoreMode {
        RestoreMode::Logical
    }

    fn check(&self) -> Result<(), SourceError> {
        self.connect().map(drop)
    }

    fn backup(
        &self,
        store: &dyn Store,
        ctx: &SourceContext<'_>,
    ) -> Result<BackupOutcome, SourceError> {
        let loc = self.loc();
        let mut live = self.connect()?;
        let work = tempfile::Builder::new()
            .prefix("redis-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating a scratch directory", e))?;
        let rdb = work.path().join("dump.rdb");
        create_private(&rdb)
            .map_err(|e| SourceError::io(&loc, "creating the private RDB file", e))?;

        ctx.events.emit(Event::Step {
            message: format!("{}: taking an RDB snapshot", ctx.label),
        });
        // The server forks its snapshot when the sync starts: that start is the moment.
        let started = jiff::Timestamp::now();
        let consistent_at = match self.fetch_rdb_via_cli(&rdb) {
            Ok(()) => started,
            Err(cli_err) => {
                ctx.events.emit(Event::Warning {
                    message: format!(
                        "{}: redis-cli --rdb failed ({cli_err}); trying BGSAVE",
                        ctx.label
                    ),
                });
                self.fetch_rdb_via_bgsave(&mut live, &rdb)
                    .map_err(|bg_err| {
                        SourceError::invalid(
                            &loc,
                            format!("could not get an RDB: {cli_err}; BGSAVE fallback: {bg_err}"),
                        )
                    })?
            }
        };
        drop(live);
        check_rdb_magic(&rdb).map_err(|m| SourceError::invalid(&loc, m))?;

        ctx.events.emit(Event::Step {
            message: format!("{}: reading the RDB to check and fingerprint it", ctx.label),
        });
        // Stored while it is read (each reads the same private file); a copy that does
        // not read whole or fingerprint fails the backup, whose stored bytes the engine
        // then discards.
        let (described, stored) = std::thread::scope(|s| {
            let described = s.spawn(|| self.describe_rdb(&rdb, work.path(), ctx));
            let stored = store_file(store, &rdb, ".rdb", &loc, "the RDB copy");
            (
                joined(described.join(), &loc, "fingerprinting the RDB"),
                stored,
            )
        });
        let (counts, fingerprint) = described?;
        let stored = stored?;
        Ok(BackupOutcome {
            stored,
            format: "redis-rdb",
            counts,
            fingerprint,
            consistent_at,
        })
    }

    fn has_data(&self) -> Result<bool, SourceError> {
        let mut con = self.connect()?;
        let dbs = keyspace(&mut con).map_err(|e| self.query_err("INFO keyspace", e))?;
        Ok(dbs.iter().any(|(_, keys)| *keys > 0))
    }

    fn restore(
        &self,
        fetch: &dyn Fetch,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.loc();
        let mut target = self.connect()?;
        let work = tempfile::Builder::new()
            .prefix("redis-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating a scratch directory", e))?;
        let rdb = work.path().join("dump.rdb");
        create_private(&rdb)
            .map_err(|e| SourceError::io(&loc, "creating the private RDB file", e))?;
        {
            let file = OpenOptions::new()
                .write(true)
                .open(&rdb)
                .map_err(|e| SourceError::io(&loc, "opening the RDB file", e))?;
            let mut out = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hash: Sha256::new(),
            };
            fetch
                .stream_into(&mut out)
                .map_err(|e| SourceError::store(&loc, e))?;
            let file = out
                .inner
                .into_inner()
                .map_err(|e| SourceError::io(&loc, "writing the RDB file", e.into_error()))?;
            file.sync_all()
                .map_err(|e| SourceError::io(&loc, "syncing the RDB file", e))?;
            let sha = hex::encode(out.hash.finalize());
            if let Some(want) = &record.sha256 {
                if !want.eq_ignore_ascii_case(&sha) {
                    return Err(SourceError::invalid(&loc, format!("the fetched RDB does not match the backup's checksum (sha256 {sha}, expected {want}); the stored copy is damaged")));
                }
            }
        }
        check_rdb_magic(&rdb).map_err(|m| SourceError::invalid(&loc, m))?;

        ctx.events.emit(Event::Step {
            message: format!("{}: reading the backup's RDB", ctx.label),
        });
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let read = read_rdb(
            &rdb,
            &loc,
            now_ms,
            "the live instance was not changed; restore an older backup",
        )?;
        let Some(described) = read else {
            return self.restore_through_throwaway(&mut target, work.path(), record, ctx);
        };
        // Proven before the live instance changes: the file holds exactly what the
        // manifest describes.
        prove_backup(record, described, &loc)?;
        self.flush_target(&mut target, ctx)?;
        self.restore_from_rdb(&rdb, now_ms, ctx)
    }

    fn inspect(&self, _ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        let mut con = self.connect()?;
        let (counts, fingerprint) = fingerprint_instance(&mut con, &|| self.connect_again())
            .map_err(|e| self.query_err("fingerprinting the data", e))?;
        Ok(Inspection {
            counts,
            fingerprint,
        })
    }

    /// A throwaway, empty `redis-server` on a random loopback port, in a private
    /// directory under `ctx.scratch`, with its own random password. Restoring into it
    /// goes the ordinary way (RESTORE into a running instance).
    fn sandbox(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Sandbox>, SourceError> {
        let loc = self.loc();
        let dir = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(ctx.scratch)
            .map_err(|e| SourceError::io(&loc, "creating the sandbox directory", e))?;
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: starting a throwaway redis-server to restore into",
                ctx.label
            ),
        });
        let server = Throwaway::start(dir.path(), &loc)?;
        let target = Redis::new(RedisSource {
            name: self.config.name.clone(),
            priority: self.config.priority,
            url: format!("redis://127.0.0.1:{}", server.port),
            password: Some(Secret::from_env_value(
                "DRYDOCK_SANDBOX_PASSWORD",
                &server.password,
            )),
            exec: false,
            exec_in: None,
        });
        Ok(Box::new(RedisSandbox {
            target,
            server,
            _dir: dir,
        }))
    }

    /// `SET _drydock:canary TOKEN` in database 0, without an expiry (a plain SET also
    /// clears one an earlier canary might have had), so the fingerprint covers it.
    fn write_canary(&self, token: &str) -> Result<(), SourceError> {
        let mut con = self.connect()?;
        redis::cmd("SET")
            .arg(CANARY_KEY)
            .arg(token)
            .query::<Value>(&mut con)
            .map_err(|e| self.query_err(&format!("writing the drill canary ({CANARY_KEY})"), e))?;
        Ok(())
    }

    fn read_canary(&self) -> Result<Option<String>, SourceError> {
        let mut con = self.connect()?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(CANARY_KEY)
            .query(&mut con)
            .map_err(|e| self.query_err(&format!("reading the drill canary ({CANARY_KEY})"), e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// `FLUSHALL`: every key of every database.
    fn wipe(&self) -> Result<(), SourceError> {
        let mut con = self.connect()?;
        redis::cmd("FLUSHALL")
            .query::<Value>(&mut con)
            .map_err(|e| self.query_err("wiping the instance (FLUSHALL)", e))?;
        Ok(())
    }

    /// In database 0: a hash per user, project and file (`_drydock:test:user:ID`, ...)
    /// and per user a set of its project ids (`_drydock:test:user:ID:projects`).
    fn populate(&self, data: &TestData) -> Result<(), SourceError> {
        let mut con = self.connect()?;
        let err = |e| self.query_err("populating test data", e);
        let old = self.test_keys(&mut con)?;
        for chunk in old.chunks(SCAN_COUNT) {
            redis::cmd("DEL")
                .arg(chunk)
                .query::<Value>(&mut con)
                .map_err(err)?;
        }
        let mut pipe = redis::pipe();
        for u in &data.users {
            pipe.cmd("HSET")
                .arg(format!("{REDIS_PREFIX}user:{}", u.id))
                .arg("name")
                .arg(&u.name)
                .arg("email")
                .arg(&u.email)
                .ignore();
        }
        for p in &data.projects {
            pipe.cmd("HSET")
                .arg(format!("{REDIS_PREFIX}project:{}", p.id))
                .arg("owner_id")
                .arg(p.owner_id)
                .arg("name")
                .arg(&p.name)
                .ignore();
            pipe.cmd("SADD")
                .arg(format!("{REDIS_PREFIX}user:{}:projects", p.owner_id))
                .arg(p.id)
                .ignore();
        }
        for f in &data.files {
            pipe.cmd("HSET")
                .arg(format!("{REDIS_PREFIX}file:{}", f.id))
                .arg("project_id")
                .arg(f.project_id)
                .arg("name")
                .arg(&f.name)
                .arg("content")
                .arg(&f.content)
                .ignore();
        }
        pipe.query::<()>(&mut con).map_err(err)
    }

    fn measure_test_data(&self) -> Result<TestMeasures, SourceError> {
        let mut con = self.connect()?;
        let err = |e| self.query_err("measuring the test data", e);
        let (mut users, mut projects, mut files) = (Vec::new(), Vec::new(), Vec::new());
        for key in self.test_keys(&mut con)? {
            let rest = &key[REDIS_PREFIX.len()..];
            let mut parts = rest.splitn(3, ':');
            let (kind, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (Ok(id), None) = (id.parse::<i64>(), parts.next()) else {
                continue;
            };
            let fields: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(&key)
                .query(&mut con)
                .map_err(err)?;
            let text = |name: &str| {
                String::from_utf8_lossy(fields.get(name).map_or(&[][..], |v| v)).into_owned()
            };
            let number = |name: &str| text(name).parse::<i64>().unwrap_or(-1);
            match kind {
                "user" => users.push(User {
                    id,
                    name: text("name"),
                    email: text("email"),
                }),
                "project" => projects.push(Project {
                    id,
                    owner_id: number("owner_id"),
                    name: text("name"),
                }),
                "file" => files.push(FileRecord {
                    id,
                    project_id: number("project_id"),
                    name: text("name"),
                    content: fields.get("content").cloned().unwrap_or_default(),
                }),
                _ => {}
            }
        }
        Ok(testdata::measure(&users, &projects, &files))
    }
}

impl Redis {
    /// A restore of an RDB holding what only a server reads (a stream, module data):
    /// loaded into a throwaway server, proven there, and moved key by key with DUMP and
    /// RESTORE.
    fn restore_through_throwaway(
        &self,
        target: &mut Connection,
        dir: &Path,
        record: &SourceRecord,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.loc();
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: the RDB holds a stream or module data: loading it into a throwaway redis-server",
                ctx.label
            ),
        });
        let server = Throwaway::start(dir, &loc)?;
        let mut source = server.connect(&loc)?;
        let dbs = keyspace(&mut source)
            .map_err(|e| SourceError::query(&loc, "reading the backup's keyspace", e))?;
        let described = fingerprint_instance(&mut source, &|| server.try_connect())
            .map_err(|e| SourceError::query(&loc, "fingerprinting the loaded backup", e))?;
        prove_backup(record, described, &loc)?;
        let _ = redis::cmd("SELECT").arg(0).query::<Value>(&mut source);
        self.flush_target(target, ctx)?;

        // Pages of keys move on [`fingerprint::READERS`] pairs of connections at once.
        let moved_bytes = AtomicU64::new(0);
        for (db, _) in dbs {
            redis::cmd("SELECT")
                .arg(db)
                .query::<Value>(&mut source)
                .map_err(|e| SourceError::query(&loc, "SELECT on the throwaway server", e))?;
            redis::cmd("SELECT").arg(db).query::<Value>(target).map_err(|e| {
                self.query_err(&format!("SELECT {db} (the backup has keys in db {db}; does the target allow that many databases?)"), e)
            })?;
            fingerprint::scan_fanned_out(
                &mut source,
                |e| SourceError::query(&loc, "SCAN on the throwaway server", e),
                || {
                    let mut from = server.connect(&loc)?;
                    let mut to = self.connect()?;
                    redis::cmd("SELECT")
                        .arg(db)
                        .query::<Value>(&mut from)
                        .map_err(|e| {
                            SourceError::query(&loc, "SELECT on the throwaway server", e)
                        })?;
                    redis::cmd("SELECT")
                        .arg(db)
                        .query::<Value>(&mut to)
                        .map_err(|e| self.query_err(&format!("SELECT {db}"), e))?;
                    Ok((from, to))
                },
                |(from, to), keys| {
                    let bytes = self.move_keys(from, to, &keys, &loc)?;
                    let total = moved_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                    ctx.events.emit(Event::Progress {
                        source: ctx.label.to_string(),
                        bytes: total,
                    });
                    Ok(())
                },
            )?;
        }
        let _ = redis::cmd("SELECT").arg(0).query::<Value>(target);
        Ok(())
    }

    /// Confirms the restore as owed, then empties the target (`FLUSHALL`) if it holds keys.
    fn flush_target(
        &self,
        target: &mut Connection,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let live = keyspace(target).map_err(|e| self.query_err("INFO keyspace", e))?;
        ctx.before_replacing_live("flushing the instance and moving the backup's keys in")?;
        if live.iter().any(|(_, keys)| *keys > 0) {
            ctx.events.emit(Event::Step {
                message: format!("{}: flushing the target (FLUSHALL)", ctx.label),
            });
            redis::cmd("FLUSHALL")
                .query::<Value>(target)
                .map_err(|e| self.query_err("FLUSHALL", e))?;
        }
        Ok(())
    }

    /// Counts and fingerprint of the RDB at `rdb`, read from the file itself; when it
    /// holds what the reader leaves to a server (a stream, a module type), loaded into a
    /// throwaway server in `dir` and read back from there.
    fn describe_rdb(
        &self,
        rdb: &Path,
        dir: &Path,
        ctx: &SourceContext<'_>,
    ) -> Result<Described, SourceError> {
        let loc = self.loc();
        if let Some(described) = read_rdb(
            rdb,
            &loc,
            jiff::Timestamp::now().as_millisecond(),
            "the server's snapshot did not arrive whole: check the server's log and disk, then back up again",
        )? {
            return Ok(described);
        }
        ctx.events.emit(Event::Step {
            message: format!(
                "{}: the RDB holds a stream or module data: loading it into a throwaway redis-server to check and fingerprint it",
                ctx.label
            ),
        });
        let server = Throwaway::start(dir, &loc)?;
        let mut con = server.connect(&loc)?;
        fingerprint_instance(&mut con, &|| server.try_connect())
            .map_err(|e| SourceError::query(&loc, "fingerprinting the RDB", e))
    }

    /// Moves one page of keys from the throwaway server (`from`) into the target (`to`)
    /// with `DUMP`/`PTTL` and `RESTORE ... REPLACE`; returns the payload bytes moved.
    fn move_keys(
        &self,
        from: &mut Connection,
        to: &mut Connection,
        keys: &[Vec<u8>],
        loc: &str,
    ) -> Result<u64, SourceError> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("DUMP").arg(k).cmd("PTTL").arg(k);
        }
        let replies: Vec<Value> = pipe
            .query(from)
            .map_err(|e| SourceError::query(loc, "DUMP on the throwaway server", e))?;
        let mut restore = redis::pipe();
        let mut moved = 0u64;
        let mut any = false;
        for (k, pair) in keys.iter().zip(replies.chunks(2)) {
            let (Value::BulkString(payload), Value::Int(pttl)) = (&pair[0], &pair[1]) else {
                continue;
            };
            let ttl = match *pttl {
                -2 => continue,
                t if t < 0 => 0,
                0 => 1,
                t => t,
            };
            moved += payload.len() as u64;
            restore
                .cmd("RESTORE")
                .arg(k)
                .arg(ttl)
                .arg(payload.as_slice())
                .arg("REPLACE")
                .ignore();
            any = true;
        }
        if any {
            restore.query::<()>(to).map_err(|e| self.restore_err(e))?;
        }
        Ok(moved)
    }
}

/// Refuses a backup whose RDB is not what its manifest describes.
fn prove_backup(record: &SourceRecord, described: Described, loc: &str) -> Result<(), SourceError> {
    let (counts, fingerprint) = described;
    let (differences, _) = crate::compare_with_record(
        record,
        &Inspection {
            counts,
            fingerprint,
        },
    );
    if differences.is_empty() {
        return Ok(());
    }
    Err(SourceError::invalid(
        loc,
        format!(
            "the backup's RDB does not match its manifest: {}; the live instance was not changed",
            differences.join("; ")
        ),
    ))
}

/// Counts and fingerprint of the RDB file at `rdb` read without a server, or None
/// when it holds what only a server reads ([`RdbError::Unsupported`]).
fn read_rdb(
    rdb: &Path,
    loc: &str,
    now_ms: i64,
    fix: &str,
) -> Result<Option<Described>, SourceError> {
    let file =
        File::open(rdb).map_err(|e| SourceError::io(loc, "opening the RDB file to read it", e))?;
    match fingerprint_rdb(file, now_ms) {
        Ok(described) => Ok(Some(described)),
        Err(RdbError::Unsupported(_)) => Ok(None),
        Err(damaged @ RdbError::Damaged(_)) => {
            Err(SourceError::invalid(loc, format!("{damaged}; {fix}")))
        }
    }
}

impl Redis {
    /// Every test data key in database 0.
    fn test_keys(&self, con: &mut Connection) -> Result<Vec<String>, SourceError> {
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{REDIS_PREFIX}*"))
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(con)
                .map_err(|e| self.query_err("listing the test data keys", e))?;
            keys.extend(page);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}
