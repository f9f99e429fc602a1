//! Tortures a full disk: the repository on a small tmpfs (its own file system, mounted by
//! the test, unmounted on drop), backups of a growing directory of incompressible data
//! until one fails for lack of space. Each pass (10 in both modes; random tmpfs size)
//! checks:
//! - the failing backup exits non-zero within a bounded time, with an error naming the
//!   repository path and "no space left" and saying what to do, and without a retry
//!   storm (the error and retry lines in its JSON log are counted);
//! - no partial object counts: the backup list is the earlier backups (the failed one
//!   absent or marked failed), restic's own `check` passes, and every earlier backup
//!   still passes `drydock verify --read-data` and restores exactly, with the file
//!   system then filled to its last byte (no lock file can be written: reading goes
//!   on without one, and says so);
//! - after the file system is enlarged (`mount -o remount,size=`), backup and prune
//!   succeed and the repository verifies clean.
//!
//! A second scenario fills the file system of the state directory: the backup must fail
//! naming it, and succeed once space is back.
//!
//! Data lost: an earlier backup that no longer verifies or restores after the failure.
//!
//! Needs root for `mount`; where mounting fails, the tests say so and skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::torture::{runs, Failure, Tally};
use common::Stack;
use rand::Rng;

/// A tmpfs mounted at a directory, unmounted on drop.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB at `at` (created); `None`, said on stderr, when
    /// mounting is not allowed here.
    fn mount(at: &Path, kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs at {} (needs root): {}",
                at.display(),
                common::text(&out)
            );
            return None;
        }
        Some(Tmpfs {
            at: at.to_path_buf(),
        })
    }

    fn resize(&self, kib: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(&self.at)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::text(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(&self.at).output();
        if !out.is_ok_and(|o| o.status.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        }
    }
}

/// Whether this machine lets the test mount a tmpfs (root); says so when not.
fn can_mount() -> bool {
    let probe = tempfile::tempdir().unwrap();
    Tmpfs::mount(&probe.path().join("probe"), 64).is_some()
}

fn files_stack() -> Stack {
    Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"input\", priority = \"critical\", path = \"input\" }]\n\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n",
    )
}

/// Every file under a directory (relative path, bytes), sorted.
type Files = Vec<(PathBuf, Vec<u8>)>;

fn files_of(dir: &Path) -> Files {
    common::files_under(dir)
}

fn listed_ids(stack: &Stack) -> Result<Vec<(String, String)>, Failure> {
    let (code, list) = stack.json(&["backups"]);
    if code != 0 {
        return Err(format!("`drydock backups` exited {code}: {list}").into());
    }
    Ok(list["backups"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    (
                        b["id"].as_str().unwrap_or_default().to_string(),
                        b["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A backup run with its JSON log: (exit code, report, log lines, seconds).
fn logged_backup(stack: &Stack) -> (i32, serde_json::Value, Vec<String>, f64) {
    let started = Instant::now();
    let out = stack
        .command(&["backup", "--json", "--log-format", "json"])
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let log = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), report, log, seconds)
}

/// The longest a backup that runs out of space may take: it must give up, not retry.
const GIVE_UP_WITHIN: Duration = Duration::from_secs(60);
/// Log lines about the failure (errors, warnings, retries) a single failure may cause.
const MAX_FAILURE_LINES: usize = 12;

fn pass(n: usize, rng: &mut impl Rng) -> Result<(), Failure> {
    let stack = files_stack();
    let input = stack.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let size_kib = rng.random_range(2 * 1024..4 * 1024);
    let fs = Tmpfs::mount(&stack.repo(), size_kib).ok_or("mounting the tmpfs failed")?;
    let mut good: Vec<(String, Files)> = Vec::new();
    let mut file = 0;
    let failed = loop {
        if file > 40 {
            return Err(format!("pass {n}: {size_kib} KiB never filled up").into());
        }
        let mut chunk = vec![0u8; rng.random_range(400..1000) * 1024];
        rng.fill_bytes(&mut chunk);
        std::fs::write(input.join(format!("part{file}.bin")), chunk).unwrap();
        file += 1;
        let (code, report, log, seconds) = logged_backup(&stack);
        if code == 0 {
            good.push((
                report["id"].as_str().unwrap_or_default().to_string(),
                files_of(&input),
            ));
            continue;
        }
        break (code, report, log, seconds);
    };
    let (code, report, log, seconds) = failed;
    let what = format!(
        "pass {n} ({size_kib} KiB, after {} good backups)",
        good.len()
    );
    eprintln!("{what}: backup exited {code} in {seconds:.1} s: {report}");
    if good.is_empty() {
        return Err(format!("{what}: the first backup already failed: {report}").into());
    }
    let said = report.to_string();
    let lower = said.to_lowercase();
    let repo = stack.repo().display().to_string();
    if !lower.contains("no space left") || !said.contains(&repo) {
        return Err(format!(
            "{what}: the error does not name the repository {repo} and \"no space left\": {said}"
        )
        .into());
    }
    if !lower.contains("free") {
        return Err(
            format!("{what}: the error does not say what to do (free space): {said}").into(),
        );
    }
    if seconds > GIVE_UP_WITHIN.as_secs_f64() {
        return Err(format!("{what}: the failing backup took {seconds:.0} s").into());
    }
    let failure_lines = log
        .iter()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("no space left") || l.contains("retry")
        })
        .count();
    if failure_lines > MAX_FAILURE_LINES {
        return Err(format!(
            "{what}: {failure_lines} log lines about the failure (a retry storm?):\n{}",
            log.join("\n")
        )
        .into());
    }

    // Nothing of the failed run counts.
    let listed = listed_ids(&stack)?;
    let good_ids: Vec<&str> = good.iter().map(|(id, _)| id.as_str()).collect();
    for (id, status) in &listed {
        if !good_ids.contains(&id.as_str()) && status == "ok" {
            return Err(Failure::DataLost(format!(
                "{what}: backup {id} of the failed run is listed ok"
            )));
        }
    }
    for id in &good_ids {
        if !listed.iter().any(|(l, _)| l == id) {
            return Err(Failure::DataLost(format!(
                "{what}: earlier backup {id} is no longer listed"
            )));
        }
    }
    let check = stack.restic(&["check"]);
    if !check.status.success() {
        return Err(Failure::Failed(format!(
            "{what}: restic check after the failure: {}",
            common::text(&check)
        )));
    }
    // Reading must not need free space: whatever the failed backup left free (a few
    // pages, or none, by chance of the seed), the file system is now filled to its
    // last byte, so no lock file can be written, and verify and restore must still
    // work, saying they went on without a lock.
    let filler = fill(&stack.repo());
    let (code, verify) = stack.json(&["verify", "--read-data"]);
    if code != 0 {
        return Err(Failure::DataLost(format!(
            "{what}: verify --read-data of the earlier backups on the full disk exited {code}: {verify}"
        )));
    }
    if !verify.to_string().contains("without a lock") {
        return Err(format!(
            "{what}: verify on the full disk does not say it went on without a lock: {verify}"
        )
        .into());
    }
    let (id, expected) = good.last().unwrap();
    let input_now = files_of(&input);
    let (code, restored) = stack.json(&["restore", id.as_str(), "--all", "--force"]);
    if code != 0 || files_of(&input) != *expected {
        return Err(Failure::DataLost(format!(
            "{what}: the last good backup {id} did not restore exactly from the full disk (exit {code}): {restored}"
        )));
    }
    if !restored.to_string().contains("without a lock") {
        return Err(format!(
            "{what}: restore on the full disk does not say it went on without a lock: {restored}"
        )
        .into());
    }
    std::fs::remove_file(filler).unwrap();
    // Back to the data that did not fit.
    let _ = std::fs::remove_dir_all(&input);
    std::fs::create_dir(&input).unwrap();
    for (path, bytes) in &input_now {
        std::fs::write(input.join(path), bytes).unwrap();
    }

    // Space is back: the backup that did not fit now does, and prune works.
    fs.resize(size_kib * 4 + 16 * 1024);
    let (code, report) = stack.json(&["backup"]);
    if code != 0 {
        return Err(format!("{what}: the backup after enlarging exited {code}: {report}").into());
    }
    let (code, pruned) = stack.json(&["prune"]);
    if code != 0 {
        return Err(format!("{what}: prune after enlarging exited {code}: {pruned}").into());
    }
    let (code, verify) = stack.json(&["verify", "--read-data"]);
    if code != 0 {
        return Err(Failure::DataLost(format!(
            "{what}: verify --read-data after backup and prune exited {code}: {verify}"
        )));
    }
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    if code != 0 || files_of(&input) != input_now {
        return Err(Failure::DataLost(format!(
            "{what}: the backup made after enlarging did not restore exactly (exit {code}): {restored}"
        )));
    }
    Ok(())
}

#[test]
fn a_full_repository_disk_fails_cleanly_and_recovers_once_space_is_back() {
    if !can_mount() {
        return;
    }
    let mut tally = Tally::new(
        "Disk full: repository",
        "torture_disk_full",
        "a_full_repository_disk_fails_cleanly_and_recovers_once_space_is_back",
    );
    for n in 0..runs(10, 10) {
        tally.trial(|rng| pass(n, rng));
    }
    tally.finish();
}

/// Fills the file system at `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0xa5u8; 64 * 1024];
    use std::io::Write;
    while f.write_all(&block).is_ok() {}
    // Then what is left of the last block, so not even a small lock file fits.
    while f.write_all(&block[..512]).is_ok() {}
    while f.write_all(&block[..1]).is_ok() {}
    let _ = f.sync_all();
    filler
}

fn state_dir_pass(n: usize, rng: &mut impl Rng) -> Result<(), Failure> {
    let stack = files_stack();
    let input = stack.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let mut data = vec![0u8; 200 * 1024];
    rng.fill_bytes(&mut data);
    std::fs::write(input.join("a.bin"), &data).unwrap();
    let _fs = Tmpfs::mount(&stack.path().join("state"), 2048).ok_or("mounting the tmpfs failed")?;
    let (code, first) = stack.json(&["backup"]);
    if code != 0 {
        return Err(format!("pass {n}: the first backup exited {code}: {first}").into());
    }
    let filler = fill(&stack.path().join("state"));
    std::fs::write(input.join("b.bin"), &data[..1000]).unwrap();
    let started = Instant::now();
    let (code, report) = stack.json(&["backup"]);
    let seconds = started.elapsed().as_secs_f64();
    let said = report.to_string();
    let what = format!("pass {n}: state_dir full");
    eprintln!("{what}: backup exited {code} in {seconds:.1} s: {said}");
    if code == 0 {
        // It fit after all (SQLite had room in its pages): then it must be real.
        let (code, verify) = stack.json(&["verify", "--read-data"]);
        if code != 0 {
            return Err(Failure::DataLost(format!(
                "{what}: backup exited 0 but verify exited {code}: {verify}"
            )));
        }
    } else {
        let state = stack.path().join("state").display().to_string();
        if !said.to_lowercase().contains("no space left") && !said.to_lowercase().contains("full") {
            return Err(format!("{what}: the error does not say the disk is full: {said}").into());
        }
        if !said.contains(&state) {
            return Err(format!(
                "{what}: the error does not name the state directory {state}: {said}"
            )
            .into());
        }
        if seconds > GIVE_UP_WITHIN.as_secs_f64() {
            return Err(format!("{what}: the failing backup took {seconds:.0} s").into());
        }
    }
    std::fs::remove_file(filler).unwrap();
    let (code, report) = stack.json(&["backup"]);
    if code != 0 {
        return Err(
            format!("{what}: the backup after freeing space exited {code}: {report}").into(),
        );
    }
    let (code, verify) = stack.json(&["verify", "--read-data"]);
    if code != 0 {
        return Err(Failure::DataLost(format!(
            "{what}: verify exited {code}: {verify}"
        )));
    }
    Ok(())
}

#[test]
fn a_full_state_dir_disk_is_named_and_recovers_once_space_is_back() {
    if !can_mount() {
        return;
    }
    let mut tally = Tally::new(
        "Disk full: state directory",
        "torture_disk_full",
        "a_full_state_dir_disk_is_named_and_recovers_once_space_is_back",
    );
    for n in 0..runs(1, 3) {
        tally.trial(|rng| state_dir_pass(n, rng));
    }
    tally.finish();
}
