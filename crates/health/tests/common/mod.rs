//! Shared helpers: build checks from `health = [...]` TOML through the real config
//! loader, and run them with the real runner.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use drydock_domain::Config;
use drydock_health::{CheckContext, CheckResult, Planned, RunPolicy, Status};

/// Loads a stack whose service `svc` has `runtime` and the given `health` items.
pub fn config(dir: &Path, runtime: &str, health: &[String]) -> Config {
    let text = format!(
        "[stack]\nname = \"t\"\nstate_dir = \"state\"\n[repository]\npath = \"repo\"\npassword = \"${{env:DRYDOCK_TEST_REPO_PW}}\"\n[services.svc]\nruntime = {runtime}\nhealth = [\n{}\n]\n",
        health.join(",\n")
    );
    std::env::set_var("DRYDOCK_TEST_REPO_PW", "unused-here");
    let file = dir.join("drydock.toml");
    std::fs::write(&file, &text).unwrap();
    Config::load(&file).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Runs every check of `svc` once with the runner; results in config order.
pub fn run_config(config: &Config) -> Vec<CheckResult> {
    let svc = &config.services["svc"];
    let ctx = CheckContext {
        service: "svc".into(),
        runtime: std::sync::Arc::from(drydock_runtimes::build("svc", &svc.runtime)),
    };
    let planned = svc
        .health
        .iter()
        .map(|c| Planned {
            service: "svc".into(),
            name: c.name.clone(),
            kind: c.kind(),
            check: drydock_health::build(c, &ctx),
            timeout: c.timeout,
            retries: c.retries,
        })
        .collect();
    drydock_health::run_all(
        planned,
        RunPolicy {
            backoff: Duration::from_millis(20),
            ..RunPolicy::default()
        },
    )
}

/// Checks with an `external` runtime.
pub fn run(health: &[String]) -> Vec<CheckResult> {
    let dir = tempfile::tempdir().unwrap();
    run_config(&config(dir.path(), "{ kind = \"external\" }", health))
}

/// The result named `name`.
pub fn by_name<'a>(results: &'a [CheckResult], name: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result {name}: {results:#?}"))
}

#[track_caller]
pub fn expect(results: &[CheckResult], name: &str, status: Status, text: &str) {
    let r = by_name(results, name);
    assert_eq!(r.status, status, "{name}: {} {:#?}", r.message, r.details);
    assert!(
        r.message.contains(text),
        "{name}: `{}` does not contain `{text}`",
        r.message
    );
}
