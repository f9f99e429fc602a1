//! `drydock deploy --plan` through the real binary, on a stack whose folder is a real
//! git repository made here: the first plan deploys everything; later plans diff the
//! commit against the last good deployment (recorded in the state database) and take
//! the decision matrix's branch for what changed and how the infrastructure is (its
//! health check a real TCP listener, dropped to make it unhealthy). And the bad paths:
//! no git repository, an unknown revision, a bad glob, a plan `deploy` cannot carry out.

mod common;

use std::net::TcpListener;

use common::git::{commit, deployed, git};
use common::Stack;
use serde_json::Value;

/// A stack of `db` (infra, healthy while `listener` listens) and `api` (app), in a git
/// repository with a first commit.
fn stack(listener: &TcpListener) -> Stack {
    let address = listener.local_addr().unwrap();
    let stack = Stack::new(&format!(
        "[services.db]\nrole = \"infra\"\nruntime = {{ kind = \"none\" }}\nhealth = [{{ kind = \"tcp\", address = \"{address}\", timeout = \"1s\" }}]\n\n[services.api]\nrole = \"app\"\nruntime = {{ kind = \"none\" }}\n"
    ));
    common::git::init(
        &stack,
        &[
            ("compose.yaml", "services: {}\n"),
            ("src/app.py", "print('v1')\n"),
            ("README.md", "# shop\n"),
        ],
    );
    stack
}

fn plan(stack: &Stack, extra: &[&str]) -> Value {
    let mut args = vec!["deploy", "--plan"];
    args.extend_from_slice(extra);
    let (code, plan) = stack.json(&args);
    assert_eq!(code, 0, "{plan:#}");
    plan
}

fn actions(plan: &Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_branch_follows_from_what_git_says_changed_and_how_the_infrastructure_is() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stack = stack(&listener);
    let dir = stack.path();
    let head = git(dir, &["rev-parse", "HEAD"]);

    // No deployment recorded: everything is deployed, and the plan says why.
    let first = plan(&stack, &[]);
    assert_eq!(first["decision"], "infra", "{first:#}");
    assert_eq!(first["changes"]["to"], head.as_str());
    assert!(
        first["changes"]["assumed"]
            .as_str()
            .unwrap()
            .contains("no deployment recorded yet"),
        "{first:#}"
    );
    assert_eq!(
        actions(&first),
        ["backup", "recreate", "verify", "restore", "deploy-app"]
    );
    assert_eq!(first["infra"][0]["status"], "healthy", "{first:#}");
    deployed(&stack, &head);

    // Nothing since: skip.
    let same = plan(&stack, &[]);
    assert_eq!(same["decision"], "skip", "{same:#}");
    assert!(same["steps"].as_array().unwrap().is_empty());

    // Only documentation: skip, the path counted as deciding nothing.
    let docs = commit(dir, &[("README.md", "# shop, documented\n")]);
    let readme = plan(&stack, &[]);
    assert_eq!(
        (&readme["decision"], &readme["changes"]["other"]),
        (&Value::from("skip"), &Value::from(1)),
        "{readme:#}"
    );
    assert_eq!(readme["changes"]["from"], head.as_str());
    assert_eq!(readme["changes"]["to"], docs.as_str());

    // The app's code: the app alone.
    commit(dir, &[("src/app.py", "print('v2')\n")]);
    let app = plan(&stack, &[]);
    assert_eq!(app["decision"], "app", "{app:#}");
    assert_eq!(app["changes"]["app"], serde_json::json!(["src/app.py"]));
    assert_eq!(actions(&app), ["deploy-app"]);
    assert_eq!(app["steps"][0]["services"], serde_json::json!(["api"]));
    insta::assert_json_snapshot!("deploy_plan_app", app, {
        ".changes.from" => "[commit]",
        ".changes.to" => "[commit]",
    });

    // An older revision named by --rev: the diff is to that commit.
    let at_docs = plan(&stack, &["--rev", &docs[..10]]);
    assert_eq!(at_docs["decision"], "skip", "{at_docs:#}");

    // The Compose file and a migration: infrastructure, backup first.
    commit(
        dir,
        &[
            ("compose.yaml", "services: {db: {}}\n"),
            ("db/migrations/0002.sql", "ALTER TABLE t ADD c int;\n"),
        ],
    );
    let infra = plan(&stack, &[]);
    assert_eq!(infra["decision"], "infra", "{infra:#}");
    assert_eq!(
        infra["changes"]["infra"],
        serde_json::json!(["compose.yaml", "db/migrations/0002.sql"])
    );
    assert_eq!(
        actions(&infra),
        ["backup", "recreate", "verify", "restore", "deploy-app"]
    );
    let infra_commit = git(dir, &["rev-parse", "HEAD"]);
    deployed(&stack, &infra_commit);

    // The database goes down, nothing changed: heal first, recreate only if that fails.
    drop(listener);
    let heal = plan(&stack, &[]);
    assert_eq!(heal["decision"], "heal", "{heal:#}");
    assert_eq!(heal["infra"][0]["status"], "unhealthy", "{heal:#}");
    assert_eq!(
        actions(&heal),
        ["diagnose", "heal", "backup", "recreate", "restore", "verify"]
    );
    assert_eq!(heal["steps"][2]["when"], "if heal did not fix it");
    // CI that knows better: the app forced as changed.
    let forced = plan(&stack, &["--app-changed"]);
    assert_eq!(forced["changes"]["assumed"], "told by --app-changed");
    assert_eq!(actions(&forced).last().unwrap(), "deploy-app");

    // The text form says the same, and that nothing was changed.
    let out = stack.run(&["deploy", "--plan"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let text = text.replace(&infra_commit[..12], "[commit]");
    insta::assert_snapshot!("deploy_plan_heal_text", text);
}

#[test]
fn bad_input_is_refused_with_what_to_do_and_changes_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Not a git repository.
    let address = listener.local_addr().unwrap();
    let bare = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"none\" }}\nhealth = [{{ kind = \"tcp\", address = \"{address}\" }}]\n"
    ));
    let out = bare.run(&["deploy", "--plan"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("change detection in") && text.contains("git init"),
        "{text}"
    );
    // Told what changed, no git is needed.
    let (code, plan) = bare.json(&["deploy", "--plan", "--infra-changed"]);
    assert_eq!(
        (code, &plan["decision"]),
        (0, &Value::from("infra")),
        "{plan:#}"
    );

    let stack = stack(&listener);
    let out = stack.run(&["deploy", "--plan", "--rev", "no-such-tag"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("git knows no commit `no-such-tag`"), "{text}");
    let out = stack.run(&["deploy", "--plan", "--rev", "--upload-pack=x"]);
    assert_ne!(out.status.code(), Some(0), "{}", common::text(&out));
    // Carrying out a plan that deploys an app service without a `deploy`: refused
    // before anything, saying what to add.
    let out = stack.run(&["deploy"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("app service(s) api have no `deploy = { kind = ... }`"),
        "{text}"
    );
    // Neither a plan nor a refused deployment records anything.
    let db = drydock_state::StateDb::open(&stack.path().join("state")).unwrap();
    assert!(db.deployments(10).unwrap().is_empty());

    // A glob that is not one: the config's file and line.
    let config = stack.path().join("drydock.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[deploy]\napp = [\"src/**\", \"web/[\"]\n");
    std::fs::write(&config, text).unwrap();
    let out = stack.run(&["deploy", "--plan"]);
    let text = common::text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("drydock.toml:")
            && text.contains("deploy.app[1]")
            && text.contains("`web/[` is not a glob"),
        "{text}"
    );
}
