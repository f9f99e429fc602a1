//! Memory bound (issue 7, item 9). Tortures drydock with many small files' worth of
//! metadata under a 512 MiB memory cap (a cgroup v1 memory group with swap capped too,
//! so the cap is real): a `files` source of N tiny distinct files (quick: 40 000, full:
//! 400 000, or `DRYDOCK_TORTURE_FILES`) is backed up, changed and backed up again, verified with `--read-data`, pruned and restored, every command inside the
//! group.
//!
//! Checks: every command exits 0 and is not OOM-killed (the group's `oom_kill` count
//! stays 0); the backup list goes 0 -> 1 -> 2 -> 1 (prune removes the first backup);
//! the restore verifies by fingerprint and the restored tree equals the live one (every
//! file's content). Peak memory per command is reported: the process's own peak RSS
//! (`ru_maxrss`) and the group's `memory.max_usage_in_bytes` (which also counts page
//! cache the kernel reclaims under the cap).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::torture::{runs, Failure, Mode, Tally};
use common::Stack;

const BINARY: &str = "torture_memory";
const CAP: u64 = 512 << 20;
const PER_DIR: usize = 1000;

/// A cgroup v1 memory group, removed on drop.
struct MemoryGroup {
    dir: PathBuf,
}

impl MemoryGroup {
    fn new(limit: u64) -> Result<MemoryGroup, String> {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/drydock-torture-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating {}: {e} (needs root and cgroup v1)", dir.display()))?;
        let group = MemoryGroup { dir };
        group.write("memory.limit_in_bytes", &limit.to_string())?;
        // Swap capped too, else the kernel swaps instead of enforcing the cap.
        if group.dir.join("memory.memsw.limit_in_bytes").exists() {
            group.write("memory.memsw.limit_in_bytes", &limit.to_string())?;
        }
        Ok(group)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| format!("writing {value} to {file}: {e}"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    fn max_usage(&self) -> u64 {
        self.read("memory.max_usage_in_bytes")
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        // Empty already (every command ended); an empty group can be removed.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// One command's outcome under the cap.
struct Capped {
    code: i32,
    stdout: Vec<u8>,
    text: String,
    peak_rss: u64,
    group_peak: u64,
    oom_killed: bool,
    seconds: f64,
}

/// Runs drydock `args` inside `group`; a small python wrapper joins the group, runs
/// drydock and reports its peak RSS (`ru_maxrss` of its children).
fn capped(stack: &Stack, group: &MemoryGroup, args: &[&str]) -> Result<Capped, String> {
    let rss_file = stack.path().join("peak-rss");
    group.write("memory.max_usage_in_bytes", "0").ok();
    let oom_before = group.oom_kills();
    let started = Instant::now();
    let wrapper = "import os, resource, subprocess, sys\n\
        open(sys.argv[1], 'w').write(str(os.getpid()))\n\
        r = subprocess.run(sys.argv[3:])\n\
        open(sys.argv[2], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))\n\
        sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)\n";
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(wrapper)
        .arg(group.dir.join("cgroup.procs"))
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .current_dir(stack.path())
        .env_remove("DRYDOCK_CONFIG")
        .env_remove("DRYDOCK_LOG")
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {args:?}: {e}"))?;
    let peak_rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Ok(Capped {
        code: out.status.code().unwrap_or(-1),
        text: common::text(&out),
        stdout: out.stdout,
        peak_rss,
        group_peak: group.max_usage(),
        oom_killed: group.oom_kills() > oom_before,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
}

/// `n` tiny files of distinct content, `PER_DIR` to a directory, every tenth empty.
fn generate(root: &Path, n: usize) -> Result<(), String> {
    let mut dir = root.to_path_buf();
    for i in 0..n {
        if i % PER_DIR == 0 {
            dir = root.join(format!("d{:05}", i / PER_DIR));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        }
        let mut f = std::fs::File::create(dir.join(format!("f{i}"))).map_err(|e| e.to_string())?;
        if i % 10 != 0 {
            write!(f, "{i}").map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Checks every generated file's content; `changed` files hold `changed-{i}`.
fn check_generated(root: &Path, n: usize, changed_every: usize) -> Result<(), String> {
    for i in 0..n {
        let path = root.join(format!("d{:05}/f{i}", i / PER_DIR));
        let want = if i % changed_every == 1 {
            format!("changed-{i}")
        } else if i % 10 == 0 {
            String::new()
        } else {
            i.to_string()
        };
        let got = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if got != want {
            return Err(format!(
                "{}: holds {got:?}, expected {want:?}",
                path.display()
            ));
        }
    }
    let dirs = std::fs::read_dir(root).map_err(|e| e.to_string())?.count();
    if dirs != n.div_ceil(PER_DIR) {
        return Err(format!(
            "{dirs} directories restored, expected {}",
            n.div_ceil(PER_DIR)
        ));
    }
    Ok(())
}

fn backups(stack: &Stack, group: &MemoryGroup) -> Result<usize, String> {
    let run = capped(stack, group, &["backups", "--json"])?;
    let list: serde_json::Value =
        serde_json::from_slice(&run.stdout).map_err(|e| format!("backups: {e}: {}", run.text))?;
    Ok(list["backups"].as_array().map_or(0, Vec::len))
}

#[test]
fn backup_verify_prune_and_restore_of_many_small_files_fit_in_512_mib() {
    // Full mode stops below the manifest cap: a files source of more than ~440 000
    // entries cannot be backed up readably today (see the ignored test below).
    let files = std::env::var("DRYDOCK_TORTURE_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(match Mode::current() {
            Mode::Quick => 40_000,
            Mode::Full => 400_000,
        });
    let mut tally = Tally::new(
        "Memory bound: many small files under 512 MiB",
        BINARY,
        "backup_verify_prune_and_restore_of_many_small_files_fit_in_512_mib",
    );
    for _ in 0..runs(1, 1) {
        tally.trial(|_| memory_trial(files));
    }
    tally.finish();
}

fn memory_trial(n: usize) -> Result<(), Failure> {
    let group = MemoryGroup::new(CAP)?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = work.path().join("data");
    let started = Instant::now();
    generate(&data, n)?;
    eprintln!(
        "torture: memory: {n} files generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"{}\" }}]\n",
        data.display()
    ));
    let mut figures = Vec::new();
    let mut step = |args: &[&str], allowed: &[i32]| -> Result<Capped, Failure> {
        let run = capped(&stack, &group, args)?;
        figures.push(format!(
            "{}: exit {}, {:.1} s, peak RSS {}, group peak {}",
            args.join(" "),
            run.code,
            run.seconds,
            mib(run.peak_rss),
            mib(run.group_peak)
        ));
        eprintln!("torture: memory: {}", figures.last().unwrap());
        if run.oom_killed {
            return Err(format!(
                "`{}` was OOM-killed under the 512 MiB cap (peak RSS {}, group peak {}):\n{}",
                args.join(" "),
                mib(run.peak_rss),
                mib(run.group_peak),
                run.text
            )
            .into());
        }
        if !allowed.contains(&run.code) {
            return Err(format!(
                "`{}` exited {} (peak RSS {}, group peak {}):\n{}",
                args.join(" "),
                run.code,
                mib(run.peak_rss),
                mib(run.group_peak),
                run.text
            )
            .into());
        }
        Ok(run)
    };

    step(&["backup", "--json"], &[0])?;
    // Every hundredth file changes, so the second backup differs and prune has data
    // of the first to delete.
    let changed_every = 100;
    for i in (1..n).step_by(changed_every) {
        std::fs::write(
            data.join(format!("d{:05}/f{i}", i / PER_DIR)),
            format!("changed-{i}"),
        )
        .map_err(|e| e.to_string())?;
    }
    step(&["backup", "--json"], &[0])?;
    let before_prune = backups(&stack, &group)?;
    step(&["verify", "--read-data", "--json"], &[0])?;
    let prune = step(&["prune", "--json"], &[0])?;
    let after_prune = backups(&stack, &group)?;
    if (before_prune, after_prune) != (2, 1) {
        return Err(format!("backups before/after prune: {before_prune}/{after_prune}, expected 2/1; prune said: {}", String::from_utf8_lossy(&prune.stdout)).into());
    }
    step(&["verify", "--read-data", "--json"], &[0])?;
    std::fs::remove_dir_all(&data).map_err(|e| e.to_string())?;
    let restore = step(&["restore", "latest", "--all", "--json"], &[0])?;
    let report: serde_json::Value =
        serde_json::from_slice(&restore.stdout).map_err(|e| e.to_string())?;
    if report["verified"] != true {
        return Err(Failure::DataLost(format!(
            "the kept backup did not restore verified: {report}"
        )));
    }
    check_generated(&data, n, changed_every)
        .map_err(|e| Failure::DataLost(format!("restored data differs: {e}")))?;
    eprintln!(
        "torture: memory: {n} files under {}:\n  {}",
        mib(CAP),
        figures.join("\n  ")
    );
    let record = common::torture::records_dir().join("memory-figures.txt");
    let _ = std::fs::create_dir_all(record.parent().unwrap());
    let _ = std::fs::write(
        &record,
        format!("{n} files under {}\n{}\n", mib(CAP), figures.join("\n")),
    );
    Ok(())
}

/// A tree's fingerprint used to keep one part per entry, all stored in the manifest
/// (~150 bytes each): past ~440 000 entries in one `files` source the manifest was over
/// `MANIFEST_MAX_BYTES` (64 MiB), and such a backup first exited 0 and then was missing
/// from every list, later failed clearly. Past 100 000 entries the fingerprint now has a
/// part per directory. Slow in a debug build (minutes), so it runs on request:
/// `scripts/test -p drydock --test torture_memory --run-ignored only`.
#[test]
#[ignore = "slow: half a million files; run with --run-ignored only"]
fn a_files_source_of_half_a_million_entries_backs_up_into_a_readable_manifest() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    generate(&data, 500_000).unwrap();
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"{}\" }}]\n",
        data.display()
    ));
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report}");
    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list}");
    assert_eq!(
        list["backups"].as_array().map_or(0, Vec::len),
        1,
        "the backup is not listed: its manifest cannot be read back: {list}"
    );
}
