//! Issue 14, "several hosts, one bucket", as a torture scenario: two hosts (network
//! namespaces on a bridge, each with its own config, stack name, host identity, state
//! dir and local repository) each run `drydock serve` with second-level schedules for
//! backup, sync and prune, their S3 copy in one bucket and one prefix of a three-node
//! Garage cluster (replication factor 3), each host through a node of its own. A writer
//! per host keeps adding data to its sources (a `files` directory and a SQLite
//! database) the whole time. Midway the third Garage node is stopped, later started
//! again; the daemons run on.
//!
//! Then both daemons get SIGTERM and the checks: each kept its schedules (runs per job
//! from its state database: every job ran, also after the node came back, and no slot
//! was lost), the runs that failed and the S3 retries they logged are counted; every
//! backup each stack keeps in the bucket is restored from the S3 copy into a fresh
//! folder and must equal one state its writer left (an lstat walk with SHA-256 of the
//! files, `sqlite3 .dump`), in order, the newest the final one; a stack cannot restore
//! the other's backups; `restic check --read-data` passes on the bucket. Data lost: a
//! restore that is not its own stack's data as written, or the final data missing.
//!
//! Quick mode runs the daemons about 80 s (node down from 15 s to 35 s); full mode
//! about 6 minutes with two outages. Without root (no `ip netns`) the hosts are two
//! processes on loopback with their own folders, said on stderr.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::{Serve, TOKEN};
use common::torture::{runs, Failure, Mode, Tally};
use common::{Stack, REPO_PASSWORD};
use drydock_testkit::garage_cluster::GarageCluster;
use drydock_testkit::netns::{Bridge, Netns};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The node stopped midway; host `k` talks to node `k` (0 and 1), never to this one.
const STOPPED_NODE: usize = 2;
const PREFIX: &str = "fleet";
/// How long a good backup may take to come after the writers stop: a request to a
/// node that just came back can hang until the client's 60 s timeout and its retry.
const FINAL_WAIT: Duration = Duration::from_secs(240);
const SCHEDULES: [(&str, u64); 3] = [("backup", 5), ("sync", 15), ("prune", 20)];

/// How long the daemons run, and when the node is down (start, end) within that.
struct Plan {
    run: Duration,
    outages: Vec<(Duration, Duration)>,
}

fn plan() -> Plan {
    let s = Duration::from_secs;
    match Mode::current() {
        Mode::Quick => Plan {
            run: s(80),
            outages: vec![(s(15), s(35))],
        },
        Mode::Full => Plan {
            run: s(360),
            outages: vec![(s(60), s(140)), (s(220), s(290))],
        },
    }
}

/// The lstat walk of `docs` (kind and mode, size, SHA-256 by path) and the database's
/// `.dump`.
type Tree = BTreeMap<PathBuf, String>;

fn tree(root: &Path) -> Tree {
    let mut tree = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let hash = if md.is_file() {
            hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
        } else {
            String::new()
        };
        tree.insert(
            e.path().strip_prefix(root).unwrap().to_path_buf(),
            format!("{:o} {} {hash}", md.mode(), md.len()),
        );
    }
    tree
}

fn dump(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(db)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Every state a host's writer left its sources in, in order.
#[derive(Default)]
struct Written {
    trees: Vec<Tree>,
    dumps: Vec<String>,
}

/// One host: its namespace (none on the loopback fallback), its stack, what its
/// writer wrote.
struct Host {
    name: &'static str,
    ns: Option<Netns>,
    stack: Stack,
    written: Arc<Mutex<Written>>,
}

fn config(name: &str, endpoint: &str, cluster: &GarageCluster) -> String {
    let mut schedules = String::new();
    for (job, every) in SCHEDULES {
        schedules.push_str(&format!(
            "[[schedule]]\njob = \"{job}\"\ncron = \"*/{every} * * * * *\"\n\n"
        ));
    }
    format!(
        "[stack]\nname = \"{name}\"\nstate_dir = \"state\"\nhost = \"host-{name}\"\n\n[repository]\npath = \"repo\"\npassword = \"${{env:TEST_REPO_PASSWORD}}\"\n\n[serve]\ntoken = \"${{env:TEST_SERVE_TOKEN}}\"\nstop_timeout = \"60s\"\n\n{schedules}[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nbucket = \"{}\"\nprefix = \"{PREFIX}\"\npath_style = true\naccess_key_id = \"${{env:TEST_S3_KEY}}\"\nsecret_access_key = \"${{env:TEST_S3_SECRET}}\"\n\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" }},\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n]\n",
        drydock_testkit::garage::REGION,
        cluster.bucket
    )
}

/// A stack folder with `text` as its config and the cluster's keys in its environment.
fn stack_with(text: &str, cluster: &GarageCluster) -> Stack {
    let s = Stack::new("")
        .env("TEST_SERVE_TOKEN", TOKEN)
        .env("TEST_S3_KEY", &cluster.access_key_id)
        .env("TEST_S3_SECRET", &cluster.secret_access_key);
    std::fs::write(s.path().join("drydock.toml"), text).unwrap();
    s
}

/// Writes generation `n` of `name`'s data, each change atomic for a reader: a new
/// directory `docs/gen-N` (made aside, renamed in) and two rows in one transaction;
/// records the states.
fn write_generation(dir: &Path, name: &str, n: u32, written: &Mutex<Written>) {
    let stage = dir.join("stage").join(format!("gen-{n}"));
    std::fs::create_dir_all(&stage).unwrap();
    let files = 1 + n % 3;
    for i in 0..files {
        let body = format!("{name} generation {n} file {i}\n")
            .repeat(50 + (n as usize * 37 + i as usize * 101) % 900);
        std::fs::write(stage.join(format!("f{i}.txt")), body).unwrap();
    }
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::rename(&stage, dir.join("docs").join(format!("gen-{n}"))).unwrap();
    let t = tree(&dir.join("docs"));
    written.lock().unwrap().trees.push(t);
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(dir.join("app.db"))
        .arg(format!(
            "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT); BEGIN; INSERT INTO t (v) VALUES ('{name} {n} a'), ('{name} {n} b'); COMMIT;"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let d = dump(&dir.join("app.db"));
    written.lock().unwrap().dumps.push(d);
}

fn start_serve(host: &Host) -> Serve {
    let program = env!("CARGO_BIN_EXE_drydock");
    let (mut cmd, listen) = match &host.ns {
        Some(ns) => (ns.command(program), format!("{}:0", ns.ip)),
        None => (Command::new(program), "127.0.0.1:0".to_string()),
    };
    cmd.current_dir(host.stack.path())
        // JSON logs carry timestamps: the kept daemon logs line up with the outages.
        .args(["--log-format", "json", "serve", "--listen", &listen])
        .env_remove("DRYDOCK_CONFIG")
        .envs(host.stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null());
    Serve::start_command(cmd)
}

fn restic(cluster: &GarageCluster, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new("restic")
        .arg("-r")
        .arg(cluster.restic_repo(0, PREFIX))
        .args(args)
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("AWS_ACCESS_KEY_ID", &cluster.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &cluster.secret_access_key)
        .env("AWS_DEFAULT_REGION", drydock_testkit::garage::REGION)
        .env("RESTIC_CACHE_DIR", cache.path())
        .output()
        .unwrap()
}

fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{} ...", &s[..s.floor_char_boundary(600)])
    } else {
        s
    }
}

/// Per stack (`stack:` tag), its backups in the bucket (`backup:` tag), oldest first.
fn remote_backups(cluster: &GarageCluster) -> Result<BTreeMap<String, Vec<String>>, Failure> {
    let out = restic(cluster, &["snapshots", "--json", "--no-lock"]);
    check!(
        out.status.success(),
        "restic snapshots: {}",
        common::text(&out)
    );
    let mut snaps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    snaps.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in snaps {
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let tag = |p: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(p))
                .map(str::to_string)
        };
        if let (Some(stack), Some(backup)) = (tag("stack:"), tag("backup:")) {
            let ids = by.entry(stack).or_default();
            if !ids.contains(&backup) {
                ids.push(backup);
            }
        }
    }
    Ok(by)
}

/// Counts of one host's job runs: by kind and outcome, from its state database.
fn run_counts(stack: &Stack) -> BTreeMap<(String, String), u64> {
    let out = Command::new("sqlite3")
        .arg(stack.path().join("state/state.db"))
        .arg("SELECT kind, coalesce(outcome, 'open'), count(*) FROM job_runs GROUP BY 1, 2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((
                (f.next()?.into(), f.next()?.into()),
                f.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Start times (RFC 3339 text) of one host's runs of `kind` that ended ok.
fn ok_starts(stack: &Stack, kind: &str) -> Vec<String> {
    let out = Command::new("sqlite3")
        .arg(stack.path().join("state/state.db"))
        .arg(format!(
            "SELECT started FROM job_runs WHERE kind = '{kind}' AND outcome IN ('ok', 'warning') ORDER BY started"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes a daemon's log next to the test's records; returns where.
fn keep_log(name: &str, lines: &[String]) -> PathBuf {
    let path = common::torture::records_dir().join(format!("multihost-{name}.log"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// Every thread's stack of a stuck daemon (gdb), for the kept log.
fn backtraces(pid: u32) -> String {
    Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("gdb: {e}"))
}

/// Every run of one host, one line each (for the kept log).
fn all_runs(stack: &Stack) -> Vec<String> {
    let out = Command::new("sqlite3")
        .arg(stack.path().join("state/state.db"))
        .arg("SELECT id, kind, started, finished, outcome, summary FROM job_runs ORDER BY id")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn restored_verified(code: i32, r: &Value) -> Result<(), Failure> {
    let errors: Vec<&str> = r["sources"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["error"].as_str()).collect())
        .unwrap_or_default();
    check!(code == 0, "restore: exit {code}: {errors:?} {}", brief(r));
    check!(r["verified"] == true, "restore not verified: {}", brief(r));
    Ok(())
}

#[derive(Default)]
struct Figures {
    job_runs: u64,
    failed_runs: u64,
    skipped_slots: u64,
    retries: u64,
    backups_restored: u64,
    /// Waits of 15 s before `restic check` for listings to agree after the outage.
    oracle_waits: u64,
}

/// One whole run of the scenario.
fn trial(figures: &mut Figures) -> Result<(), Failure> {
    let plan = plan();
    let mut bridge = drydock_testkit::netns::available().then(Bridge::new);
    if bridge.is_none() {
        eprintln!("torture: multihost: no network namespaces here (needs root and `ip`): the two hosts are processes on loopback");
    }
    let ip = bridge
        .as_ref()
        .map_or(std::net::Ipv4Addr::LOCALHOST, |b| b.ip);
    let mut cluster = GarageCluster::start(ip);
    let mut hosts = Vec::new();
    for (k, name) in ["alpha", "beta"].into_iter().enumerate() {
        let ns = bridge.as_mut().map(Bridge::add_namespace);
        let stack = stack_with(&config(name, &cluster.endpoint(k), &cluster), &cluster);
        let written = Arc::new(Mutex::new(Written::default()));
        write_generation(stack.path(), name, 0, &written);
        hosts.push(Host {
            name,
            ns,
            stack,
            written,
        });
    }
    // Both daemons at once: their first backups create the S3 copy at the same moment.
    let serves: Vec<Serve> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts.iter().map(|h| s.spawn(|| start_serve(h))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = Instant::now();
    // The engine's events of each daemon (what a warning was about), for the kept log.
    let events: Vec<Arc<Mutex<Vec<String>>>> = serves
        .iter()
        .map(|serve| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let (sink, url) = (Arc::clone(&lines), serve.url("/api/v1/events"));
            std::thread::spawn(move || {
                use std::io::BufRead;
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let Ok(mut r) = agent.get(&url).call() else {
                    return;
                };
                let body = r.body_mut().as_reader();
                for line in std::io::BufReader::new(body).lines().map_while(Result::ok) {
                    if line.starts_with("data:") {
                        sink.lock()
                            .unwrap()
                            .push(format!("{} {line}", jiff::Timestamp::now()));
                    }
                }
            });
            lines
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = hosts
        .iter()
        .map(|h| {
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&h.written));
            let (dir, name) = (h.stack.path().to_path_buf(), h.name);
            std::thread::spawn(move || {
                let mut n = 1;
                while !stop.load(Ordering::Relaxed) {
                    write_generation(&dir, name, n, &written);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(700 + u64::from(n % 5) * 150));
                }
            })
        })
        .collect();

    // The outages, while the daemons run on.
    for &(down, up) in &plan.outages {
        sleep_until(started + down, &serves);
        eprintln!(
            "torture: multihost: stopping garage node {STOPPED_NODE} at {:?}",
            started.elapsed()
        );
        cluster.stop_node(STOPPED_NODE);
        sleep_until(started + up, &serves);
        eprintln!(
            "torture: multihost: starting garage node {STOPPED_NODE} at {:?}",
            started.elapsed()
        );
        cluster.start_node(STOPPED_NODE);
    }
    sleep_until(started + plan.run, &serves);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    // A backup that starts after the last write takes the final data.
    let last_write = jiff::Timestamp::now();
    for (host, serve) in hosts.iter().zip(&serves) {
        let deadline = Instant::now() + FINAL_WAIT;
        loop {
            let runs = serve.runs();
            let done = runs.iter().any(|r| {
                r["kind"] == "backup"
                    && r["verdict"] == "ok"
                    && r["started"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .is_some_and(|t| t > last_write)
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                for (k, (h, s)) in hosts.iter().zip(&serves).enumerate() {
                    let mut log = s.stderr();
                    log.extend(all_runs(&h.stack));
                    log.extend(events[k].lock().unwrap().clone());
                    log.push(backtraces(s.pid()));
                    keep_log(h.name, &log);
                }
                let log_file = common::torture::records_dir().join("multihost-*.log");
                return Err(Failure::Failed(format!(
                    "{}: no good backup after the last write within {FINAL_WAIT:?}: {} (daemon log: {})",
                    host.name,
                    brief(&Value::Array(runs.into_iter().take(4).collect())),
                    log_file.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let mut logs = Vec::new();
    for (k, (host, serve)) in hosts.iter().zip(serves).enumerate() {
        let stderr = serve.stderr();
        let code = serve.terminate();
        check!(code == 0, "{}: serve exited {code} on SIGTERM", host.name);
        let mut kept = stderr.clone();
        kept.extend(all_runs(&host.stack));
        kept.extend(events[k].lock().unwrap().clone());
        keep_log(host.name, &kept);
        logs.push(stderr);
    }
    let ran_for = started.elapsed();

    // The schedules: every job ran, ran again after the (last) outage, and no slot was lost.
    let back_up = plan.outages.last().map(|o| o.1).unwrap_or_default();
    for (host, log) in hosts.iter().zip(&logs) {
        let counts = run_counts(&host.stack);
        let retries = log.iter().filter(|l| l.contains("retrying in")).count() as u64;
        figures.retries += retries;
        eprintln!(
            "torture: multihost: {}: runs {counts:?}, {retries} S3 retries",
            host.name
        );
        for (job, every) in SCHEDULES {
            let of = |outcome: &str| {
                counts
                    .get(&(job.to_string(), outcome.to_string()))
                    .copied()
                    .unwrap_or(0)
            };
            let all: u64 = counts
                .iter()
                .filter(|((k, _), _)| k == job)
                .map(|(_, n)| n)
                .sum();
            let skipped = of("skipped");
            let failed = all - skipped - of("ok") - of("warning");
            figures.job_runs += all - skipped;
            figures.skipped_slots += skipped;
            figures.failed_runs += failed;
            let slots = ran_for.as_secs() / every;
            check!(
                all + 1 >= slots * 7 / 10,
                "{}: {job} every {every} s ran or skipped {all} times in {} s ({slots} slots)",
                host.name,
                ran_for.as_secs()
            );
            let oks = ok_starts(&host.stack, job);
            let after: jiff::Timestamp = jiff::Timestamp::now()
                - jiff::SignedDuration::try_from(ran_for.saturating_sub(back_up)).unwrap();
            check!(
                oks.iter()
                    .any(|t| t.parse::<jiff::Timestamp>().is_ok_and(|t| t > after)),
                "{}: no good {job} run after garage node {STOPPED_NODE} came back ({} good in all)",
                host.name,
                oks.len()
            );
        }
    }

    // Every kept backup restores from the S3 copy into a fresh folder, as written.
    let by = remote_backups(&cluster)?;
    for (k, host) in hosts.iter().enumerate() {
        let other = &hosts[1 - k];
        let ids = by.get(host.name).cloned().unwrap_or_default();
        lost_unless!(
            !ids.is_empty(),
            "{} keeps no backup in the bucket",
            host.name
        );
        let text = std::fs::read_to_string(host.stack.path().join("drydock.toml")).unwrap();
        let fresh = stack_with(&text, &cluster);
        let written = host.written.lock().unwrap();
        let mut last_match = (0, 0);
        for id in &ids {
            let _ = std::fs::remove_dir_all(fresh.path().join("docs"));
            let _ = std::fs::remove_file(fresh.path().join("app.db"));
            let (code, r) = fresh.json(&["restore", id, "--all", "--force", "--from", "offsite"]);
            restored_verified(code, &r).map_err(|f| match f {
                Failure::Failed(w) => Failure::Failed(format!("{} restoring {id}: {w}", host.name)),
                f => f,
            })?;
            figures.backups_restored += 1;
            let t = tree(&fresh.path().join("docs"));
            let d = dump(&fresh.path().join("app.db"));
            let ti = written.trees.iter().position(|w| *w == t);
            let di = written.dumps.iter().position(|w| *w == d);
            lost_unless!(
                ti.is_some() && di.is_some(),
                "{}'s backup {id} restores data its writer never left ({} files, files match: {}, database matches: {})",
                host.name,
                t.len(),
                ti.is_some(),
                di.is_some()
            );
            let now = (ti.unwrap(), di.unwrap());
            check!(
                now.0 >= last_match.0 && now.1 >= last_match.1,
                "{}'s backups restore out of order: {id} is state {now:?} after {last_match:?}",
                host.name
            );
            last_match = now;
        }
        lost_unless!(
            last_match == (written.trees.len() - 1, written.dumps.len() - 1),
            "{}'s newest backup {} is state {last_match:?}, not the final data ({}, {})",
            host.name,
            ids.last().unwrap(),
            written.trees.len() - 1,
            written.dumps.len() - 1
        );
        // The other stack's backups are not this stack's to restore.
        if let Some(theirs) = by.get(other.name).and_then(|v| v.last()) {
            let _ = std::fs::remove_dir_all(fresh.path().join("docs"));
            let (code, r) =
                fresh.json(&["restore", theirs, "--all", "--force", "--from", "offsite"]);
            check!(
                code != 0,
                "{} restored {}'s backup {theirs}: {}",
                host.name,
                other.name,
                brief(&r)
            );
            lost_unless!(
                !fresh.path().join("docs").exists(),
                "{} wrote data restoring {}'s backup {theirs}",
                host.name,
                other.name
            );
        }
    }
    // The oracle runs once the cluster agrees again: until the node that was down has
    // synced its tables, listings name index files deleted meanwhile, which restic
    // (unlike drydock, which leaves them out) cannot load. Each wait is counted.
    if let Err(e) = cluster.sync_tables() {
        eprintln!("garage repair tables: {e}");
    }
    let mut out = restic(&cluster, &["check", "--read-data"]);
    for _ in 0..8 {
        if out.status.success() || !common::text(&out).contains("Key not found") {
            break;
        }
        figures.oracle_waits += 1;
        std::thread::sleep(Duration::from_secs(15));
        out = restic(&cluster, &["check", "--read-data"]);
    }
    let text = common::text(&out);
    check!(
        out.status.success(),
        "restic check --read-data: {}",
        &text[text.len() - text.len().min(800)..]
    );
    drop(cluster);
    drop(bridge);
    Ok(())
}

/// Sleeps until `at`, checking every few seconds that both daemons still answer.
fn sleep_until(at: Instant, serves: &[Serve]) {
    while Instant::now() < at {
        for s in serves {
            let (status, _) = s.get("/api/v1/status");
            assert_eq!(status, 200, "a daemon stopped answering: {:?}", s.stderr());
        }
        std::thread::sleep(
            at.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(3)),
        );
    }
}

#[test]
fn two_hosts_share_one_bucket_on_a_three_node_cluster_through_a_node_outage() {
    let mut tally = Tally::new(
        "Several hosts, one bucket: two daemons, three-node Garage, a node stopped and started",
        "torture_multihost",
        "two_hosts_share_one_bucket_on_a_three_node_cluster_through_a_node_outage",
    );
    let mut figures = Figures::default();
    for _ in 0..runs(1, 1) {
        tally.trial(|_| trial(&mut figures));
    }
    tally.figure("job_runs", figures.job_runs.into());
    tally.figure("failed_runs", figures.failed_runs.into());
    tally.figure("skipped_slots", figures.skipped_slots.into());
    tally.figure("s3_retries", figures.retries.into());
    tally.figure("backups_restored", figures.backups_restored.into());
    tally.figure("oracle_waits", figures.oracle_waits.into());
    eprintln!(
        "torture: multihost: {} job runs, {} failed, {} slots skipped, {} S3 retries, {} backups restored",
        figures.job_runs, figures.failed_runs, figures.skipped_slots, figures.retries, figures.backups_restored
    );
    tally.finish();
}
