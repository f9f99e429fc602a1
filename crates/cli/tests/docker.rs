//! Docker end to end, through the real binary against the real Docker engine (images
//! assembled locally by the testkit; no registry): labelled volume backup/restore with
//! stop-during-backup, SIGTERM while containers are stopped, a container that does not
//! come back healthy, PostgreSQL dumped and restored inside its container, container
//! name typos, an unreachable daemon and a denied socket, and health/diagnose/heal of
//! a docker service.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Stack;
use drydock_testkit::docker::{
    busybox_image, docker, postgres_image, require_docker, unique, Container, Volume,
};

/// A busybox container mounting `volume` at /data, running a writer loop.
fn writer(name: &str, volume: &str, labels: &[&str]) -> Container {
    let image = busybox_image();
    let mut args: Vec<String> = vec!["-v".into(), format!("{volume}:/data")];
    for l in labels {
        args.push("--label".into());
        args.push(l.to_string());
    }
    args.push(image);
    args.extend([
        "sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /data/counter; sleep 0.2; done".into(),
    ]);
    Container::run(name, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn labelled_volume_round_trip_stops_its_container_and_refuses_restore_while_used() {
    require_docker();
    let volume = Volume::create(
        &unique("vol"),
        &[
            ("drydock.backup", "critical"),
            ("drydock.description", "keys and database"),
        ],
    );
    let c = writer(
        &unique("app"),
        &volume.name,
        &["drydock.stop-during-backup=true"],
    );
    c.exec(&[
        "sh",
        "-c",
        "mkdir -p /data/keys && echo k1 > /data/keys/one && echo hello > /data/db.sqlite",
    ]);
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"docker\", container = \"{}\" }}\ndata = [{{ kind = \"volume\", volume = \"{}\" }}]\n",
        c.name, volume.name
    ));

    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let src = &backup["sources"][0];
    assert_eq!(src["kind"], "volume");
    // The priority came from the label, so the default (critical+high) run took it.
    assert_eq!(src["priority"], "critical");
    assert_eq!(backup["restarted"][0]["status"], "running", "{backup:#}");
    assert!(backup["restarted"][0]["service"]
        .as_str()
        .unwrap()
        .contains(&c.name));
    assert!(c.running(), "the container runs again after the backup");
    let digest = src["fingerprint"]["digest"].as_str().unwrap().to_string();

    c.exec(&["sh", "-c", "rm -rf /data/keys && echo other > /data/new"]);

    // Restoring under a running container is refused, and changes nothing.
    let (code, refused) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 3, "{refused:#}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains(&c.name) && message.contains("--stop"),
        "{message}"
    );
    assert_eq!(c.exec(&["cat", "/data/new"]), "other");

    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force", "--stop"]);
    assert_eq!(code, 0, "{restored:#}");
    let r = &restored["sources"][0];
    assert_eq!(r["status"], "verified");
    assert_eq!(r["fingerprint"].as_str().unwrap(), digest);
    assert!(
        r["service_action"]
            .as_str()
            .unwrap()
            .contains("started again"),
        "{r:#}"
    );
    assert!(c.running());
    assert_eq!(c.exec(&["cat", "/data/keys/one"]), "k1");
    assert!(c.exec(&["ls", "/data"]).lines().all(|l| l != "new"));
}

#[test]
fn sigterm_while_containers_are_stopped_starts_them_again() {
    require_docker();
    let volume = Volume::create(&unique("vol"), &[("drydock.backup", "high")]);
    let c = writer(&unique("app"), &volume.name, &[]);
    // A PostgreSQL "server" that accepts and never answers: the backup hangs on it
    // (critical, so first) while the container is stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in silent.incoming() {
            conns.push(conn);
        }
    });
    let stack = Stack::new(&format!(
        "[services.app]\nstop_during_backup = true\nruntime = {{ kind = \"docker\", container = \"{}\" }}\ndata = [{{ kind = \"volume\", volume = \"{}\" }}]\n\n[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", url = \"postgres://app@127.0.0.1:{port}/app\" }}]\n",
        c.name, volume.name
    ));
    let mut child = stack
        .command(&["backup", "--all"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stopped = drydock_testkit::wait_until(Duration::from_secs(30), || !c.running());
    assert!(stopped, "drydock never stopped the container");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(c.running(), "the container must run again: {err}");
    assert!(err.contains("started again"), "{err}");
}

#[test]
fn container_unhealthy_after_the_backup_restart_is_reported() {
    require_docker();
    let volume = Volume::create(&unique("vol"), &[("drydock.backup", "critical")]);
    let name = unique("flaky");
    // Healthy on its first start; every later start marks itself broken.
    let c = Container::run(
        &name,
        &[
            "-v",
            &format!("{}:/data", volume.name),
            "--health-cmd",
            "test ! -f /data/broken",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            &busybox_image(),
            "sh",
            "-c",
            "if [ -f /data/started ]; then touch /data/broken; fi; touch /data/started; exec sleep 100000",
        ],
    );
    c.wait_healthy(Duration::from_secs(30));
    let stack = Stack::new(&format!(
        "[services.app]\nstop_during_backup = true\nruntime = {{ kind = \"docker\", container = \"{name}\", stop_timeout = \"2s\", health_timeout = \"8s\" }}\ndata = [{{ kind = \"volume\", volume = \"{}\", exclude = [\"broken\", \"started\"] }}]\n",
        volume.name
    ));
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["sources"][0]["status"], "ok");
    let restarted = &report["restarted"][0];
    assert_eq!(restarted["status"], "failed", "{report:#}");
    let error = restarted["error"].as_str().unwrap();
    assert!(
        error.contains("not healthy") && error.contains(&name),
        "{error}"
    );
    assert!(report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("did not come back")));
}

#[test]
fn postgres_dumped_and_restored_inside_its_container() {
    require_docker();
    let password = "pg-canary-Vn3w8";
    let port = drydock_testkit::free_port();
    let c = Container::run(
        &unique("pg"),
        &[
            "-e",
            &format!("POSTGRES_PASSWORD={password}"),
            "-e",
            "POSTGRES_USER=app",
            "-e",
            "POSTGRES_DB=app",
            "-p",
            &format!("127.0.0.1:{port}:5432"),
            "--health-cmd",
            "pg_isready -h 127.0.0.1 -U app",
            "--health-interval",
            "1s",
            &postgres_image(),
        ],
    );
    c.wait_healthy(Duration::from_secs(60));
    c.exec(&[
        "psql", "-h", "/var/run/postgresql", "-U", "app", "app", "-c",
        "CREATE TABLE patients (id serial PRIMARY KEY, name text); INSERT INTO patients (name) SELECT 'p' || g FROM generate_series(1, 500) g;",
    ]);
    let stack = Stack::new(&format!(
        "[services.db]\nruntime = {{ kind = \"docker\", container = \"{}\" }}\ndata = [{{ kind = \"postgres\", priority = \"critical\", exec = true, url = \"postgres://app@127.0.0.1:{port}/app\", password = \"${{env:TEST_PG_PASSWORD}}\" }}]\n",
        c.name
    ))
    .env("TEST_PG_PASSWORD", password);
    let since = docker(&["info", "-f", "{{.SystemTime}}"]);

    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    let src = &backup["sources"][0];
    assert_eq!(src["counts"]["rows"], 500, "{src:#}");
    // Sequences come from the archive's table of contents, read inside the container.
    assert!(
        src["fingerprint"]["parts"]["seq:public.patients_id_seq"].is_object(),
        "{src:#}"
    );
    let digest = src["fingerprint"]["digest"].as_str().unwrap().to_string();

    // The tools ran in the container, through the exec API.
    let until = docker(&["info", "-f", "{{.SystemTime}}"]);
    let events = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("container={}", c.name),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("pg_dump --format=custom"), "{events}");
    assert!(
        !events.contains(password),
        "no secret in the exec's arguments: {events}"
    );

    c.exec(&[
        "psql",
        "-h",
        "/var/run/postgresql",
        "-U",
        "app",
        "app",
        "-c",
        "DELETE FROM patients WHERE id > 10",
    ]);
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0, "{restored:#}");
    assert_eq!(restored["sources"][0]["status"], "verified");
    assert_eq!(
        restored["sources"][0]["fingerprint"].as_str().unwrap(),
        digest
    );
    let events = docker(&[
        "events",
        "--since",
        &until,
        "--until",
        &docker(&["info", "-f", "{{.SystemTime}}"]),
        "--filter",
        &format!("container={}", c.name),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("pg_restore"), "{events}");
}

#[test]
fn container_name_typo_suggests_the_closest_names() {
    require_docker();
    let c = Container::run(&unique("postgres"), &[&busybox_image(), "sleep", "100000"]);
    let typo = c.name.replace("postgres", "postgrse");
    let stack = Stack::new(&format!(
        "[services.db]\nstop_during_backup = true\nruntime = {{ kind = \"docker\", container = \"{typo}\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"data\" }}]\nhealth = [{{ kind = \"process\" }}]\n"
    ));
    std::fs::create_dir(stack.path().join("data")).unwrap();

    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 3, "{backup:#}");
    let error = backup["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("no container named `{typo}`"))
            && error.contains(&format!("did you mean `{}`", c.name)),
        "{error}"
    );

    let (code, health) = stack.json(&["health"]);
    assert_eq!(code, 2, "{health:#}");
    let message = health["services"]["db"]["checks"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains(&format!("did you mean `{}`", c.name)),
        "{message}"
    );
}

#[test]
fn unreachable_daemon_and_denied_socket_are_named_with_the_fix() {
    require_docker();
    let stack = Stack::new(
        "[services.db]\nruntime = { kind = \"docker\", container = \"db\" }\nhealth = [{ kind = \"process\" }]\n",
    )
    .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let (code, health) = stack.json(&["health"]);
    assert_eq!(code, 2, "{health:#}");
    let message = health["services"]["db"]["checks"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock")
            && message.contains("systemctl start docker"),
        "{message}"
    );

    // The real socket, as a user outside the `docker` group.
    let stack = Stack::new(
        "[services.db]\nruntime = { kind = \"docker\", container = \"db\" }\nhealth = [{ kind = \"process\" }]\n",
    );
    let dir = stack.path();
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(dir.join("drydock.toml"), Some(65534), Some(65534)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_drydock"))
        .args(["health", "--json"])
        .current_dir(dir)
        .env("TEST_REPO_PASSWORD", common::REPO_PASSWORD)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(
        text.contains("permission denied on the Docker socket") && text.contains("docker` group"),
        "{text}{}",
        stderr(&out)
    );
}

#[test]
fn health_diagnose_and_heal_a_docker_service() {
    require_docker();
    let image = busybox_image();
    let web = Container::run(
        &unique("web"),
        &[
            &image,
            "sh",
            "-c",
            "echo 'serving on 8080'; exec httpd -f -p 8080",
        ],
    );
    let looping = Container::run(
        &unique("loop"),
        &[
            "--restart",
            "always",
            &image,
            "sh",
            "-c",
            "echo 'fatal: config missing'; exit 1",
        ],
    );
    let stack = Stack::new(&format!(
        "[services.web]\nruntime = {{ kind = \"docker\", container = \"{}\" }}\n\n[services.worker]\nruntime = {{ kind = \"docker\", container = \"{}\" }}\nhealth = [{{ kind = \"process\", max_restarts = 2 }}]\n",
        web.name, looping.name
    ));
    let (code, health) = stack.json(&["health", "web"]);
    assert_eq!(code, 0, "{health:#}");
    let check = &health["services"]["web"]["checks"][0];
    assert_eq!(check["kind"], "process");
    assert_eq!(check["details"]["runtime"], "docker");
    assert!(check["details"]["uptime_secs"].is_number(), "{check:#}");

    docker(&["stop", "-t", "1", &web.name]);
    let (code, health) = stack.json(&["health", "web"]);
    assert_eq!(code, 2, "{health:#}");

    let (code, diagnosis) = stack.json(&["diagnose", "web"]);
    assert_eq!(code, 2, "{diagnosis:#}");
    assert!(
        diagnosis["logs"]["web"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("serving on 8080")),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["services"]["web"]["runtime"]["kind"], "docker");

    let (code, healed) = stack.json(&["heal", "web", "--wait", "10s", "--backoff", "1s"]);
    assert_eq!(code, 0, "{healed:#}");
    assert_eq!(healed["services"][0]["attempts"][0]["action"], "start");
    assert!(web.running());

    // The crash-looping container: its restart count shows in diagnose.
    assert!(drydock_testkit::wait_until(Duration::from_secs(30), || {
        looping
            .inspect("{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 3
    }));
    let (code, diagnosis) = stack.json(&["diagnose", "worker"]);
    assert!(code >= 1, "{diagnosis:#}");
    let patterns: Vec<&str> = diagnosis["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pattern"].as_str().unwrap())
        .collect();
    assert!(patterns.contains(&"crash_loop"), "{diagnosis:#}");
}

#[test]
fn init_from_compose_writes_the_example_config_which_validates_and_backs_up() {
    require_docker();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose");
    let stack = Stack::new("");
    let dir = stack.path().to_path_buf();
    std::fs::remove_file(dir.join("drydock.toml")).unwrap();
    std::fs::copy(
        example.join("docker-compose.yml"),
        dir.join("docker-compose.yml"),
    )
    .unwrap();

    // What init writes for the example is the checked-in example config.
    let (code, report) = stack.json(&[
        "init",
        "--from-compose",
        "docker-compose.yml",
        "--project",
        "clinic",
    ]);
    assert_eq!(code, 0, "{report:#}");
    let written = std::fs::read_to_string(dir.join("drydock.toml")).unwrap();
    assert_eq!(
        written,
        std::fs::read_to_string(example.join("drydock.toml")).unwrap()
    );
    let guesses: Vec<(&str, &str)> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["guess"].as_str().unwrap()))
        .collect();
    assert_eq!(
        guesses,
        [
            ("postgres", "postgres"),
            ("redis", "redis"),
            ("api", "unknown"),
            ("worker", "unknown")
        ]
    );
    // Credentials are references to the compose environment's keys, never values.
    assert!(written.contains("password = \"${env:POSTGRES_PASSWORD}\""));
    assert!(written.contains("# TODO: drydock does not know the image"));
    assert!(report["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "REDIS_PASSWORD"));

    // Refuses to overwrite without --force.
    let (code, refused) = stack.json(&["init", "--from-compose", "docker-compose.yml"]);
    assert_eq!(code, 3, "{refused:#}");

    let pg_password = "pg-Zk2-canary";
    let redis_password = "redis-Q8w-canary";
    let stack = stack
        .env("DRYDOCK_REPO_PASSWORD", common::REPO_PASSWORD)
        .env("POSTGRES_PASSWORD", pg_password)
        .env("REDIS_PASSWORD", redis_password);
    let out = stack.run(&["validate"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The same stack for real: local images and free ports through the environment.
    let project = unique("clinic");
    let data_dir = dir.join("host-data");
    std::fs::create_dir_all(data_dir.join("postgres")).unwrap();
    let ports: Vec<String> = (0..3)
        .map(|_| drydock_testkit::free_port().to_string())
        .collect();
    let images = [
        postgres_image(),
        drydock_testkit::docker::redis_image(),
        drydock_testkit::docker::web_image(),
    ];
    let env: Vec<(&str, &str)> = vec![
        ("POSTGRES_IMAGE", &images[0]),
        ("REDIS_IMAGE", &images[1]),
        ("API_IMAGE", &images[2]),
        ("WORKER_IMAGE", &images[2]),
        ("POSTGRES_PORT", &ports[0]),
        ("REDIS_PORT", &ports[1]),
        ("API_PORT", &ports[2]),
        ("DATA_DIR", data_dir.to_str().unwrap()),
        ("POSTGRES_PASSWORD", pg_password),
        ("REDIS_PASSWORD", redis_password),
    ];
    let compose = drydock_testkit::docker::ComposeProject::new(
        &project,
        &dir.join("docker-compose.yml"),
        &env,
    );
    compose.run(&[
        "--profile",
        "infrastructure",
        "--profile",
        "app",
        "up",
        "-d",
    ]);
    let mut stack = stack;
    for (k, v) in &env {
        stack = stack.env(k, v);
    }
    let (code, report) = stack.json(&[
        "init",
        "--from-compose",
        "docker-compose.yml",
        "--project",
        &project,
        "--force",
    ]);
    assert_eq!(code, 0, "{report:#}");
    let written = std::fs::read_to_string(dir.join("drydock.toml")).unwrap();
    assert!(
        written.contains(&format!("127.0.0.1:{}", ports[0])),
        "{written}"
    );

    for service in ["postgres", "redis", "api"] {
        let c = Container {
            name: compose.container(service),
        };
        c.wait_healthy(Duration::from_secs(90));
        std::mem::forget(c); // compose removes it
    }
    let pg = compose.container("postgres");
    docker(&["exec", &pg, "psql", "-h", "/var/run/postgresql", "-U", "clinic", "clinic", "-c",
        "CREATE TABLE visits (id serial PRIMARY KEY, note text); INSERT INTO visits (note) SELECT 'v' || g FROM generate_series(1, 50) g;"]);
    docker(&[
        "exec",
        &compose.container("redis"),
        "redis-cli",
        "set",
        "session:1",
        "alice",
    ]);
    std::fs::write(dir.join("data/uploads/scan.pdf"), b"%PDF-1.4 test").unwrap();

    let (code, health) = stack.json(&["health"]);
    assert_eq!(code, 0, "{health:#}");

    let since = docker(&["info", "-f", "{{.SystemTime}}"]);
    let (code, backup) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{backup:#}");
    // The Redis RDB came from redis-cli inside the container.
    let events = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &docker(&["info", "-f", "{{.SystemTime}}"]),
        "--filter",
        &format!("container={}", compose.container("redis")),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("redis-cli"), "{events}");
    let by_source: std::collections::BTreeMap<String, &serde_json::Value> = backup["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s["service"].as_str().unwrap(),
                    s["source"].as_str().unwrap()
                ),
                s,
            )
        })
        .collect();
    assert_eq!(
        by_source["postgres/postgres"]["counts"]["rows"], 50,
        "{backup:#}"
    );
    assert_eq!(by_source["redis/redis"]["counts"]["keys"], 1, "{backup:#}");
    assert_eq!(by_source["api/uploads"]["counts"]["files"], 1, "{backup:#}");
    assert!(by_source.contains_key("worker/worker_spool"));
    assert!(
        !by_source.contains_key("postgres/postgres_data"),
        "priority none is never backed up"
    );
    assert_eq!(backup["restarted"][0]["status"], "running", "{backup:#}");
    assert!(backup["restarted"][0]["service"]
        .as_str()
        .unwrap()
        .contains("api"));
    assert!(
        !backup.to_string().contains(pg_password) && !backup.to_string().contains(redis_password)
    );
}

#[test]
fn missing_volumes_are_skipped_unless_critical_and_existing_volumes_are_refilled_in_place() {
    require_docker();
    let volume = Volume::create(
        &unique("vol"),
        &[("drydock.backup", "high"), ("drydock.description", "spool")],
    );
    std::fs::write(volume.mountpoint().join("job-1"), "queued").unwrap();
    let missing = unique("gone");
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"volume\", name = \"spool\", volume = \"{}\" }},\n  {{ kind = \"volume\", name = \"old\", volume = \"{missing}\", priority = \"medium\" }},\n]\n",
        volume.name
    ));
    let (code, backup) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 1, "{backup:#}");
    assert_eq!(backup["sources"][0]["status"], "ok");
    assert_eq!(backup["sources"][1]["status"], "skipped");
    let warning = backup["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains(&missing) && warning.contains("docker volume ls"),
        "{warning}"
    );

    // The restore refills the volume in place: it is never removed and recreated (that
    // would empty it before the backup was read), so it keeps its labels.
    std::fs::write(volume.mountpoint().join("stray"), "x").unwrap();
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0, "{restored:#}");
    assert_eq!(restored["sources"][0]["status"], "verified");
    assert_eq!(
        docker(&[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"drydock.backup\"}}",
            &volume.name
        ]),
        "high"
    );
    assert_eq!(
        std::fs::read_to_string(volume.mountpoint().join("job-1")).unwrap(),
        "queued"
    );
    assert!(!volume.mountpoint().join("stray").exists());

    // A critical volume that is gone fails the run.
    let stack = Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"volume\", volume = \"{missing}\", priority = \"critical\" }}]\n"
    ));
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 2, "{backup:#}");
    assert_eq!(backup["sources"][0]["status"], "failed");
}

#[test]
fn mariadb_dumped_and_restored_inside_its_container() {
    require_docker();
    let password = "my-canary-Hq4t";
    let port = drydock_testkit::free_port();
    let c = Container::run(
        &unique("maria"),
        &[
            "-e",
            &format!("MARIADB_ROOT_PASSWORD={password}"),
            "-e",
            "MARIADB_DATABASE=shop",
            "-p",
            &format!("127.0.0.1:{port}:3306"),
            &drydock_testkit::docker::mariadb_image(),
        ],
    );
    assert!(
        drydock_testkit::wait_until(Duration::from_secs(60), || {
            String::from_utf8_lossy(
                &drydock_testkit::docker::docker_output(&["logs", &c.name]).stdout,
            )
            .contains("ready for connections")
        }),
        "MariaDB in the container did not get ready"
    );
    let sql = |q: &str| {
        docker(&[
            "exec",
            "-e",
            &format!("MYSQL_PWD={password}"),
            &c.name,
            "mariadb",
            "-uroot",
            "-h127.0.0.1",
            "shop",
            "-e",
            q,
        ])
    };
    sql("CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, total DECIMAL(10,2)); INSERT INTO orders (total) VALUES (1.50), (2.25), (99.99);");
    let stack = Stack::new(&format!(
        "[services.shop]\nruntime = {{ kind = \"docker\", container = \"{}\" }}\ndata = [{{ kind = \"mysql\", priority = \"critical\", exec = true, url = \"mysql://root@127.0.0.1:{port}/shop\", password = \"${{env:TEST_MY_PASSWORD}}\" }}]\n",
        c.name
    ))
    .env("TEST_MY_PASSWORD", password);
    let since = docker(&["info", "-f", "{{.SystemTime}}"]);
    let (code, backup) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{backup:#}");
    assert_eq!(backup["sources"][0]["counts"]["rows"], 3, "{backup:#}");
    let digest = backup["sources"][0]["fingerprint"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let until = docker(&["info", "-f", "{{.SystemTime}}"]);
    let events = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("container={}", c.name),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        events.contains("mariadb-dump") && events.contains("--single-transaction"),
        "{events}"
    );
    assert!(!events.contains(password), "{events}");

    sql("DELETE FROM orders; DROP TABLE orders;");
    let (code, restored) = stack.json(&["restore", "latest", "--all", "--force"]);
    assert_eq!(code, 0, "{restored:#}");
    assert_eq!(restored["sources"][0]["status"], "verified");
    assert_eq!(
        restored["sources"][0]["fingerprint"].as_str().unwrap(),
        digest
    );
    // The option file with the password did not stay in the container.
    assert!(!c.exec(&["ls", "/tmp"]).contains("drydock"));
}
