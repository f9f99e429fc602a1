//! The `compose` runtime against a real Compose project: a service whose container
//! does not exist yet is created by `start` (compose up with its profile), then
//! stopped, restarted and queried through the Docker API; a profile goes up and down.

use drydock_domain::config::ComposeRuntimeConfig;
use drydock_runtimes::compose::{profile_down, profile_up, ComposeRuntime};
use drydock_runtimes::{Runtime, State};
use drydock_testkit::docker::{busybox_image, require_docker, unique, write_file, ComposeProject};
use std::time::Duration;

#[test]
fn compose_service_lifecycle_and_profiles() {
    require_docker();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-compose.yml");
    write_file(
        &file,
        &format!(
            "version: \"3.9\"\nservices:\n  web:\n    image: {}\n    profiles: [\"app\"]\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo web up; while true; do sleep 0.2; done\"]\n  cache:\n    image: {}\n    profiles: [\"infrastructure\"]\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.2; done\"]\n",
            busybox_image(),
            busybox_image()
        ),
    );
    let project = unique("proj");
    let _guard = ComposeProject::new(&project, &file, &[]);
    let runtime = ComposeRuntime::new(
        "web",
        ComposeRuntimeConfig {
            project: project.clone(),
            service: "web".into(),
            file: Some(file.clone()),
            profile: Some("app".into()),
            stop_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(30),
        },
    );
    assert_eq!(runtime.state().unwrap(), State::Missing);
    runtime.start().unwrap();
    let d = runtime.details().unwrap();
    assert_eq!(d.state, State::Running);
    assert_eq!(d.restart_count, Some(0));
    assert!(d.started_at.is_some() && !d.pids.is_empty());
    assert!(runtime.container().unwrap().unwrap().contains(&project));
    let logs = runtime.logs(10).unwrap().unwrap();
    assert!(logs.lines.iter().any(|l| l.contains("web up")), "{logs:?}");

    runtime.stop().unwrap();
    assert_eq!(runtime.state().unwrap(), State::Stopped);
    runtime.restart().unwrap();
    assert_eq!(runtime.state().unwrap(), State::Running);

    // The infrastructure profile: up brings `cache`, down removes the project's containers.
    let cache = ComposeRuntime::new(
        "cache",
        ComposeRuntimeConfig {
            project: project.clone(),
            service: "cache".into(),
            file: Some(file.clone()),
            profile: Some("infrastructure".into()),
            stop_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(30),
        },
    );
    assert_eq!(cache.state().unwrap(), State::Missing);
    profile_up(&file, &project, "infrastructure").unwrap();
    assert_eq!(cache.state().unwrap(), State::Running);
    profile_down(&file, &project, "infrastructure").unwrap();
    assert_eq!(cache.state().unwrap(), State::Missing);
}
