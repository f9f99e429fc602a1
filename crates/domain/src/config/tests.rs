//! Config loading: the good shape, and every bad shape users hit, with exact messages.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::vocabulary::Priority;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    // SAFETY: tests in this module only read these variables.
    unsafe {
        std::env::set_var("DRYDOCK_TEST_REPO_PW", "repo-canary-pw");
        std::env::set_var("DRYDOCK_TEST_PG_PW", "pg-canary-pw");
    }
    Config::from_text(Path::new("/etc/drydock/drydock.toml"), text)
}

fn errors(text: &str) -> String {
    load(text)
        .expect_err("config should be rejected")
        .to_string()
}

const GOOD: &str = r#"
[stack]
name = "clinic"
state_dir = "state"

[repository]
path = "/opt/backups/repo"
password = "${env:DRYDOCK_TEST_REPO_PW}"

[services.db]
role = "infra"
runtime = { kind = "external" }
data = [{ kind = "postgres", priority = "critical", url = "postgres://app@127.0.0.1:5432/app", password = "${env:DRYDOCK_TEST_PG_PW}" }]

[services.app]
runtime = { kind = "process", start = "systemctl start app", stop = "systemctl stop app", status = "systemctl is-active app" }
data = [
  { kind = "sqlite", priority = "high", path = "/var/lib/app/app.db" },
  { kind = "files", name = "uploads", priority = "medium", path = "uploads", exclude = ["cache/**"] },
]
"#;

#[test]
fn a_good_config_loads_with_absolute_paths_and_resolved_secrets() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.stack.state_dir, Path::new("/etc/drydock/state"));
    assert_eq!(c.repository.password.expose(), "repo-canary-pw");
    let names: Vec<String> = c
        .sources()
        .map(|(s, _, src)| format!("{s}/{}", src.name()))
        .collect();
    assert_eq!(names, ["app/sqlite", "app/uploads", "db/postgres"]);
    let SourceConfig::Files(f) = &c.services["app"].data[1] else {
        panic!()
    };
    assert_eq!(f.path, Path::new("/etc/drydock/uploads"));
    assert!(
        !format!("{c:?}").contains("canary"),
        "Debug must not show secrets"
    );
    assert!(
        !serde_json::to_string(&c).unwrap().contains("canary"),
        "JSON must not show secrets"
    );
}

#[test]
fn malformed_toml_names_the_line() {
    insta::assert_snapshot!(errors("[stack]\nname = \"x\"\nstate_dir = \n"), @r#"
    /etc/drydock/drydock.toml:3: invalid TOML: invalid string; expected `"`, `'`
    1 error in /etc/drydock/drydock.toml
    "#);
}

#[test]
fn every_error_is_reported_at_once_with_file_line_and_key() {
    let text = r#"
[stack]
name = "clinic"
state_dir = "/var/lib/drydock"
colour = "blue"

[repository]
path = "/opt/backups/repo"
password = "hunter2"

[services.db]
runtime = { kind = "external" }
data = [
  { kind = "postgres", priority = "critical", url = "postgres://app:pw@127.0.0.1:5432/app" },
  { kind = "postgres", priority = "high", url = "postgres://app@127.0.0.1:5432/app", pasword = "${env:X}" },
  { kind = "redis", priority = "urgent", url = "redis://127.0.0.1:6379" },
  { kind = "mysql", priority = "low", url = "not a url", password = "${env:DRYDOCK_TEST_SURELY_UNDEFINED}" },
]

[services.cache]
runtime = { kind = "external" }
data = [
  { kind = "redis", priority = "low", url = "redis://127.0.0.1:6379" },
  { kind = "redis", priority = "low", url = "redis://127.0.0.1:6380" },
]
"#;
    insta::assert_snapshot!(errors(text));
}

#[test]
fn missing_sections_and_unknown_sections_are_named() {
    insta::assert_snapshot!(errors("[stak]\nname = \"x\"\n"), @r"
    /etc/drydock/drydock.toml: missing section [stack]; add it (see examples/)
    /etc/drydock/drydock.toml: missing section [repository]; add it (see examples/)
    /etc/drydock/drydock.toml:1: stak: unknown section `stak`: expected one of stack, repository, remote, retention, drill, services, notify, serve, schedule, deploy
    3 errors in /etc/drydock/drydock.toml
    ");
}

#[test]
fn undefined_env_var_is_an_error_naming_it_never_an_empty_string() {
    let text = GOOD.replace("DRYDOCK_TEST_PG_PW", "DRYDOCK_TEST_NOT_SET_ANYWHERE");
    insta::assert_snapshot!(errors(&text), @r"
    /etc/drydock/drydock.toml:13: services.db.data[0].password: environment variable `DRYDOCK_TEST_NOT_SET_ANYWHERE` is not set; export it or change the reference
    1 error in /etc/drydock/drydock.toml
    ");
}

#[test]
fn literal_secret_message_does_not_echo_the_value() {
    let text = GOOD.replace("${env:DRYDOCK_TEST_REPO_PW}", "correct-horse-battery");
    let e = errors(&text);
    assert!(!e.contains("correct-horse"), "{e}");
    assert!(
        e.contains(":8: repository.password: a literal secret is not allowed"),
        "{e}"
    );
}

#[test]
fn bad_durations_and_runtimes_are_named() {
    let text = format!("{GOOD}\n[drill]\nrto_target = \"soon\"\n");
    assert!(
        errors(&text).contains(":23: drill.rto_target: `soon` is not a duration"),
        "{}",
        errors(&text)
    );
    let text = GOOD.replace("kind = \"external\"", "kind = \"kubernetes\"");
    assert!(
        errors(&text).contains(":12: services.db.runtime.kind: unknown variant `kubernetes`"),
        "{}",
        errors(&text)
    );
}

const REMOTE: &str = r#"
[[remote]]
name = "offsite"
kind = "s3"
endpoint = "https://s3.example.net"
region = "eu-central-1"
bucket = "clinic-data"
prefix = "backups/"
path_style = true
access_key_id = "${env:DRYDOCK_TEST_S3_KEY}"
secret_access_key = "${env:DRYDOCK_TEST_S3_SECRET}"
"#;

fn load_with_s3_env(text: &str) -> Result<Config, ConfigErrors> {
    // SAFETY: tests in this module only read these variables.
    unsafe {
        std::env::set_var("DRYDOCK_TEST_S3_KEY", "GKcanarykey");
        std::env::set_var("DRYDOCK_TEST_S3_SECRET", "s3-secret-canary");
    }
    load(text)
}

#[test]
fn remotes_load_with_their_secrets_resolved_and_hidden() {
    let text = format!("{GOOD}{REMOTE}");
    let c = load_with_s3_env(&text).unwrap();
    assert_eq!(c.remotes.len(), 1);
    let r = &c.remotes[0];
    assert_eq!(r.name, "offsite");
    assert_eq!(r.secret_access_key.expose(), "s3-secret-canary");
    assert!(r.password.is_none());
    let debug = format!("{c:?}");
    let json = serde_json::to_string(&c).unwrap();
    for shown in [debug, json] {
        assert!(!shown.contains("canary"), "a secret is shown: {shown}");
    }
}

#[test]
fn bad_remotes_are_reported_each_with_its_line() {
    let text = format!(
        r#"{GOOD}
[[remote]]
name = "local"
kind = "s3"
endpoint = "https://AKIAXXXX:topsecret@s3.example.net"
region = ""
bucket = "Clinic_Data"
prefix = "../up"
access_key_id = "AKIALITERAL"
secret_access_key = "${{env:DRYDOCK_TEST_S3_SECRET}}"

[[remote]]
name = "b2"
kind = "gcs"
endpoint = "https://s3.example.net"

[[remote]]
name = "b3"
kind = "s3"
endpoint = "https://s3.example.net/bucket"
region = "x"
bucket = "abc"
access_key_id = "${{env:DRYDOCK_TEST_S3_KEY}}"
secret_access_key = "${{env:DRYDOCK_TEST_S3_SECRET}}"
colour = "blue"
"#
    );
    let e = load_with_s3_env(&text).unwrap_err().to_string();
    assert!(
        !e.contains("topsecret"),
        "the endpoint's password leaked: {e}"
    );
    assert!(!e.contains("AKIALITERAL"), "a literal key leaked: {e}");
    insta::assert_snapshot!(e);
}

#[test]
fn retention_counts_guards_and_zones_are_validated() {
    let text = format!(
        "{GOOD}\n[retention]\ndaily = 0\nweekly = 0\nmonthly = 0\nanomaly_ratio = 1.5\ntimezone = \"Mars/Olympus\"\n\n[retention.critical]\ndaily = 30\n"
    );
    insta::assert_snapshot!(errors(&text));
    let text = format!(
        "{GOOD}\n[retention]\ndaily = 7\n\n[retention.critical]\ndaily = 30\nweekly = 8\n\n[retention.low]\ndaily = 2\nmonthly = 0\n"
    );
    let c = load(&text).unwrap();
    let r = &c.retention;
    use crate::retention::KeepRules;
    assert_eq!(
        r.rules_for(Priority::Critical),
        KeepRules {
            daily: 30,
            weekly: 8,
            monthly: 12
        }
    );
    assert_eq!(
        r.rules_for(Priority::High),
        KeepRules {
            daily: 7,
            weekly: 4,
            monthly: 12
        }
    );
    assert_eq!(
        r.rules_for(Priority::Low),
        KeepRules {
            daily: 2,
            weekly: 4,
            monthly: 0
        }
    );
}

const HEALTH: &str = r#"
[services.web]
runtime = { kind = "process", start = "true", stop = "true", status = "true", log_file = "logs/web.log", pid_file = "/run/web.pid" }
health = [
  { kind = "https", url = "https://clinic.example/health", expect_status = [200, 204], max_latency_ms = 100, json_field = "status", json_equals = "UP", hsts = true, ca_file = "ca.pem" },
  { kind = "tcp", name = "port", address = "127.0.0.1:8080", timeout = "500ms", retries = 1 },
  { kind = "postgres", url = "postgres://app@127.0.0.1:5432/app", password = "${env:DRYDOCK_TEST_PG_PW}" },
  { kind = "disk", path = "/var/lib", warn_free_pct = 25, critical_free_bytes = "1 GiB" },
  { kind = "process", min_uptime = "30s" },
  { kind = "redis-cluster", url = "redis://127.0.0.1:7000" },
]
"#;

#[test]
fn health_checks_load_with_defaults_resolved_secrets_and_absolute_paths() {
    let c = load(&format!("{GOOD}{HEALTH}")).unwrap();
    let web = &c.services["web"];
    let names: Vec<&str> = web.health.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "https",
            "port",
            "postgres",
            "disk",
            "process",
            "redis-cluster"
        ]
    );
    assert_eq!(web.health[0].timeout, Duration::from_secs(5));
    assert_eq!(web.health[0].retries, 3);
    assert_eq!(web.health[1].timeout, Duration::from_millis(500));
    assert_eq!(web.health[1].retries, 1);
    let CheckSpec::Https(h) = &web.health[0].spec else {
        panic!()
    };
    assert!(h.accepts(204) && !h.accepts(302));
    assert_eq!(h.ca_file.as_deref(), Some(Path::new("/etc/drydock/ca.pem")));
    let CheckSpec::Postgres(p) = &web.health[2].spec else {
        panic!()
    };
    assert_eq!(p.password.as_ref().unwrap().expose(), "pg-canary-pw");
    let RuntimeConfig::Process(rt) = &web.runtime else {
        panic!()
    };
    assert_eq!(
        rt.log_file.as_deref(),
        Some(Path::new("/etc/drydock/logs/web.log"))
    );
    assert!(!serde_json::to_string(&c).unwrap().contains("canary"));
}

#[test]
fn bad_health_checks_are_each_named_with_their_line() {
    let text = r#"
[services.web]
runtime = { kind = "external" }
health = [
  { kind = "htp", url = "http://x" },
  { kind = "http", url = "http://x", expect_staus = 200 },
  { kind = "postgres", url = "postgres://app:pw@127.0.0.1/app" },
  { kind = "redis", url = "redis://127.0.0.1", password = "hunter2" },
  { kind = "tcp", address = "nohost" },
  { kind = "tcp", address = "127.0.0.1:1", timeout = "soon" },
  { kind = "disk", path = "/", warn_free_pct = 5, critical_free_pct = 10 },
  { kind = "process" },
  { kind = "https", url = "http://plain.example" },
  { url = "http://x" },
]
"#;
    let e = errors(&format!("{GOOD}{text}"));
    assert!(!e.contains("hunter2"), "{e}");
    insta::assert_snapshot!(e);
}

const HEAD: &str = "[stack]\nname = \"s\"\nstate_dir = \"state\"\n\n[repository]\npath = \"/r\"\npassword = \"${env:DRYDOCK_TEST_REPO_PW}\"\n";

#[test]
fn docker_compose_volume_and_exec_load() {
    let c = load(&format!(
        "{HEAD}
[services.db]
stop_during_backup = true
runtime = {{ kind = \"docker\", container = \"clinic-db\", stop_timeout = \"5s\" }}
data = [
  {{ kind = \"postgres\", priority = \"critical\", exec = true, url = \"postgres://app@127.0.0.1:5432/app\", password = \"${{env:DRYDOCK_TEST_PG_PW}}\" }},
  {{ kind = \"volume\", volume = \"clinic_keys\" }},
  {{ kind = \"volume\", name = \"uploads\", path = \"uploads\", priority = \"medium\" }},
]

[services.api]
runtime = {{ kind = \"compose\", project = \"clinic\", service = \"api\", file = \"docker-compose.yml\", profile = \"app\" }}
"
    ))
    .unwrap();
    let db = &c.services["db"];
    assert!(db.stop_during_backup);
    let RuntimeConfig::Docker(d) = &db.runtime else {
        panic!("docker runtime")
    };
    assert_eq!(d.stop_timeout, Duration::from_secs(5));
    assert_eq!(d.health_timeout, Duration::from_secs(60));
    let SourceConfig::Postgres(pg) = &db.data[0] else {
        panic!("postgres")
    };
    // The container the tools run in comes from the service.
    assert_eq!(pg.exec_in.as_ref().unwrap().service, "db");
    // A volume without a priority takes its label's (medium until it is read).
    assert_eq!(db.data[1].priority(), Priority::Medium);
    let SourceConfig::Volume(v) = &db.data[2] else {
        panic!("volume")
    };
    assert_eq!(v.path.as_deref(), Some(Path::new("/etc/drydock/uploads")));
    let RuntimeConfig::Compose(api) = &c.services["api"].runtime else {
        panic!("compose runtime")
    };
    assert_eq!(
        api.file.as_deref(),
        Some(Path::new("/etc/drydock/docker-compose.yml"))
    );
}

#[test]
fn bad_docker_settings_are_each_named_with_their_line() {
    let e = errors(&format!(
        "{HEAD}
[services.db]
stop_during_backup = true
runtime = {{ kind = \"external\" }}
data = [
  {{ kind = \"postgres\", priority = \"critical\", exec = true, url = \"postgres://app@127.0.0.1:5432/app\" }},
  {{ kind = \"volume\", volume = \"v\", path = \"/srv\" }},
  {{ kind = \"volume\" }},
  {{ kind = \"volume\", path = \"/srv/data\" }},
  {{ kind = \"volume\", volume = \"bad name!\" }},
]

[services.c]
runtime = {{ kind = \"docker\", container = \"\" }}
"
    ));
    for expected in [
        "drydock.toml:10: services.db.stop_during_backup: drydock cannot stop a service whose runtime is `external`",
        "drydock.toml:13: services.db.data[0].exec: exec = true runs the tools inside the service's container",
        "drydock.toml:14: services.db.data[1]: give either `volume`",
        "drydock.toml:15: services.db.data[2]: missing `volume` or `path`",
        "drydock.toml:16: services.db.data[3]: a bind mount has no labels to take its priority from; add `priority`",
        "drydock.toml:17: services.db.data[4].volume: invalid Docker volume name `bad name!`",
        "drydock.toml:21: services.c.runtime.container: invalid container name ``",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
}

#[test]
fn excluded_tables_default_to_public_and_must_be_plain_names() {
    let text = GOOD.replace(
        "password = \"${env:DRYDOCK_TEST_PG_PW}\" }]",
        "password = \"${env:DRYDOCK_TEST_PG_PW}\", exclude_tables = [\"audit_log\", \"ops.sessions\"] }]",
    );
    let c = load(&text).unwrap();
    let SourceConfig::Postgres(pg) = &c.services["db"].data[0] else {
        panic!()
    };
    assert_eq!(pg.exclude_tables, ["public.audit_log", "ops.sessions"]);
    let text = GOOD.replace(
        "password = \"${env:DRYDOCK_TEST_PG_PW}\" }]",
        "password = \"${env:DRYDOCK_TEST_PG_PW}\", exclude_tables = [\"audit_*\"] }]",
    );
    let e = errors(&text);
    assert!(
        e.contains(":13: services.db.data[0].exclude_tables[0]: `audit_*` is not a table name"),
        "{e}"
    );
}

#[test]
fn drill_targets_can_differ_per_priority() {
    let text = format!("{GOOD}\n[drill]\nrto_target = \"30m\"\nrpo_target = \"24h\"\n\n[drill.critical]\nrpo_target = \"15m\"\n");
    let c = load(&text).unwrap();
    use std::time::Duration;
    assert_eq!(
        c.drill.targets_for(Priority::Critical),
        (Duration::from_secs(1800), Duration::from_secs(900))
    );
    assert_eq!(
        c.drill.targets_for(Priority::High),
        (Duration::from_secs(1800), Duration::from_secs(86400))
    );
    let bad = format!("{GOOD}\n[drill.critical]\nrpo = \"15m\"\n");
    assert!(
        errors(&bad).contains("drill.critical.rpo: unknown field `rpo`"),
        "{}",
        errors(&bad)
    );
}

#[test]
fn relative_paths_print_clean_but_keep_parent_parts() {
    let text = GOOD
        .replace("path = \"/opt/backups/repo\"", "path = \"./backups//repo\"")
        .replace("state_dir = \"state\"", "state_dir = \"../state\"");
    let c = load(&text).unwrap();
    // Compared as text: `Path` equality ignores `.` parts, which is what users see.
    assert_eq!(
        c.repository.path.display().to_string(),
        "/etc/drydock/backups/repo"
    );
    assert_eq!(
        c.stack.state_dir.display().to_string(),
        "/etc/drydock/../state"
    );
}

#[test]
fn serve_and_schedules_default_when_absent() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.serve.listen, "127.0.0.1:8470");
    assert_eq!(c.serve.overdue_factor, 1.25);
    assert_eq!(c.serve.max_concurrent_jobs, 2);
    assert_eq!(c.serve.stop_timeout, Duration::from_secs(30));
    assert!(c.serve.token.is_none());
    assert!(c.schedules.is_empty());
    // The defaults, as the README's table lists them.
    let table: Vec<String> = ScheduleConfig::effective(&c.schedules)
        .iter()
        .map(|s| {
            let p: Vec<&str> = s.priority.iter().map(|p| p.as_str()).collect();
            format!("{} `{}` {}", s.job, s.cron, p.join(","))
        })
        .collect();
    insta::assert_snapshot!(table.join("\n"), @r"
    backup `30 2 * * *` critical,high
    backup `0 3 * * 0` medium
    backup `30 3 1 * *` low
    sync `0 4 * * *` 
    prune `30 4 * * *` 
    verify `0 5 * * 0` 
    drill `0 6 * * 0` 
    health `* * * * *` 
    ");
    // Every default is itself a valid schedule.
    for d in DEFAULT_SCHEDULES {
        parse_cron(d.cron).unwrap();
    }
}

#[test]
fn serve_and_schedules_load() {
    // SAFETY: tests in this module only read these variables.
    unsafe { std::env::set_var("DRYDOCK_TEST_SERVE_TOKEN", "token-canary") };
    let text = format!(
        "{GOOD}\n[serve]\nlisten = \"0.0.0.0:9000\"\ntoken = \"${{env:DRYDOCK_TEST_SERVE_TOKEN}}\"\nstop_timeout = \"2m\"\n\n[[schedule]]\njob = \"backup\"\ncron = \"*/5 * * * * *\"\npriority = [\"critical\"]\nservices = [\"db\"]\ntimezone = \"Europe/Berlin\"\njitter = \"30s\"\n\n[[schedule]]\njob = \"health\"\ncron = \"* * * * *\"\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.serve.listen_addr().port(), 9000);
    assert_eq!(c.serve.token.as_ref().unwrap().expose(), "token-canary");
    assert_eq!(c.serve.stop_timeout, Duration::from_secs(120));
    assert_eq!(c.schedules.len(), 2);
    assert_eq!(c.schedules[0].job, JobKind::Backup);
    assert_eq!(c.schedules[0].priority, [Priority::Critical]);
    assert_eq!(c.schedules[0].jitter, Some(Duration::from_secs(30)));
    assert_eq!(ScheduleConfig::effective(&c.schedules), c.schedules);
    assert!(!serde_json::to_string(&c).unwrap().contains("token-canary"));
}

#[test]
fn bad_schedules_and_serve_are_named_with_their_lines() {
    let text = format!(
        r#"{GOOD}
[serve]
listen = "localhost"
token = "literal-token"
max_concurrent_jobs = 0
overdue_factor = 0.5

[[schedule]]
job = "backup"
cron = "every day"

[[schedule]]
job = "backup"
cron = "0 0 31 2 *"

[[schedule]]
job = "health"
cron = "* * * * *"
timezone = "Mars/Olympus"

[[schedule]]
job = "drill"
cron = "0 6 * * 0"
services = ["db", "nope"]

[[schedule]]
job = "prune"
cron = "0 4 * * *"
priority = ["low"]
services = ["db"]

[[schedule]]
job = "defrag"
cron = "0 4 * * *"

[[schedule]]
job = "verify"
cron = "61 * * * *"
"#
    );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_serve_section_that_does_not_parse_still_reports_the_schedules() {
    let text = format!(
        "{GOOD}\n[serve]\nlisten = 8470\n\n[[schedule]]\njob = \"sync\"\ncron = \"0 0 31 2 *\"\n"
    );
    let e = errors(&text);
    assert!(e.contains("serve.listen"), "{e}");
    assert!(e.contains("never fires"), "{e}");
}
