//! The runner with real jobs (health checks that run `sleep`, backups of a real
//! directory into a real repository): the global cap, one job per repository while
//! a job without one runs beside it, and a job never started twice.

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
