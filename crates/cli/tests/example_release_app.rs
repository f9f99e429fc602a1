//! `examples/release-app` as an operator runs it, through the real binary: copied to a
//! temporary folder (its port moved to a free one), made a git repository, deployed,
//! changed and deployed again, rolled back, and certified PRODUCTION READY. The app is
//! the example's own Python server, started by its release's `ctl.sh`. Oracles drydock
//! did not write: what that server answers to a raw HTTP client (its build, its health,
//! the visits it stored in SQLite) and the links under `live/`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::git::{commit, git};
use serde_json::Value;

/// The example's port, in `app/PORT` and the URLs of `drydock.toml`.
const EXAMPLE_PORT: &str = "8480";

/// The example copied into a temporary folder; its server is stopped on drop.
struct Example {
    dir: tempfile::TempDir,
    port: u16,
}

impl Example {
    fn new() -> Example {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/release-app");
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&source, dir.path());
        let port = drydock_testkit::free_port();
        for file in ["drydock.toml", "app/PORT"] {
            let path = dir.path().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(EXAMPLE_PORT), "{file} names no port");
            std::fs::write(&path, text.replace(EXAMPLE_PORT, &port.to_string())).unwrap();
        }
        Example { dir, port }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drydock"))
            .current_dir(self.path())
            .args(args)
            .env_remove("DRYDOCK_CONFIG")
            .env_remove("DRYDOCK_LOG")
            .env("DRYDOCK_REPO_PASSWORD", "example-password")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", common::text(&out)));
        (out.status.code().unwrap_or(-1), value)
    }

    /// (status, body) of `GET path` on the app's port.
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    fn served_build(&self) -> String {
        let (status, body) = self.get("/build");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The visits the app has stored (each call is one more).
    fn visit(&self) -> u64 {
        let (status, body) = self.get("/visit");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["visits"]
            .as_u64()
            .unwrap()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let pid_file = self.path().join("live/run/app.pid");
        if let Ok(pid) = std::fs::read_to_string(pid_file) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_release_example_deploys_rolls_back_and_is_certified_production_ready() {
    let ex = Example::new();
    let dir = ex.path();
    git(dir, &["init", "-q", "-b", "main"]);
    let first = commit(dir, &[]);

    let (code, report) = ex.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (&report["decision"], &report["outcome"]),
        (&Value::from("app"), &Value::from("ok")),
        "{report:#}"
    );
    assert_eq!(ex.served_build(), first);
    assert_eq!(ex.visit(), 1);

    let second = commit(dir, &[("app/CHANGES", "v2: a change to the app\n")]);
    let (code, report) = ex.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["decision"], "app", "{report:#}");
    assert_eq!(ex.served_build(), second);
    assert_eq!(ex.visit(), 2, "the data is shared across releases");

    let (code, back) = ex.json(&["rollback"]);
    assert_eq!(code, 0, "{back:#}");
    assert_eq!(back["to_commit"], first.as_str(), "{back:#}");
    assert_eq!(ex.served_build(), first);

    // HEAD (the second commit) is deployed from scratch, destroyed and recreated, its
    // data wiped and restored: production ready, and serving HEAD with its data.
    let (code, report) = ex.json(&["certify", "web", "--force"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "production-ready", "{report:#}");
    let statuses: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed"; 9], "{report:#}");
    assert_eq!(report["metrics"]["idempotency_changes"], 0, "{report:#}");
    assert!(report["metrics"]["deploy_ms"].as_u64().is_some());
    assert_eq!(ex.served_build(), second);
    let (status, health) = ex.get("/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(
        ex.visit(),
        3,
        "the visits written before certify came back with the restore"
    );
    let current = std::fs::read_link(dir.join("live/current")).unwrap();
    let info =
        std::fs::read_to_string(dir.join("live").join(&current).join("build_info.json")).unwrap();
    assert!(info.contains(&second), "{info}");
}
