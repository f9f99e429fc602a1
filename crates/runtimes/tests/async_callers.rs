//! The `docker` runtime called from async code, as a daemon's tokio tasks will call it:
//! state, stop, start and exec on a real container from inside a multi-threaded and a
//! current-thread runtime, where blocking on another runtime would panic.

use std::io::Read;
use std::time::Duration;

use drydock_domain::config::DockerRuntimeConfig;
use drydock_runtimes::docker::DockerRuntime;
use drydock_runtimes::{Runtime, State};
use drydock_testkit::docker::{busybox_image, require_docker, unique, Container};

fn sleeper() -> (Container, DockerRuntime) {
    let name = unique("async");
    let c = Container::run(
        &name,
        &[
            &busybox_image(),
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.2; done",
        ],
    );
    let runtime = DockerRuntime::new(
        "app",
        DockerRuntimeConfig {
            container: name,
            stop_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(30),
        },
    );
    (c, runtime)
}

fn lifecycle(runtime: &DockerRuntime) {
    assert_eq!(runtime.state().unwrap(), State::Running);
    let mut exec = runtime
        .exec(&["echo".to_string(), "from-async".to_string()], &[], false)
        .unwrap();
    let mut out = String::new();
    exec.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(exec.wait().unwrap(), Some(0));
    assert_eq!(out.trim(), "from-async");
    runtime.stop().unwrap();
    assert_eq!(runtime.state().unwrap(), State::Stopped);
    runtime.start().unwrap();
    assert_eq!(runtime.state().unwrap(), State::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_runtime_works_from_a_multi_threaded_async_worker() {
    require_docker();
    let (_c, runtime) = sleeper();
    lifecycle(&runtime);
    // And from a task spawned on the runtime, as a daemon's job would be.
    tokio::spawn(async move { lifecycle(&runtime) })
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn docker_runtime_works_from_a_current_thread_runtime() {
    require_docker();
    let (_c, runtime) = sleeper();
    lifecycle(&runtime);
}
