//! The runner with real jobs (health checks that run `sleep`, backups of a real
//! directory into a real repository): the global cap, one job per repository while
//! a job without one runs beside it, a job due on a busy repository waiting for it
//! (not lost, not doubled), and a job never started twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::config::JobKind;
use drydock_domain::Config;
use drydock_serve::events::EventHub;
use drydock_serve::runner::{Runner, Submitted};
use drydock_serve::{JobRequest, NoNotifier, SystemClock};
use drydock_state::{JobRun, StateDb, Trigger};

fn config(dir: &Path, cap: usize) -> Config {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/file.txt"), "hello").unwrap();
    // SAFETY: only this test binary reads this variable.
    unsafe { std::env::set_var("RUNNER_TEST_REPO_PW", "runner-repo-pw") };
    let text = format!(
        "[stack]\nname = \"t\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${{env:RUNNER_TEST_REPO_PW}}\"\n\n[serve]\nmax_concurrent_jobs = {cap}\n\n[services.web]\nruntime = {{ kind = \"none\" }}\nhealth = [{{ kind = \"command\", name = \"slow\", run = \"sleep 1\", retries = 0 }}]\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"data\" }}]\n"
    );
    Config::from_text(&dir.join("drydock.toml"), &text).unwrap()
}

fn runner(config: Config) -> Runner {
    Runner::new(
        Arc::new(config),
        "test-host".into(),
        EventHub::default(),
        Arc::new(NoNotifier),
        Arc::new(SystemClock),
    )
}

fn runs(dir: &Path) -> Vec<JobRun> {
    let mut runs = StateDb::open(&dir.join("state"))
        .unwrap()
        .recent_runs(100)
        .unwrap();
    runs.reverse();
    runs
}

fn overlap(a: &JobRun, b: &JobRun) -> bool {
    a.started < b.finished.unwrap() && b.started < a.finished.unwrap()
}

#[test]
fn the_cap_holds_jobs_back_and_a_wider_cap_runs_them_together() {
    for (cap, together) in [(1, false), (2, true)] {
        let dir = tempfile::tempdir().unwrap();
        let r = runner(config(dir.path(), cap));
        for key in ["a", "b"] {
            let s = r.submit(JobRequest::new(JobKind::Health), Trigger::Api, key, None);
            assert_eq!(s, Submitted::Accepted);
        }
        assert!(r.wait_idle(Duration::from_secs(60)));
        let runs = runs(dir.path());
        assert_eq!(runs.len(), 2, "{runs:#?}");
        assert!(
            runs.iter().all(|r| r.verdict.unwrap().as_str() == "ok"),
            "{runs:#?}"
        );
        assert_eq!(
            overlap(&runs[0], &runs[1]),
            together,
            "cap {cap}: {runs:#?}"
        );
    }
}

#[test]
fn one_job_per_repository_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(config(dir.path(), 3));
    for (kind, key) in [
        (JobKind::Backup, "b"),
        (JobKind::Verify, "v"),
        (JobKind::Health, "h"),
    ] {
        assert_eq!(
            r.submit(JobRequest::new(kind), Trigger::Api, key, None),
            Submitted::Accepted
        );
    }
    assert!(r.wait_idle(Duration::from_secs(120)));
    let runs = runs(dir.path());
    let find = |k: &str| {
        runs.iter()
            .find(|r| r.kind == k)
            .unwrap_or_else(|| panic!("{k}: {runs:#?}"))
    };
    let (backup, verify, health) = (find("backup"), find("verify"), find("health"));
    assert!(
        !overlap(backup, verify),
        "two jobs on one repository: {runs:#?}"
    );
    assert_eq!(backup.verdict.unwrap().as_str(), "ok", "{backup:#?}");
    // The health job needs no repository: it did not queue behind them.
    let repository_free = backup.finished.max(verify.finished).unwrap();
    assert!(health.started < repository_free, "{runs:#?}");
}

#[test]
fn a_job_still_going_is_skipped_and_recorded_never_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(config(dir.path(), 2));
    let req = JobRequest::new(JobKind::Health);
    assert_eq!(
        r.submit(
            req.clone(),
            Trigger::Schedule,
            "every-second",
            Some("every-second")
        ),
        Submitted::Accepted
    );
    let second = r.submit(req, Trigger::Schedule, "every-second", Some("every-second"));
    assert!(matches!(second, Submitted::Skipped { .. }), "{second:?}");
    assert!(r.wait_idle(Duration::from_secs(60)));
    let runs = runs(dir.path());
    let mut outcomes: Vec<&str> = runs.iter().map(|r| r.verdict.unwrap().as_str()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["ok", "skipped"], "{runs:#?}");
    let skipped = runs
        .iter()
        .find(|r| r.verdict.unwrap().as_str() == "skipped")
        .unwrap();
    assert!(
        skipped.summary.contains("its previous run"),
        "{}",
        skipped.summary
    );
}

/// `mib` MiB of incompressible data in `data/`: a backup of it is still running a
/// moment after it started.
fn big_data(dir: &Path, mib: usize) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..mib / 8 {
        let data: Vec<u8> = (0..8 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(dir.join(format!("data/big-{i}.bin")), data).unwrap();
    }
}

#[test]
fn a_job_due_on_a_busy_repository_waits_and_runs_once_with_its_own_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2);
    big_data(dir.path(), 64);
    let r = runner(config);
    let (backup_key, prune_key) = ("backup [30 2 * * *]", "prune [30 4 * * *]");
    assert_eq!(
        r.submit(
            JobRequest::new(JobKind::Backup),
            Trigger::Schedule,
            backup_key,
            Some(backup_key)
        ),
        Submitted::Accepted
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !r
        .active()
        .iter()
        .any(|(k, run)| k == backup_key && run.is_some())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The prune's slot comes while the backup holds the repository: it waits.
    let prune_due = jiff::Timestamp::now();
    let prune = JobRequest::new(JobKind::Prune);
    assert_eq!(
        r.submit(prune.clone(), Trigger::Schedule, prune_key, Some(prune_key)),
        Submitted::Accepted
    );
    // Its next slot while it still waits: skipped, never a second waiting entry.
    let again = r.submit(prune, Trigger::CatchUp, prune_key, Some(prune_key));
    match &again {
        Submitted::Skipped { reason } => assert!(reason.contains("still waiting"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(r.wait_idle(Duration::from_secs(300)));
    let runs = runs(dir.path());
    let backup = runs.iter().find(|r| r.kind == "backup").unwrap();
    assert_eq!(backup.verdict.unwrap().as_str(), "ok", "{runs:#?}");
    assert!(
        prune_due < backup.finished.unwrap(),
        "the prune came due while the backup ran (more data needed?): {runs:#?}"
    );
    let prunes: Vec<&JobRun> = runs.iter().filter(|r| r.kind == "prune").collect();
    assert_eq!(prunes.len(), 2, "one that ran, one skipped: {runs:#?}");
    let ran = prunes
        .iter()
        .find(|r| r.verdict.unwrap().as_str() != "skipped")
        .unwrap();
    assert_eq!(ran.trigger, Trigger::Schedule, "{ran:#?}");
    assert_eq!(ran.schedule.as_deref(), Some(prune_key));
    assert!(
        ran.started >= backup.finished.unwrap(),
        "the prune waited for the repository: {runs:#?}"
    );
    assert_eq!(ran.verdict.unwrap().as_str(), "ok", "{ran:#?}");
    let skipped = prunes
        .iter()
        .find(|r| r.verdict.unwrap().as_str() == "skipped")
        .unwrap();
    assert_eq!(skipped.trigger, Trigger::CatchUp);
}

#[test]
fn a_job_waiting_for_its_repository_when_the_daemon_stops_is_recorded_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2);
    big_data(dir.path(), 64);
    let r = runner(config);
    let submit = |kind, key: &str| {
        assert_eq!(
            r.submit(JobRequest::new(kind), Trigger::Schedule, key, Some(key)),
            Submitted::Accepted
        );
    };
    submit(JobKind::Backup, "backup [30 2 * * *]");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !r.active().iter().any(|(_, run)| run.is_some()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    submit(JobKind::Prune, "prune [30 4 * * *]");
    r.cancel_all("the daemon stops (SIGTERM)");
    assert!(r.wait_idle(Duration::from_secs(120)));
    let runs = runs(dir.path());
    let prune = runs
        .iter()
        .find(|r| r.kind == "prune")
        .unwrap_or_else(|| panic!("the waiting prune left no record: {runs:#?}"));
    assert_eq!(prune.verdict.unwrap().as_str(), "skipped", "{prune:#?}");
    assert!(
        prune
            .summary
            .contains("not started: the daemon stops (SIGTERM) while it waited"),
        "{prune:#?}"
    );
    assert_eq!(prune.schedule.as_deref(), Some("prune [30 4 * * *]"));
    let backup = runs.iter().find(|r| r.kind == "backup").unwrap();
    assert_ne!(
        backup.verdict.unwrap().as_str(),
        "ok",
        "cancelled mid-way: {backup:#?}"
    );
}
