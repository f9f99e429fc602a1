//! Redis instances.
//!
//! Backup streams a consistent RDB the way `redis-cli --rdb` does (a replication
//! sync; the password goes to redis-cli through `REDISCLI_AUTH`, never argv), or, when
//! that is refused, asks for a BGSAVE and copies the file if drydock can read the
//! server's directory. The RDB is then loaded into a throwaway `redis-server` on
//! loopback, which proves it loads, and the counts and fingerprint are read from there,
//! so they describe exactly the stored bytes.
//!
//! The fingerprint reads every value logically per type (never through DUMP for the
//! ordinary types: its bytes depend on the encoding), one part per non-empty database.
//!
//! Restore loads the fetched RDB into a throwaway server and moves every key into the
//! configured instance with pipelined DUMP + `RESTORE ... REPLACE` (same server family,
//! so the payload is fine there).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::{ExecTarget, RedisSource, SourceKind};
use drydock_domain::{Event, Fingerprint, RowSetDigest, Secret, SourceRecord};
use redis::{Connection, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, Value};
use sha2::{Digest, Sha256};

use crate::process::{redact, ToolSpec};
use crate::testdata::{self, FileRecord, Project, TestData, TestMeasures, User, REDIS_PREFIX};
use crate::{
    find_program, BackupOutcome, DataSource, Fetch, Inspection, RestoreMode, Sandbox,
    SourceContext, SourceError, Store,
};

/// Keys per SCAN page and per pipeline.
const SCAN_COUNT: usize = 1000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a throwaway server may take to load an RDB.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a BGSAVE may take.
const BGSAVE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Databases a throwaway server accepts (an RDB from a server with more than the
/// default 16 must still load).
const THROWAWAY_DATABASES: u32 = 1024;

pub struct Redis {
    config: RedisSource,
}

/// Where the instance is, from the configured URL.
struct Endpoint {
    host: String,
    port: u16,
    username: Option<String>,
}

impl Redis {
    pub fn new(config: RedisSource) -> Self {
        Redis { config }
    }

    fn loc(&self) -> String {
        self.location()
    }

    fn password(&self) -> Option<&str> {
        self.config
            .password
            .as_ref()
            .map(|s| s.expose())
            .filter(|p| !p.is_empty())
    }

    fn secrets(&self) -> Vec<String> {
        self.password()
            .map(|p| vec![p.to_string()])
            .unwrap_or_default()
    }

    fn endpoint(&self) -> Result<Endpoint, SourceError> {
        let url = url::Url::parse(&self.config.url).map_err(|e| {
            SourceError::invalid(
                &self.loc(),
                format!("the URL is not valid ({e}); expected redis://[USER@]HOST:PORT"),
            )
        })?;
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => {
                return Err(SourceError::invalid(
                    &self.loc(),
                    "the URL has no host; expected redis://[USER@]HOST:PORT",
                ))
            }
        };
        let username = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        Ok(Endpoint {
            host,
            port: url.port().unwrap_or(6379),
            username,
        })
    }

    fn hostport(&self) -> String {
        match url::Url::parse(&self.config.url) {
            Ok(u) => format!(
                "{}:{}",
                u.host_str().unwrap_or("?"),
                u.port().unwrap_or(6379)
            ),
            Err(_) => self.config.url.clone(),
        }
    }

    /// A connection to the configured instance; failures become [`SourceError::Connect`].
    fn connect(&self) -> Result<Connection, SourceError> {
        let ep = self.endpoint()?;
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(ep.host, ep.port),
            redis: RedisConnectionInfo {
                db: 0,
                username: ep.username,
                password: self.password().map(str::to_string),
                ..Default::default()
            },
        };
        let mut con = open_connection(info).map_err(|e| self.connect_error(e))?;
        let pong: Result<String, _> = redis::cmd("PING").query(&mut con);
        pong.map_err(|e| self.connect_error(e))?;
        Ok(con)
    }

    fn connect_error(&self, e: redis::RedisError) -> SourceError {
        let location = self.loc();
        let hp = self.hostport();
        let text = redact(&e.to_string(), &self.secrets());
        let reference = self.config.password.as_ref().map(|s| s.to_string());
        let (cause, fix) = if e.kind() == redis::ErrorKind::AuthenticationFailed
            || text.contains("WRONGPASS")
            || text.contains("invalid password")
        {
            (
                "the server rejected the password (wrong password or user)".to_string(),
                match reference {
                    Some(r) => format!("check the secret {r} and the user in the URL"),
                    None => "set `password` for this source".to_string(),
                },
            )
        } else if text.contains("NOAUTH") {
            (
                "the server requires a password".to_string(),
                "set `password = \"${env:NAME}\"` for this source".to_string(),
            )
        } else if e.kind() == redis::ErrorKind::BusyLoadingError || text.contains("LOADING") {
            (
                "the server is still loading its data".to_string(),
                "retry in a moment".to_string(),
            )
        } else if e.is_connection_refusal()
            || e.is_timeout()
            || e.kind() == redis::ErrorKind::IoError
        {
            (text, format!("is redis running at {hp}?"))
        } else {
            (
                text,
                format!("check the URL and that redis at {hp} accepts this client"),
            )
        };
        SourceError::Connect {
            location,
            cause,
            fix,
        }
    }

    fn query_err(&self, what: &str, e: redis::RedisError) -> SourceError {
        SourceError::query(&self.loc(), what, redact(&e.to_string(), &self.secrets()))
    }

    /// With `exec = true`: `redis-cli --rdb` inside the server's container (its own
    /// version), the RDB streamed out through the exec API into `dest`.
    fn fetch_rdb_inside(&self, dest: &Path, target: &ExecTarget) -> Result<(), SourceError> {
        let loc = self.loc();
        let runtime = drydock_runtimes::build(&target.service, &target.runtime);
        let ep = self.endpoint()?;
        let user = ep
            .username
            .as_deref()
            .map(|u| format!(" --user '{}'", u.replace('\'', "")))
            .unwrap_or_default();
        // The server listens on its default port inside its container.
        let script = format!(
            "f=/tmp/drydock-rdb-$$; redis-cli -h 127.0.0.1 -p 6379{user} --rdb \"$f\" >&2 && cat \"$f\"; s=$?; rm -f \"$f\"; exit $s"
        );
        let mut spec = ToolSpec::new(Path::new("sh"))
            .arg("-c")
            .arg(&script)
            .stdout()
            .inside(Some(runtime.as_ref()));
        if let Some(pw) = self.password() {
            spec = spec.env("REDISCLI_AUTH", pw);
        }
        let mut tool = spec.spawn(&loc)?;
        let mut out = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dest)
            .map_err(|e| SourceError::io(&loc, "opening the RDB file", e))?;
        let copied = std::io::copy(&mut tool.take_stdout(), &mut out);
        tool.finish()?;
        copied.map_err(|e| SourceError::io(&loc, "reading the RDB from the container", e))?;
        out.sync_all()
            .map_err(|e| SourceError::io(&loc, "syncing the RDB file", e))
    }

    /// Streams an RDB into `dest` (an empty private file) like `redis-cli --rdb`.
    fn fetch_rdb_via_cli(&self, dest: &Path) -> Result<(), SourceError> {
        if let Some(target) = &self.config.exec_in {
            return self.fetch_rdb_inside(dest, target);
        }
        let loc = self.loc();
        let program = find_program("redis-cli").ok_or_else(|| SourceError::MissingTool {
            program: "redis-cli".into(),
            fix: "install redis-tools (Debian/Ubuntu) or put redis-cli on PATH".into(),
        })?;
        let ep = self.endpoint()?;
        let port = ep.port.to_string();
        let mut spec = ToolSpec::new(&program)
            .arg("-h")
            .arg(&ep.host)
            .arg("-p")
            .arg(&port);
        if let Some(user) = &ep.username {
            spec = spec.arg("--user").arg(user);
        }
        spec = spec.arg("--rdb").arg(dest.as_os_str());
        if let Some(pw) = self.password() {
            spec = spec.env("REDISCLI_AUTH", pw);
        }
        spec.spawn(&loc)?.finish()
    }

    /// BGSAVE, wait for it, and copy the server's RDB file (only when drydock can read
    /// the server's directory, e.g. on the same host).
    fn fetch_rdb_via_bgsave(
        &self,
        con: &mut Connection,
        dest: &Path,
    ) -> Result<jiff::Timestamp, SourceError> {
        let loc = self.loc();
        let dir: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dir")
            .query(con)
            .map_err(|e| self.query_err("CONFIG GET dir", e))?;
        let name: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("dbfilename")
            .query(con)
            .map_err(|e| self.query_err("CONFIG GET dbfilename", e))?;
        let (Some(dir), Some(name)) = (dir.get(1), name.get(1)) else {
            return Err(SourceError::invalid(
                &loc,
                "the server did not tell where it saves its RDB (CONFIG GET dir)",
            ));
        };
        let file = Path::new(dir).join(name);
        fs::metadata(dir).map_err(|e| {
            SourceError::io(
                &loc,
                format!("the server's directory {dir} is not readable here"),
                e,
            )
        })?;

        let lastsave = |con: &mut Connection| -> Result<i64, SourceError> {
            redis::cmd("LASTSAVE")
                .query(con)
                .map_err(|e| self.query_err("LASTSAVE", e))
        };
        let deadline = Instant::now() + BGSAVE_TIMEOUT;
        let mut before = lastsave(con)?;
        // LASTSAVE has one-second resolution: start in a later second than the last save.
        while jiff::Timestamp::now().as_second() <= before {
            std::thread::sleep(Duration::from_millis(100));
        }
        let started = loop {
            let at = jiff::Timestamp::now();
            match redis::cmd("BGSAVE").query::<Value>(con) {
                Ok(_) => break at,
                Err(e) if e.to_string().contains("in progress") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                    before = lastsave(con)?;
                }
                Err(e) => return Err(self.query_err("BGSAVE", e)),
            }
        };
        loop {
            if lastsave(con)? > before {
                let info: String = redis::cmd("INFO")
                    .arg("persistence")
                    .query(con)
                    .map_err(|e| self.query_err("INFO persistence", e))?;
                if info
                    .lines()
                    .any(|l| l.trim() == "rdb_last_bgsave_status:err")
                {
                    return Err(SourceError::invalid(
                        &loc,
                        "the server's BGSAVE failed; see the redis log (disk full? permissions?)",
                    ));
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(SourceError::invalid(&loc, "BGSAVE did not finish in time"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut src = File::open(&file).map_err(|e| {
            SourceError::io(
                &loc,
                format!("reading the server's RDB file {}", file.display()),
                e,
            )
        })?;
        let mut out = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dest)
            .map_err(|e| SourceError::io(&loc, "writing the RDB copy", e))?;
        std::io::copy(&mut src, &mut out)
            .map_err(|e| SourceError::io(&loc, "copying the RDB file", e))?;
        out.sync_all()
            .map_err(|e| SourceError::io(&loc, "syncing the RDB copy", e))?;
        Ok(started)
    }
}

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
            message: format!(
                "{}: loading the RDB into a throwaway redis-server to check and fingerprint it",
                ctx.label
            ),
        });
        let (counts, fingerprint) = {
            let server = Throwaway::start(work.path(), &loc)?;
            let mut con = server.connect(&loc)?;
            fingerprint_instance(&mut con)
                .map_err(|e| SourceError::query(&loc, "fingerprinting the RDB", e))?
        };

        let file =
            File::open(&rdb).map_err(|e| SourceError::io(&loc, "reading the RDB copy", e))?;
        let stored = store
            .put_stream(Box::new(file), ".rdb")
            .map_err(|e| SourceError::store(&loc, e))?;
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
            message: format!(
                "{}: loading the backup into a throwaway redis-server",
                ctx.label
            ),
        });
        let server = Throwaway::start(work.path(), &loc)?;
        let mut source = server.connect(&loc)?;
        let dbs = keyspace(&mut source)
            .map_err(|e| SourceError::query(&loc, "reading the backup's keyspace", e))?;

        // Proven before the live instance changes: the loaded backup must be exactly
        // what the manifest describes.
        let (counts, fingerprint) = fingerprint_instance(&mut source)
            .map_err(|e| SourceError::query(&loc, "fingerprinting the loaded backup", e))?;
        let (differences, _) = crate::compare_with_record(
            record,
            &Inspection {
                counts,
                fingerprint,
            },
        );
        if !differences.is_empty() {
            return Err(SourceError::invalid(
                &loc,
                format!(
                    "the backup loaded into a throwaway redis-server does not match it: {}; the live instance was not changed",
                    differences.join("; ")
                ),
            ));
        }
        let _ = redis::cmd("SELECT").arg(0).query::<Value>(&mut source);

        let live = keyspace(&mut target).map_err(|e| self.query_err("INFO keyspace", e))?;
        ctx.before_replacing_live("flushing the instance and moving the backup's keys in")?;
        if live.iter().any(|(_, keys)| *keys > 0) {
            ctx.events.emit(Event::Step {
                message: format!("{}: flushing the target (FLUSHALL)", ctx.label),
            });
            redis::cmd("FLUSHALL")
                .query::<Value>(&mut target)
                .map_err(|e| self.query_err("FLUSHALL", e))?;
        }

        let mut moved_bytes = 0u64;
        for (db, _) in dbs {
            redis::cmd("SELECT")
                .arg(db)
                .query::<Value>(&mut source)
                .map_err(|e| SourceError::query(&loc, "SELECT on the throwaway server", e))?;
            redis::cmd("SELECT").arg(db).query::<Value>(&mut target).map_err(|e| {
                self.query_err(&format!("SELECT {db} (the backup has keys in db {db}; does the target allow that many databases?)"), e)
            })?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(&mut source)
                    .map_err(|e| SourceError::query(&loc, "SCAN on the throwaway server", e))?;
                if !keys.is_empty() {
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.cmd("DUMP").arg(k).cmd("PTTL").arg(k);
                    }
                    let replies: Vec<Value> = pipe
                        .query(&mut source)
                        .map_err(|e| SourceError::query(&loc, "DUMP on the throwaway server", e))?;
                    let mut restore = redis::pipe();
                    let mut any = false;
                    for (k, pair) in keys.iter().zip(replies.chunks(2)) {
                        let (Value::BulkString(payload), Value::Int(pttl)) = (&pair[0], &pair[1])
                        else {
                            continue;
                        };
                        let ttl = match *pttl {
                            -2 => continue,
                            t if t < 0 => 0,
                            0 => 1,
                            t => t,
                        };
                        moved_bytes += payload.len() as u64;
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
                        restore.query::<()>(&mut target).map_err(|e| {
                            let mut err = self.query_err("RESTORE", e);
                            if let SourceError::Query { cause, .. } = &mut err {
                                if cause.contains("payload version") {
                                    cause.push_str(" (the target runs an older Redis than the local redis-server that read the backup; restore into a Redis at least as new)");
                                }
                            }
                            err
                        })?;
                    }
                    ctx.events.emit(Event::Progress {
                        source: ctx.label.to_string(),
                        bytes: moved_bytes,
                    });
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        let _ = redis::cmd("SELECT").arg(0).query::<Value>(&mut target);
        drop(server);
        Ok(())
    }

    fn inspect(&self, _ctx: &SourceContext<'_>) -> Result<Inspection, SourceError> {
        let mut con = self.connect()?;
        let (counts, fingerprint) = fingerprint_instance(&mut con)
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

/// The key holding the drill canary, in database 0.
pub const CANARY_KEY: &str = "_drydock:canary";

/// A throwaway server for a drill. Fields drop in order: the server is stopped before
/// its directory (config with the password, log) is removed.
struct RedisSandbox {
    target: Redis,
    server: Throwaway,
    _dir: tempfile::TempDir,
}

impl Sandbox for RedisSandbox {
    fn target(&self) -> &dyn DataSource {
        &self.target
    }

    fn describe(&self) -> String {
        format!("throwaway redis-server on 127.0.0.1:{}", self.server.port)
    }
}

fn open_connection(info: ConnectionInfo) -> redis::RedisResult<Connection> {
    let client = redis::Client::open(info)?;
    let con = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

fn create_private(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn check_rdb_magic(path: &Path) -> Result<(), String> {
    let mut head = [0u8; 5];
    let mut f = File::open(path).map_err(|e| format!("cannot read the RDB: {e}"))?;
    match f.read_exact(&mut head) {
        Ok(()) if &head == b"REDIS" => Ok(()),
        Ok(()) => Err("the snapshot is not an RDB file (no REDIS header)".into()),
        Err(_) => Err("the RDB snapshot is empty or truncated".into()),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Non-empty databases and their key counts, from `INFO keyspace`.
fn keyspace(con: &mut Connection) -> redis::RedisResult<Vec<(u32, u64)>> {
    let info: String = redis::cmd("INFO").arg("keyspace").query(con)?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some(rest) = line.trim().strip_prefix("db") else {
            continue;
        };
        let Some((idx, fields)) = rest.split_once(':') else {
            continue;
        };
        let Ok(idx) = idx.parse::<u32>() else {
            continue;
        };
        let keys = fields
            .split(',')
            .find_map(|f| f.strip_prefix("keys="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        out.push((idx, keys));
    }
    out.sort();
    Ok(out)
}

/// Counts (`keys`, `expiring_keys`, `dbs`) and the fingerprint of a whole instance: a
/// part per non-empty database, `db0`, `db1` ..., over (key, type, value digest) of its
/// keys without expiry, and a part `dbN:expiring` for keys with one. Keys with an expiry
/// may legitimately be gone by the time a backup is restored (loading an RDB drops
/// expired keys), so that part is advisory when a restore is verified.
pub fn fingerprint_instance(
    con: &mut Connection,
) -> redis::RedisResult<(BTreeMap<String, u64>, Fingerprint)> {
    let mut parts = BTreeMap::new();
    let (mut persistent_total, mut expiring_total) = (0u64, 0u64);
    let mut dbs = 0u64;
    for (db, _) in keyspace(con)? {
        redis::cmd("SELECT").arg(db).query::<Value>(con)?;
        let (persistent, expiring) = digest_db(con)?;
        if persistent.count + expiring.count > 0 {
            dbs += 1;
        }
        if persistent.count > 0 {
            persistent_total += persistent.count;
            parts.insert(format!("db{db}"), persistent);
        }
        if expiring.count > 0 {
            expiring_total += expiring.count;
            parts.insert(
                format!("db{db}{}", drydock_domain::fingerprint::ADVISORY_SUFFIX),
                expiring,
            );
        }
    }
    redis::cmd("SELECT").arg(0).query::<Value>(con)?;
    let mut counts = BTreeMap::new();
    counts.insert("keys".to_string(), persistent_total);
    counts.insert(
        drydock_domain::fingerprint::ADVISORY_COUNT.to_string(),
        expiring_total,
    );
    counts.insert("dbs".to_string(), dbs);
    Ok((counts, Fingerprint::from_parts(parts)))
}

/// Digests of one database's keys: (without expiry, with expiry).
fn digest_db(
    con: &mut Connection,
) -> redis::RedisResult<(drydock_domain::PartDigest, drydock_domain::PartDigest)> {
    let mut persistent = RowSetDigest::default();
    let mut expiring = RowSetDigest::default();
    // SCAN may return a key twice; count each once.
    let mut seen: HashSet<u128> = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query(con)?;
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| {
                let h = Sha256::digest(k);
                seen.insert(u128::from_be_bytes(h[..16].try_into().expect("16 bytes")))
            })
            .collect();
        if !keys.is_empty() {
            let mut meta = redis::pipe();
            for k in &keys {
                meta.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
            }
            let meta: Vec<Value> = meta.query(con)?;
            let mut present = Vec::with_capacity(keys.len());
            let mut values = redis::pipe();
            for (k, pair) in keys.iter().zip(meta.chunks(2)) {
                let ty = match &pair[0] {
                    Value::SimpleString(s) => s.clone(),
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::Okay => "ok".into(),
                    _ => continue,
                };
                let pttl = match &pair[1] {
                    Value::Int(t) => *t,
                    _ => -1,
                };
                if ty == "none" || pttl == -2 {
                    continue; // expired or deleted meanwhile
                }
                match ty.as_str() {
                    "string" => values.cmd("GET").arg(k),
                    "list" => values.cmd("LRANGE").arg(k).arg(0).arg(-1),
                    "set" => values.cmd("SMEMBERS").arg(k),
                    "zset" => values.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES"),
                    "hash" => values.cmd("HGETALL").arg(k),
                    "stream" => values.cmd("XRANGE").arg(k).arg("-").arg("+"),
                    _ => values.cmd("DUMP").arg(k),
                };
                present.push((k, ty, pttl >= 0));
            }
            if !present.is_empty() {
                let vals: Vec<Value> = values.query(con)?;
                let mut row = Vec::with_capacity(128);
                for ((k, ty, expires), v) in present.into_iter().zip(vals) {
                    if matches!(v, Value::Nil) {
                        continue; // vanished between TYPE and read
                    }
                    row.clear();
                    row.extend_from_slice(&(k.len() as u64).to_le_bytes());
                    row.extend_from_slice(k);
                    row.extend_from_slice(ty.as_bytes());
                    row.push(0);
                    row.push(u8::from(expires));
                    row.extend_from_slice(&value_digest(&ty, v));
                    if expires {
                        expiring.add(&row);
                    } else {
                        persistent.add(&row);
                    }
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok((persistent.finish(), expiring.finish()))
}

/// SHA-256 of a value read logically; sets and hashes are sorted first.
fn value_digest(ty: &str, v: Value) -> [u8; 32] {
    let mut h = Sha256::new();
    match (ty, v) {
        ("set", Value::Array(items)) | ("set", Value::Set(items)) => {
            let mut members: Vec<Vec<u8>> = items.into_iter().map(bytes_of).collect();
            members.sort();
            h.update(b"S");
            for m in &members {
                feed_bytes(&mut h, m);
            }
        }
        ("hash", Value::Array(items)) => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                pairs.push((bytes_of(f), bytes_of(v)));
            }
            pairs.sort();
            h.update(b"H");
            for (f, v) in &pairs {
                feed_bytes(&mut h, f);
                feed_bytes(&mut h, v);
            }
        }
        ("hash", Value::Map(items)) => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = items
                .into_iter()
                .map(|(f, v)| (bytes_of(f), bytes_of(v)))
                .collect();
            pairs.sort();
            h.update(b"H");
            for (f, v) in &pairs {
                feed_bytes(&mut h, f);
                feed_bytes(&mut h, v);
            }
        }
        (_, v) => feed_value(&mut h, &v),
    }
    h.finalize().into()
}

fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        other => {
            let mut h = Sha256::new();
            feed_value(&mut h, &other);
            h.finalize().to_vec()
        }
    }
}

fn feed_bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

/// A canonical, unambiguous encoding of a reply tree.
fn feed_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Nil => h.update(b"N"),
        Value::Int(i) => {
            h.update(b"I");
            h.update(i.to_le_bytes());
        }
        Value::BulkString(b) => {
            h.update(b"B");
            feed_bytes(h, b);
        }
        Value::SimpleString(s) => {
            h.update(b"B");
            feed_bytes(h, s.as_bytes());
        }
        Value::Okay => h.update(b"O"),
        Value::Array(items) | Value::Set(items) => {
            h.update(b"A");
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                feed_value(h, i);
            }
        }
        Value::Map(pairs) => {
            h.update(b"M");
            h.update((pairs.len() as u64).to_le_bytes());
            for (k, v) in pairs {
                feed_value(h, k);
                feed_value(h, v);
            }
        }
        Value::Double(d) => {
            h.update(b"D");
            h.update(d.to_bits().to_le_bytes());
        }
        Value::Boolean(b) => {
            h.update(b"T");
            h.update([u8::from(*b)]);
        }
        other => {
            h.update(b"?");
            feed_bytes(h, format!("{other:?}").as_bytes());
        }
    }
}

/// A private `redis-server` on loopback holding one RDB, killed on drop. Persistence
/// is off, so the RDB file it loaded is never rewritten; a random password (in its
/// 0600 config file, not argv) keeps other local users out.
struct Throwaway {
    child: Child,
    port: u16,
    password: String,
}

impl Throwaway {
    /// Starts a server on `dir/dump.rdb` and waits until it has loaded it.
    fn start(dir: &Path, loc: &str) -> Result<Throwaway, SourceError> {
        let program = find_program("redis-server").ok_or_else(|| SourceError::MissingTool {
            program: "redis-server".into(),
            fix: "drydock loads RDB files into a throwaway redis-server to check them; install redis-server (or put it on PATH)".into(),
        })?;
        let password = random_hex(24);
        let log = dir.join("redis.log");
        let conf = dir.join("redis.conf");
        let mut last_err = None;
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| SourceError::io(loc, "finding a free loopback port", e))?
                .port();
            let mut text = Vec::new();
            text.extend_from_slice(
                b"bind 127.0.0.1\nprotected-mode yes\ndaemonize no\nsave \"\"\nappendonly no\n",
            );
            text.extend_from_slice(
                format!("port {port}\nrequirepass {password}\ndatabases {THROWAWAY_DATABASES}\n")
                    .as_bytes(),
            );
            text.extend_from_slice(b"dir ");
            text.extend_from_slice(&quote_conf(dir.as_os_str()));
            text.extend_from_slice(b"\ndbfilename dump.rdb\nlogfile ");
            text.extend_from_slice(&quote_conf(log.as_os_str()));
            text.push(b'\n');
            let _ = fs::remove_file(&conf);
            let _ = fs::remove_file(&log);
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&conf)
                .and_then(|mut f| f.write_all(&text))
                .map_err(|e| SourceError::io(loc, "writing the throwaway server's config", e))?;
            let mut cmd = Command::new(&program);
            crate::process::without_secret_env(&mut cmd)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; the child must not outlive drydock.
            unsafe {
                cmd.pre_exec(|| {
                    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .map_err(|e| SourceError::io(loc, "starting the throwaway redis-server", e))?;
            let mut server = Throwaway {
                child,
                port,
                password: password.clone(),
            };
            match server.wait_ready(&log, loc) {
                Ok(()) => return Ok(server),
                Err((true, _)) => continue, // port taken meanwhile: another port
                Err((false, e)) => {
                    last_err = Some(e);
                    break;
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            SourceError::invalid(
                loc,
                "could not start a throwaway redis-server: no free loopback port",
            )
        }))
    }

    /// Waits until the server answers PING (not LOADING). Err((port_taken, error)).
    fn wait_ready(&mut self, log: &Path, loc: &str) -> Result<(), (bool, SourceError)> {
        let deadline = Instant::now() + LOAD_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let tail = log_tail(log);
                if tail.contains("Address already in use") {
                    return Err((true, SourceError::invalid(loc, "port taken")));
                }
                let version = server_version();
                let rdb = log.with_file_name("dump.rdb");
                let message = if rdb.exists() {
                    format!(
                        "the RDB does not load into redis-server {version} ({status}): {tail}; it is damaged, or it comes from a newer Redis than this host's redis-server"
                    )
                } else {
                    format!("the throwaway redis-server {version} did not start ({status}): {tail}")
                };
                return Err((false, SourceError::invalid(loc, message)));
            }
            if let Ok(mut con) = self.try_connect() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err((
                    false,
                    SourceError::invalid(
                        loc,
                        format!(
                            "the throwaway redis-server did not load the RDB within {}s",
                            LOAD_TIMEOUT.as_secs()
                        ),
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn try_connect(&self) -> redis::RedisResult<Connection> {
        open_connection(ConnectionInfo {
            addr: ConnectionAddr::Tcp("127.0.0.1".into(), self.port),
            redis: RedisConnectionInfo {
                db: 0,
                username: None,
                password: Some(self.password.clone()),
                ..Default::default()
            },
        })
    }

    fn connect(&self, loc: &str) -> Result<Connection, SourceError> {
        self.try_connect()
            .map_err(|e| SourceError::query(loc, "connecting to the throwaway redis-server", e))
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_version() -> String {
    find_program("redis-server")
        .and_then(|p| {
            crate::process::without_secret_env(&mut Command::new(p))
                .arg("--version")
                .output()
                .ok()
        })
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v="))
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// The last lines of a log file (the interesting part of a failed start).
fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(1500)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(4);
    lines[start..].join(" | ")
}

/// A redis.conf string argument: double-quoted, with anything unusual hex-escaped.
fn quote_conf(s: &OsStr) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in s.as_bytes() {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let ok = File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        // Never expected on Linux; still unique enough for a loopback throwaway.
        let seed = format!("{:?}{}", Instant::now(), std::process::id());
        b = Sha256::digest(seed.as_bytes())[..bytes.min(32)].to_vec();
    }
    hex::encode(b)
}

/// Writes through while hashing what passed.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drydock_domain::plan::Priority;
    use drydock_domain::Secret;
    use drydock_testkit::redis::RedisServer;

    #[test]
    fn bgsave_fallback_copies_a_loadable_rdb() {
        let server = RedisServer::start_with_password("bg-pass-canary");
        server.cli(&["SET", "k", "v"]);
        server.cli(&["RPUSH", "l", "1", "2"]);
        let src = Redis::new(RedisSource {
            name: None,
            priority: Priority::Low,
            url: server.url(),
            password: Some(Secret::from_env_value("PW", "bg-pass-canary")),
            exec: false,
            exec_in: None,
        });
        let work = tempfile::tempdir().unwrap();
        let rdb = work.path().join("dump.rdb");
        create_private(&rdb).unwrap();
        let mut con = src.connect().unwrap();
        src.fetch_rdb_via_bgsave(&mut con, &rdb).unwrap();
        check_rdb_magic(&rdb).unwrap();
        let from_rdb = {
            let t = Throwaway::start(work.path(), "test").unwrap();
            fingerprint_instance(&mut t.connect("test").unwrap()).unwrap()
        };
        assert_eq!(from_rdb, fingerprint_instance(&mut con).unwrap());
        assert_eq!(from_rdb.0["keys"], 2);
    }

    #[test]
    fn config_strings_are_quoted() {
        assert_eq!(
            quote_conf(OsStr::new("/tmp/a b\"c\\")),
            b"\"/tmp/a b\\\"c\\\\\"".to_vec()
        );
        assert_eq!(
            quote_conf(OsStr::from_bytes(b"\n\xff")),
            b"\"\\x0a\\xff\"".to_vec()
        );
        assert_eq!(percent_decode("us%40er"), "us@er");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
