//! Tortures the remote copy with the S3 faults of the field, injected by the fault proxy
//! between drydock and a real Garage: 500 InternalError, 503 SlowDown, 429, requests
//! that hang, connections reset mid-body and short bodies, on PUT, GET, HEAD, LIST or
//! DELETE, at a random request index, during a backup (with its sync), a restore
//! `--from` the remote, a `verify --copy` and a prune. The fault goes on an S3
//! operation the run is seen making (a healthy run of it counts its requests), at an
//! index it reaches; drydock's client sends no HEAD, so HEAD is never drawn.
//!
//! A fault is either transient (one or two requests: the client's retries must carry
//! the run to exit 0) or persistent (every such request from an index on: the run may
//! fail). The invariant, checked after each trial over a healthy connection: no run
//! exits 0, and no copy is listed `verified`, with data missing or unreadable on the
//! remote. What drydock said is synced is checked by restic itself (`check
//! --read-data` straight against Garage), by `drydock verify --copy offsite
//! --read-data`, and by restoring it from the remote and comparing the files with what
//! was backed up. A restore that fails leaves the target as it was; a failed run is
//! completed by the next healthy one.
//!
//! Hangs cost the client's 60 s I/O timeout each, so quick mode leaves them out.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::torture::{runs, Failure, Mode, Tally};
use common::{restic_s3, Stack};
use drydock_testkit::faultproxy::{FaultKind, FaultProxy, Faults, Injection, Op};
use drydock_testkit::garage::GarageServer;
use rand::seq::IndexedRandom;
use rand::Rng;

type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Every file under `dir` with its bytes (empty when `dir` is missing).
fn files_of(dir: &Path) -> Files {
    common::files_under(dir).into_iter().collect()
}

/// Writes version `v` of the documents: small texts and one incompressible scan, so a
/// backup makes several packs and uploads of some size.
fn write_docs(docs: &Path, v: u32) {
    std::fs::create_dir_all(docs).unwrap();
    for i in 0..8 {
        std::fs::write(
            docs.join(format!("doc{i}.txt")),
            format!("document {i} version {v} ").repeat(2000),
        )
        .unwrap();
    }
    let scan: Vec<u8> = (0..200_000u32)
        .map(|i| ((i ^ v).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(docs.join("scan.bin"), scan).unwrap();
}

/// The stack of one trial: `app/docs` (critical), its remote `offsite` reached through
/// the proxy under its own prefix, retention keeping one backup a day.
fn trial_stack(garage: &GarageServer, proxy: &FaultProxy, prefix: &str) -> (Stack, PathBuf) {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" }]\n\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n",
    )
    .with_remote(garage, &proxy.endpoint(), prefix);
    let docs = stack.path().join("docs");
    (stack, docs)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operation {
    Backup,
    Restore,
    Verify,
    Prune,
}

/// Requests per S3 operation the proxy saw since its last `set`.
fn requests(proxy: &FaultProxy) -> Vec<(Op, u64)> {
    Op::ALL
        .iter()
        .map(|op| (*op, proxy.requests_of(*op)))
        .collect()
}

fn copy_status<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    report["copies"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// The status `drydock backups` gives `id` in copy `name`.
fn listed(stack: &Stack, id: &str, name: &str) -> Result<String, Failure> {
    let (code, list) = stack.json(&["backups"]);
    if code != 0 {
        return Err(format!("`drydock backups` exited {code}: {list}").into());
    }
    let status = list["backups"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["id"] == id))
        .and_then(|b| copy_status(b, name))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("not listed");
    Ok(status.to_string())
}

fn backup(stack: &Stack) -> Result<String, Failure> {
    let (code, report) = stack.json(&["backup"]);
    if code != 0 {
        return Err(format!("healthy backup exited {code}: {report}").into());
    }
    Ok(report["id"].as_str().unwrap_or_default().to_string())
}

/// Over a healthy connection: the remote holds `id` completely. restic checks every
/// pack straight from Garage, drydock verifies it with a full read, and the backup
/// restores from the remote alone into files equal to `expected`. A failure here after
/// drydock reported the backup synced is data lost.
fn remote_holds(
    stack: &Stack,
    garage: &GarageServer,
    prefix: &str,
    id: &str,
    expected: &Files,
) -> Result<(), String> {
    // --no-lock: a run whose lock DELETE kept failing leaves its lock behind, which
    // drydock removes (dead PID) but restic 0.14 refuses for 30 minutes; the data is
    // what is checked here.
    let check = restic_s3(garage, prefix, &["--no-lock", "check", "--read-data"]);
    if !check.status.success() {
        return Err(format!(
            "restic check --read-data of the remote failed: {}",
            common::text(&check)
        ));
    }
    let (code, verify) = stack.json(&["verify", "--copy", "offsite", "--read-data"]);
    if code != 0 {
        return Err(format!(
            "verify --copy offsite --read-data exited {code}: {verify}"
        ));
    }
    let (code, restored) = stack.json(&["restore", id, "--all", "--force", "--from", "offsite"]);
    if code != 0 || restored["verified"] != true {
        return Err(format!(
            "restore {id} --from offsite exited {code}: {restored}"
        ));
    }
    let now = files_of(&stack.path().join("docs"));
    if &now != expected {
        return Err(format!(
            "restore {id} --from offsite verified but the files differ from what was backed up"
        ));
    }
    Ok(())
}

struct Fault {
    kind: FaultKind,
    op: Op,
    /// Every request of `op` from the index on, not just one.
    persistent: bool,
    index: u64,
}

impl Fault {
    /// A fault on one of the operations `seen` says the run makes (with how many of
    /// each), at an index it reaches, so the fault is met.
    fn draw(rng: &mut impl Rng, seen: &[(Op, u64)]) -> Fault {
        let kinds: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|k| *k != FaultKind::Hang || Mode::current() == Mode::Full)
            .collect();
        let kind = *kinds.choose(rng).unwrap();
        let used: Vec<(Op, u64)> = seen.iter().copied().filter(|(_, n)| *n > 0).collect();
        let (op, count) = *used.choose(rng).unwrap_or(&(Op::Get, 1));
        // Hangs are transient only: a persistent hang is a dead server, slow to prove.
        let persistent = kind != FaultKind::Hang && rng.random_bool(0.3);
        Fault {
            kind,
            op,
            persistent,
            index: rng.random_range(0..count.min(6)),
        }
    }

    fn injection(&self) -> Faults {
        Faults {
            inject: vec![Injection {
                op: Some(self.op),
                kind: self.kind,
                at: if self.persistent {
                    vec![]
                } else {
                    vec![self.index]
                },
                from: self.persistent.then_some(self.index),
            }],
            ..Faults::default()
        }
    }

    fn describe(&self) -> String {
        format!(
            "{:?} on {} {:?} #{}",
            self.kind,
            if self.persistent { "every" } else { "one" },
            self.op,
            self.index + 1
        )
    }
}

/// One trial: two healthy backups, then `operation` under `fault`, then the checks.
fn trial(
    garage: &GarageServer,
    proxy: &FaultProxy,
    n: usize,
    operation: Operation,
    rng: &mut impl Rng,
    hits: &mut usize,
) -> Result<(), Failure> {
    let prefix = format!("s3torture-{n}");
    let (stack, docs) = trial_stack(garage, proxy, &prefix);
    proxy.set(Faults::default());
    write_docs(&docs, 1);
    backup(&stack)?;
    write_docs(&docs, 2);
    let second = backup(&stack)?;
    let seen_by_backup = requests(proxy);
    let v2 = files_of(&docs);
    let args: Vec<&str> = match operation {
        Operation::Backup => vec!["backup"],
        Operation::Restore => vec![
            "restore",
            second.as_str(),
            "--all",
            "--force",
            "--from",
            "offsite",
        ],
        Operation::Verify => vec!["verify", "--copy", "offsite", "--read-data"],
        Operation::Prune => vec!["prune", "--copy", "offsite"],
    };
    // Which requests the operation makes, from a healthy run of it (a prune can run
    // only once: its deletions are the ones of any prune, its reads those of a backup).
    let seen = match operation {
        Operation::Backup => seen_by_backup,
        Operation::Restore | Operation::Verify => {
            proxy.set(Faults::default());
            let (code, report) = stack.json(&args);
            if code != 0 {
                return Err(format!("healthy {operation:?} exited {code}: {report}").into());
            }
            requests(proxy)
        }
        Operation::Prune => vec![(Op::Put, 2), (Op::Get, 4), (Op::List, 4), (Op::Delete, 3)],
    };
    write_docs(&docs, 3);
    let v3 = files_of(&docs);
    let fault = Fault::draw(rng, &seen);
    let what = format!("{operation:?} under {}", fault.describe());

    proxy.set(fault.injection());
    let started = std::time::Instant::now();
    let (code, report) = stack.json(&args);
    let injected = proxy.injected();
    proxy.set(Faults::default());
    eprintln!(
        "trial {n}: {what}: exit {code} in {:.1} s; injected: {injected:?}",
        started.elapsed().as_secs_f64()
    );
    if !injected.is_empty() {
        *hits += 1;
    }
    let transient = !fault.persistent;
    if code != 0 && transient && !injected.is_empty() {
        return Err(Failure::Failed(format!(
            "{what}: a transient fault was not retried away (exit {code}): {report}"
        )));
    }

    match operation {
        Operation::Backup => {
            let id = report["id"].as_str().unwrap_or_default().to_string();
            if id.is_empty() {
                return Err(format!("{what}: exit {code} without a backup id: {report}").into());
            }
            let claimed = copy_status(&report, "offsite").map(|c| c["status"].clone());
            let listed_now = listed(&stack, &id, "offsite")?;
            match code {
                0 => {
                    if claimed != Some("verified".into()) || listed_now != "verified" {
                        return Err(format!(
                            "{what}: exit 0 but offsite is {claimed:?} / listed {listed_now}"
                        )
                        .into());
                    }
                    remote_holds(&stack, garage, &prefix, &id, &v3)
                        .map_err(|e| Failure::DataLost(format!("{what}: exit 0, but {e}")))?;
                }
                1 => {
                    if listed_now == "verified" {
                        // Listed as safe on the remote: it had better be.
                        remote_holds(&stack, garage, &prefix, &id, &v3).map_err(|e| {
                            Failure::DataLost(format!("{what}: listed verified, but {e}"))
                        })?;
                    } else if listed_now != "unsynced" {
                        return Err(format!(
                            "{what}: exit 1, offsite listed `{listed_now}`, expected unsynced"
                        )
                        .into());
                    }
                    let (code, sync) = stack.json(&["sync"]);
                    if code != 0 {
                        return Err(
                            format!("{what}: the healthy sync exited {code}: {sync}").into()
                        );
                    }
                    remote_holds(&stack, garage, &prefix, &id, &v3)
                        .map_err(|e| Failure::DataLost(format!("{what}: synced after, but {e}")))?;
                }
                other => {
                    return Err(format!(
                        "{what}: exit {other} (the local copy is healthy): {report}"
                    )
                    .into())
                }
            }
        }
        Operation::Restore => {
            let now = files_of(&docs);
            if code == 0 {
                if report["verified"] != true || now != v2 {
                    return Err(Failure::DataLost(format!(
                        "{what}: exit 0 but the restored files differ from backup {second}"
                    )));
                }
            } else if now != v3 && now != v2 {
                return Err(Failure::DataLost(format!(
                    "{what}: the failed restore (exit {code}) left the target neither as it was nor restored"
                )));
            }
            write_docs(&docs, 3);
            remote_holds(&stack, garage, &prefix, &second, &v2).map_err(Failure::Failed)?;
        }
        Operation::Verify => {
            if code != 0 && code != 2 {
                return Err(format!("{what}: exit {code}: {report}").into());
            }
            // Whatever it recorded under faults, a healthy verify sets it right and the
            // data is all there.
            remote_holds(&stack, garage, &prefix, &second, &v2).map_err(Failure::Failed)?;
            if listed(&stack, &second, "offsite")? != "verified" {
                return Err(
                    format!("{what}: still not listed verified after a clean verify").into(),
                );
            }
        }
        Operation::Prune => {
            if code != 0 {
                let (again, rerun) = stack.json(&["prune", "--copy", "offsite"]);
                if again != 0 {
                    return Err(format!(
                        "{what}: exit {code}, and the healthy re-run exited {again}: {rerun}"
                    )
                    .into());
                }
            }
            // The newest backup is the one retention keeps; it must be whole.
            remote_holds(&stack, garage, &prefix, &second, &v2)
                .map_err(|e| Failure::DataLost(format!("{what}: exit {code}; after it, {e}")))?;
        }
    }
    Ok(())
}

#[test]
fn s3_faults_never_leave_a_run_claiming_missing_data() {
    let garage = GarageServer::start();
    let proxy = FaultProxy::start(garage.s3_port, Faults::default());
    let mut tally = Tally::new(
        "S3 faults: backup, restore, verify, prune",
        "torture_s3",
        "s3_faults_never_leave_a_run_claiming_missing_data",
    );
    let operations = [
        Operation::Backup,
        Operation::Restore,
        Operation::Verify,
        Operation::Prune,
    ];
    let mut hits = 0;
    let total = runs(6, 60);
    for n in 0..total {
        // Every operation in turn, so even quick mode covers each.
        let operation = operations[n % operations.len()];
        tally.trial(|rng| trial(&garage, &proxy, n, operation, rng, &mut hits));
    }
    eprintln!("torture: {hits} of {total} trials hit their fault");
    assert!(
        hits * 2 >= total,
        "only {hits} of {total} trials met their fault: the matrix tortures nothing"
    );
    tally.finish();
}

/// Lock files in the trial's prefix of the bucket, as restic lists them.
fn remote_locks(garage: &GarageServer, prefix: &str) -> Vec<String> {
    let out = restic_s3(garage, prefix, &["--no-lock", "list", "locks"]);
    assert!(
        out.status.success(),
        "restic list locks: {}",
        common::text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A run whose lock DELETE fails on every retry leaves its lock on the remote (restic
/// refuses the copy meanwhile): it must say so, and the next run must remove it.
#[test]
fn a_lock_left_behind_is_reported_and_the_next_run_removes_it() {
    let garage = GarageServer::start();
    let proxy = FaultProxy::start(garage.s3_port, Faults::default());
    let prefix = "lock-left";
    let (stack, docs) = trial_stack(&garage, &proxy, prefix);
    write_docs(&docs, 1);
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report}");
    assert!(remote_locks(&garage, prefix).is_empty());

    write_docs(&docs, 2);
    proxy.set(Faults {
        inject: vec![Injection {
            op: Some(Op::Delete),
            kind: FaultKind::InternalError,
            at: vec![],
            from: Some(0),
        }],
        ..Faults::default()
    });
    let (code, report) = stack.json(&["backup"]);
    let offsite = copy_status(&report, "offsite").cloned().unwrap_or_default();
    assert_eq!(code, 0, "the backup itself succeeded: {report}");
    assert_eq!(offsite["status"], "verified", "{report}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("copy `offsite`")
            && warnings.contains("could not remove this run's lock")
            && warnings.contains("restic unlock"),
        "the lock left behind is not reported: {report}"
    );
    let left = remote_locks(&garage, prefix);
    assert_eq!(left.len(), 1, "{left:?}");

    proxy.set(Faults::default());
    let (code, report) = stack.json(&["sync"]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report
            .to_string()
            .contains(&format!("removed stale lock {}", &left[0][..8])),
        "the next run does not say it removed the lock left behind: {report}"
    );
    assert!(remote_locks(&garage, prefix).is_empty());
}
