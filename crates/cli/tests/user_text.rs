//! What a new user reads: shell completions and the man page, plain logs in pipes and
//! with `NO_COLOR`, the sources a backup left out, what `restore` needs to be told,
//! and config paths printed clean.

mod common;

use common::Stack;

fn files_stack() -> Stack {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"data\", priority = \"critical\", path = \"./data\" },\n  { kind = \"files\", name = \"uploads\", priority = \"medium\", path = \"./uploads\" },\n  { kind = \"files\", name = \"scratch\", priority = \"none\", path = \"./scratch\" },\n]\n",
    );
    for dir in ["data", "uploads", "scratch"] {
        std::fs::create_dir(stack.path().join(dir)).unwrap();
        std::fs::write(stack.path().join(dir).join("a"), dir).unwrap();
    }
    stack
}

/// An SGR escape (`ESC [ ... m`): a colour or a text style.
fn has_colour(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let params = r.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';');
            params.starts_with('m')
        })
    })
}

/// Runs drydock under a pseudo-terminal (util-linux `script`), `env` set.
fn on_a_terminal(stack: &Stack, env: &str, args: &str) -> String {
    let cmd = format!("{env} '{}' {args}", env!("CARGO_BIN_EXE_drydock"));
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(stack.path())
        .env_remove("NO_COLOR")
        .envs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_for_each_shell_and_the_man_page_come_from_the_command_line() {
    let stack = Stack::new("");
    for (shell, marker, all) in [
        ("bash", "_drydock()", "--all"),
        ("zsh", "#compdef drydock", "--all"),
        ("fish", "complete -c drydock", "-l all"),
    ] {
        let out = stack.run(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
        assert!(
            script.contains(marker) && script.contains("restore") && script.contains(all),
            "{shell}: {script}"
        );
    }
    let out = stack.run(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(page.contains(".TH drydock 1"), "{page}");
    assert!(
        page.contains("backup") && page.contains("Exit codes"),
        "{page}"
    );
    let out = stack.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(64), "{}", common::text(&out));
}

#[test]
fn logs_are_plain_in_a_pipe_and_with_no_color_and_coloured_only_on_a_terminal() {
    let stack = files_stack();
    let out = stack.run(&["backup", "-v"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(!has_colour(&stderr), "colour codes in a pipe: {stderr:?}");

    let screen = on_a_terminal(&stack, "", "backup -vv");
    assert!(screen.contains("INFO"), "{screen}");
    assert!(has_colour(&screen), "no colour on a terminal: {screen:?}");

    let screen = on_a_terminal(&stack, "NO_COLOR=1", "backup -vv");
    assert!(screen.contains("INFO"), "{screen}");
    assert!(!has_colour(&screen), "NO_COLOR ignored: {screen:?}");
}

#[test]
fn backup_says_which_sources_it_left_out_and_why() {
    let stack = files_stack();
    let out = stack.run(&["backup"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "left out: app/uploads (medium; default is critical,high; use --all or --priority)"
        ),
        "{text}"
    );
    assert!(
        text.contains("left out: app/scratch (none; priority none is never backed up"),
        "{text}"
    );

    let (code, report) = stack.json(&["backup", "--priority", "critical"]);
    assert_eq!(code, 0, "{report:#}");
    let left: Vec<(String, String)> = report["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["source"].as_str().unwrap().to_string(),
                l["because"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            ("uploads".to_string(), "not-asked".to_string()),
            ("scratch".to_string(), "priority-none".to_string())
        ]
    );

    let out = stack.run(&["backup", "--all"]);
    let text = common::text(&out);
    assert!(!text.contains("left out: app/uploads"), "{text}");
    assert!(text.contains("left out: app/scratch"), "{text}");
}

#[test]
fn restore_without_a_selector_names_both_ways_to_say_what() {
    let stack = files_stack();
    let out = stack.run(&["restore", "latest"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("--service <SERVICE>|--all"), "{text}");
}

#[test]
fn config_paths_are_printed_clean() {
    let stack = files_stack();
    // The common stack says `path = "repo"`; this one says `./repo`, as people write it.
    let config = std::fs::read_to_string(stack.path().join("drydock.toml"))
        .unwrap()
        .replace("path = \"repo\"", "path = \"./repo\"");
    std::fs::write(stack.path().join("drydock.toml"), config).unwrap();
    let out = stack.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let out = stack.run(&["backups"]);
    let text = common::text(&out);
    let repo = stack.path().canonicalize().unwrap().join("repo");
    assert!(
        text.contains(&format!("repository {}\n", repo.display())),
        "{text}"
    );
    assert!(!text.contains("/./"), "{text}");
}

#[test]
fn validate_warns_about_missing_paths_and_unreachable_servers_without_failing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }}]\n\n[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"redis\", priority = \"high\", url = \"redis://127.0.0.1:{port}\" }}]\n"
    ));
    let (code, v) = stack.json(&["validate"]);
    assert_eq!(code, 0, "{v:#}");
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{v:#}");
    assert!(
        warnings[0].starts_with("app/uploads: ") && warnings[0].contains("does not exist"),
        "{v:#}"
    );
    assert!(
        warnings[1].contains(&format!("db/redis: cannot reach 127.0.0.1:{port}")),
        "{v:#}"
    );

    let out = stack.run(&["validate", "--offline"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("warning: app/uploads:"), "{text}");
    assert!(!text.contains("cannot reach"), "{text}");
    assert!(
        text.contains("valid (2 services, 2 data sources)"),
        "{text}"
    );
}
