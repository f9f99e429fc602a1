//! Bad configs: every error at once with file:line:key, a clear exit code, nothing written.

mod common;

use common::Stack;

const BAD: &str = r#"[services.db]
runtime = { kind = "external" }
data = [
  { kind = "postgres", priority = "critical", url = "postgres://app@127.0.0.1:5432/app", password = "hunter2-literal" },
  { kind = "postgres", name = "other", priority = "high", url = "postgres://app:inline@127.0.0.1/app" },
  { kind = "sqlite", priority = "high", path = "app.db", colour = "blue" },
]
"#;

#[test]
fn validate_reports_every_error_with_line_and_changes_nothing() {
    let stack = Stack::new(BAD);
    let out = stack.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    insta::assert_snapshot!(stderr, @r#"
    error: invalid config:
    drydock.toml:12: services.db.data[0].password: a literal secret is not allowed here; use "${env:NAME}" or "${file:/path}" and keep the value out of the config
    drydock.toml:13: services.db.data[1].url: the URL contains a password; remove it from the URL and set `password = "${env:NAME}"` instead
    drydock.toml:14: services.db.data[2].colour: unknown field `colour`, expected one of `name`, `priority`, `path`, `follow_symlink`; remove it or fix its spelling
    3 errors in drydock.toml
    "#);
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("inline@"),
        "secrets must not be echoed"
    );
    // A bad config never creates the repository or the state directory.
    let out = stack.run(&["backup", "--all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stack.path().join("repo").exists() && !stack.path().join("state").exists());
}

#[test]
fn undefined_env_var_is_named() {
    let stack = Stack::new("[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", priority = \"high\", path = \"data\" }]\n");
    let out = stack
        .command(&["validate"])
        .env_remove("TEST_REPO_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("drydock.toml:7: repository.password: environment variable `TEST_REPO_PASSWORD` is not set"), "{stderr}");
}

#[test]
fn validate_json_and_missing_file() {
    let stack = Stack::new("[services.app]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", priority = \"high\", path = \"data\" }]\n");
    let (code, v) = stack.json(&["validate"]);
    assert_eq!(code, 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["sources"], 1);
    let (code, v) = stack.json(&["validate", "--config", "nope.toml"]);
    assert_eq!(code, 2);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("nope.toml: cannot read the config"),
        "{v}"
    );
}

#[test]
fn usage_errors_exit_64() {
    let stack = Stack::new("");
    let out = stack.run(&["restore", "latest"]);
    assert_eq!(out.status.code(), Some(64), "{}", common::text(&out));
    let out = stack.run(&["restore", "yesterday", "--all"]);
    assert_eq!(out.status.code(), Some(64), "{}", common::text(&out));
    assert!(common::text(&out).contains("neither `latest` nor a backup id"));
}

#[test]
fn every_toml_example_in_the_readme_is_toml() {
    // An operator copies these; TOML 1.0 inline tables cannot span lines, for one.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut checked = 0;
    for (i, block) in readme.split("```toml\n").enumerate().skip(1) {
        let text = block.split("```").next().unwrap();
        if let Err(e) = text.parse::<toml::Table>() {
            panic!("README's TOML example {i} does not parse: {e}\n{text}");
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} TOML examples found");
}
