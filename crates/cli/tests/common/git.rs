//! A stack folder that is a git repository, for `deploy`'s change detection: run git in
//! it, commit files, and record a good deployment in the state database as a finished
//! `deploy` would.

use std::path::Path;
use std::process::Command;

use super::Stack;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", super::text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Writes `files` and commits them; returns the commit.
pub fn commit(dir: &Path, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "change"]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Makes the stack's folder a git repository (state and repository ignored) with a
/// first commit of `files`; returns the commit.
pub fn init(stack: &Stack, files: &[(&str, &str)]) -> String {
    std::fs::write(stack.path().join(".gitignore"), "state/\nrepo/\n").unwrap();
    git(stack.path(), &["init", "-q", "-b", "main"]);
    commit(stack.path(), files)
}

/// Records a good deployment of `commit`, as a finished `deploy` would.
pub fn deployed(stack: &Stack, commit: &str) {
    let db = drydock_state::StateDb::open(&stack.path().join("state")).unwrap();
    let id = db
        .deployment_started(&drydock_state::NewDeployment {
            kind: "deploy",
            holder: "test",
            started_ms: jiff::Timestamp::now().as_millisecond(),
            rev: "HEAD",
            commit,
            decision: "app",
            plan_json: "{}",
        })
        .unwrap();
    db.deployment_finished(id, "ok", jiff::Timestamp::now().as_millisecond(), Some(1))
        .unwrap();
}
