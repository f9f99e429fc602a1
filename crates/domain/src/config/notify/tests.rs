//! `[[notify]]` loading: every kind's good shape, the defaults, and the bad shapes with
//! their file:line messages; no secret value in any output.

use std::path::Path;

use super::*;
use crate::config::{Config, ConfigErrors};

const HEAD: &str = r#"
[stack]
name = "clinic"
state_dir = "state"

[repository]
path = "/opt/backups/repo"
password = "${env:DRYDOCK_TEST_REPO_PW}"
"#;

fn load(notify: &str) -> Result<Config, ConfigErrors> {
    // SAFETY: tests in this module only read these variables, set to the same values.
    unsafe {
        std::env::set_var("DRYDOCK_TEST_REPO_PW", "repo-canary-pw");
        std::env::set_var(
            "DRYDOCK_TEST_HOOK",
            "https://hooks.example.com/T0/canary-token",
        );
        std::env::set_var("DRYDOCK_TEST_TOPIC", "canary-topic");
        std::env::set_var("DRYDOCK_TEST_SMTP_PW", "canary-smtp-pw");
        std::env::set_var("DRYDOCK_TEST_NOT_URL", "canary not a url");
    }
    Config::from_text(
        Path::new("/etc/drydock/drydock.toml"),
        &format!("{HEAD}{notify}"),
    )
}

fn errors(notify: &str) -> String {
    load(notify)
        .expect_err("config should be rejected")
        .to_string()
}

const EVERY_KIND: &str = r#"
[[notify]]
kind = "webhook"
url = "${env:DRYDOCK_TEST_HOOK}"

[[notify]]
kind = "slack"
url = "${env:DRYDOCK_TEST_HOOK}"
on = ["failure", "recovery", "success"]

[[notify]]
kind = "ntfy"
topic = "${env:DRYDOCK_TEST_TOPIC}"

[[notify]]
kind = "healthchecks"
url = "${env:DRYDOCK_TEST_HOOK}"

[[notify]]
kind = "email"
name = "ops-mail"
server = "smtp.example.com"
from = "drydock@example.com"
to = ["ops@example.com", "Night Shift <night@example.com>"]
username = "drydock"
password = "${env:DRYDOCK_TEST_SMTP_PW}"
"#;

#[test]
fn every_kind_loads_with_its_defaults_and_secrets_resolved_but_never_shown() {
    let c = load(EVERY_KIND).unwrap();
    let names: Vec<(&str, &str)> = c
        .notify
        .iter()
        .map(|n| (n.name.as_str(), n.channel.kind()))
        .collect();
    assert_eq!(
        names,
        [
            ("webhook", "webhook"),
            ("slack", "slack"),
            ("ntfy", "ntfy"),
            ("healthchecks", "healthchecks"),
            ("ops-mail", "email")
        ]
    );
    use NotifyOn::*;
    assert_eq!(c.notify[0].on, [Failure, Recovery]);
    assert_eq!(c.notify[1].on, [Failure, Recovery, Success]);
    // A dead man's switch wants every run.
    assert_eq!(c.notify[3].on, [Failure, Success, Start]);
    let ChannelConfig::Ntfy(ntfy) = &c.notify[2].channel else {
        panic!()
    };
    assert_eq!(ntfy.server, "https://ntfy.sh");
    assert_eq!(ntfy.topic.expose(), "canary-topic");
    let ChannelConfig::Email(mail) = &c.notify[4].channel else {
        panic!()
    };
    assert_eq!((mail.port(), mail.tls), (587, SmtpTls::Starttls));
    assert_eq!(mail.password.as_ref().unwrap().expose(), "canary-smtp-pw");
    assert_eq!(c.notify[4].channel.spec().secrets().len(), 1);
    let shown = format!("{c:?} {}", serde_json::to_string(&c).unwrap());
    assert!(!shown.contains("canary"), "{shown}");
    assert!(shown.contains("${env:DRYDOCK_TEST_HOOK}"), "{shown}");
}

#[test]
fn a_config_without_notify_serializes_as_before() {
    let c = load("").unwrap();
    assert!(c.notify.is_empty());
    assert!(!serde_json::to_string(&c).unwrap().contains("notify"));
}

#[test]
fn bad_entries_are_all_reported_with_their_lines_and_no_secret() {
    let text = errors(
        r#"
[[notify]]
kind = "pager"

[[notify]]
kind = "webhook"
url = "https://hooks.example.com/literal-canary"

[[notify]]
kind = "slack"
url = "${env:DRYDOCK_TEST_NOT_URL}"
on = ["failure", "always"]

[[notify]]
kind = "ntfy"
topic = "${env:DRYDOCK_TEST_TOPIC}"
server = "https://user:pw@ntfy.example.com"
priority = 5

[[notify]]
kind = "webhook"
url = "${env:DRYDOCK_TEST_NOT_URL}"
on = []

[[notify]]
kind = "email"
server = "mail.example.com"
tls = "none"
from = "drydock"
to = []
username = "drydock"
password = "${env:DRYDOCK_TEST_SMTP_PW}"
"#,
    );
    insta::assert_snapshot!(text, @r#"
    /etc/drydock/drydock.toml:11: notify[0].kind: unknown channel kind `pager`; use one of webhook, slack, ntfy, healthchecks, email
    /etc/drydock/drydock.toml:15: notify[1].url: a literal secret is not allowed here; use "${env:NAME}" or "${file:/path}" and keep the value out of the config
    /etc/drydock/drydock.toml:20: notify[2].on[1]: unknown variant `always`, expected one of `failure`, `recovery`, `success`, `start`
    /etc/drydock/drydock.toml:26: notify[3].priority: unknown field `priority`, expected one of `server`, `topic`, `token`; remove it or fix its spelling
    /etc/drydock/drydock.toml:31: notify[4].on: empty list: name at least one of failure, recovery, success, start (or remove `on` for failure + recovery)
    /etc/drydock/drydock.toml:36: notify[5].tls: `tls = "none"` would send the password to mail.example.com unencrypted; use `starttls` or `tls`
    /etc/drydock/drydock.toml:37: notify[5].from: `drydock` is not a mail address (NAME@DOMAIN)
    /etc/drydock/drydock.toml:38: notify[5].to: no recipient; list at least one address
    8 errors in /etc/drydock/drydock.toml
    "#);
    assert!(!text.contains("canary"), "{text}");
}

#[test]
fn a_secret_that_is_not_a_url_is_named_by_its_reference_only() {
    let text = errors(
        r#"
[[notify]]
kind = "webhook"
url = "${env:DRYDOCK_TEST_NOT_URL}"
"#,
    );
    assert!(
        text.contains(
            "notify[0].url: the value of ${env:DRYDOCK_TEST_NOT_URL} is not a usable URL"
        ),
        "{text}"
    );
    assert!(!text.contains("canary"), "{text}");
}

#[test]
fn duplicate_names_and_credentials_in_a_plain_url_are_refused() {
    let text = errors(
        r#"
[[notify]]
kind = "webhook"
url = "${env:DRYDOCK_TEST_HOOK}"

[[notify]]
kind = "webhook"
url = "${env:DRYDOCK_TEST_HOOK}"

[[notify]]
kind = "ntfy"
topic = "${env:DRYDOCK_TEST_TOPIC}"
server = "https://user:pw@ntfy.example.com"
"#,
    );
    assert!(
        text.contains("notify[1].name: duplicate channel name `webhook` (also notify[0])"),
        "{text}"
    );
    assert!(
        text.contains("notify[2].server: the URL holds credentials"),
        "{text}"
    );
}

#[test]
fn notify_must_be_a_list_of_tables() {
    // A top-level key must come before the first table.
    let text = Config::from_text(
        Path::new("/etc/drydock/drydock.toml"),
        &format!("notify = \"https://example.com\"\n{HEAD}"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        text.contains("notify: must be a list of tables: write each channel as [[notify]]"),
        "{text}"
    );
}
