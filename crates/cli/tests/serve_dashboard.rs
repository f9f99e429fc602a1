//! The dashboard of the real daemon in a real headless Chromium: `drydock serve` on a
//! stack of three services (SQLite and files, PostgreSQL, Redis with a password, all
//! real servers) with seconds-cron schedules; once good backups are in, the overview,
//! a source's page and a backup run's page are loaded and read back from the DOM (the
//! services, the backup matrix, the run's steps and events), the live badge counts
//! the daemon's named events and the overview refreshes itself in place, no page logs
//! a console error, and no secret is on a page or in the events stream.
//!
//! `DRYDOCK_SCREENSHOT=docs/dashboard.png` saves the overview as the README's
//! screenshot (relative to the workspace root); otherwise it goes to a temporary file.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::serve::{agent, finished, Serve, TOKEN};
use common::{Stack, REPO_PASSWORD};
use drydock_testkit::browser::{console_errors, Browser};
use fantoccini::{Client, Locator};
use serde_json::Value;

const REDIS_PASSWORD: &str = "redis-canary-Lk29vQ";

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn html(c: &Client) -> String {
    c.source().await.unwrap()
}

/// Waits until the JS expression `check` is true in the page, at most `secs`.
async fn wait_js(c: &Client, secs: u64, what: &str, check: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = c
            .execute(&format!("return !!({check});"), vec![])
            .await
            .unwrap();
        if v == Value::Bool(true) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} ({check})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The whole events stream the test saw, read on a thread of its own.
fn record_events(serve: &Serve) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let mut r = agent().get(&serve.url("/api/v1/events")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let into = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(r.body_mut().as_reader());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    seen
}

#[test]
fn the_real_daemons_dashboard_in_chromium() {
    let pg = drydock_testkit::postgres::PgServer::start();
    pg.create_db("shop");
    pg.psql(
        "shop",
        "CREATE TABLE orders (id serial PRIMARY KEY, item text); INSERT INTO orders (item) SELECT 'item ' || g FROM generate_series(1, 500) g;",
    );
    let redis = drydock_testkit::redis::RedisServer::start_with_password(REDIS_PASSWORD);
    redis.cli(&["SET", "session:1", "alice"]);
    let stack = Stack::new(&format!(
        "[serve]\ntoken = \"${{env:TEST_SERVE_TOKEN}}\"\nstop_timeout = \"20s\"\n\n\
         [[schedule]]\njob = \"backup\"\ncron = \"*/30 * * * * *\"\n\n\
         [[schedule]]\njob = \"health\"\ncron = \"*/10 * * * * *\"\n\n\
         [services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n\n\
         [services.shop]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", name = \"orders\", priority = \"critical\", url = \"{}\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n\n\
         [services.cache]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", name = \"sessions\", priority = \"high\", url = \"{}\", password = \"${{env:TEST_REDIS_PASSWORD}}\" }}]\n",
        pg.url("shop"),
        redis.url()
    ))
    .env("TEST_SERVE_TOKEN", TOKEN)
    .env("TEST_PG_PASSWORD", pg.password())
    .env("TEST_REDIS_PASSWORD", REDIS_PASSWORD);
    let conn = rusqlite::Connection::open(stack.path().join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         INSERT INTO notes (body) VALUES ('one'), ('two');",
    )
    .unwrap();
    drop(conn);
    std::fs::create_dir_all(stack.path().join("uploads")).unwrap();
    std::fs::write(stack.path().join("uploads/logo.png"), vec![1u8; 50_000]).unwrap();

    let serve = Serve::start(&stack);
    let stream = record_events(&serve);
    let runs = serve.wait_runs(Duration::from_secs(150), "two good backups", |r| {
        finished(r, "backup", "ok") >= 2 && finished(r, "health", "ok") >= 1
    });
    let backup = runs
        .iter()
        .find(|r| r["kind"] == "backup" && r["verdict"] == "ok")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let secrets = [TOKEN, REPO_PASSWORD, REDIS_PASSWORD, pg.password()];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let browser = Browser::start();
        let c = browser.client(1280, 1600).await;

        // The overview: every service, the backup matrix with a row per source.
        c.goto(&serve.url("/")).await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#matrix"))
            .await
            .unwrap();
        let mut sources: Vec<String> = Vec::new();
        for row in c.find_all(Locator::Css("#matrix tbody tr")).await.unwrap() {
            sources.push(row.attr("data-source").await.unwrap().unwrap_or_default());
        }
        sources.sort();
        assert_eq!(
            sources,
            ["app/db", "app/uploads", "cache/sessions", "shop/orders"]
        );
        for source in &sources {
            let cell = text(
                &c,
                &format!(r#"tr[data-source="{source}"] td[data-copy="local"]"#),
            )
            .await;
            assert!(cell.starts_with("verified"), "{source}: {cell}");
        }
        let health = text(&c, "#health").await;
        for service in ["app", "shop", "cache"] {
            assert!(health.contains(service), "{service} not in {health}");
        }
        assert!(text(&c, "#runs").await.contains("backup"));
        let errors = console_errors(&c).await;
        assert!(errors.is_empty(), "console errors on /: {errors:?}");

        // Live: the badge counts the daemon's named events, and the next run shows up
        // in the page without a reload (the marker set now survives).
        c.execute("window.__notReloaded = true; return null;", vec![])
            .await
            .unwrap();
        let newest_run =
            r#"document.querySelector('#runs a[href^="/runs/"]').getAttribute('href')"#;
        let before: String = serde_json::from_value(
            c.execute(&format!("return {newest_run};"), vec![])
                .await
                .unwrap(),
        )
        .unwrap();
        wait_js(
            &c,
            30,
            "the live badge to count the events stream",
            "Number(document.getElementById('live').getAttribute('data-events')) > 0",
        )
        .await;
        wait_js(
            &c,
            30,
            "a newer run on the page, refreshed in place",
            &format!("window.__notReloaded && {newest_run} !== '{before}'"),
        )
        .await;
        assert_eq!(text(&c, "#live").await, "live");

        let png = c.screenshot().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let target = match std::env::var_os("DRYDOCK_SCREENSHOT") {
            // Relative to the workspace root, where `.ci/run` and people run from.
            Some(p) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(p),
            None => stack.path().join("dashboard.png"),
        };
        std::fs::write(&target, &png).unwrap();
        let overview = html(&c).await;

        // A source's page: its backups, newest first.
        c.find(Locator::Css(r#"a[href="/sources/shop/orders"]"#))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#backups"))
            .await
            .unwrap();
        let backups = c.find_all(Locator::Css("#backups tbody tr")).await.unwrap();
        assert!(backups.len() >= 2, "{} backups listed", backups.len());
        let source_page = html(&c).await;
        let errors = console_errors(&c).await;
        assert!(
            errors.is_empty(),
            "console errors on a source page: {errors:?}"
        );

        // A good backup run's page: a step per source with its verdict, and its events.
        c.goto(&serve.url(&format!("/runs/{backup}")))
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#steps"))
            .await
            .unwrap();
        let steps = c.find_all(Locator::Css("#steps tbody tr")).await.unwrap();
        assert_eq!(steps.len(), 4, "{}", text(&c, "#steps").await);
        let table = text(&c, "#steps").await;
        for source in &sources {
            assert!(table.contains(&format!("{source} backup")), "{table}");
        }
        for row in &steps {
            let verdict = row
                .find(Locator::Css("td:nth-child(4)"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(verdict, "ok", "{}", row.text().await.unwrap());
        }
        let events = text(&c, "pre.events").await;
        assert!(events.contains("backup "), "{events}");
        assert!(events.contains("started: 4 source(s)"), "{events}");
        assert!(events.contains("shop/orders: ok ("), "{events}");
        assert!(
            events.contains("cache/sessions: backup (redis)"),
            "{events}"
        );
        let run_page = html(&c).await;
        let errors = console_errors(&c).await;
        assert!(
            errors.is_empty(),
            "console errors on a run page: {errors:?}"
        );
        c.close().await.unwrap();

        for (page, html) in [
            ("/", &overview),
            ("a source page", &source_page),
            ("a run page", &run_page),
        ] {
            for secret in secrets {
                assert!(!html.contains(secret), "a secret on {page}");
            }
        }
    });

    assert_eq!(serve.terminate(), 0);
    let stream = stream.lock().unwrap().clone();
    assert!(stream.contains("event: drydock"), "{stream}");
    assert!(stream.contains("\"what\":\"event\""), "{stream}");
    for secret in secrets {
        assert!(!stream.contains(secret), "a secret in /api/v1/events");
    }
}
