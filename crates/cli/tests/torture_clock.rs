//! Issue 12 items 4 and 7 as torture scenarios: a wrong clock never deletes the newest
//! data or hides an RPO breach, and local prune never deletes what a remote has not
//! received. "Now" is faked through the test hook (`DRYDOCK_TEST_CLOCK=1` +
//! `DRYDOCK_TEST_NOW`), the machine's clock is left alone.
//!
//! "Wrong clock": the fixed cases (set back a year, ahead 60 days, 9 minutes ahead then
//! right), then random
//! sequences of backup / prune / restore latest / status, each step with its own clock:
//! right, set back by 1 h .. 2 years, ahead by 11 min .. 1 year, or within 90 s of the
//! 10-minute tolerance (`clock::FUTURE_TOLERANCE`) either way, and a last prune and
//! restore with the clock right again. Checked after every step against the test's own
//! record of what was created when: a backup is `latest` (newest created) the moment it
//! exists, and a clock behind the newest backup is warned about; prune deletes nothing
//! while a backup lies beyond the tolerance in the future (restic's snapshot count as
//! the oracle) and never the newest created backup; `restore latest` brings back the
//! newest created data exactly; `status` reports the newest created backup with its
//! exact signed age as RPO, negative (never clamped to 0) with a clock problem when it
//! lies after now. Data lost: the newest created backup deleted, or a restore of latest
//! that brings back other (older) data.

mod common;

use common::torture::{runs, Failure, Tally};
use common::Stack;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

/// The tolerance drydock allows a backup in the future (`clock::FUTURE_TOLERANCE`).
const TOLERANCE_S: i64 = 10 * 60;

const SERVICES: &str = "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n]\n";

fn files_stack() -> Stack {
    let s = Stack::new(SERVICES).env("DRYDOCK_TEST_CLOCK", "1");
    std::fs::create_dir(s.path().join("docs")).unwrap();
    s
}

fn write(s: &Stack, content: &str) {
    std::fs::write(s.path().join("docs/a.txt"), content).unwrap();
}

fn read(s: &Stack) -> String {
    std::fs::read_to_string(s.path().join("docs/a.txt")).unwrap_or_default()
}

/// A report, compact and cut to a few hundred characters for a message.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{} ...", &s[..s.floor_char_boundary(600)])
    } else {
        s
    }
}

/// `args` with `--json`, "now" faked to `now`.
fn at(s: &Stack, now: Timestamp, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = s
        .command(&all)
        .env("DRYDOCK_TEST_NOW", now.to_string())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        let text = common::text(&out);
        panic!(
            "not JSON ({e}): {}",
            &text[..text.floor_char_boundary(2000)]
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn snapshot_count(s: &Stack) -> usize {
    let out = s.restic(&["snapshots", "--json", "--no-lock"]);
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .unwrap()
        .len()
}

/// The backups `backups --json` lists at `now`, newest first.
fn listed(s: &Stack, now: Timestamp) -> Result<Vec<String>, Failure> {
    let (code, list) = at(s, now, &["backups"]);
    check!(code == 0, "backups: exit {code}: {}", brief(&list));
    Ok(list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect())
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

/// Fixed case: the clock set back a year.
fn set_back_a_year() -> Result<(), Failure> {
    let s = files_stack();
    let now = Timestamp::now();
    write(&s, "v1");
    let (code, r) = s.json(&["backup"]);
    check!(code == 0, "backup v1: exit {code}: {}", brief(&r));
    write(&s, "v2");
    let (code, r) = s.json(&["backup"]);
    check!(code == 0, "backup v2: exit {code}: {}", brief(&r));
    let newest_real = r["id"].as_str().unwrap().to_string();

    // The clock goes back a year: the backup is stored but warned about.
    let back = now - SignedDuration::from_hours(24 * 365);
    write(&s, "v3");
    let (code, r) = at(&s, back, &["backup"]);
    check!(
        code == 0,
        "backup v3 not stored with a warning: exit {code}: {}",
        brief(&r)
    );
    let warnings = r["warnings"].to_string();
    check!(
        warnings.contains("earlier than the newest backup") && warnings.contains(&newest_real),
        "no warning naming {newest_real}: {warnings}"
    );
    let v3 = r["id"].as_str().unwrap().to_string();

    // Prune with that clock: refused, nothing deleted, the future backups named.
    let before = snapshot_count(&s);
    let (code, r) = at(&s, back, &["prune", "--copy", "local"]);
    lost_unless!(
        snapshot_count(&s) == before,
        "prune with the clock set back deleted snapshots: {}",
        brief(&r)
    );
    check!(code == 1, "prune: exit {code}: {}", brief(&r));
    let copy = &r["copies"][0];
    check!(
        copy["status"] == "refused",
        "prune not refused: {}",
        brief(&r)
    );
    let reason = copy["reason"].as_str().unwrap_or_default();
    check!(
        reason.contains(&newest_real),
        "the reason does not name {newest_real}: {reason}"
    );
    check!(
        copy["deleted"].as_array().unwrap().is_empty(),
        "a refused prune lists deletions: {}",
        brief(&r)
    );

    // `latest` is the newest created (v3), though its time is the oldest.
    let ids = listed(&s, back)?;
    check!(
        ids.first() == Some(&v3),
        "latest is not {v3}, the newest created: {ids:?}"
    );
    write(&s, "changed");
    let (code, r) = at(&s, back, &["restore", "latest", "--all", "--force"]);
    restored_verified(code, &r)?;
    let got = read(&s);
    lost_unless!(
        got == "v3",
        "restore latest brought back {got:?}, not \"v3\""
    );
    // Without the test hook's second variable, the fake time is ignored.
    let out = s
        .command(&["backups", "--json"])
        .env_remove("DRYDOCK_TEST_CLOCK")
        .env("DRYDOCK_TEST_NOW", back.to_string())
        .output()
        .unwrap();
    check!(
        out.status.success(),
        "backups without DRYDOCK_TEST_CLOCK: {}",
        common::text(&out)
    );
    Ok(())
}

/// Fixed case: a backup taken with the clock 60 days ahead.
fn ahead_sixty_days() -> Result<(), Failure> {
    let s = files_stack();
    let now = Timestamp::now();
    let ahead = now + SignedDuration::from_hours(24 * 60);
    write(&s, "v1");
    let (code, r) = at(&s, ahead, &["backup"]);
    check!(code == 0, "backup: exit {code}: {}", brief(&r));
    // 46 days later, no backup since: the clock is right again.
    let later = now + SignedDuration::from_hours(24 * 46);
    let (code, st) = at(&s, later, &["status"]);
    check!(code == 0, "status: exit {code}: {}", brief(&st));
    let line = &st["services"][0]["sources"][0];
    let rpo = line["rpo_s"].as_i64().unwrap_or(0);
    check!(rpo < 0, "RPO not negative (clamped?): {}", brief(line));
    check!(
        line["clock_problem"]
            .as_str()
            .is_some_and(|p| p.contains("clock is wrong")),
        "no clock problem: {}",
        brief(line)
    );
    let out = s
        .command(&["status"])
        .env("DRYDOCK_TEST_NOW", later.to_string())
        .output()
        .unwrap();
    let text = common::text(&out);
    check!(
        text.contains("CLOCK PROBLEM"),
        "status text: {}",
        &text[..text.floor_char_boundary(600)]
    );
    // `health` says so too, degraded.
    let (code, h) = at(&s, later, &["health"]);
    check!(code == 1, "health: exit {code}: {}", brief(&h));
    check!(
        h["warnings"].to_string().contains("clock problem"),
        "health warnings: {}",
        brief(&h)
    );
    // And prune refuses while that backup lies in the future.
    let before = snapshot_count(&s);
    let (code, r) = at(&s, later, &["prune", "--copy", "local"]);
    lost_unless!(snapshot_count(&s) == before, "prune deleted snapshots");
    check!(code == 1, "prune: exit {code}: {}", brief(&r));
    check!(
        r["copies"][0]["status"] == "refused",
        "prune not refused: {}",
        brief(&r)
    );
    Ok(())
}

/// Fixed case (found by the random trials, seed 8854200400219224098 trial 5): a backup
/// taken with the clock 9 minutes ahead (inside the tolerance), then two with the clock
/// right again, dated before it on the same day. Retention by date kept the fast-clock
/// backup and deleted the two newer ones, the newest data included.
fn ahead_within_the_tolerance_then_right() -> Result<(), Failure> {
    let s = files_stack();
    write(&s, "v1");
    let (code, r) = at(&s, clock(9 * 60), &["backup"]);
    check!(code == 0, "backup v1: exit {code}: {}", brief(&r));
    let fast = r["id"].as_str().unwrap_or_default().to_string();
    let mut newest = String::new();
    for v in ["v2", "v3"] {
        write(&s, v);
        let (code, r) = at(&s, clock(0), &["backup"]);
        check!(code == 0, "backup {v}: exit {code}: {}", brief(&r));
        newest = r["id"].as_str().unwrap_or_default().to_string();
    }
    let (code, r) = at(&s, clock(0), &["prune", "--copy", "local"]);
    check!(code == 0, "prune: exit {code}: {}", brief(&r));
    let ids = listed(&s, clock(0))?;
    lost_unless!(
        ids.first() == Some(&newest),
        "prune deleted the newest created backup {newest}: {ids:?} left"
    );
    check!(
        ids.len() == 2 && ids.contains(&fast),
        "expected {newest} and {fast} kept: {ids:?}"
    );
    write(&s, "changed");
    let (code, r) = at(&s, clock(0), &["restore", "latest", "--all", "--force"]);
    restored_verified(code, &r)?;
    let got = read(&s);
    lost_unless!(
        got == "v3",
        "restore latest brought back {got:?}, not \"v3\""
    );
    Ok(())
}

/// How wrong a step's clock is, in seconds (negative: set back).
fn draw_offset(rng: &mut StdRng) -> (i64, &'static str) {
    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    match rng.random_range(0..100) {
        0..30 => (0, "right"),
        30..55 => (-rng.random_range(HOUR..=2 * 365 * DAY), "back"),
        55..75 => (rng.random_range(11 * 60..=365 * DAY), "ahead"),
        // Around the tolerance, both sides of it, exact edges included.
        75..90 => (
            TOLERANCE_S + rng.random_range(-90..=90),
            "ahead near the tolerance",
        ),
        _ => (
            -TOLERANCE_S + rng.random_range(-90..=90),
            "back near the tolerance",
        ),
    }
}

/// A backup the trial created: its id, the data it took, and the time its clock said.
struct Created {
    id: String,
    content: String,
    at: Timestamp,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Backup,
    Prune,
    Restore,
    Status,
}

/// Now by the machine, to the second, moved by `offset` seconds.
fn clock(offset: i64) -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second() + offset).unwrap()
}

/// One random sequence of steps, each under its own clock. `log` collects what ran, for
/// the failure message.
fn random_sequence(rng: &mut StdRng, trial: u64, log: &mut Vec<String>) -> Result<(), Failure> {
    let s = files_stack();
    // In the copy, oldest created first (the model).
    let mut alive: Vec<Created> = Vec::new();
    let steps = rng.random_range(4..=8);
    for i in 0..=steps {
        let (step, offset, how) = if i == 0 {
            // Something to work on first.
            let (offset, how) = draw_offset(rng);
            (Step::Backup, offset, how)
        } else if i == steps {
            // The clock right again: a last prune.
            (Step::Prune, 0, "right again")
        } else {
            let step = match rng.random_range(0..100) {
                0..45 => Step::Backup,
                45..70 => Step::Prune,
                70..85 => Step::Restore,
                _ => Step::Status,
            };
            let (offset, how) = draw_offset(rng);
            (step, offset, how)
        };
        let now = clock(offset);
        log.push(format!("{step:?} at {offset:+}s ({how})"));
        match step {
            Step::Backup => {
                let content = format!("trial {trial} step {i} {:016x}", rng.random::<u64>());
                write(&s, &content);
                let (code, r) = at(&s, now, &["backup"]);
                check!(code == 0, "backup: exit {code}: {}", brief(&r));
                let id = r["id"].as_str().unwrap_or_default().to_string();
                check!(
                    !id.is_empty() && alive.iter().all(|c| c.id != id),
                    "backup reported id {id:?}"
                );
                // A clock behind the newest backup (beyond the tolerance) is warned about.
                let behind = alive
                    .last()
                    .filter(|n| n.at.as_second() - now.as_second() > TOLERANCE_S);
                let warned = r["warnings"]
                    .to_string()
                    .contains("earlier than the newest backup");
                if let Some(newest) = behind {
                    check!(
                        warned && r["warnings"].to_string().contains(&newest.id),
                        "the clock is behind the newest backup {} but no warning names it: {}",
                        newest.id,
                        brief(&r["warnings"])
                    );
                } else {
                    check!(
                        !warned,
                        "warned of a clock behind the newest backup, within the tolerance: {}",
                        brief(&r["warnings"])
                    );
                }
                alive.push(Created {
                    id,
                    content,
                    at: now,
                });
                let ids = listed(&s, now)?;
                check!(
                    ids.first() == alive.last().map(|c| &c.id),
                    "latest is not the backup just created ({}): {ids:?}",
                    alive.last().unwrap().id
                );
            }
            Step::Prune => prune_step(&s, now, &mut alive)?,
            Step::Restore => restore_step(&s, now, &alive)?,
            Step::Status => status_step(&s, now, &alive)?,
        }
    }
    // With the clock right again, latest is the newest created data.
    restore_step(&s, clock(0), &alive)?;
    let (code, r) = at(&s, clock(0), &["verify", "--read-data"]);
    check!(code == 0, "verify --read-data: exit {code}: {}", brief(&r));
    Ok(())
}

fn prune_step(s: &Stack, now: Timestamp, alive: &mut Vec<Created>) -> Result<(), Failure> {
    let newest = alive.last().expect("a first backup").id.clone();
    let future: Vec<&Created> = alive
        .iter()
        .filter(|c| c.at.as_second() - now.as_second() > TOLERANCE_S)
        .collect();
    let before = snapshot_count(s);
    let (code, r) = at(s, now, &["prune", "--copy", "local"]);
    let copy = &r["copies"][0];
    let deleted: Vec<String> = copy["deleted"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| x["backup_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let ids = listed(s, now)?;
    lost_unless!(
        ids.contains(&newest),
        "prune deleted the newest created backup {newest} (reported deleted: {deleted:?})"
    );
    if !future.is_empty() {
        lost_unless!(
            snapshot_count(s) == before,
            "prune deleted snapshots while backups lie in the future: {}",
            brief(&r)
        );
        check!(
            code == 1 && copy["status"] == "refused",
            "prune with backups beyond the tolerance in the future not refused: exit {code}: {}",
            brief(&r)
        );
        let reason = copy["reason"].as_str().unwrap_or_default();
        for c in &future {
            check!(
                reason.contains(&c.id),
                "the refusal does not name {}: {}",
                c.id,
                &reason[..reason.floor_char_boundary(400)]
            );
        }
        check!(deleted.is_empty(), "a refused prune lists deletions");
        return Ok(());
    }
    check!(
        code == 0 && copy["status"] == "pruned",
        "prune with no backup beyond the tolerance in the future: exit {code}: {}",
        brief(&r)
    );
    lost_unless!(
        !deleted.contains(&newest),
        "prune reported deleting the newest created backup {newest}"
    );
    alive.retain(|c| !deleted.contains(&c.id));
    let model: Vec<&String> = alive.iter().rev().map(|c| &c.id).collect();
    check!(
        ids.iter().collect::<Vec<_>>() == model,
        "after prune the list is {ids:?}, expected {model:?}"
    );
    Ok(())
}

fn restore_step(s: &Stack, now: Timestamp, alive: &[Created]) -> Result<(), Failure> {
    let newest = alive.last().expect("a first backup");
    write(s, "changed since any backup");
    let (code, r) = at(s, now, &["restore", "latest", "--all", "--force"]);
    restored_verified(code, &r)?;
    let got = read(s);
    if got != newest.content {
        let which = alive
            .iter()
            .find(|c| c.content == got)
            .map_or("no backup's data".to_string(), |c| {
                format!("the data of {}", c.id)
            });
        return Err(Failure::DataLost(format!(
            "restore latest brought back {which}, not the newest created {}",
            newest.id
        )));
    }
    Ok(())
}

fn status_step(s: &Stack, now: Timestamp, alive: &[Created]) -> Result<(), Failure> {
    let newest = alive.last().expect("a first backup");
    let (code, st) = at(s, now, &["status"]);
    check!(code == 0, "status: exit {code}: {}", brief(&st));
    let line = &st["services"][0]["sources"][0];
    check!(
        line["last_backup"]["id"] == newest.id.as_str(),
        "status's newest backup is not the newest created {}: {}",
        newest.id,
        brief(line)
    );
    let expected = now.as_second() - newest.at.as_second();
    let rpo = line["rpo_s"].as_i64();
    check!(
        rpo == Some(expected),
        "RPO {rpo:?}, expected {expected} s (clamped?): {}",
        brief(line)
    );
    let problem = line["clock_problem"].as_str();
    if expected < 0 {
        check!(
            problem.is_some_and(|p| p.contains("clock is wrong")),
            "a negative age without a clock problem: {}",
            brief(line)
        );
        // `health` flags it once it lies beyond the tolerance.
        if -expected > TOLERANCE_S {
            let (code, h) = at(s, now, &["health"]);
            check!(
                code >= 1 && h["warnings"].to_string().contains("clock problem"),
                "health: exit {code}: {}",
                brief(&h)
            );
        }
    } else {
        check!(
            problem.is_none(),
            "a clock problem with a non-negative age: {}",
            brief(line)
        );
    }
    Ok(())
}

#[test]
fn a_wrong_clock_never_deletes_the_newest_data_or_hides_an_rpo_breach() {
    let mut tally = Tally::new(
        "Wrong clock: set back, ahead, random offsets",
        "torture_clock",
        "a_wrong_clock_never_deletes_the_newest_data_or_hides_an_rpo_breach",
    );
    tally.trial(|_| set_back_a_year());
    tally.trial(|_| ahead_sixty_days());
    tally.trial(|_| ahead_within_the_tolerance_then_right());
    for trial in 0..runs(3, 30) as u64 {
        tally.trial(|rng| {
            let mut log = Vec::new();
            let result = random_sequence(rng, trial, &mut log);
            let steps = log.join(", ");
            eprintln!("torture: steps: {steps}");
            result.map_err(|f| match f {
                Failure::Failed(why) => Failure::Failed(format!("{why} (steps: {steps})")),
                Failure::DataLost(why) => Failure::DataLost(format!("{why} (steps: {steps})")),
            })
        });
    }
    tally.finish();
}

/// One trial: `backups` backups while the remote is unreachable, then prune.
fn unsynced_kept(backups: usize) -> Result<(), Failure> {
    let s = files_stack()
        .env("TEST_S3_KEY", "GK0000000000")
        .env("TEST_S3_SECRET", "not-a-secret-0000");
    // A closed loopback port: the remote never receives anything.
    let remote = "\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"garage\"\nbucket = \"drydock-unreachable\"\npath_style = true\naccess_key_id = \"${env:TEST_S3_KEY}\"\nsecret_access_key = \"${env:TEST_S3_SECRET}\"\n";
    s.append_config(remote);
    for v in 1..=backups {
        write(&s, &format!("v{v}"));
        let (code, r) = s.json(&["backup"]);
        check!(
            code == 1,
            "backup with the remote unsynced: exit {code}: {}",
            brief(&r)
        );
    }
    let before = snapshot_count(&s);
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    let copy = &r["copies"][0];
    lost_unless!(
        snapshot_count(&s) == before && copy["deleted"].as_array().is_some_and(|d| d.is_empty()),
        "local prune deleted what the remote has not received: {}",
        brief(&r)
    );
    let warnings = copy["warnings"].to_string();
    if backups > 1 {
        check!(
            code == 1,
            "prune without a warning: exit {code}: {}",
            brief(&r)
        );
        check!(
            warnings.contains("offsite") && warnings.contains("has not received"),
            "no warning naming the remote: {}",
            brief(&copy["warnings"])
        );
    } else {
        check!(code == 0, "prune of one backup: exit {code}: {}", brief(&r));
    }

    // The remote removed from the config: retention applies again (same day: the newest
    // stays).
    let config = s.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(remote, "\n")).unwrap();
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    check!(
        code == 0,
        "prune without the remote: exit {code}: {}",
        brief(&r)
    );
    let deleted = r["copies"][0]["deleted"].as_array().map_or(0, Vec::len);
    check!(
        deleted == backups - 1,
        "prune without the remote deleted {deleted}, expected {}: {}",
        backups - 1,
        brief(&r)
    );
    write(&s, "changed");
    let (code, r) = s.json(&["restore", "latest", "--all", "--force"]);
    restored_verified(code, &r)?;
    let got = read(&s);
    lost_unless!(
        got == format!("v{backups}"),
        "restore latest brought back {got:?}, not v{backups}"
    );
    Ok(())
}

#[test]
fn local_prune_keeps_what_an_unreachable_remote_has_not_received() {
    let mut tally = Tally::new(
        "Unsynced backups: local prune keeps what a remote has not received",
        "torture_clock",
        "local_prune_keeps_what_an_unreachable_remote_has_not_received",
    );
    tally.trial(|_| unsynced_kept(2));
    for _ in 0..runs(1, 8) {
        let backups = tally.rng().random_range(1..=4);
        tally.trial(|_| unsynced_kept(backups));
    }
    tally.finish();
}
