//! `drydock serve` for the end-to-end tests: the real binary started on a random
//! loopback port (its stderr collected), a real HTTP client for its API, and a stack
//! with a SQLite database and a directory to back up.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Stack;

pub const TOKEN: &str = "serve-token-canary-9f3k";

/// A running `drydock serve`, its stderr collected.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    pub fn start(stack: &Stack) -> Serve {
        Serve::start_command(stack.command(&["serve", "--listen", "127.0.0.1:0"]))
    }

    /// Starts `cmd`, a `drydock serve` command line made by the caller (for example run
    /// inside a network namespace), and waits for the address it listens on.
    pub fn start_command(mut cmd: std::process::Command) -> Serve {
        let mut child = cmd
            .env("DRYDOCK_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", stderr.lock().unwrap()));
        Serve {
            child,
            addr: addr.parse().unwrap(),
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// (status, JSON body) of a GET.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = agent().get(&self.url(path)).call().unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn post(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut req = agent().post(&self.url(path));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let mut r = req.send_empty().unwrap();
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn runs(&self) -> Vec<Value> {
        let (status, runs) = self.get("/api/v1/jobs");
        assert_eq!(status, 200, "{runs}");
        runs.as_array().unwrap().clone()
    }

    /// Waits until `done(runs)` holds, at most `timeout`.
    pub fn wait_runs(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.runs();
            if done(&runs) {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {runs:#?}\nstderr: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> i32 {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn finished(runs: &[Value], kind: &str, verdict: &str) -> usize {
    runs.iter()
        .filter(|r| r["kind"] == kind && r["verdict"] == verdict)
        .count()
}

/// A stack with a SQLite database (critical) and a directory (high), token set.
pub fn stack_with_data(schedules: &str) -> Stack {
    let stack = Stack::new(&format!(
        "[serve]\ntoken = \"${{env:TEST_SERVE_TOKEN}}\"\nstop_timeout = \"20s\"\n\n{schedules}\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n"
    ))
    .env("TEST_SERVE_TOKEN", TOKEN);
    let conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO notes (body) SELECT 'note ' || i FROM n;",
    )
    .unwrap();
    std::fs::create_dir_all(stack.path().join("uploads/a")).unwrap();
    std::fs::write(stack.path().join("uploads/a/one.txt"), "one").unwrap();
    std::fs::write(stack.path().join("uploads/two.bin"), vec![7u8; 100_000]).unwrap();
    stack
}
