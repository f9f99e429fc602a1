//! `drydock deploy` carrying out its plan, through the real binary on a stack whose
//! folder is a real git repository: the lock (two deploys at once: exactly one runs,
//! the other exits at once naming the holder), the record written before the first
//! step (a deploy killed with SIGKILL is found by the next one and by `drydock
//! deployments`), hooks with their environment, a pre-deploy backup that fails (no
//! repository can be made) stopping the deployment before
//! anything else, a skip that changes nothing, and `rollback` with nothing to go back to.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::git::{commit, deployed};
use common::Stack;
use serde_json::Value;

/// `api` (app, a release deploy to a local folder), with `extra` config appended.
fn app_stack(extra: &str) -> Stack {
    let stack = Stack::new(
        "[services.api]\nrole = \"app\"\nruntime = { kind = \"none\" }\ndeploy = { kind = \"release\", build = \"mkdir -p out && echo $DRYDOCK_REV > out/rev\", output = \"out\", target = \"releases-target\" }\n",
    );
    stack.append_config(extra);
    common::git::init(&stack, &[("src/app.py", "print('v1')\n")]);
    stack
}

fn deployments(stack: &Stack) -> Vec<Value> {
    let (code, list) = stack.json(&["deployments"]);
    assert_eq!(code, 0, "{list:#}");
    list["deployments"].as_array().unwrap().clone()
}

/// Waits until the stack's newest deployment is recorded as running.
fn wait_running(stack: &Stack) -> Value {
    // Generous: the machine may be loaded by other tests; it only bounds a hang.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(d) = deployments(stack).first() {
            if d["outcome"] == "running" {
                return d.clone();
            }
        }
        assert!(Instant::now() < deadline, "no deployment started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_deploys_at_once_run_one_and_the_other_exits_at_once_naming_the_holder() {
    let stack = app_stack("\n[deploy.hooks]\npre_deploy = \"sleep 4\"\n");
    let mut first = stack
        .command(&["deploy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&stack);
    let started = Instant::now();
    let second = stack.run(&["deploy"]);
    let took = started.elapsed();
    let text = common::text(&second);
    assert_eq!(second.status.code(), Some(3), "{text}");
    assert!(
        text.contains("another deployment holds")
            && text.contains(&format!("PID {}", first.id()))
            && text.contains("deploy HEAD"),
        "{text}"
    );
    // The figure is a benchmark's; this only catches a deploy that waited for the lock.
    assert!(
        took < Duration::from_secs(3),
        "the second deploy waited {took:?}"
    );
    first.wait().unwrap();
    // Exactly one deployment was recorded.
    assert_eq!(deployments(&stack).len(), 1);
}

#[test]
fn a_deploy_killed_midway_is_reported_by_the_next_one_and_by_the_history() {
    let stack = app_stack("\n[deploy.hooks]\npre_deploy = \"sleep 30\"\n");
    let mut victim = stack
        .command(&["deploy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_running(&stack);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    victim.wait().unwrap();

    // Nobody holds the lock now: the history calls it interrupted.
    let listed = deployments(&stack);
    assert_eq!(listed[0]["id"], running["id"]);
    assert_eq!(listed[0]["outcome"], "interrupted", "{:#}", listed[0]);

    let (_, status) = stack.json(&["status"]);
    assert_eq!(
        status["last_deployment"]["outcome"], "interrupted",
        "{status:#}"
    );
    let text = common::text(&stack.run(&["status"]));
    assert!(text.contains("cut short"), "{text}");

    // The next deploy takes the lock at once, records the cut-short one and says so.
    let config = stack.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("pre_deploy = \"sleep 30\"", "pre_deploy = \"true\"");
    std::fs::write(&config, text).unwrap();
    let (_, report) = stack.json(&["deploy"]);
    let cut = &report["interrupted"][0];
    assert_eq!(cut["deployment"], running["id"], "{report:#}");
    assert_eq!(cut["holder"]["pid"], victim.id(), "{report:#}");
    let db = drydock_state::StateDb::open(&stack.path().join("state")).unwrap();
    let record = db
        .deployment(running["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(record.outcome.as_deref(), Some("interrupted"));
}

#[test]
fn hooks_get_the_deployment_in_their_environment_and_a_failing_pre_hook_stops_it() {
    let stack = app_stack(
        "\n[deploy.hooks]\npre_deploy = \"env | grep ^DRYDOCK_ | sort > pre.env; exit 7\"\non_failure = \"env | grep ^DRYDOCK_ | sort > failure.env\"\n",
    );
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["failure"]["step"], "pre-deploy", "{report:#}");
    assert!(
        report["failure"]["cause"]
            .as_str()
            .unwrap()
            .contains("exited with exit status: 7"),
        "{report:#}"
    );
    // Nothing ran after the hook.
    assert!(report["steps"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(!stack.path().join("releases-target").exists());
    let pre = std::fs::read_to_string(stack.path().join("pre.env")).unwrap();
    let id = report["deployment"].as_i64().unwrap();
    for line in [
        format!("DRYDOCK_DEPLOYMENT={id}"),
        "DRYDOCK_KIND=deploy".to_string(),
        "DRYDOCK_REV=HEAD".to_string(),
        format!("DRYDOCK_COMMIT={}", report["commit"].as_str().unwrap()),
        "DRYDOCK_DECISION=app".to_string(),
        "DRYDOCK_STACK=test".to_string(),
    ] {
        assert!(pre.lines().any(|l| l == line), "{line} not in {pre}");
    }
    let failure = std::fs::read_to_string(stack.path().join("failure.env")).unwrap();
    for line in ["DRYDOCK_OUTCOME=failed", "DRYDOCK_FAILED_STEP=pre-deploy"] {
        assert!(
            failure.lines().any(|l| l == line),
            "{line} not in {failure}"
        );
    }
    assert_eq!(deployments(&stack)[0]["outcome"], "failed");
}

#[test]
fn a_failed_pre_deploy_backup_stops_the_deployment_before_anything_changes() {
    // `db` holds critical files; the repository cannot be made (a file is in its place).
    let stack = app_stack(
        "\n[services.db]\nrole = \"infra\"\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", priority = \"critical\", path = \"uploads\" }]\n",
    );
    std::fs::create_dir(stack.path().join("uploads")).unwrap();
    std::fs::write(stack.path().join("uploads/a.txt"), "a").unwrap();
    std::fs::write(stack.path().join("repo"), b"not a repository").unwrap();
    let before = common::git::git(stack.path(), &["rev-parse", "HEAD"]);
    deployed(&stack, &before);
    commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let (code, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(code, 0, "{plan:#}");
    let actions: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["backup", "deploy-app"], "{plan:#}");

    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        (&report["outcome"], &report["failure"]["step"]),
        (&Value::from("failed"), &Value::from("backup")),
        "{report:#}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "deploy-app must not run: {report:#}");
    assert_eq!(steps[0]["status"], "failed");
    assert!(!stack.path().join("releases-target").exists());
    // The next deploy still diffs against the last good one.
    let db = drydock_state::StateDb::open(&stack.path().join("state")).unwrap();
    assert_eq!(db.last_good_deployment().unwrap().unwrap().commit, before);
}

#[test]
fn nothing_changed_is_a_recorded_skip_with_no_changes() {
    let stack = app_stack("");
    let head = common::git::git(stack.path(), &["rev-parse", "HEAD"]);
    deployed(&stack, &head);
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (&report["decision"], &report["changes"], &report["outcome"]),
        (&Value::from("skip"), &Value::from(0), &Value::from("ok")),
        "{report:#}"
    );
    let listed = deployments(&stack);
    assert_eq!(
        (&listed[0]["decision"], &listed[0]["changes"]),
        (&Value::from("skip"), &Value::from(0))
    );
}

#[test]
fn rollback_with_nothing_to_go_back_to_is_refused_and_changes_nothing() {
    let stack = app_stack("");
    let out = stack.run(&["rollback"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("no good deployment is recorded"), "{text}");
    let head = common::git::git(stack.path(), &["rev-parse", "HEAD"]);
    deployed(&stack, &head);
    let out = stack.run(&["rollback"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("nothing to roll back to"), "{text}");
    let out = stack.run(&["rollback", "db"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("`db` is not an app service"), "{text}");
    assert_eq!(
        deployments(&stack).len(),
        1,
        "a refused rollback records nothing"
    );
}

/// The file the build wrote into the live release.
fn live_rev(stack: &Stack) -> String {
    std::fs::read_to_string(stack.path().join("releases-target/current/rev"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_release_service_packages_deploys_skips_and_rolls_back_through_the_binary() {
    let stack = app_stack("");
    let first = common::git::git(stack.path(), &["rev-parse", "HEAD"]);

    // `package`: the checksum is what sha256sum says of the file.
    let (code, package) = stack.json(&["package", "api"]);
    assert_eq!(code, 0, "{package:#}");
    let out = std::process::Command::new("sha256sum")
        .arg(package["file"].as_str().unwrap())
        .output()
        .unwrap();
    let summed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        summed.split_whitespace().next(),
        package["sha256"].as_str(),
        "{package:#}"
    );
    assert_eq!(package["info"]["commit"], first.as_str());

    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert!(report["changes"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(live_rev(&stack), first);

    let second = commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let (code, report) = stack.json(&["deploy"]);
    assert_eq!(
        (code, &report["decision"]),
        (0, &Value::from("app")),
        "{report:#}"
    );
    assert_eq!(live_rev(&stack), second);

    // The same revision again: nothing to do, nothing changed.
    let (code, again) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(
        (&again["decision"], &again["changes"]),
        (&Value::from("skip"), &Value::from(0))
    );
    // Told the app changed anyway, the deployer itself finds the commit live.
    let (code, forced) = stack.json(&["deploy", "--app-changed"]);
    assert_eq!(
        (code, &forced["changes"]),
        (0, &Value::from(0)),
        "{forced:#}"
    );

    // Back to the first deployment's build; the next plan diffs against it.
    let (code, back) = stack.json(&["rollback"]);
    assert_eq!(code, 0, "{back:#}");
    assert_eq!(back["to_commit"], first.as_str(), "{back:#}");
    assert_eq!(live_rev(&stack), first);
    let listed = deployments(&stack);
    assert_eq!(
        (&listed[0]["kind"], &listed[0]["outcome"]),
        (&Value::from("rollback"), &Value::from("ok"))
    );
    let (_, plan) = stack.json(&["deploy", "--plan"]);
    assert_eq!(plan["changes"]["from"], first.as_str(), "{plan:#}");
    assert_eq!(plan["decision"], "app");

    // Bad input: a service that is not a release service.
    let out = stack.run(&["package", "nope"]);
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    assert!(common::text(&out).contains("no service `nope`"));
}

#[test]
fn a_rollback_runs_the_hooks_as_kind_rollback() {
    let stack = app_stack(
        "\n[deploy.hooks]\npost_deploy = \"env | grep ^DRYDOCK_ | sort > post-$DRYDOCK_KIND.env\"\n",
    );
    let (code, first) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{first:#}");
    commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    let (code, second) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{second:#}");
    let (code, back) = stack.json(&["rollback"]);
    assert_eq!(code, 0, "{back:#}");
    let env = std::fs::read_to_string(stack.path().join("post-rollback.env")).unwrap();
    for line in [
        format!("DRYDOCK_DEPLOYMENT={}", back["deployment"]),
        "DRYDOCK_KIND=rollback".to_string(),
        format!("DRYDOCK_COMMIT={}", first["commit"].as_str().unwrap()),
        "DRYDOCK_DECISION=app".to_string(),
        "DRYDOCK_OUTCOME=ok".to_string(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in {env}");
    }
}
