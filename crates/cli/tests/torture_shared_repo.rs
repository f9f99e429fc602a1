//! Issue 12 item 3 as torture scenarios: one repository, several stacks. Two stacks with
//! the same service and source names (a `files` and a `sqlite` source) and different
//! data share one local repository, or one S3 bucket prefix (Garage) as their remote
//! copy. The fixed case of each: they back up, prune and verify at the same time, each
//! lists and restores only its own backups (an lstat walk with content hashes and
//! `sqlite3 .dump` as oracles), prune of one never removes the other's, `restic check
//! --read-data` passes afterwards. Then random interleavings: per trial a random number
//! of steps, each starting one random operation per stack (backup of new data, prune,
//! `verify --read-data`, restore over changed live data, or nothing) as two processes at
//! once, checked after every step against restic's own snapshot list (per `stack:` tag)
//! and at the end by restoring every backup each stack keeps. Data lost: a restore that
//! brings back other data than the backup took (the other stack's included), or a
//! backup of either stack gone that no prune of its own stack removed. And the identity
//! rule: the same stack name from another host is refused with nothing stored, unless
//! the config says the stack moved.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::torture::{runs, Failure, Tally};
use common::{restic_s3, Stack, REPO_PASSWORD};
use drydock_testkit::garage::GarageServer;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SERVICES: &str = "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n  { kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" },\n]\n";

/// A stack folder named `name` (also its stack name) on host `host`, using `repo`.
fn stack(name: &str, host: &str, repo: &Path, extra: &str) -> Stack {
    let s = Stack::new("");
    std::fs::write(
        s.path().join("drydock.toml"),
        format!(
            "[stack]\nname = \"{name}\"\nstate_dir = \"state\"\nhost = \"{host}\"\n{extra}\n[repository]\npath = \"{}\"\npassword = \"${{env:TEST_REPO_PASSWORD}}\"\n\n{SERVICES}",
            repo.display()
        ),
    )
    .unwrap();
    s
}

/// A report or listing, compact and cut to a few hundred characters for a message.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{} ...", &s[..s.floor_char_boundary(600)])
    } else {
        s
    }
}

/// Writes generation `generation` of `name`'s data: `docs` files unique to both stacks
/// and generation (`files` of them, the others removed), and two rows more in the
/// database.
fn write_data(s: &Stack, name: &str, generation: u32, files: usize) {
    let docs = s.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    for i in 0..files.max(5) {
        let path = docs.join(format!("doc{i}.txt"));
        if i < files {
            std::fs::write(
                &path,
                format!("{name} gen {generation} doc {i} ").repeat(500),
            )
            .unwrap();
        } else if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    std::fs::write(
        docs.join("sub/only-in-gen.txt"),
        format!("{name}-{generation}"),
    )
    .unwrap();
    sqlite(
        s,
        &format!(
            "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('{name} {generation} a'), ('{name} {generation} b');"
        ),
    );
}

fn sqlite(s: &Stack, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(s.path().join("app.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
}

/// Every entry under `docs` (lstat: kind, mode, size, SHA-256) and the database's
/// `.dump`.
type Oracle = (BTreeMap<PathBuf, String>, String);

/// The oracle of `s`'s live data.
fn oracle(s: &Stack) -> Oracle {
    let root = s.path().join("docs");
    let mut tree = BTreeMap::new();
    for e in walkdir::WalkDir::new(&root).min_depth(1) {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let hash = if md.is_file() {
            hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
        } else {
            String::new()
        };
        tree.insert(
            e.path().strip_prefix(&root).unwrap().to_path_buf(),
            format!("{:o} {} {hash}", md.mode(), md.len()),
        );
    }
    let dump = Command::new("sqlite3")
        .arg(s.path().join("app.db"))
        .arg(".dump")
        .output()
        .unwrap();
    (tree, String::from_utf8(dump.stdout).unwrap())
}

/// What differs between `got` and `want`, in one short line.
fn difference(got: &Oracle, want: &Oracle) -> String {
    let paths: BTreeSet<&PathBuf> = got.0.keys().chain(want.0.keys()).collect();
    let differing: Vec<String> = paths
        .into_iter()
        .filter(|p| got.0.get(*p) != want.0.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    let rows = |dump: &str| dump.lines().filter(|l| l.starts_with("INSERT")).count();
    format!(
        "{} docs entries differ ({}), database {} ({} rows, expected {})",
        differing.len(),
        differing
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if got.1 == want.1 { "equal" } else { "differs" },
        rows(&got.1),
        rows(&want.1)
    )
}

/// Removes the live data, so a restore has to bring all of it back.
fn wipe(s: &Stack) {
    let _ = std::fs::remove_dir_all(s.path().join("docs"));
    let _ = std::fs::remove_file(s.path().join("app.db"));
}

/// Changes the live data without a backup of it: a restore must undo all of it.
fn scribble(s: &Stack, rng: &mut StdRng) {
    if rng.random_bool(0.5) {
        wipe(s);
        return;
    }
    let docs = s.path().join("docs");
    std::fs::write(docs.join("doc0.txt"), "scribbled").unwrap();
    std::fs::write(docs.join("not-in-any-backup.txt"), "extra").unwrap();
    sqlite(s, "INSERT INTO t (v) VALUES ('scribbled');");
}

fn spawn(s: &Stack, args: &[&str]) -> Child {
    let mut all = args.to_vec();
    all.push("--json");
    s.command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A spawned run's (exit code, JSON).
fn finish(child: Child) -> Result<(i32, Value), Failure> {
    let out = child.wait_with_output().unwrap();
    let v = serde_json::from_slice(&out.stdout).map_err(|e| {
        let text = common::text(&out);
        Failure::Failed(format!(
            "stdout is not JSON ({e}): {}",
            &text[..text.floor_char_boundary(600)]
        ))
    })?;
    Ok((out.status.code().unwrap_or(-1), v))
}

/// Runs `args` in both stacks at once; returns each one's (exit code, JSON).
fn both(a: &Stack, b: &Stack, args: &[&str]) -> Result<[(i32, Value); 2], Failure> {
    let children = [spawn(a, args), spawn(b, args)];
    let [ca, cb] = children;
    Ok([finish(ca)?, finish(cb)?])
}

/// The backups `s` lists, newest first.
fn backup_ids(s: &Stack) -> Result<Vec<String>, Failure> {
    let (code, list) = s.json(&["backups"]);
    check!(code == 0, "backups: exit {code}: {}", brief(&list));
    Ok(list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect())
}

fn restic_local(repo: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .unwrap()
}

/// Where the two stacks' shared copy is, for restic.
#[derive(Clone, Copy)]
enum Shared<'a> {
    Local(&'a Path),
    S3(&'a GarageServer, &'a str),
}

impl Shared<'_> {
    fn restic(&self, args: &[&str]) -> Output {
        match self {
            Shared::Local(repo) => restic_local(repo, args),
            Shared::S3(garage, prefix) => restic_s3(garage, prefix, args),
        }
    }

    fn check(&self) -> Result<(), Failure> {
        let out = self.restic(&["check", "--read-data"]);
        let text = common::text(&out);
        check!(
            out.status.success(),
            "restic check --read-data: {}",
            &text[text.len() - text.len().min(600)..]
        );
        Ok(())
    }

    /// Per stack (`stack:` tag), the backup ids (`backup:` tag) of its snapshots,
    /// restic's own view with no lock.
    fn backups_by_stack(&self) -> Result<BTreeMap<String, BTreeSet<String>>, Failure> {
        let out = self.restic(&["snapshots", "--json", "--no-lock"]);
        check!(
            out.status.success(),
            "restic snapshots: {}",
            common::text(&out)
        );
        let snaps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in snaps {
            let tags: Vec<&str> = s["tags"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let tag = |prefix: &str| {
                tags.iter()
                    .find_map(|t| t.strip_prefix(prefix))
                    .map(str::to_string)
            };
            if let (Some(stack), Some(backup)) = (tag("stack:"), tag("backup:")) {
                by.entry(stack).or_default().insert(backup);
            }
        }
        Ok(by)
    }

    fn snapshot_count(&self) -> usize {
        let out = self.restic(&["snapshots", "--json", "--no-lock"]);
        assert!(out.status.success(), "{}", common::text(&out));
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len()
    }
}

/// The fixed case of the local scenario (the original test), as one trial.
fn fixed_local_case(a: &Stack, b: &Stack, repo: &Path) -> Result<(), Failure> {
    let shared = Shared::Local(repo);
    // The first backups create the repository: one first, so they do not race to init it.
    write_data(a, "alpha", 1, 5);
    write_data(b, "beta", 1, 5);
    for s in [a, b] {
        let (code, r) = s.json(&["backup", "--all"]);
        check!(code == 0, "first backup: exit {code}: {}", brief(&r));
    }
    for generation in 2..=3 {
        write_data(a, "alpha", generation, 5);
        write_data(b, "beta", generation, 5);
        for (code, r) in both(a, b, &["backup", "--all"])? {
            check!(code == 0, "concurrent backup: exit {code}: {}", brief(&r));
        }
    }
    let expected = [oracle(a), oracle(b)];

    // Each lists only its own three backups.
    let (ids_a, ids_b) = (backup_ids(a)?, backup_ids(b)?);
    check!(ids_a.len() == 3, "alpha lists {ids_a:?}");
    check!(ids_b.len() == 3, "beta lists {ids_b:?}");
    check!(
        ids_a.iter().all(|id| !ids_b.contains(id)),
        "both list one backup: {ids_a:?} {ids_b:?}"
    );

    // Prune both at once (same day: each keeps its newest backup only) and verify.
    for (code, r) in both(a, b, &["prune"])? {
        check!(code == 0, "concurrent prune: exit {code}: {}", brief(&r));
        let deleted = r["copies"][0]["deleted"].as_array().unwrap();
        check!(
            deleted.len() == 4,
            "two backups x two sources expected deleted: {}",
            brief(&r)
        );
    }
    let by = shared.backups_by_stack()?;
    for (name, ids) in [("alpha", &ids_a), ("beta", &ids_b)] {
        lost_unless!(
            by.get(name).is_some_and(|kept| kept.contains(&ids[0])),
            "{name}'s newest backup {} is gone from the repository",
            ids[0]
        );
    }
    check!(backup_ids(a)? == ids_a[..1], "alpha keeps its newest");
    check!(backup_ids(b)? == ids_b[..1], "beta keeps its newest");
    for (code, r) in both(a, b, &["verify", "--read-data"])? {
        check!(code == 0, "concurrent verify: exit {code}: {}", brief(&r));
    }
    shared.check()?;

    // A second prune of alpha alone must leave beta whole.
    let (code, r) = a.json(&["prune"]);
    check!(code == 0, "second prune: exit {code}: {}", brief(&r));
    lost_unless!(
        backup_ids(b)? == ids_b[..1],
        "alpha's prune changed beta's backups"
    );

    // Each restores its own data, exactly.
    for s in [a, b] {
        wipe(s);
    }
    for (code, r) in both(a, b, &["restore", "latest", "--all", "--force"])? {
        restored_verified(code, &r)?;
    }
    for (i, (s, name)) in [(a, "alpha"), (b, "beta")].into_iter().enumerate() {
        let got = oracle(s);
        lost_unless!(
            got == expected[i],
            "{name} did not restore its own data: {}",
            difference(&got, &expected[i])
        );
    }
    shared.check()
}

/// A restore report that says every source verified, or why not.
fn restored_verified(code: i32, r: &Value) -> Result<(), Failure> {
    check!(code == 0, "restore: exit {code}: {}", brief(r));
    check!(r["verified"] == true, "restore not verified: {}", brief(r));
    for s in r["sources"].as_array().unwrap() {
        check!(
            s["status"] == "verified" && s["differences"].as_array().is_some_and(|d| d.is_empty()),
            "restore of a source not verified: {}",
            brief(s)
        );
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Backup,
    Prune,
    Verify,
    Restore,
    Idle,
}

fn draw_op(rng: &mut StdRng) -> Op {
    match rng.random_range(0..100) {
        0..40 => Op::Backup,
        40..60 => Op::Prune,
        60..75 => Op::Verify,
        75..90 => Op::Restore,
        _ => Op::Idle,
    }
}

/// One stack of a random trial and what the test knows it holds.
struct Side<'a> {
    name: &'static str,
    stack: &'a Stack,
    generation: u32,
    /// Its backups in the shared copy, oldest first (the model).
    ids: Vec<String>,
    /// The oracle of each backup's data, taken right before it.
    data: BTreeMap<String, Oracle>,
}

impl Side<'_> {
    fn newest(&self) -> &str {
        self.ids.last().expect("a first backup")
    }
}

/// The arguments of `op` for the scenario's shared copy (`remote`: S3, else local).
fn args_of(op: Op, remote: bool) -> Vec<&'static str> {
    match (op, remote) {
        (Op::Backup, _) => vec!["backup", "--all"],
        (Op::Prune, false) => vec!["prune"],
        (Op::Prune, true) => vec!["prune", "--copy", "offsite"],
        (Op::Verify, false) => vec!["verify", "--read-data"],
        (Op::Verify, true) => vec!["verify", "--copy", "offsite", "--read-data"],
        (Op::Restore, false) => vec!["restore", "latest", "--all", "--force"],
        (Op::Restore, true) => vec!["restore", "latest", "--all", "--force", "--from", "offsite"],
        (Op::Idle, _) => vec![],
    }
}

/// A run that failed only because the other stack held the repository's lock longer than
/// drydock waits: a clean refusal, as long as it changed nothing (checked after).
fn lock_refusal(r: &Value) -> bool {
    r.to_string().contains("still held after waiting")
}

/// Judges one stack's run of `op` and updates the model.
fn judge(
    side: &mut Side<'_>,
    op: Op,
    code: i32,
    r: &Value,
    expected: Option<Oracle>,
    day: jiff::civil::Date,
    remote: bool,
) -> Result<(), Failure> {
    let name = side.name;
    if code != 0 && lock_refusal(r) {
        eprintln!("torture: {name}: {op:?} refused on the other stack's lock (allowed)");
        if let (Op::Backup, true, Some(id)) = (op, remote, r["id"].as_str()) {
            // Stored locally, not synced: the next sync must bring it to the remote.
            let (code, s) = side.stack.json(&["sync"]);
            check!(
                code == 0,
                "{name}: sync after a refused sync: exit {code}: {}",
                brief(&s)
            );
            side.ids.push(id.to_string());
            side.data.insert(id.to_string(), expected.expect("oracle"));
        }
        return Ok(());
    }
    match op {
        Op::Idle => {}
        Op::Backup => {
            check!(code == 0, "{name} backup: exit {code}: {}", brief(r));
            let id = r["id"].as_str().unwrap_or_default().to_string();
            check!(!id.is_empty(), "{name} backup reported no id");
            side.ids.push(id.clone());
            side.data.insert(id, expected.expect("oracle"));
        }
        Op::Prune => {
            check!(code == 0, "{name} prune: exit {code}: {}", brief(r));
            let mut gone = BTreeSet::new();
            for copy in r["copies"].as_array().unwrap() {
                for d in copy["deleted"].as_array().unwrap() {
                    let id = d["backup_id"].as_str().unwrap().to_string();
                    lost_unless!(
                        side.ids.contains(&id),
                        "{name}'s prune deleted {id}, not one of its backups"
                    );
                    lost_unless!(
                        id != side.newest(),
                        "{name}'s prune deleted its newest backup {id}"
                    );
                    gone.insert(id);
                }
            }
            side.ids.retain(|id| !gone.contains(id));
            // Same day: retention keeps each source's newest backup only.
            if jiff::Zoned::now().date() == day {
                check!(
                    side.ids.len() == 1,
                    "{name}'s prune kept {} backups on one day: {}",
                    side.ids.len(),
                    brief(r)
                );
            }
        }
        Op::Verify => check!(code == 0, "{name} verify: exit {code}: {}", brief(r)),
        Op::Restore => {
            restored_verified(code, r)?;
            let want = &side.data[side.newest()];
            let got = oracle(side.stack);
            lost_unless!(
                &got == want,
                "{name}'s restore of latest ({}) is not its data: {}",
                side.newest(),
                difference(&got, want)
            );
        }
    }
    Ok(())
}

/// After a step: restic's snapshots of each stack are exactly the model's backups, and
/// each stack lists only its own (all of them, or with `remote` its newest first: the
/// local copies keep every backup there, only the remote is pruned).
fn check_listings(shared: Shared<'_>, sides: &[Side<'_>; 2], remote: bool) -> Result<(), Failure> {
    let by = shared.backups_by_stack()?;
    for (i, side) in sides.iter().enumerate() {
        let other = &sides[1 - i];
        let held = by.get(side.name).cloned().unwrap_or_default();
        let model: BTreeSet<String> = side.ids.iter().cloned().collect();
        if let Some(id) = model.difference(&held).next() {
            return Err(Failure::DataLost(format!(
                "{}'s backup {id} is gone from the shared copy, though no prune of {} removed it (restic lists {} of its backups)",
                side.name,
                side.name,
                held.len()
            )));
        }
        check!(
            held == model,
            "{}: the shared copy holds backups {:?} no run reported, expected {:?}",
            side.name,
            held.difference(&model).collect::<Vec<_>>(),
            model
        );
        let listed = backup_ids(side.stack)?;
        check!(
            listed
                .iter()
                .all(|id| !other.ids.contains(id) && !other.data.contains_key(id)),
            "{} lists a backup of {}: {listed:?}",
            side.name,
            other.name
        );
        if !remote {
            let mut newest_first = side.ids.clone();
            newest_first.reverse();
            check!(
                listed == newest_first,
                "{} lists {listed:?}, expected {newest_first:?}",
                side.name
            );
        } else {
            // The local copy keeps every backup (only the remote is pruned here).
            check!(
                listed.first().map(String::as_str) == Some(side.newest()),
                "{}'s newest listed is {:?}, expected {}",
                side.name,
                listed.first(),
                side.newest()
            );
        }
    }
    Ok(())
}

/// One random interleaving of two stacks' backups, prunes, verifies and restores in one
/// shared copy. `a` and `b` are fresh stacks whose copy is `shared` (`remote`: the S3
/// remote `offsite`, the local repositories private).
fn random_trial(
    rng: &mut StdRng,
    a: &Stack,
    b: &Stack,
    shared: Shared<'_>,
    remote: bool,
) -> Result<(), Failure> {
    let day = jiff::Zoned::now().date();
    let mut sides = [
        Side {
            name: "alpha",
            stack: a,
            generation: 0,
            ids: vec![],
            data: BTreeMap::new(),
        },
        Side {
            name: "beta",
            stack: b,
            generation: 0,
            ids: vec![],
            data: BTreeMap::new(),
        },
    ];
    // The first backups one after the other (so they do not race to create the copy),
    // in random order.
    // Between 4 and 7 files: the newest backup never falls under half the median size,
    // where retention's anomaly guard would hold every deletion back.
    let first = rng.random_range(0..2);
    for i in [first, 1 - first] {
        let side = &mut sides[i];
        side.generation += 1;
        let files = rng.random_range(4..=7);
        write_data(side.stack, side.name, side.generation, files);
        let expected = oracle(side.stack);
        let (code, r) = side.stack.json(&["backup", "--all"]);
        judge(side, Op::Backup, code, &r, Some(expected), day, remote)?;
        check!(
            !side.ids.is_empty(),
            "{}: the first backup was refused",
            side.name
        );
    }
    check_listings(shared, &sides, remote)?;

    let steps = rng.random_range(3..=7);
    let mut plan = Vec::new();
    for step in 1..=steps {
        let mut ops = [draw_op(rng), draw_op(rng)];
        if ops == [Op::Idle, Op::Idle] {
            ops[rng.random_range(0..2)] = Op::Backup;
        }
        plan.push(format!("{:?}/{:?}", ops[0], ops[1]));
        let mut expected: [Option<Oracle>; 2] = [None, None];
        for (i, side) in sides.iter_mut().enumerate() {
            match ops[i] {
                Op::Backup => {
                    side.generation += 1;
                    let files = rng.random_range(4..=7);
                    write_data(side.stack, side.name, side.generation, files);
                    expected[i] = Some(oracle(side.stack));
                }
                Op::Restore => scribble(side.stack, rng),
                _ => {}
            }
        }
        // Both at once.
        let children: Vec<Option<Child>> = sides
            .iter()
            .zip(ops)
            .map(|(side, op)| (op != Op::Idle).then(|| spawn(side.stack, &args_of(op, remote))))
            .collect();
        let mut results = Vec::new();
        for child in children {
            results.push(match child {
                Some(c) => Some(finish(c)?),
                None => None,
            });
        }
        for (i, result) in results.into_iter().enumerate() {
            let (code, r) = result.unwrap_or((0, Value::Null));
            judge(
                &mut sides[i],
                ops[i],
                code,
                &r,
                expected[i].take(),
                day,
                remote,
            )
            .map_err(|f| context(f, &format!("step {step} of {plan:?}")))?;
        }
        check_listings(shared, &sides, remote)
            .map_err(|f| context(f, &format!("after step {step} of {plan:?}")))?;
    }
    eprintln!("torture: steps {plan:?}");

    // Every backup each stack keeps restores its own data, exactly (both stacks at once,
    // newest last so the live data ends as the newest).
    let from: &[&str] = if remote { &["--from", "offsite"] } else { &[] };
    let longest = sides[0].ids.len().max(sides[1].ids.len());
    for k in 0..longest {
        let mut children = Vec::new();
        for side in &sides {
            // Oldest first; a stack with fewer backups restores its newest again.
            let id = side.ids[k.min(side.ids.len() - 1)].clone();
            wipe(side.stack);
            let mut args = vec!["restore", id.as_str(), "--all", "--force"];
            args.extend_from_slice(from);
            children.push((id.clone(), spawn(side.stack, &args)));
        }
        for (side, (id, child)) in sides.iter().zip(children) {
            let (code, r) = finish(child)?;
            restored_verified(code, &r)
                .map_err(|f| context(f, &format!("{} restoring {id}", side.name)))?;
            let got = oracle(side.stack);
            let want = &side.data[&id];
            lost_unless!(
                &got == want,
                "{} restoring its backup {id}: {} (steps {plan:?})",
                side.name,
                difference(&got, want)
            );
        }
    }
    shared.check()
}

/// `f` with `what` in front of its reason.
fn context(f: Failure, what: &str) -> Failure {
    match f {
        Failure::Failed(why) => Failure::Failed(format!("{what}: {why}")),
        Failure::DataLost(why) => Failure::DataLost(format!("{what}: {why}")),
    }
}

#[test]
fn two_stacks_share_one_local_repository_concurrently() {
    let mut tally = Tally::new(
        "Shared repository: two stacks, concurrent backup/prune/verify/restore (local)",
        "torture_shared_repo",
        "two_stacks_share_one_local_repository_concurrently",
    );
    tally.trial(|_| {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let a = stack("alpha", "host-a", &repo, "");
        let b = stack("beta", "host-b", &repo, "");
        fixed_local_case(&a, &b, &repo)
    });
    for _ in 0..runs(3, 25) {
        tally.trial(|rng| {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("repo");
            let a = stack("alpha", "host-a", &repo, "");
            let b = stack("beta", "host-b", &repo, "");
            random_trial(rng, &a, &b, Shared::Local(&repo), false)
        });
    }
    tally.finish();
}

/// The fixed identity-rule case, as one trial.
fn identity_case() -> Result<(), Failure> {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let shared = Shared::Local(&repo);
    let first = stack("app", "host-one", &repo, "");
    write_data(&first, "one", 1, 5);
    let (code, r) = first.json(&["backup", "--all"]);
    check!(code == 0, "first backup: exit {code}: {}", brief(&r));
    let snapshots = shared.snapshot_count();

    let second = stack("app", "host-two", &repo, "");
    write_data(&second, "two", 1, 5);
    let (code, r) = second.json(&["backup", "--all"]);
    check!(code == 3, "not refused: exit {code}: {}", brief(&r));
    let error = r["error"].as_str().unwrap_or_default();
    for needle in ["host-one", "host-two", "[stack] name", "moved_from"] {
        check!(error.contains(needle), "`{needle}` not in: {error}");
    }
    lost_unless!(
        shared.snapshot_count() == snapshots,
        "the refused backup stored or removed snapshots"
    );
    lost_unless!(
        backup_ids(&first)?.len() == 1,
        "the first host's backup is not listed"
    );

    // Declared as moved, the stack goes on from the other host, after the first's.
    let moved = stack("app", "host-two", &repo, "moved_from = \"host-one\"\n");
    write_data(&moved, "two", 1, 5);
    let (code, r) = moved.json(&["backup", "--all"]);
    check!(code == 0, "moved backup: exit {code}: {}", brief(&r));
    let ids = backup_ids(&moved)?;
    check!(ids.len() == 2, "the moved stack lists {ids:?}");
    check!(
        ids[0] == r["id"].as_str().unwrap_or_default(),
        "the moved stack's backup is not latest: {ids:?}"
    );
    shared.check()
}

#[test]
fn the_same_stack_name_from_another_host_is_refused_unless_it_moved() {
    let mut tally = Tally::new(
        "Shared repository: one stack name from two hosts (identity rule)",
        "torture_shared_repo",
        "the_same_stack_name_from_another_host_is_refused_unless_it_moved",
    );
    tally.trial(|_| identity_case());
    tally.finish();
}

/// Two stacks with their own local repositories and `offsite` in one bucket prefix.
fn s3_stacks(garage: &GarageServer, locals: &Path, prefix: &str) -> (Stack, Stack) {
    let a = stack("alpha", "host-a", &locals.join("a"), "").with_remote(
        garage,
        &garage.endpoint(),
        prefix,
    );
    let b = stack("beta", "host-b", &locals.join("b"), "").with_remote(
        garage,
        &garage.endpoint(),
        prefix,
    );
    (a, b)
}

/// The fixed case of the S3 scenario (the original test), as one trial.
fn fixed_s3_case(garage: &GarageServer, a: &Stack, b: &Stack, prefix: &str) -> Result<(), Failure> {
    let shared = Shared::S3(garage, prefix);
    // The first backup creates the remote copy; then both at once.
    write_data(a, "alpha", 1, 5);
    write_data(b, "beta", 1, 5);
    for s in [a, b] {
        let (code, r) = s.json(&["backup", "--all"]);
        check!(code == 0, "first backup: exit {code}: {}", brief(&r));
    }
    for generation in 2..=3 {
        write_data(a, "alpha", generation, 5);
        write_data(b, "beta", generation, 5);
        for (code, r) in both(a, b, &["backup", "--all"])? {
            check!(code == 0, "concurrent backup: exit {code}: {}", brief(&r));
        }
    }
    let expected = [oracle(a), oracle(b)];
    let (ids_a, ids_b) = (backup_ids(a)?, backup_ids(b)?);
    check!((ids_a.len(), ids_b.len()) == (3, 3), "{ids_a:?} {ids_b:?}");

    for (code, r) in both(a, b, &["prune", "--copy", "offsite"])? {
        check!(code == 0, "concurrent prune: exit {code}: {}", brief(&r));
        check!(
            r["copies"][0]["deleted"].as_array().unwrap().len() == 4,
            "two backups x two sources expected deleted: {}",
            brief(&r)
        );
    }
    let by = shared.backups_by_stack()?;
    for (name, ids) in [("alpha", &ids_a), ("beta", &ids_b)] {
        lost_unless!(
            by.get(name)
                .is_some_and(|kept| kept.len() == 1 && kept.contains(&ids[0])),
            "{name}'s backups on the remote after both prunes: {:?}, expected only {}",
            by.get(name),
            ids[0]
        );
    }
    for (code, r) in both(a, b, &["verify", "--copy", "offsite", "--read-data"])? {
        check!(code == 0, "concurrent verify: exit {code}: {}", brief(&r));
    }
    shared.check()?;

    // Each restores its own newest backup from the shared remote.
    for s in [a, b] {
        wipe(s);
    }
    for (code, r) in both(
        a,
        b,
        &["restore", "latest", "--all", "--force", "--from", "offsite"],
    )? {
        restored_verified(code, &r)?;
    }
    for (i, (s, name)) in [(a, "alpha"), (b, "beta")].into_iter().enumerate() {
        let got = oracle(s);
        lost_unless!(
            got == expected[i],
            "{name} did not restore its own data from the remote: {}",
            difference(&got, &expected[i])
        );
    }
    Ok(())
}

#[test]
fn two_stacks_share_one_s3_copy_concurrently() {
    let garage = GarageServer::start();
    let mut tally = Tally::new(
        "Shared repository: two stacks, concurrent backup/prune/verify/restore (S3)",
        "torture_shared_repo",
        "two_stacks_share_one_s3_copy_concurrently",
    );
    let mut n = 0;
    tally.trial(|_| {
        let locals = tempfile::tempdir().unwrap();
        let (a, b) = s3_stacks(&garage, locals.path(), "fleet-0");
        fixed_s3_case(&garage, &a, &b, "fleet-0")
    });
    for _ in 0..runs(2, 20) {
        n += 1;
        let prefix = format!("fleet-{n}");
        tally.trial(|rng| {
            let locals = tempfile::tempdir().unwrap();
            let (a, b) = s3_stacks(&garage, locals.path(), &prefix);
            random_trial(rng, &a, &b, Shared::S3(&garage, &prefix), true)
        });
    }
    tally.finish();
}
