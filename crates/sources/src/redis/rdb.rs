//! RDB files: fetched from the server (through `redis-cli --rdb`, inside the service's
//! container, or by `BGSAVE` and a copy of the server's own file), created private,
//! checked for the RDB magic, and hashed while written.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use drydock_domain::config::ExecTarget;
use redis::{Connection, Value};
use sha2::{Digest, Sha256};

use crate::process::ToolSpec;
use crate::{find_program, SourceError};

use super::connect::Redis;

/// How long a BGSAVE may take.
pub(super) const BGSAVE_TIMEOUT: Duration = Duration::from_secs(3600);

impl Redis {
    /// With `exec = true`: `redis-cli --rdb` inside the server's container (its own
    /// version), the RDB streamed out through the exec API into `dest`.
    pub(super) fn fetch_rdb_inside(
        &self,
        dest: &Path,
        target: &ExecTarget,
    ) -> Result<(), SourceError> {
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
    pub(super) fn fetch_rdb_via_cli(&self, dest: &Path) -> Result<(), SourceError> {
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
    pub(super) fn fetch_rdb_via_bgsave(
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

pub(super) fn create_private(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

pub(super) fn check_rdb_magic(path: &Path) -> Result<(), String> {
    let mut head = [0u8; 5];
    let mut f = File::open(path).map_err(|e| format!("cannot read the RDB: {e}"))?;
    match f.read_exact(&mut head) {
        Ok(()) if &head == b"REDIS" => Ok(()),
        Ok(()) => Err("the snapshot is not an RDB file (no REDIS header)".into()),
        Err(_) => Err("the RDB snapshot is empty or truncated".into()),
    }
}

/// Writes through while hashing what passed.
pub(super) struct HashingWriter<W: Write> {
    pub(super) inner: W,
    pub(super) hash: Sha256,
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
    use crate::redis::connect::percent_decode;
    use crate::redis::fingerprint::fingerprint_instance;
    use crate::redis::throwaway::{quote_conf, Throwaway};
    use drydock_domain::config::RedisSource;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

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
            fingerprint_instance(&mut t.connect("test").unwrap(), &|| t.try_connect()).unwrap()
        };
        assert_eq!(
            from_rdb,
            fingerprint_instance(&mut con, &|| src.connect_again()).unwrap()
        );
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
