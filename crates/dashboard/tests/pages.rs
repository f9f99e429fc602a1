//! The pages rendered from a fixed data set (the sample stack, times fixed) against
//! a real state database: HTML snapshots, escaping of every value, no secret shown,
//! and the matrix following the state database.

use drydock_dashboard::sample::{Sample, SECRET};
use drydock_dashboard::{overview, run, source, DaemonView, Inputs};
use drydock_domain::config::Config;
use drydock_state::{CopyState, StateDb};
use jiff::Timestamp;

fn now() -> Timestamp {
    "2026-12-01T06:00:00Z".parse().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    sample: Sample,
    config: Config,
    state: StateDb,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sample = Sample::new(10, 30, now());
    let config = sample.config(dir.path());
    let mut state = StateDb::open(&config.stack.state_dir).unwrap();
    sample.fill_state(&mut state).unwrap();
    Fixture {
        _dir: dir,
        sample,
        config,
        state,
    }
}

fn inputs<'a>(f: &'a Fixture, daemon: &'a DaemonView) -> Inputs<'a> {
    Inputs {
        config: &f.config,
        state: &f.state,
        daemon,
        now: now(),
    }
}

#[test]
fn overview_snapshot() {
    let f = fixture();
    let page = overview(&inputs(&f, &f.sample.daemon)).unwrap();
    assert_eq!(page.status, 200);
    insta::assert_snapshot!("overview", page.html);
}

#[test]
fn source_and_run_snapshots() {
    let f = fixture();
    let i = inputs(&f, &f.sample.daemon);
    let page = source(&i, "db", "app").unwrap();
    assert_eq!(page.status, 200);
    insta::assert_snapshot!("source_db_app", page.html);
    let page = run(&i, 8, f.sample.runs.first()).unwrap();
    assert_eq!(page.status, 200);
    insta::assert_snapshot!("run_8", page.html);
}

#[test]
fn unknown_source_or_run_is_a_404_page() {
    let f = fixture();
    let i = inputs(&f, &f.sample.daemon);
    let page = source(&i, "db", "nope").unwrap();
    assert_eq!(page.status, 404);
    assert!(
        page.html.contains("no source nope in service db"),
        "{}",
        page.html
    );
    assert_eq!(run(&i, 42, None).unwrap().status, 404);
}

#[test]
fn the_matrix_says_overdue_unsynced_and_verified() {
    let f = fixture();
    let html = overview(&inputs(&f, &f.sample.daemon)).unwrap().html;
    let row = |name: &str| {
        let start = html
            .find(&format!("data-source=\"{name}\""))
            .unwrap_or_else(|| panic!("no row {name}"));
        html[start..start + html[start..].find("</tr>").unwrap()].to_string()
    };
    // search/index has had no backup for four days: overdue in both copies, RPO over.
    let search = row("search/index");
    assert_eq!(search.matches("overdue").count(), 2, "{search}");
    assert!(
        search.contains("<td class=\"bad\">4d / 24h</td>"),
        "{search}"
    );
    // db/app: verified locally 3h ago; offsite holds yesterday's (present, not yet
    // verified), the newest one unsynced there.
    let db = row("db/app");
    assert!(
        db.contains("cell good\" data-copy=\"local\"><b>verified</b>3h ago"),
        "{db}"
    );
    assert!(
        db.contains("data-copy=\"offsite\"><b>present</b>27h ago"),
        "{db}"
    );
    assert!(db.contains("(newest unsynced)"), "{db}");
    assert!(
        html.contains("overdue (no recent backup in every copy): search/index"),
        "{html}"
    );
}

#[test]
fn a_copy_state_recorded_by_hand_shows_at_once() {
    let f = fixture();
    let newest = f.sample.daemon.backups[0].id.clone();
    f.state
        .record_copy("offsite", &newest, CopyState::Verified, None)
        .unwrap();
    let html = overview(&inputs(&f, &f.sample.daemon)).unwrap().html;
    let start = html.find("data-source=\"db/app\"").unwrap();
    let db = &html[start..start + html[start..].find("</tr>").unwrap()];
    assert!(
        db.contains("cell good\" data-copy=\"offsite\"><b>verified</b>3h ago"),
        "{db}"
    );
}

#[test]
fn every_value_is_escaped() {
    let mut f = fixture();
    let evil = "<script>alert(1)</script>";
    let svc = f.config.services.remove("web").unwrap();
    f.config.services.insert(evil.into(), svc);
    let mut daemon = f.sample.daemon.clone();
    for b in &mut daemon.backups {
        for s in &mut b.sources {
            if s.service == "web" {
                s.service = evil.into();
            }
        }
    }
    daemon.recent_runs[0].summary = format!("failed on {evil}");
    daemon.next_runs[0].scope = evil.into();
    daemon.failed_notifications[0].about = evil.into();
    let i = Inputs {
        config: &f.config,
        state: &f.state,
        daemon: &daemon,
        now: now(),
    };
    let html = overview(&i).unwrap().html;
    assert!(!html.contains(evil), "raw markup from data in the page");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // The only scripts are the page's own.
    assert_eq!(html.matches("<script>").count(), 1, "{html}");
    // The source page of that service is found by its (percent-encoded) link.
    let page = source(&i, evil, "images").unwrap();
    assert_eq!(page.status, 200);
    assert!(!page.html.contains(evil));
    assert!(
        html.contains("/sources/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/images"),
        "{html}"
    );
}

#[test]
fn no_secret_or_location_on_any_page() {
    let f = fixture();
    let i = inputs(&f, &f.sample.daemon);
    let pages = [
        overview(&i).unwrap().html,
        source(&i, "db", "app").unwrap().html,
        run(&i, 8, f.sample.runs.first()).unwrap().html,
    ];
    for html in &pages {
        for secret in [
            SECRET,
            "sample-repository-password",
            "GKsample0123",
            "postgres://",
            "127.0.0.1:3900",
            "/srv/",
        ] {
            assert!(!html.contains(secret), "{secret} on a page");
        }
        // Nothing is loaded from elsewhere: no absolute URL at all in the page.
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    }
    // The redactor ran over the texts that carried the secret.
    assert!(pages[0].contains("Bearer [REDACTED]"), "{}", pages[0]);
    assert!(pages[2].contains("[REDACTED]"), "{}", pages[2]);
}

#[test]
fn page_size_for_ten_services_is_small() {
    let f = fixture();
    let html = overview(&inputs(&f, &f.sample.daemon)).unwrap().html;
    assert!(html.len() < 60_000, "{} bytes", html.len());
}

#[test]
fn a_skipped_run_says_skipped_not_running() {
    let f = fixture();
    let mut daemon = f.sample.daemon.clone();
    let mut skipped = daemon.recent_runs[0].clone();
    skipped.verdict = None;
    skipped.finished_at = Some(skipped.started_at);
    skipped.summary = "its previous run (run 7) is still running".into();
    let mut going = skipped.clone();
    going.finished_at = None;
    daemon.recent_runs = vec![skipped, going];
    let html = overview(&inputs(&f, &daemon)).unwrap().html;
    let start = html.find("<table id=\"runs\">").unwrap();
    let runs = &html[start..start + html[start..].find("</table>").unwrap()];
    assert_eq!(
        runs.matches("<td class=\"muted\">skipped</td>").count(),
        1,
        "{runs}"
    );
    assert_eq!(runs.matches(">running</td>").count(), 1, "{runs}");
}
