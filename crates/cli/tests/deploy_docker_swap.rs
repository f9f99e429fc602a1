//! `drydock deploy` swapping a Docker app behind Debian's nginx, through the real binary
//! and the config an operator writes: a git repository whose commits are the app's
//! builds (images assembled by testkit, tagged with the commit), nginx on a random
//! loopback port including the upstream file drydock writes. What nginx serves is read
//! with a raw HTTP client: the first deploy, an app change swapped in, a second deploy
//! of the same commit that changes nothing, and `drydock rollback` back to the first.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::git::{commit, init};
use common::Stack;
use drydock_testkit::docker::{app_image, docker_output, remove_image, require_docker};
use drydock_testkit::nginx::NginxServer;

/// What nginx answers for `path` (the body, trimmed).
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The stack's containers and images, removed on drop.
struct Cleanup {
    stack: String,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        drydock_testkit::docker::remove_containers_labelled("drydock.stack", &self.stack);
        for image in &self.images {
            remove_image(image);
        }
    }
}

#[test]
fn deploy_swaps_behind_nginx_changes_nothing_the_second_time_and_rolls_back() {
    require_docker();
    let nginx = NginxServer::start("app");
    let stack_name = drydock_testkit::docker::unique("swap")
        .trim_start_matches("drydock-t-")
        .to_string();
    let stack = Stack::new(&format!(
        "[services.web]\nrole = \"app\"\nruntime = {{ kind = \"external\" }}\ndeploy = {{ kind = \"docker\", image = \"drydock-test-app:{{rev}}\", port = 8080, url = \"{url}\", strategy = \"swap\", health = {{ interval = \"100ms\", deadline = \"20s\" }}, build_id = {{ path = \"/build_id\" }}, proxy = {{ kind = \"nginx\", upstream_file = \"{upstream}\", upstream = \"app\", conf = \"{conf}\", drain = \"1s\" }} }}\n",
        url = nginx.url(),
        upstream = nginx.upstream_file().display(),
        conf = nginx.conf().display(),
    ));
    let config = stack.path().join("drydock.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("name = \"test\"", &format!("name = \"{stack_name}\""), 1),
    )
    .unwrap();
    let mut cleanup = Cleanup {
        stack: stack_name,
        images: Vec::new(),
    };

    let v1 = init(&stack, &[("src/app.py", "print('v1')\n")]);
    cleanup.images.push(app_image(&v1, true));
    let (code, first) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{first:#}");
    assert_eq!(first["outcome"], "ok", "{first:#}");
    assert_eq!(get(nginx.port(), "/build_id"), v1);

    let v2 = commit(stack.path(), &[("src/app.py", "print('v2')\n")]);
    cleanup.images.push(app_image(&v2, true));
    let (code, second) = stack.json(&["deploy"]);
    assert_eq!(code, 0, "{second:#}");
    assert_eq!(second["decision"], "app", "{second:#}");
    assert_eq!(get(nginx.port(), "/build_id"), v2);
    let upstream = std::fs::read_to_string(nginx.upstream_file()).unwrap();
    assert!(upstream.contains("upstream app"), "{upstream}");

    // The same commit again: a skip, nothing touched (the upstream file included).
    let (code, again) = stack.json(&["deploy", "--app-changed"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["changes"], 0, "{again:#}");
    assert_eq!(
        std::fs::read_to_string(nginx.upstream_file()).unwrap(),
        upstream
    );

    let (code, back) = stack.json(&["rollback"]);
    assert_eq!(code, 0, "{back:#}");
    assert_eq!(back["to_commit"], v1.as_str(), "{back:#}");
    assert_eq!(get(nginx.port(), "/build_id"), v1);
    // The version rolled back from is kept (stopped), for a rollback forward.
    let out = docker_output(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=drydock.commit={v2}"),
        "--format",
        "{{.State}}",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "exited");
}
