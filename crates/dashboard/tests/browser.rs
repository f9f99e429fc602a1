//! The overview in a real headless Chromium: served over real HTTP with the daemon's
//! headers (content type, CSP) and an events stream, loaded, its matrix read back from
//! the DOM, the live script seen running, no console error, nothing loaded from
//! elsewhere, and a screenshot saved (`DRYDOCK_SCREENSHOT=docs/dashboard.png` writes
//! the README's; otherwise it goes to a temporary file).

use std::path::PathBuf;
use std::time::Duration;

use drydock_dashboard::sample::Sample;
use drydock_dashboard::{overview, run, source, Inputs, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use drydock_state::StateDb;
use drydock_testkit::browser::{console_errors, Browser};
use drydock_testkit::http::{HttpServer, Route};
use fantoccini::{Client, Locator};

fn page_route(path: &str, html: &str) -> Route {
    Route::new(path, 200, html)
        .header("Content-Type", CONTENT_TYPE)
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let now = "2026-12-01T06:00:00Z".parse().unwrap();
    let sample = Sample::new(10, 90, now);
    let config = sample.config(dir.path());
    let mut state = StateDb::open(&config.stack.state_dir).unwrap();
    sample.fill_state(&mut state).unwrap();
    let inputs = Inputs {
        config: &config,
        state: &state,
        daemon: &sample.daemon,
        now,
    };
    let server = HttpServer::start(
        vec![
            page_route("/", &overview(&inputs).unwrap().html),
            page_route(
                "/sources/db/app",
                &source(&inputs, "db", "app").unwrap().html,
            ),
            page_route(
                "/runs/8",
                &run(&inputs, 8, sample.runs.first()).unwrap().html,
            ),
            Route::new(
                "/api/v1/events",
                200,
                // Named as the daemon names them (`drydock serve`'s `/api/v1/events`).
                "retry: 60000\nevent: drydock\ndata: {\"run\":8,\"what\":\"finished\"}\n\n",
            )
            .header("Content-Type", "text/event-stream")
            .header("Cache-Control", "no-store"),
        ],
        None,
    );

    let browser = Browser::start();
    let c = browser.client(1280, 2300).await;
    c.goto(&server.url("/")).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#matrix"))
        .await
        .unwrap();

    // The matrix as the browser laid it out: one row per source, a cell per copy.
    let rows = c.find_all(Locator::Css("#matrix tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 10);
    let local = text(&c, r#"tr[data-source="db/app"] td[data-copy="local"]"#).await;
    assert!(
        local.starts_with("verified") && local.contains("3h ago"),
        "{local}"
    );
    let offsite = text(&c, r#"tr[data-source="db/app"] td[data-copy="offsite"]"#).await;
    assert!(
        offsite.contains("present") && offsite.contains("newest unsynced"),
        "{offsite}"
    );
    let search = text(
        &c,
        r#"tr[data-source="search/index"] td[data-copy="local"]"#,
    )
    .await;
    assert!(search.contains("overdue"), "{search}");
    assert_eq!(
        c.find_all(Locator::Css("#health .tile"))
            .await
            .unwrap()
            .len(),
        10
    );
    assert!(
        text(&c, "#runs").await.contains("could not run")
            || text(&c, "#runs").await.contains("failed")
    );
    assert_eq!(
        c.find_all(Locator::Css("svg.chart polyline"))
            .await
            .unwrap()
            .len(),
        2
    );

    // The live script ran: it opened the events stream, and the event it got made it
    // fetch the page again (the main is swapped; the matrix is still there).
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#live[data-events]"))
        .await
        .expect("the live script counts the events stream's message");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fetched: Vec<String> = serde_json::from_value(
        c.execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let origin = server.url("");
    assert!(
        fetched.iter().any(|u| u.ends_with("/api/v1/events")),
        "{fetched:?}"
    );
    assert!(
        fetched.iter().all(|u| u.starts_with(&origin)),
        "a request left the server: {fetched:?}"
    );
    assert_eq!(
        c.find_all(Locator::Css("#matrix tbody tr"))
            .await
            .unwrap()
            .len(),
        10
    );
    let errors = console_errors(&c).await;
    assert!(errors.is_empty(), "console errors on /: {errors:?}");

    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let target = match std::env::var_os("DRYDOCK_SCREENSHOT") {
        // Relative to the workspace root, where `.ci/run` and people run from.
        Some(p) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(p),
        None => dir.path().join("dashboard.png"),
    };
    std::fs::write(&target, &png).unwrap();

    // The drill-down pages.
    c.find(Locator::Css(r#"a[href="/sources/db/app"]"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#backups"))
        .await
        .unwrap();
    assert_eq!(
        c.find_all(Locator::Css("#backups tbody tr"))
            .await
            .unwrap()
            .len(),
        90
    );
    c.goto(&server.url("/runs/8")).await.unwrap();
    let steps = text(&c, "#steps").await;
    assert!(
        steps.contains("local -> offsite") && steps.contains("warning"),
        "{steps}"
    );
    let errors = console_errors(&c).await;
    assert!(
        errors.is_empty(),
        "console errors on the drill-down pages: {errors:?}"
    );
    c.close().await.unwrap();
}
