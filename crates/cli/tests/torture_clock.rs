//! Issue 12 items 4 and 7: a wrong clock never deletes the newest data or hides an RPO
//! breach, and local prune never deletes what a remote has not received. "Now" is
//! faked through the test hook (`DRYDOCK_TEST_CLOCK=1` + `DRYDOCK_TEST_NOW`), the
//! machine's clock is left alone.

mod common;

use common::Stack;
use jiff::Timestamp;

const SERVICES: &str = "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n]\n";

fn files_stack() -> Stack {
    let s = Stack::new(SERVICES).env("DRYDOCK_TEST_CLOCK", "1");
    std::fs::create_dir(s.path().join("docs")).unwrap();
    s
}

fn write(s: &Stack, content: &str) {
    std::fs::write(s.path().join("docs/a.txt"), content).unwrap();
}

/// `args` with `--json`, "now" faked to `now`.
fn at(s: &Stack, now: Timestamp, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = s
        .command(&all)
        .env("DRYDOCK_TEST_NOW", now.to_string())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", common::text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn snapshot_count(s: &Stack) -> usize {
    let out = s.restic(&["snapshots", "--json", "--no-lock"]);
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap()
        .len()
}

#[test]
fn clock_set_back_a_year_prune_deletes_nothing_and_latest_is_the_newest_created() {
    let s = files_stack();
    let now = Timestamp::now();
    write(&s, "v1");
    let (code, r) = s.json(&["backup"]);
    assert_eq!(code, 0, "{r:#}");
    write(&s, "v2");
    let (code, r) = s.json(&["backup"]);
    assert_eq!(code, 0, "{r:#}");
    let newest_real = r["id"].as_str().unwrap().to_string();

    // The clock goes back a year: the backup is stored but warned about.
    let back = now - jiff::SignedDuration::from_hours(24 * 365);
    write(&s, "v3");
    let (code, r) = at(&s, back, &["backup"]);
    assert_eq!(code, 0, "stored, with a warning: {r:#}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("earlier than the newest backup"),
        "{warnings}"
    );
    assert!(warnings.contains(&newest_real), "{warnings}");
    let v3 = r["id"].as_str().unwrap().to_string();

    // Prune with that clock: refused, nothing deleted, the future backups named.
    let before = snapshot_count(&s);
    let (code, r) = at(&s, back, &["prune", "--copy", "local"]);
    assert_eq!(code, 1, "{r:#}");
    let copy = &r["copies"][0];
    assert_eq!(copy["status"], "refused", "{r:#}");
    let reason = copy["reason"].as_str().unwrap();
    assert!(reason.contains(&newest_real), "{reason}");
    assert!(copy["deleted"].as_array().unwrap().is_empty());
    assert_eq!(snapshot_count(&s), before, "nothing deleted");

    // `latest` is the newest created (v3), though its time is the oldest.
    let (code, list) = at(&s, back, &["backups"]);
    assert_eq!(code, 0);
    assert_eq!(list["backups"][0]["id"], v3.as_str(), "{list:#}");
    write(&s, "changed");
    let (code, r) = at(&s, back, &["restore", "latest", "--all", "--force"]);
    common::assert_verified(code, &r);
    assert_eq!(
        std::fs::read_to_string(s.path().join("docs/a.txt")).unwrap(),
        "v3"
    );
    // Without the test hook's second variable, the fake time is ignored.
    let out = s
        .command(&["backups", "--json"])
        .env_remove("DRYDOCK_TEST_CLOCK")
        .env("DRYDOCK_TEST_NOW", back.to_string())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn a_backup_taken_with_the_clock_ahead_shows_a_clock_problem_not_rpo_zero() {
    let s = files_stack();
    let now = Timestamp::now();
    let ahead = now + jiff::SignedDuration::from_hours(24 * 60);
    write(&s, "v1");
    let (code, r) = at(&s, ahead, &["backup"]);
    assert_eq!(code, 0, "{r:#}");
    // 46 days later, no backup since: the clock is right again.
    let later = now + jiff::SignedDuration::from_hours(24 * 46);
    let (code, st) = at(&s, later, &["status"]);
    assert_eq!(code, 0, "{st:#}");
    let line = &st["services"][0]["sources"][0];
    let rpo = line["rpo_s"].as_i64().unwrap();
    assert!(rpo < 0, "negative, not clamped to 0: {line:#}");
    assert!(
        line["clock_problem"]
            .as_str()
            .unwrap()
            .contains("clock is wrong"),
        "{line:#}"
    );
    let out = s
        .command(&["status"])
        .env("DRYDOCK_TEST_NOW", later.to_string())
        .output()
        .unwrap();
    let text = common::text(&out);
    assert!(text.contains("CLOCK PROBLEM"), "{text}");
    // `health` says so too, degraded.
    let (code, h) = at(&s, later, &["health"]);
    assert_eq!(code, 1, "{h:#}");
    assert!(h["warnings"].to_string().contains("clock problem"), "{h:#}");
    // And prune refuses while that backup lies in the future.
    let (code, r) = at(&s, later, &["prune", "--copy", "local"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["copies"][0]["status"], "refused");
}

#[test]
fn local_prune_keeps_what_an_unreachable_remote_has_not_received() {
    let s = files_stack()
        .env("TEST_S3_KEY", "GK0000000000")
        .env("TEST_S3_SECRET", "not-a-secret-0000");
    // A closed loopback port: the remote never receives anything.
    let remote = "\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"garage\"\nbucket = \"drydock-unreachable\"\npath_style = true\naccess_key_id = \"${env:TEST_S3_KEY}\"\nsecret_access_key = \"${env:TEST_S3_SECRET}\"\n";
    s.append_config(remote);
    for v in ["v1", "v2"] {
        write(&s, v);
        let (code, r) = s.json(&["backup"]);
        assert_eq!(code, 1, "remote unsynced: {r:#}");
    }
    let before = snapshot_count(&s);
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    assert_eq!(code, 1, "a warning: {r:#}");
    let copy = &r["copies"][0];
    assert!(copy["deleted"].as_array().unwrap().is_empty(), "{r:#}");
    let warnings = copy["warnings"].to_string();
    assert!(warnings.contains("offsite"), "{warnings}");
    assert!(warnings.contains("has not received"), "{warnings}");
    assert_eq!(snapshot_count(&s), before, "nothing deleted");

    // The remote removed from the config: retention applies again.
    let config = s.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(remote, "\n")).unwrap();
    let (code, r) = s.json(&["prune", "--copy", "local"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["copies"][0]["deleted"].as_array().unwrap().len(),
        1,
        "{r:#}"
    );
}
