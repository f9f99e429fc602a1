//! Secrets hygiene (issue 7, item 8). Tortures where secrets could leak: unique canary
//! values for the repository password (a `${file:}` secret), the S3 secret key and the
//! PostgreSQL, MariaDB and Redis passwords go through backup (with a remote), backups,
//! sync, verify (`--read-data` and `--live`), prune, restore and drill, all under umask
//! 000 and `strace -f`, while a sampler reads `/proc/*/cmdline` and `/proc/*/environ`
//! of drydock and every descendant every 2 ms.
//!
//! Checks: no canary in any child's arguments, and none in a child's environment but
//! its own secret under the variable drydock sets for it (`PGPASSWORD`,
//! `REDISCLI_AUTH`; 0600 files are the other accepted channel); none in stdout, stderr, JSON logs, JSON
//! results, reports, the state database, temp files left behind, manifests (decrypted
//! with restic) or snapshot metadata; every file and directory drydock creates in the
//! repository and state directory is created private (mode argument and umask at the
//! `openat`/`mkdir` call, not a later chmod) and stays 0600/0700; a password file open
//! to group or others is refused naming the file, its mode and `chmod 600`.
//! (There is no webhook or token setting in the config, so none is tested.)

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::torture::{runs, Failure, Tally};
use common::Stack;
use drydock_testkit::garage::GarageServer;
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;
use rand::Rng;

const BINARY: &str = "torture_secrets";

/// What the /proc sampler saw.
#[derive(Default)]
struct Sightings {
    /// A canary in a process's arguments: the leak this scenario exists to catch.
    in_arguments: BTreeSet<String>,
    /// A canary in a child's environment: accepted, reported.
    in_environment: BTreeSet<String>,
    /// A canary in a child's environment that is not the child's own secret under the
    /// variable drydock sets for it (the S3 key in `pg_dump`'s environment): a leak.
    foreign_in_environment: BTreeSet<String>,
    samples: u64,
    processes: BTreeSet<String>,
}

fn read_proc(pid: u32, what: &str) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/{what}")).ok()
}

/// `pid -> ppid` of every process now.
fn process_parents() -> BTreeMap<u32, u32> {
    let mut parents = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(stat) = read_proc(pid, "stat") else {
            continue;
        };
        let stat = String::from_utf8_lossy(&stat);
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.insert(pid, ppid);
            }
        }
    }
    parents
}

/// Samples the arguments and environment of `root` and its descendants every 2 ms
/// until `stop`.
fn sample(
    root: u32,
    canaries: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Sightings>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let parents = process_parents();
            let mut family = BTreeSet::from([root]);
            let mut grew = true;
            while grew {
                grew = false;
                for (pid, ppid) in &parents {
                    if family.contains(ppid) && family.insert(*pid) {
                        grew = true;
                    }
                }
            }
            let mut s = seen.lock().unwrap();
            s.samples += 1;
            for pid in family {
                let Some(cmdline) = read_proc(pid, "cmdline") else {
                    continue;
                };
                let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                let comm = read_proc(pid, "comm")
                    .map(|c| String::from_utf8_lossy(&c).trim().to_string())
                    .unwrap_or_default();
                s.processes.insert(comm.clone());
                let environ = read_proc(pid, "environ").unwrap_or_default();
                let environ = String::from_utf8_lossy(&environ).to_string();
                for (name, value) in &canaries {
                    if args.contains(value.as_str()) {
                        s.in_arguments.insert(format!(
                            "{name} in the arguments of {comm}: {}",
                            args.replace(value.as_str(), "<CANARY>")
                        ));
                    }
                    for var in environ.split('\0') {
                        if var.contains(value.as_str()) {
                            let key = var.split('=').next().unwrap_or_default();
                            s.in_environment.insert(format!("{comm}: {key} ({name})"));
                            // drydock (and the `sh` that execs the strace it runs
                            // under) hold the environment the operator started it with.
                            let started_with = pid == root || comm == "drydock" || comm == "strace";
                            if !started_with && !own_secret_variable(name, key) {
                                s.foreign_in_environment.insert(format!(
                                    "{name} in the environment of {comm} as {key}"
                                ));
                            }
                        }
                    }
                }
            }
            drop(s);
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// Whether `key` is the variable drydock sets for a child to hand it the secret
/// `name` (the one channel a child's environment may carry).
fn own_secret_variable(name: &str, key: &str) -> bool {
    matches!(
        (name, key),
        ("PostgreSQL password", "PGPASSWORD") | ("Redis password", "REDISCLI_AUTH")
    )
}

/// One `openat`/`mkdir` that created something, with the mode it got at creation.
#[derive(Debug)]
struct Created {
    path: PathBuf,
    dir: bool,
    effective: u32,
    line: String,
}

/// Reads an `strace -f` log: every successful creating call (`openat` with `O_CREAT`,
/// `creat`, `mkdir`, `mkdirat`) with `mode & !umask` at that moment. The umask is
/// tracked in log order (threads share it; children inherit it and create nothing of
/// drydock's). Relative paths are taken from `cwd`.
fn created_in_trace(trace: &str, cwd: &Path) -> Vec<Created> {
    let mut umask = 0u32;
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for raw in trace.lines() {
        let Some((pid, rest)) = raw.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let line = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        } else if rest.starts_with("<... ") {
            let Some(head) = pending.remove(pid) else {
                continue;
            };
            let tail = rest.split_once("resumed>").map_or("", |(_, t)| t);
            format!("{head}{tail}")
        } else {
            rest.to_string()
        };
        let Some((call, after)) = line.split_once('(') else {
            continue;
        };
        // strace pads between the call and its result: `umask(077)      = 000`.
        let Some((args, result)) = after.rsplit_once(" = ") else {
            continue;
        };
        let Some(args) = args.trim_end().strip_suffix(')') else {
            continue;
        };
        let ok = result
            .split_whitespace()
            .next()
            .and_then(|r| r.parse::<i64>().ok())
            .is_some_and(|r| r >= 0);
        if call == "umask" {
            if let Ok(m) = u32::from_str_radix(args.trim(), 8) {
                umask = m;
            }
            continue;
        }
        if !ok {
            continue;
        }
        let quoted = args.split('"').nth(1).unwrap_or_default();
        let path = if quoted.starts_with('/') {
            PathBuf::from(quoted)
        } else {
            cwd.join(quoted)
        };
        let mode_of = |s: &str| u32::from_str_radix(s.trim(), 8).ok();
        let last = args.rsplit(',').next().unwrap_or_default();
        let (dir, mode) = match call {
            "openat" | "open" if args.contains("O_CREAT") => (false, mode_of(last)),
            "creat" => (false, mode_of(last)),
            "mkdir" | "mkdirat" => (true, mode_of(last)),
            _ => continue,
        };
        if let Some(mode) = mode {
            out.push(Created {
                path,
                dir,
                effective: mode & !umask & 0o7777,
                line: line.clone(),
            });
        }
    }
    out
}

fn existing(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut all = BTreeSet::new();
    for root in paths {
        for e in walkdir::WalkDir::new(root).into_iter().flatten() {
            all.insert(e.path().to_path_buf());
        }
    }
    all
}

fn grep_tree(root: &Path, canaries: &[(String, String)], skip: &[PathBuf], hits: &mut Vec<String>) {
    for e in walkdir::WalkDir::new(root).into_iter().flatten() {
        if !e.file_type().is_file() || skip.iter().any(|s| e.path() == s) {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (name, value) in canaries {
            if text.contains(value.as_str()) {
                hits.push(format!("{name} in {}", e.path().display()));
            }
        }
    }
}

struct Servers {
    pg: PgServer,
    my: MariaDb,
    redis: RedisServer,
    garage: GarageServer,
}

fn start_servers(redis_password: &str) -> Servers {
    let pg = PgServer::start();
    pg.create_db("app");
    pg.psql("app", "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, 300) g;");
    let my = MariaDb::start();
    my.create_db("shop");
    my.exec("shop", "CREATE TABLE o (id INT PRIMARY KEY, v TEXT); INSERT INTO o SELECT seq, MD5(seq) FROM seq_1_to_300;");
    let redis = RedisServer::start_with_password(redis_password);
    redis.cli(&["SET", "k1", "v1"]);
    redis.cli(&["HSET", "h", "f", "v"]);
    Servers {
        pg,
        my,
        redis,
        garage: GarageServer::start(),
    }
}

#[test]
fn no_secret_reaches_arguments_output_or_files_and_everything_is_created_private() {
    let mut tally = Tally::new(
        "Secrets hygiene: canaries and private files under umask 000",
        BINARY,
        "no_secret_reaches_arguments_output_or_files_and_everything_is_created_private",
    );
    for _ in 0..runs(1, 3) {
        tally.trial(secrets_trial);
    }
    tally.finish();
}

fn secrets_trial(rng: &mut rand::rngs::StdRng) -> Result<(), Failure> {
    let tag: u64 = rng.random();
    let repo_pw = format!("repo-canary-{tag:016x}");
    let redis_pw = format!("redis-canary-{tag:016x}");
    let servers = start_servers(&redis_pw);
    let canaries: Vec<(String, String)> = vec![
        ("repository password".into(), repo_pw.clone()),
        (
            "S3 secret key".into(),
            servers.garage.secret_access_key.clone(),
        ),
        (
            "PostgreSQL password".into(),
            servers.pg.password().to_string(),
        ),
        ("MariaDB password".into(), servers.my.password().to_string()),
        ("Redis password".into(), redis_pw.clone()),
    ];
    for (name, value) in &canaries {
        if value.len() < 8 {
            return Err(
                format!("{name} is too short to be a canary: {} chars", value.len()).into(),
            );
        }
    }

    let services = format!(
        "[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n\
         [services.shop]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"mysql\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_MY_PASSWORD}}\" }}]\n\n\
         [services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"{}\", password = \"${{env:TEST_REDIS_PASSWORD}}\" }}]\n\n\
         [services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"high\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n",
        servers.pg.url("app"),
        servers.my.url("shop"),
        servers.redis.url()
    );
    let stack = Stack::new(&services)
        .env("TEST_PG_PASSWORD", servers.pg.password())
        .env("TEST_MY_PASSWORD", servers.my.password())
        .env("TEST_REDIS_PASSWORD", &redis_pw)
        .with_remote(&servers.garage, &servers.garage.endpoint(), "secrets");
    // The repository password comes from a private file, not the environment.
    let pw_file = stack.path().join("repo.password");
    std::fs::write(&pw_file, format!("{repo_pw}\n")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let config = stack.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
    std::fs::write(
        &config,
        text.replace(
            "${env:TEST_REPO_PASSWORD}",
            &format!("${{file:{}}}", pw_file.display()),
        ),
    )
    .map_err(|e| e.to_string())?;
    rusqlite::Connection::open(stack.path().join("app.db"))
        .and_then(|c| c.execute_batch("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO u VALUES (1, 'a'), (2, 'b');"))
        .map_err(|e| e.to_string())?;
    std::fs::create_dir(stack.path().join("uploads")).map_err(|e| e.to_string())?;
    std::fs::write(stack.path().join("uploads/a.txt"), "upload").map_err(|e| e.to_string())?;
    let tmp = stack.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| e.to_string())?;

    let drydock = env!("CARGO_BIN_EXE_drydock");
    let private_roots = [stack.repo(), stack.path().join("state")];
    let mut leaks = Vec::new();
    let mut not_private = Vec::new();
    let seen = Arc::new(Mutex::new(Sightings::default()));
    let steps: &[(&str, &[i32])] = &[
        ("backup --all", &[0]),
        ("backups", &[0]),
        ("sync", &[0]),
        ("verify --read-data", &[0]),
        ("verify --live", &[0, 1]),
        ("prune", &[0, 1]),
        ("restore latest --all --force", &[0]),
        ("drill", &[0, 1]),
        ("backup --all", &[0]),
        ("status", &[0]),
    ];
    for (args, allowed) in steps {
        let before = existing(&private_roots);
        let trace = stack.path().join("strace.log");
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!(
                "umask 000; exec strace -f -qq -o '{}' -e trace=umask,open,openat,creat,mkdir,mkdirat '{drydock}' {args} --json -vv --log-format json",
                trace.display()
            ))
            .current_dir(stack.path())
            .env("TMPDIR", &tmp)
            .env_remove("DRYDOCK_CONFIG")
            .env_remove("DRYDOCK_LOG")
            .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null());
        // Spawned here so the sampler knows the root; run_with_deadline would spawn it.
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let runner = std::thread::spawn(move || {
            run_with_deadline_reporting(&mut cmd, Duration::from_secs(300), tx)
        });
        let root = rx
            .recv()
            .map_err(|_| "the command did not start".to_string())?;
        let sampler = sample(root, canaries.clone(), stop.clone(), seen.clone());
        let out = runner.join().map_err(|_| "runner panicked".to_string())?;
        stop.store(true, Ordering::Relaxed);
        sampler.join().map_err(|_| "sampler panicked".to_string())?;
        let out = out?;
        let text = common::text(&out);
        let code = out.status.code().unwrap_or(-1);
        if !allowed.contains(&code) {
            return Err(format!("`{args}` exited {code}:\n{text}").into());
        }
        for (name, value) in &canaries {
            if text.contains(value.as_str()) {
                leaks.push(format!("{name} in the output of `{args}`"));
            }
        }
        let trace_text =
            std::fs::read_to_string(&trace).map_err(|e| format!("reading the strace log: {e}"))?;
        for c in created_in_trace(&trace_text, stack.path()) {
            let ours = private_roots.iter().any(|r| c.path.starts_with(r));
            let want = if c.dir { 0o700 } else { 0o600 };
            if ours && !before.contains(&c.path) && c.effective & !want != 0 {
                not_private.push(format!(
                    "`{args}` created {} with mode {:04o}: {}",
                    c.path.display(),
                    c.effective,
                    c.line
                ));
            }
        }
        let _ = std::fs::remove_file(&trace);
        // Temp files holding a secret must be gone when the command is.
        grep_tree(&tmp, &canaries, &[], &mut leaks);
    }

    // What drydock wrote to disk: state (database, reports), the repository, the
    // stack folder (but not the password file, the canary's source).
    grep_tree(
        stack.path(),
        &canaries,
        std::slice::from_ref(&pw_file),
        &mut leaks,
    );
    for root in &private_roots {
        for e in walkdir::WalkDir::new(root).into_iter().flatten() {
            let mode = e
                .metadata()
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            let want = if e.file_type().is_dir() { 0o700 } else { 0o600 };
            if mode != want {
                not_private.push(format!("{} is {mode:04o}", e.path().display()));
            }
        }
    }
    // Decrypted: every snapshot's metadata and every manifest, local and remote.
    let restic = |args: &[&str]| {
        std::process::Command::new("restic")
            .arg("-r")
            .arg(stack.repo())
            .args(args)
            .env("RESTIC_PASSWORD", &repo_pw)
            .env("RESTIC_CACHE_DIR", stack.path().join("restic-cache"))
            .output()
    };
    let snaps = restic(&["snapshots", "--json"]).map_err(|e| e.to_string())?;
    let listed: serde_json::Value = serde_json::from_slice(&snaps.stdout)
        .map_err(|e| format!("restic snapshots: {e}: {}", common::text(&snaps)))?;
    let mut decrypted = vec![String::from_utf8_lossy(&snaps.stdout).into_owned()];
    let mut manifests = 0;
    for snap in listed.as_array().cloned().unwrap_or_default() {
        let is_manifest = snap["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "drydock-manifest"));
        if is_manifest {
            let id = snap["id"].as_str().unwrap_or_default().to_string();
            let backup = snap["tags"]
                .as_array()
                .and_then(|t| t.iter().find_map(|t| t.as_str()?.strip_prefix("backup:")))
                .unwrap_or_default()
                .to_string();
            // A stream's stored size is 0, so restic's tar of `/` fails: dump the file.
            let path = format!("/drydock/manifests/{backup}.json");
            let dump = restic(&["dump", &id, &path]).map_err(|e| e.to_string())?;
            if !dump.status.success() {
                return Err(
                    format!("restic dump of manifest {id}: {}", common::text(&dump)).into(),
                );
            }
            decrypted.push(String::from_utf8_lossy(&dump.stdout).into_owned());
            manifests += 1;
        }
    }
    if manifests == 0 {
        return Err("no manifest found to check".into());
    }
    let _ = std::fs::remove_dir_all(stack.path().join("restic-cache"));
    for (name, value) in &canaries {
        if decrypted.iter().any(|d| d.contains(value.as_str())) {
            leaks.push(format!("{name} in the decrypted snapshots or manifests"));
        }
    }

    // A password file others can read is refused, naming the file, mode and fix.
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    let refused = stack.run(&["validate"]);
    let refused_text = common::text(&refused);
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let named = refused_text.contains(&pw_file.display().to_string())
        && refused_text.contains("0644")
        && refused_text.contains(&format!("chmod 600 {}", pw_file.display()));
    if refused.status.code() != Some(2) || !named || refused_text.contains(&repo_pw) {
        return Err(format!(
            "a 0644 password file was not refused clearly (exit {:?}):\n{refused_text}",
            refused.status.code()
        )
        .into());
    }

    let seen = seen.lock().unwrap();
    eprintln!(
        "torture: secrets: {} /proc samples over processes {:?}; secrets passed by environment: {:?}",
        seen.samples, seen.processes, seen.in_environment
    );
    leaks.extend(seen.in_arguments.iter().cloned());
    leaks.extend(seen.foreign_in_environment.iter().cloned());
    if seen.samples < 10 {
        return Err(format!("the /proc sampler ran only {} times", seen.samples).into());
    }
    if !leaks.is_empty() || !not_private.is_empty() {
        return Err(format!("leaks: {leaks:#?}\nnot created private: {not_private:#?}").into());
    }
    Ok(())
}

/// [`run_with_deadline`] that sends the child's pid as soon as it runs.
fn run_with_deadline_reporting(
    cmd: &mut std::process::Command,
    deadline: Duration,
    pid: std::sync::mpsc::Sender<u32>,
) -> Result<std::process::Output, String> {
    hostile::run_with_deadline_then(cmd, deadline, move |id| {
        let _ = pid.send(id);
    })
}
