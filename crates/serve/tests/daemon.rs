//! The daemon as a library on an injected clock, over real HTTP: `/healthz` turns 503
//! with its reason once the scheduler has not ticked for 5 minutes of wall clock, one
//! daemon per stack, and the stop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drydock_domain::Config;
use drydock_serve::{Daemon, DaemonOptions, ManualClock, NoNotifier, ServeError};

fn config(dir: &Path) -> Config {
    // SAFETY: only this test binary reads this variable.
    unsafe { std::env::set_var("DAEMON_TEST_REPO_PW", "daemon-repo-pw") };
    let text = "[stack]\nname = \"t\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${env:DAEMON_TEST_REPO_PW}\"\n\n[[schedule]]\njob = \"prune\"\ncron = \"0 4 1 1 *\"\n\n[services.web]\nruntime = { kind = \"none\" }\n";
    Config::from_text(&dir.join("drydock.toml"), text).unwrap()
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent.get(&format!("http://{addr}{path}")).call().unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn healthz_turns_503_when_the_scheduler_has_not_ticked_for_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-12-01T10:00:00Z".parse().unwrap()));
    let daemon = Daemon::start(
        config(dir.path()),
        DaemonOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            clock: clock.clone(),
            notifier: Arc::new(NoNotifier),
        },
    )
    .unwrap();
    let addr = daemon.local_addr();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = get(addr, "/healthz");
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_tick"], "2026-12-01T10:00:00Z");
    // Six minutes pass on the wall clock; the loop (asleep for up to 60 s of its own)
    // has not ticked since.
    clock.advance(jiff::SignedDuration::from_secs(360));
    let (status, body) = get(addr, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ok"], false);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("last ticked 360 s ago"),
        "{body}"
    );

    // One daemon per stack.
    let second = Daemon::start(
        config(dir.path()),
        DaemonOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..DaemonOptions::default()
        },
    );
    assert!(
        matches!(second, Err(ServeError::AlreadyRunning { .. })),
        "{:?}",
        second.err()
    );

    let stopped = daemon.shutdown("test");
    assert!(stopped.finished_in_time);
    assert_eq!(stopped.interrupted, 0);
    // Stopped, the stack is free again.
    let again = Daemon::start(
        config(dir.path()),
        DaemonOptions {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..DaemonOptions::default()
        },
    )
    .unwrap();
    again.shutdown("test");
}

#[test]
fn a_non_loopback_listen_without_a_token_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Daemon::start(
        config(dir.path()),
        DaemonOptions {
            listen: Some("0.0.0.0:0".parse().unwrap()),
            ..DaemonOptions::default()
        },
    );
    let err = refused.err().expect("refused");
    assert!(matches!(err, ServeError::NoToken { .. }));
    assert!(err.to_string().contains("set `token` in [serve]"), "{err}");
    assert!(!dir.path().join("state").exists(), "nothing was created");
}
