//! A real `redis-server` on a random loopback port in a temp dir, stopped on drop.
//! The password (if any) is in the server's 0600 config file, never in argv.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{free_port, program, wait_until};

pub struct RedisServer {
    child: Child,
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server without a password.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that requires `password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let conf = dir.path().join("redis.conf");
            let mut text = format!(
                "bind 127.0.0.1\nport {port}\ndaemonize no\nsave \"\"\nappendonly no\ndir \"{}\"\nlogfile \"{}\"\ndatabases 16\nenable-debug-command local\n",
                dir.path().display(),
                dir.path().join("redis.log").display()
            );
            if let Some(pw) = password {
                text.push_str(&format!("requirepass \"{pw}\"\n"));
            }
            let _ = std::fs::remove_file(&conf);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&conf)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let mut child = Command::new(program("redis-server"))
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let up = wait_until(Duration::from_secs(10), || {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                ping(port)
            });
            if up && child.try_wait().ok().flatten().is_none() {
                return RedisServer {
                    child,
                    port,
                    password: password.map(str::to_string),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server did not start: {log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (no password: that goes separately).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `redis-cli` against the server (password via `REDISCLI_AUTH`).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(program("redis-cli"));
        cmd.arg("-p").arg(self.port.to_string()).args(args);
        if let Some(pw) = &self.password {
            cmd.env("REDISCLI_AUTH", pw);
        }
        let out = cmd.output().expect("run redis-cli");
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Stops the server now (the port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `port` speaks RESP (PONG, or NOAUTH when it wants a password).
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => {
            let reply = &buf[..n];
            reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH")
        }
        Err(_) => false,
    }
}
