//! Shared helpers for the CLI's end-to-end tests: a stack folder with its drydock.toml,
//! running the real `drydock` binary, and reading its JSON.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use drydock_testkit::garage::GarageServer;

pub mod git;
pub mod oracle;
pub mod serve;
pub mod tmpfs;
pub mod torture;

pub const REPO_PASSWORD: &str = "repo-canary-Zq8rT2";

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Stack {
    /// A stack folder whose config holds `[stack]`, `[repository]` and then `services`.
    pub fn new(services: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[stack]\nname = \"test\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${{env:TEST_REPO_PASSWORD}}\"\n\n{services}"
        );
        std::fs::write(dir.path().join("drydock.toml"), config).unwrap();
        Stack {
            dir,
            env: vec![("TEST_REPO_PASSWORD".into(), REPO_PASSWORD.into())],
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(mut self, key: &str, value: &str) -> Stack {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drydock"));
        cmd.current_dir(self.path())
            .args(args)
            .env_remove("DRYDOCK_CONFIG")
            .env_remove("DRYDOCK_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `--json` and returns (exit code, parsed stdout).
    pub fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), value)
    }

    pub fn repo(&self) -> PathBuf {
        self.path().join("repo")
    }

    /// Adds a `[[remote]]` named `offsite` in `garage` (reached through `endpoint`, e.g. a
    /// fault proxy) under `prefix`, its keys passed by environment.
    pub fn with_remote(self, garage: &GarageServer, endpoint: &str, prefix: &str) -> Stack {
        let config = self.path().join("drydock.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nbucket = \"{}\"\nprefix = \"{prefix}\"\npath_style = true\naccess_key_id = \"${{env:TEST_S3_KEY}}\"\nsecret_access_key = \"${{env:TEST_S3_SECRET}}\"\n",
            drydock_testkit::garage::REGION,
            garage.bucket
        ));
        std::fs::write(&config, text).unwrap();
        self.env("TEST_S3_KEY", &garage.access_key_id)
            .env("TEST_S3_SECRET", &garage.secret_access_key)
    }

    /// Appends `text` to the config.
    pub fn append_config(&self, text: &str) {
        let config = self.path().join("drydock.toml");
        let mut all = std::fs::read_to_string(&config).unwrap();
        all.push_str(text);
        std::fs::write(&config, all).unwrap();
    }

    /// Runs Debian's restic on the stack's repository (password through the environment).
    pub fn restic(&self, args: &[&str]) -> Output {
        Command::new("restic")
            .arg("-r")
            .arg(self.repo())
            .args(args)
            .env("RESTIC_PASSWORD", REPO_PASSWORD)
            .env("RESTIC_CACHE_DIR", self.path().join("restic-cache"))
            .output()
            .unwrap()
    }
}

/// Runs Debian's restic on a copy in `garage` under `prefix`.
pub fn restic_s3(garage: &GarageServer, prefix: &str, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new("restic")
        .arg("-r")
        .arg(garage.restic_repo(prefix))
        .args(args)
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("AWS_ACCESS_KEY_ID", &garage.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &garage.secret_access_key)
        .env("AWS_DEFAULT_REGION", drydock_testkit::garage::REGION)
        .env("RESTIC_CACHE_DIR", cache.path())
        .output()
        .unwrap()
}

/// Every file under `dir` with its bytes, sorted by path (empty when `dir` is missing).
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts a restore report says every source verified.
pub fn assert_verified(code: i32, report: &serde_json::Value) {
    assert_eq!(code, 0, "restore failed: {report:#}");
    assert_eq!(report["verified"], true, "{report:#}");
    for s in report["sources"].as_array().unwrap() {
        assert_eq!(s["status"], "verified", "{s:#}");
        assert!(s["differences"].as_array().unwrap().is_empty(), "{s:#}");
    }
}
