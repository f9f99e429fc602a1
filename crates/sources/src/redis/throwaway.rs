//! A throwaway `redis-server` on a private socket, loading an RDB file: how a restore
//! and a drill read a backup without touching the live server.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::{Connection, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
use sha2::{Digest, Sha256};

use crate::{find_program, SourceError};

use super::connect::open_connection;

/// How long a throwaway server may take to load an RDB.
pub(super) const LOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// Databases a throwaway server accepts (an RDB from a server with more than the
/// default 16 must still load).
pub(super) const THROWAWAY_DATABASES: u32 = 1024;

/// A private `redis-server` on loopback holding one RDB, killed on drop. Persistence
/// is off, so the RDB file it loaded is never rewritten; a random password (in its
/// 0600 config file, not argv) keeps other local users out.
pub(super) struct Throwaway {
    pub(super) child: Child,
    pub(super) port: u16,
    pub(super) password: String,
}

impl Throwaway {
    /// Starts a server on `dir/dump.rdb` and waits until it has loaded it.
    pub(super) fn start(dir: &Path, loc: &str) -> Result<Throwaway, SourceError> {
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
    pub(super) fn wait_ready(&mut self, log: &Path, loc: &str) -> Result<(), (bool, SourceError)> {
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

    pub(super) fn try_connect(&self) -> redis::RedisResult<Connection> {
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

    pub(super) fn connect(&self, loc: &str) -> Result<Connection, SourceError> {
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

pub(super) fn server_version() -> String {
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
pub(super) fn log_tail(path: &Path) -> String {
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
pub(super) fn quote_conf(s: &OsStr) -> Vec<u8> {
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

pub(super) fn random_hex(bytes: usize) -> String {
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
