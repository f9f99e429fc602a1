//! Notifications delivered to real receivers: a recording HTTP server with scripted
//! answers (500, 429 with Retry-After, 404, a slow answer past the timeout) and a real
//! SMTP server (aiosmtpd). Checks each kind's payload, the idempotency key kept across
//! retries, the final failed mark and its count, no secret sent or stored, and
//! delivery by a new notifier after a restart.

use std::path::Path;
use std::time::Duration;

use drydock_domain::config::{Config, NotifyConfig};
use drydock_domain::Verdict;
use drydock_notify::{DeliveryPolicy, Notifier, PartOutcome, RunOutcome, RunStart};
use drydock_state::{OutboxStatus, StateDb};
use drydock_testkit::receiver::{Receiver, Reply};
use drydock_testkit::smtp::SmtpReceiver;
use jiff::{Timestamp, ToSpan};

/// Loads `[[notify]]` entries through the real config load; `vars` are set first.
fn channels(notify: &str, vars: &[(&str, &str)]) -> Vec<NotifyConfig> {
    load(notify, vars, Path::new("/etc/drydock")).notify
}

/// The whole config, with its state directory under `folder`.
fn load(notify: &str, vars: &[(&str, &str)], folder: &Path) -> Config {
    // SAFETY: each test runs in its own process (nextest) and sets these before use.
    unsafe {
        std::env::set_var("DRYDOCK_TEST_REPO_PW", "repo-pw");
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
    }
    let text = format!(
        "[stack]\nname = \"clinic\"\nstate_dir = \"state\"\n\n[repository]\npath = \"/tmp/repo\"\npassword = \"${{env:DRYDOCK_TEST_REPO_PW}}\"\n{notify}"
    );
    Config::from_text(&folder.join("drydock.toml"), &text).unwrap()
}

fn t0() -> Timestamp {
    "2026-03-01T02:00:00Z".parse().unwrap()
}

fn outcome(verdict: Verdict, at: Timestamp) -> RunOutcome {
    RunOutcome {
        job: "backup".into(),
        verdict,
        parts: vec![PartOutcome {
            subject: "db/postgres".into(),
            verdict,
        }],
        failed: if verdict == Verdict::Ok {
            Vec::new()
        } else {
            vec!["db/postgres: pg_dump exited 1 (connection refused)".into()]
        },
        look_closer: "drydock backups --service db".into(),
        finished: at,
    }
}

fn quick() -> DeliveryPolicy {
    DeliveryPolicy {
        timeout: Duration::from_secs(2),
        first_retry: Duration::from_secs(10),
        max_attempts: 4,
        ..DeliveryPolicy::default()
    }
}

fn open(state: &Path, configs: &[NotifyConfig], policy: DeliveryPolicy) -> Notifier {
    Notifier::open(state, "clinic", "host1", configs, policy).unwrap()
}

#[test]
fn every_http_kind_sends_its_payload_with_a_key_and_no_secret() {
    let rx = Receiver::start(Vec::new(), Reply::status(200));
    let configs = channels(
        r#"
[[notify]]
kind = "webhook"
url = "${env:T_HOOK}"

[[notify]]
kind = "slack"
url = "${env:T_SLACK}"

[[notify]]
kind = "ntfy"
server = "${SERVER}"
topic = "${env:T_TOPIC}"
token = "${env:T_TOKEN}"

[[notify]]
kind = "healthchecks"
url = "${env:T_PING}"
"#
        .replace("${SERVER}", &rx.url(""))
        .as_str(),
        &[
            ("T_HOOK", &rx.url("/hook/canary-hook-token")),
            ("T_SLACK", &rx.url("/services/canary-slack")),
            ("T_TOPIC", "canary-topic"),
            ("T_TOKEN", "canary-ntfy-token"),
            ("T_PING", &rx.url("/ping/canary-uuid")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &configs, quick());
    let start = RunStart {
        job: "backup".into(),
        look_closer: "drydock status".into(),
        started: t0(),
    };
    assert_eq!(
        n.run_started(&start).unwrap(),
        1,
        "only healthchecks asks for start"
    );
    assert_eq!(
        n.run_finished(&outcome(Verdict::Failed, t0() + 1.minute()))
            .unwrap(),
        4
    );
    let reports = n.deliver_due(t0() + 1.minute()).unwrap();
    assert!(reports.iter().all(|r| r.result == "sent"), "{reports:?}");
    let got = rx.received();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ping/canary-uuid/start",
            "/hook/canary-hook-token",
            "/services/canary-slack",
            "/canary-topic",
            "/ping/canary-uuid/fail"
        ]
    );
    let keys: Vec<&str> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("drydock-") && k.len() == 40),
        "{keys:?}"
    );
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "each notification has its own key"
    );

    let hook = got[1].json();
    insta::assert_json_snapshot!("webhook_failure", hook, {".idempotency_key" => "[key]"});
    assert_eq!(hook["event"], "failure");
    assert_eq!(hook["stack"], "clinic");
    assert_eq!(hook["host"], "host1");
    assert_eq!(hook["job"], "backup");
    assert_eq!(hook["verdict"], "failed");
    assert_eq!(hook["title"], "clinic@host1: backup failed (db/postgres)");
    assert_eq!(
        hook["failed"][0],
        "db/postgres: pg_dump exited 1 (connection refused)"
    );
    assert_eq!(hook["look_closer"], "drydock backups --service db");
    assert_eq!(hook["idempotency_key"], keys[1]);
    assert!(hook["text"]
        .as_str()
        .unwrap()
        .contains("look closer: drydock backups --service db"));
    assert_eq!(got[1].header("content-type"), Some("application/json"));

    let slack = got[2].json();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("*clinic@host1: backup failed (db/postgres)*\n```"),
        "{text}"
    );
    assert!(text.contains("- db/postgres: pg_dump exited 1"), "{text}");

    let ntfy = &got[3];
    assert_eq!(
        ntfy.header("title"),
        Some("clinic@host1: backup failed (db/postgres)")
    );
    assert_eq!(ntfy.header("priority"), Some("high"));
    assert_eq!(ntfy.header("tags"), Some("rotating_light,drydock,failure"));
    assert_eq!(
        ntfy.header("authorization"),
        Some("Bearer canary-ntfy-token")
    );
    assert!(ntfy.body_text().contains("what failed:\n- db/postgres"));
    assert!(got[4].body_text().contains("verdict: failed"));

    // No secret in any body or in any header but the one meant to carry it.
    for r in &got {
        assert!(!r.body_text().contains("canary"), "{}", r.body_text());
        for (k, v) in &r.headers {
            assert!(k == "authorization" || !v.contains("canary"), "{k}: {v}");
        }
    }
    let stored = StateDb::open(dir.path()).unwrap().outbox().unwrap();
    assert!(stored.iter().all(|e| !e.payload.contains("canary")));

    // The same failure again sends nothing but healthchecks' ping; the recovery is sent.
    assert_eq!(
        n.run_finished(&outcome(Verdict::Failed, t0() + 2.hours()))
            .unwrap(),
        1
    );
    assert_eq!(
        n.run_finished(&outcome(Verdict::Ok, t0() + 3.hours()))
            .unwrap(),
        4
    );
    n.deliver_due(t0() + 3.hours()).unwrap();
    let got = rx.received();
    let paths: Vec<&str> = got[5..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ping/canary-uuid/fail",
            "/hook/canary-hook-token",
            "/services/canary-slack",
            "/canary-topic",
            "/ping/canary-uuid"
        ]
    );
    insta::assert_snapshot!("slack_recovery", got[7].json()["text"].as_str().unwrap());
    assert_eq!(got[6].json()["event"], "recovery");
    assert_eq!(
        got[6].json()["title"],
        "clinic@host1: backup recovered (db/postgres)"
    );
    assert_eq!(
        got[8].header("tags"),
        Some("white_check_mark,drydock,recovery")
    );
}

fn webhook(rx: &Receiver) -> Vec<NotifyConfig> {
    channels(
        "[[notify]]\nkind = \"webhook\"\nname = \"ops\"\nurl = \"${env:T_HOOK}\"\n",
        &[("T_HOOK", &rx.url("/hook/canary-hook-token"))],
    )
}

#[test]
fn errors_are_retried_with_the_same_key_honouring_retry_after_then_marked_failed() {
    let rx = Receiver::start(
        vec![
            Reply::status(500),
            Reply::status(429).header("Retry-After", "7"),
        ],
        Reply::status(503),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &webhook(&rx), quick());
    // The job's run is recorded whatever the receiver does.
    assert_eq!(n.run_finished(&outcome(Verdict::Failed, t0())).unwrap(), 1);
    let db = StateDb::open(dir.path()).unwrap();
    let at = |now: Timestamp| now.as_millisecond();

    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(
        (r[0].result, r[0].error.as_str()),
        ("retry", "the receiver answered HTTP 500")
    );
    assert_eq!(
        r[0].next_attempt_ms,
        Some(at(t0() + 10.seconds())),
        "first backoff"
    );
    assert!(
        n.deliver_due(t0() + 9.seconds()).unwrap().is_empty(),
        "not due yet"
    );

    let r = n.deliver_due(t0() + 10.seconds()).unwrap();
    assert_eq!(r[0].result, "retry");
    assert_eq!(
        r[0].next_attempt_ms,
        Some(at(t0() + 17.seconds())),
        "Retry-After: 7 is honoured over the 20 s backoff"
    );
    let r = n.deliver_due(t0() + 17.seconds()).unwrap();
    assert_eq!(
        r[0].next_attempt_ms,
        Some(at(t0() + 57.seconds())),
        "backoff doubles: 40 s"
    );
    let r = n.deliver_due(t0() + 57.seconds()).unwrap();
    assert_eq!(r[0].result, "failed");
    assert_eq!(
        r[0].error,
        "gave up after 4 attempt(s): the receiver answered HTTP 503"
    );
    assert!(
        n.deliver_due(t0() + 24.hours()).unwrap().is_empty(),
        "given up: never tried again"
    );

    let got = rx.received();
    assert_eq!(got.len(), 4);
    let key = got[0].header("idempotency-key").unwrap();
    assert!(got.iter().all(|r| r.header("idempotency-key") == Some(key)));
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same payload each time"
    );
    let entry = db.outbox_entry(key).unwrap().unwrap();
    assert_eq!((entry.status, entry.attempts), (OutboxStatus::Failed, 4));
    assert_eq!(n.failed_total().unwrap(), 1);
    let failed = n.recent_failed(10).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].channel, "ops");
    assert!(!failed[0].last_error.contains("canary"));
}

#[test]
fn a_refusal_is_marked_failed_at_once() {
    let rx = Receiver::start(Vec::new(), Reply::status(404));
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &webhook(&rx), quick());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "failed");
    assert!(r[0].error.contains("HTTP 404"), "{}", r[0].error);
    assert!(n.deliver_due(t0() + 1.hour()).unwrap().is_empty());
    assert_eq!(rx.received().len(), 1);
    assert_eq!(n.failed_total().unwrap(), 1);
}

#[test]
fn a_slow_or_absent_receiver_is_retried_and_the_age_limit_gives_up() {
    let rx = Receiver::start(
        vec![Reply::slow(Duration::from_secs(4))],
        Reply::status(204),
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = DeliveryPolicy {
        timeout: Duration::from_secs(1),
        ..quick()
    };
    let mut n = open(dir.path(), &webhook(&rx), policy.clone());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let began = std::time::Instant::now();
    let r = n.deliver_due(t0()).unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(r[0].result, "retry");
    assert!(r[0].error.contains("timed out"), "{}", r[0].error);
    let r = n.deliver_due(t0() + 10.seconds()).unwrap();
    assert_eq!(r[0].result, "sent");
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );

    // Nobody listening: a network error, retried, until the notification is too old.
    let closed = drydock_testkit::free_port();
    let down = channels(
        "[[notify]]\nkind = \"webhook\"\nurl = \"${env:T_DOWN}\"\n",
        &[("T_DOWN", &format!("http://127.0.0.1:{closed}/canary-down"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = DeliveryPolicy {
        max_attempts: 100,
        max_age: Duration::from_secs(40),
        ..policy
    };
    let mut n = open(dir.path(), &down, policy);
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "retry", "{r:?}");
    assert!(!r[0].error.contains("canary"), "{}", r[0].error);
    let r = n.deliver_due(t0() + 30.seconds()).unwrap();
    assert_eq!(
        r[0].result, "failed",
        "the next attempt would be past the age limit"
    );
    assert!(
        r[0].error.starts_with("gave up after 2 attempt(s)"),
        "{}",
        r[0].error
    );
}

#[test]
fn what_is_queued_is_delivered_by_a_new_notifier_after_a_restart() {
    let rx = Receiver::start(Vec::new(), Reply::status(200));
    let configs = webhook(&rx);
    let folder = tempfile::tempdir().unwrap();
    let config = load(
        "[[notify]]\nkind = \"webhook\"\nname = \"ops\"\nurl = \"${env:T_HOOK}\"\n",
        &[("T_HOOK", &rx.url("/hook/canary-hook-token"))],
        folder.path(),
    );
    let state = config.stack.state_dir.clone();
    assert!(state.starts_with(folder.path()));
    {
        let mut n = Notifier::for_config(&config, "host1", quick()).unwrap();
        n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
        // The daemon dies before any attempt.
    }
    assert!(rx.received().is_empty());
    let dir = &state;
    let mut n = open(dir, &configs, quick());
    let r = n.deliver_due(t0() + 5.seconds()).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].result, "sent");
    let got = rx.received();
    assert_eq!(got[0].json()["event"], "failure");
    assert_eq!(
        got[0].header("idempotency-key"),
        Some(r[0].idempotency_key.as_str())
    );
    // The failing state survived as well: the same failure is not sent again.
    assert_eq!(
        n.run_finished(&outcome(Verdict::Failed, t0() + 1.hour()))
            .unwrap(),
        0
    );
    // A channel removed from the config: what was queued for it is given up, counted.
    n.run_finished(&outcome(Verdict::Ok, t0() + 2.hours()))
        .unwrap();
    drop(n);
    let mut n = open(dir, &[], quick());
    let r = n.deliver_due(t0() + 2.hours()).unwrap();
    assert_eq!(r[0].result, "failed");
    assert_eq!(r[0].error, "the channel `ops` is no longer in the config");
    assert_eq!(n.failed_total().unwrap(), 1);
}

fn email(port: u16) -> Vec<NotifyConfig> {
    channels(
        &format!(
            "[[notify]]\nkind = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"drydock@example.com\"\nto = [\"ops@example.com\", \"night@example.com\"]\n"
        ),
        &[],
    )
}

#[test]
fn email_is_sent_through_a_real_smtp_server_with_the_key_as_message_id() {
    let smtp = SmtpReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &email(smtp.port()), quick());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "sent", "{r:?}");
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains("X-Envelope-From: drydock@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("X-Envelope-To: ops@example.com,night@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: clinic@host1: backup failed (db/postgres)"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "Message-ID: <{}@drydock.host1>",
            r[0].idempotency_key
        )),
        "{mail}"
    );
    assert!(mail.contains("db/postgres: pg_dump exited 1"), "{mail}");
    assert!(
        mail.contains("look closer: drydock backups --service db"),
        "{mail}"
    );
}

#[test]
fn smtp_refusals_are_final_and_temporary_errors_retried() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = SmtpReceiver::answering("550 5.1.1 no such user");
    let mut n = open(dir.path(), &email(refusing.port()), quick());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "failed", "{r:?}");
    assert!(r[0].error.contains("refused the mail"), "{}", r[0].error);

    let dir = tempfile::tempdir().unwrap();
    let busy = SmtpReceiver::answering("451 4.3.0 try again later");
    let mut n = open(dir.path(), &email(busy.port()), quick());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "retry", "{r:?}");
    assert!(busy.messages().is_empty());
}

#[test]
fn a_channel_secret_in_what_failed_is_redacted_before_it_is_stored_or_sent() {
    let rx = Receiver::start(Vec::new(), Reply::status(200));
    let configs = webhook(&rx);
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &configs, quick());
    let mut run = outcome(Verdict::Failed, t0());
    run.failed = vec![format!(
        "sync: POST {} answered 500",
        rx.url("/hook/canary-hook-token")
    )];
    n.run_finished(&run).unwrap();
    let stored = StateDb::open(dir.path()).unwrap().outbox().unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].payload.contains("canary"),
        "{}",
        stored[0].payload
    );
    assert!(stored[0]
        .payload
        .contains("sync: POST [redacted] answered 500"));
    n.deliver_due(t0()).unwrap();
    let body = rx.received()[0].body_text();
    assert!(
        !body.contains("canary") && body.contains("[redacted]"),
        "{body}"
    );
}

#[test]
fn a_certificate_the_system_does_not_trust_is_refused_at_once() {
    use drydock_testkit::http::{HttpServer, Route, TestCa};
    let ca = TestCa::new();
    let https = HttpServer::start(
        vec![Route::new("/hook/canary-tls", 200, "")],
        Some(ca.leaf(&["127.0.0.1", "localhost"], -1, 30)),
    );
    let configs = channels(
        "[[notify]]\nkind = \"webhook\"\nurl = \"${env:T_TLS}\"\n",
        &[("T_TLS", &https.url("/hook/canary-tls"))],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &configs, quick());
    n.run_finished(&outcome(Verdict::Failed, t0())).unwrap();
    let r = n.deliver_due(t0()).unwrap();
    assert_eq!(r[0].result, "failed", "{r:?}");
    assert!(r[0].error.starts_with("TLS failed"), "{}", r[0].error);
    assert!(!r[0].error.contains("canary"), "{}", r[0].error);
}

/// One check of the overdue watch: `db/postgres` overdue or not, `web/files` fine.
fn overdue_check(overdue: bool, at: Timestamp) -> RunOutcome {
    let v = |bad: bool| if bad { Verdict::Missing } else { Verdict::Ok };
    RunOutcome {
        job: drydock_notify::OVERDUE_JOB.into(),
        verdict: v(overdue),
        parts: vec![
            PartOutcome {
                subject: "db/postgres".into(),
                verdict: v(overdue),
            },
            PartOutcome {
                subject: "web/files".into(),
                verdict: Verdict::Ok,
            },
        ],
        failed: if overdue {
            vec!["db/postgres: last good backup 2d 0h ago; expected every 1d 0h (overdue past 1d 6h)".into()]
        } else {
            Vec::new()
        },
        look_closer: "drydock status".into(),
        finished: at,
    }
}

#[test]
fn the_overdue_watch_sends_one_overdue_a_daily_reminder_and_one_recovery() {
    let rx = Receiver::start(Vec::new(), Reply::status(200));
    let configs = channels(
        "[[notify]]\nkind = \"webhook\"\nurl = \"${env:T_HOOK}\"\non = [\"failure\", \"recovery\", \"success\"]\n\n[[notify]]\nkind = \"healthchecks\"\nurl = \"${env:T_PING}\"\n",
        &[
            ("T_HOOK", &rx.url("/hook/canary-hook-token")),
            ("T_PING", &rx.url("/ping/canary-uuid")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut n = open(dir.path(), &configs, quick());
    // Checked every minute on the daemon's tick: fine, then overdue for 25 hours.
    let mut queued = Vec::new();
    let mut at = t0();
    queued.push(n.overdue_checked(&overdue_check(false, at)).unwrap());
    for _ in 0..5 {
        at += 1.minute();
        queued.push(n.overdue_checked(&overdue_check(true, at)).unwrap());
    }
    assert_eq!(queued, [0, 2, 0, 0, 0, 0], "one overdue, to both channels");
    n.deliver_due(at).unwrap();
    at += 25.hours();
    assert_eq!(n.overdue_checked(&overdue_check(true, at)).unwrap(), 2);
    assert_eq!(
        n.overdue_checked(&overdue_check(true, at + 1.minute()))
            .unwrap(),
        0
    );
    at += 2.minutes();
    assert_eq!(n.overdue_checked(&overdue_check(false, at)).unwrap(), 2);
    assert_eq!(
        n.overdue_checked(&overdue_check(false, at + 1.minute()))
            .unwrap(),
        0
    );
    let reports = n.deliver_due(at + 1.minute()).unwrap();
    assert!(reports.iter().all(|r| r.result == "sent"), "{reports:?}");

    let got = rx.received();
    let hook: Vec<serde_json::Value> = got
        .iter()
        .filter(|r| r.path.starts_with("/hook"))
        .map(|r| r.json())
        .collect();
    let events: Vec<&str> = hook.iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["failure", "reminder", "recovery"], "{hook:#?}");
    assert_eq!(hook[0]["job"], "overdue");
    assert_eq!(
        hook[0]["title"],
        "clinic@host1: backup overdue (db/postgres)"
    );
    assert!(
        hook[0]["failed"][0]
            .as_str()
            .unwrap()
            .contains("expected every 1d 0h"),
        "{:#}",
        hook[0]
    );
    assert_eq!(hook[0]["look_closer"], "drydock status");
    assert_eq!(
        hook[1]["title"],
        "clinic@host1: backup still overdue (db/postgres) for 1d 1h"
    );
    assert_eq!(
        hook[2]["title"],
        "clinic@host1: backup no longer overdue (db/postgres)"
    );
    // The dead man's switch: /fail for the overdue and the reminder, its success ping
    // for the recovery; never pinged for a check that changed nothing.
    let pings: Vec<&str> = got
        .iter()
        .filter(|r| r.path.starts_with("/ping"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        pings,
        [
            "/ping/canary-uuid/fail",
            "/ping/canary-uuid/fail",
            "/ping/canary-uuid"
        ]
    );
    for r in &got {
        let text = r.body_text();
        assert!(!text.contains("canary-hook-token"), "{text}");
        assert!(!text.contains("canary-uuid"), "{text}");
        assert!(!text.contains("repo-pw"), "{text}");
    }
}
