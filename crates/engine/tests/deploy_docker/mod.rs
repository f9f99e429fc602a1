//! `deploy = { kind = "docker" }` against the real Docker engine and Debian's nginx:
//! app builds assembled by testkit (busybox httpd: `/up`, `/build_id`, a 2 s CGI),
//! nginx on a random loopback port including the upstream file the deployer writes,
//! and clients that go through nginx the way users do. Oracles drydock did not write:
//! what nginx serves to a raw HTTP client, what `docker ps` lists, the upstream file as
//! `std::fs` reads it.

// The deployers return `AppFailure` (the engine's shared type, allowed there too).
#![allow(clippy::result_large_err)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drydock_domain::config::ServiceDeploy;
use drydock_domain::config::{
    BuildIdCheck, DockerDeploy, HttpGate, NginxProxy, ProxyConfig, Strategy,
};
use drydock_engine::deploy::{
    deploy_service, rollback_service, take_down_service, AppDeployed, AppFailure, AppTarget,
};
use drydock_engine::RunContext;
use drydock_testkit::docker::{app_image, docker, remove_image, require_docker};
use drydock_testkit::nginx::NginxServer;

const SERVICE: &str = "web";

/// One test's stack: its nginx, the images it built, and every container carrying its
/// stack label, all removed on drop.
struct Stage {
    stack: String,
    nginx: NginxServer,
    state: tempfile::TempDir,
    images: Vec<String>,
    /// `recreate`: the published port.
    publish: u16,
}

impl Stage {
    fn new() -> Stage {
        require_docker();
        let unique = drydock_testkit::docker::unique("dep");
        Stage {
            stack: unique.trim_start_matches("drydock-t-").to_string(),
            nginx: NginxServer::start("app"),
            state: tempfile::tempdir().unwrap(),
            images: Vec::new(),
            publish: drydock_testkit::free_port(),
        }
    }

    /// A new build of the app under a fresh commit id; its image is removed on drop.
    fn build(&mut self, healthy: bool) -> String {
        let commit = commit_id();
        self.images.push(app_image(&commit, healthy));
        commit
    }

    fn gate() -> HttpGate {
        HttpGate {
            path: "/up".into(),
            status: 200,
            host: None,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
        }
    }

    fn swap_spec(&self, drain: Duration) -> DockerDeploy {
        DockerDeploy {
            image: "drydock-test-app:{rev}".into(),
            strategy: Strategy::Swap,
            port: 8080,
            publish: None,
            url: Some(self.nginx.url()),
            network: None,
            env: [("APP_SECRET".to_string(), "not-in-argv".to_string())].into(),
            health: Self::gate(),
            build_id: Some(BuildIdCheck {
                path: Some("/build_id".into()),
                header: None,
                expect: "{rev}".into(),
            }),
            proxy: Some(ProxyConfig::Nginx(NginxProxy {
                upstream_file: self.nginx.upstream_file().to_path_buf(),
                upstream: Some("app".into()),
                binary: drydock_testkit::nginx::NGINX.into(),
                conf: Some(self.nginx.conf().to_path_buf()),
                drain,
            })),
            keep: 3,
        }
    }

    fn recreate_spec(&self) -> DockerDeploy {
        DockerDeploy {
            strategy: Strategy::Recreate,
            publish: Some(self.publish),
            url: Some(format!("http://127.0.0.1:{}", self.publish)),
            proxy: None,
            ..self.swap_spec(Duration::ZERO)
        }
    }

    fn target<'a>(&'a self, commit: &'a str) -> AppTarget<'a> {
        AppTarget {
            stack: &self.stack,
            service: SERVICE,
            commit,
            config_dir: self.state.path(),
            state_dir: self.state.path(),
        }
    }

    fn deploy(&self, spec: &DockerDeploy, commit: &str) -> Result<AppDeployed, AppFailure> {
        self.deploy_with(spec, commit, &RunContext::default())
    }

    fn deploy_with(
        &self,
        spec: &DockerDeploy,
        commit: &str,
        ctx: &RunContext,
    ) -> Result<AppDeployed, AppFailure> {
        deploy_service(
            &ServiceDeploy::Docker(spec.clone()),
            &self.target(commit),
            ctx,
        )
    }

    fn rollback(
        &self,
        spec: &DockerDeploy,
        live: &str,
        to: Option<&str>,
    ) -> Result<AppDeployed, AppFailure> {
        rollback_service(
            &ServiceDeploy::Docker(spec.clone()),
            &self.target(live),
            to,
            &RunContext::default(),
        )
    }

    /// The build nginx serves now, as a plain client sees it.
    fn served(&self) -> String {
        get(self.nginx.port(), "/build_id").1.trim().to_string()
    }

    /// This stack's containers as `docker ps -a` lists them: (commit, running).
    fn containers(&self) -> Vec<(String, bool)> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=drydock.stack={}", self.stack),
            "--format",
            "{{.Label \"drydock.commit\"}} {{.State}}",
        ]);
        let mut all: Vec<(String, bool)> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(c, s)| (c.to_string(), s == "running"))
            .collect();
        all.sort();
        all
    }

    fn running(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .filter(|(_, r)| *r)
            .map(|(c, _)| c)
            .collect()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        drydock_testkit::docker::remove_containers_labelled("drydock.stack", &self.stack);
        for image in &self.images {
            remove_image(image);
        }
    }
}

/// A random 40-hex commit id.
fn commit_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..20)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// One request on a fresh connection: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    read_response(&mut r).unwrap()
}

/// Reads one HTTP/1.1 response (Content-Length, chunked, or to EOF). Err names what
/// broke and whether any byte of the response had arrived.
fn read_response(r: &mut BufReader<TcpStream>) -> Result<(u16, String), (bool, String)> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => return Err((false, "connection closed before the response".into())),
        Ok(_) => {}
        Err(e) => return Err((false, format!("reading the status line: {e}"))),
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or((true, format!("bad status line {line:?}")))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h)
            .map_err(|e| (true, format!("headers: {e}")))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)
                .map_err(|e| (true, format!("chunk: {e}")))?;
            let n = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| (true, "chunk size".to_string()))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)
                .map_err(|e| (true, format!("chunk body: {e}")))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)
            .map_err(|e| (true, format!("body: {e}")))?;
    } else {
        r.read_to_end(&mut body)
            .map_err(|e| (true, format!("body: {e}")))?;
    }
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// What the clients saw.
#[derive(Default, Debug)]
struct Seen {
    ok: u64,
    /// Non-2xx, resets, timeouts: each with what it was.
    failed: Vec<String>,
    /// Requests re-sent on a fresh connection because the reused keep-alive connection
    /// was closed by the server before any byte of the answer (RFC 9112 §9.3.1 lets a
    /// client retry an idempotent request then; browsers and HTTP libraries do). The
    /// retried request itself must then succeed, or it is a failure.
    retried_on_reused: u64,
    /// Keep-alive connections found closed by the server while idle, before a request
    /// was sent on them (a peek sees the FIN), as HTTP client pools check before
    /// reuse; a new connection is made, no request is lost or repeated.
    closed_while_idle: u64,
    latencies: Vec<Duration>,
    slow_ok: u64,
}

/// Clients polling through nginx: one on a keep-alive connection every 10 ms, one on
/// a fresh connection every 10 ms, and two that keep a 2 s request in flight (started
/// 1 s apart, so one is always midway).
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut threads = Vec::new();
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            threads.push(std::thread::spawn(move || {
                keep_alive_poller(port, &stop, &seen)
            }));
        }
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            threads.push(std::thread::spawn(move || fresh_poller(port, &stop, &seen)));
        }
        for delay in [0u64, 1000] {
            let (stop, seen) = (stop.clone(), seen.clone());
            threads.push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                slow_requester(port, &stop, &seen)
            }));
        }
        Load {
            stop,
            seen,
            threads,
        }
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn connect(port: u16, timeout: Duration) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let r = BufReader::new(s.try_clone()?);
    Ok((s, r))
}

fn record(seen: &Mutex<Seen>, what: &str, started: Instant, result: Result<(u16, String), String>) {
    let mut s = seen.lock().unwrap();
    match result {
        Ok((status, _)) if (200..300).contains(&status) => {
            s.ok += 1;
            s.latencies.push(started.elapsed());
        }
        Ok((status, body)) => s
            .failed
            .push(format!("{what}: status {status}: {}", body.trim())),
        Err(e) => s.failed.push(format!("{what}: {e}")),
    }
}

fn keep_alive_poller(port: u16, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let timeout = Duration::from_secs(5);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let request = b"GET /build_id HTTP/1.1\r\nHost: app\r\n\r\n";
    while !stop.load(Ordering::SeqCst) {
        if let Some((s, r)) = &conn {
            if !r.buffer().is_empty() || closed_by_peer(s) {
                seen.lock().unwrap().closed_while_idle += 1;
                conn = None;
            }
        }
        let started = Instant::now();
        let reused = conn.is_some();
        let attempt = |conn: &mut Option<(TcpStream, BufReader<TcpStream>)>| -> Result<(u16, String), (bool, String)> {
            if conn.is_none() {
                *conn = Some(connect(port, timeout).map_err(|e| (false, format!("connect: {e}")))?);
            }
            let (s, r) = conn.as_mut().unwrap();
            s.write_all(request).map_err(|e| (false, format!("write: {e}")))?;
            read_response(r)
        };
        let mut result = attempt(&mut conn);
        if let Err((false, _)) = &result {
            if reused {
                // Closed by the server while idle (an old worker exiting after a
                // reload): the request was never answered; retry it once, fresh.
                seen.lock().unwrap().retried_on_reused += 1;
                conn = None;
                result = attempt(&mut conn);
            }
        }
        if result.is_err() {
            conn = None;
        }
        record(seen, "keep-alive", started, result.map_err(|(_, e)| e));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the server has closed (or reset) an idle connection: a non-blocking peek
/// sees its end (or data nobody asked for).
fn closed_by_peer(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match s.peek(&mut [0u8; 1]) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || s.set_nonblocking(false).is_err()
}

fn fresh_poller(port: u16, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let timeout = Duration::from_secs(5);
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let result = (|| {
            let (mut s, mut r) = connect(port, timeout).map_err(|e| format!("connect: {e}"))?;
            s.write_all(b"GET /build_id HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            read_response(&mut r).map_err(|(_, e)| e)
        })();
        record(seen, "fresh", started, result);
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn slow_requester(port: u16, stop: &AtomicBool, seen: &Mutex<Seen>) {
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let result = (|| {
            let (mut s, mut r) =
                connect(port, Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
            s.write_all(b"GET /cgi-bin/slow HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            read_response(&mut r).map_err(|(_, e)| e)
        })();
        let good = matches!(&result, Ok((200, body)) if body.starts_with("slow "));
        if good {
            seen.lock().unwrap().slow_ok += 1;
        } else {
            let mut s = seen.lock().unwrap();
            s.failed
                .push(format!("slow: {result:?} after {:.1?}", started.elapsed()));
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, seen: &mut Seen) -> (Duration, Duration) {
    seen.latencies.sort();
    let (p50, p99) = (
        percentile(&seen.latencies, 0.5),
        percentile(&seen.latencies, 0.99),
    );
    println!(
        "{what}: {} ok, {} failed, {} keep-alive connections closed by nginx while idle (seen before reuse), {} requests retried on a reused keep-alive connection, {} slow requests ok; latency p50 {:.1?} p99 {:.1?} max {:.1?}",
        seen.ok,
        seen.failed.len(),
        seen.closed_while_idle,
        seen.retried_on_reused,
        seen.slow_ok,
        p50,
        p99,
        seen.latencies.last().copied().unwrap_or_default()
    );
    (p50, p99)
}

/// How many consecutive swaps the zero-downtime test makes (`DRYDOCK_SWAPS`, 50 by
/// default as issue 15 asks).
fn swap_count() -> usize {
    std::env::var("DRYDOCK_SWAPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

#[test]
fn consecutive_swaps_behind_nginx_fail_no_request() {
    let mut stage = Stage::new();
    let n = swap_count();
    let spec = stage.swap_spec(Duration::from_millis(2500));
    let first = stage.build(true);
    let commits: Vec<String> = (0..n).map(|_| stage.build(true)).collect();
    let done = stage.deploy(&spec, &first).unwrap();
    assert_eq!(stage.served(), first, "{done:#?}");

    // The baseline: the same clients with nothing switching.
    let load = Load::start(stage.nginx.port());
    std::thread::sleep(Duration::from_secs(3));
    let mut baseline = load.finish();
    assert!(baseline.failed.is_empty(), "{:?}", baseline.failed);
    let (base_p50, base_p99) = report("baseline", &mut baseline);

    let load = Load::start(stage.nginx.port());
    std::thread::sleep(Duration::from_millis(1500));
    let mut times = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let started = Instant::now();
        let done = stage
            .deploy(&spec, commit)
            .unwrap_or_else(|e| panic!("swap {i}: {e:#?}\n{}", stage.nginx.error_log()));
        times.push(started.elapsed());
        assert_eq!(done.version, format!("drydock-test-app:{commit}"));
        assert!(done.changes >= 3, "{done:#?}");
        assert_eq!(stage.served(), *commit, "swap {i}");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let mut seen = load.finish();
    let (p50, p99) = report("during swaps", &mut seen);
    times.sort();
    println!(
        "{n} swaps: each p50 {:.2?}, max {:.2?} (drain 2.5 s); added latency p50 {:.1?} p99 {:.1?}",
        percentile(&times, 0.5),
        times.last().copied().unwrap_or_default(),
        p50.saturating_sub(base_p50),
        p99.saturating_sub(base_p99),
    );
    assert!(
        seen.failed.is_empty(),
        "{} failed requests: {:#?}\n{}",
        seen.failed.len(),
        seen.failed,
        stage.nginx.error_log()
    );
    assert!(seen.ok > 100 && seen.slow_ok >= n as u64, "{seen:?}");
    assert_eq!(stage.served(), *commits.last().unwrap());
    // One running (the last), keep = 3 stopped behind it.
    assert_eq!(stage.running(), [commits.last().unwrap().clone()]);
    assert_eq!(stage.containers().len(), 4, "{:?}", stage.containers());
}

#[test]
fn a_version_that_never_gets_healthy_is_removed_and_the_old_one_still_serves() {
    let mut stage = Stage::new();
    let mut spec = stage.swap_spec(Duration::from_millis(500));
    spec.health.deadline = Duration::from_secs(5);
    let good = stage.build(true);
    let bad = stage.build(false);
    stage.deploy(&spec, &good).unwrap();
    let file_before = std::fs::read(stage.nginx.upstream_file()).unwrap();

    let load = Load::start(stage.nginx.port());
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let failure = stage.deploy(&spec, &bad).unwrap_err();
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let mut seen = load.finish();
    report("never healthy", &mut seen);
    println!("never healthy: failed after {took:.2?} (deadline 5 s)");

    assert!(
        seen.failed.is_empty(),
        "{} failed: {:#?}\n{}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(3)],
        stage.nginx.error_log()
    );
    assert!(
        took < spec.health.deadline + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(failure.step, "health-gate", "{failure:#?}");
    assert!(failure.old_still_served, "{failure:#?}");
    assert!(
        failure.steps.iter().any(|s| s.action == "remove-new"),
        "{failure:#?}"
    );
    assert!(!failure.fix.is_empty());
    // The new container is gone; the old one runs and is what nginx serves.
    assert_eq!(stage.containers(), [(good.clone(), true)]);
    assert_eq!(stage.served(), good);
    assert_eq!(
        std::fs::read(stage.nginx.upstream_file()).unwrap(),
        file_before
    );
}

#[test]
fn deploying_the_live_commit_again_changes_nothing() {
    let mut stage = Stage::new();
    let spec = stage.swap_spec(Duration::from_millis(500));
    let commit = stage.build(true);
    let first = stage.deploy(&spec, &commit).unwrap();
    assert!(first.changes >= 2, "{first:#?}");
    let file = stage.nginx.upstream_file();
    let (bytes, mtime) = (
        std::fs::read(file).unwrap(),
        std::fs::metadata(file).unwrap().modified().unwrap(),
    );
    let ids = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=drydock.stack={}", stage.stack),
    ]);

    let started = Instant::now();
    let again = stage.deploy(&spec, &commit).unwrap();
    let took = started.elapsed();
    println!("idempotent second deploy: {took:.0?}");
    assert_eq!(again.changes, 0, "{again:#?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(std::fs::read(file).unwrap(), bytes);
    assert_eq!(std::fs::metadata(file).unwrap().modified().unwrap(), mtime);
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=drydock.stack={}", stage.stack)
        ]),
        ids
    );
    assert_eq!(stage.served(), commit);
    // The environment reached the container through the API, not a command line.
    let name = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=drydock.stack={}", stage.stack),
    ]);
    let env = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Env}} {{json .Args}}",
        &name,
    ]);
    assert!(env.contains("APP_SECRET=not-in-argv"), "{env}");
    assert!(
        !env.split_once(' ').unwrap().1.contains("not-in-argv"),
        "{env}"
    );
}

#[test]
fn a_service_taken_down_is_started_anew_by_the_next_deploy_of_the_same_commit() {
    let mut stage = Stage::new();
    let spec = stage.recreate_spec();
    let commit = stage.build(true);
    let port = stage.publish;
    stage.deploy(&spec, &commit).unwrap();
    assert_eq!(get(port, "/build_id").1.trim(), commit);

    // certify's destroy step: every running container stopped, kept.
    let kind = ServiceDeploy::Docker(spec.clone());
    let ctx = RunContext::default();
    let (changes, what) = take_down_service(&kind, &stage.target(&commit), &ctx).unwrap();
    assert_eq!(changes, 1, "{what}");
    assert!(what.contains("kept for rollback"), "{what}");
    assert!(stage.running().is_empty(), "{:?}", stage.containers());
    assert_eq!(stage.containers(), [(commit.clone(), false)]);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing serves"
    );
    // Nothing left to take down.
    let (changes, what) = take_down_service(&kind, &stage.target(&commit), &ctx).unwrap();
    assert_eq!(
        (changes, what.as_str()),
        (0, "no container of it is running")
    );

    // The same commit again is not "already live": a new container serves it.
    let again = stage.deploy(&spec, &commit).unwrap();
    assert!(again.changes >= 2, "{again:#?}");
    assert_eq!(get(port, "/build_id").1.trim(), commit);
    assert_eq!(stage.running(), std::slice::from_ref(&commit));
    assert_eq!(stage.containers().len(), 1, "{:?}", stage.containers());
}

#[test]
fn recreate_replaces_the_container_and_goes_back_when_the_new_one_is_unhealthy() {
    let mut stage = Stage::new();
    let mut spec = stage.recreate_spec();
    spec.health.deadline = Duration::from_secs(4);
    let one = stage.build(true);
    let two = stage.build(true);
    let bad = stage.build(false);
    let port = stage.publish;
    let served = || get(port, "/build_id").1.trim().to_string();

    stage.deploy(&spec, &one).unwrap();
    assert_eq!(served(), one);
    let done = stage.deploy(&spec, &two).unwrap();
    assert_eq!(served(), two);
    assert_eq!(
        done.previous.as_deref(),
        Some(format!("drydock-test-app:{one}").as_str())
    );
    assert_eq!(stage.running(), std::slice::from_ref(&two));
    assert_eq!(stage.deploy(&spec, &two).unwrap().changes, 0);

    let failure = stage.deploy(&spec, &bad).unwrap_err();
    assert_eq!(failure.step, "health-gate", "{failure:#?}");
    assert!(failure.old_still_served, "{failure:#?}");
    assert_eq!(served(), two, "the old image is back");
    assert_eq!(stage.running(), std::slice::from_ref(&two));
    assert!(
        !stage.containers().iter().any(|(c, _)| *c == bad),
        "{:?}",
        stage.containers()
    );

    // A rollback stops the live container and starts the kept one on the same port.
    let back = stage.rollback(&spec, &two, None).unwrap();
    assert_eq!(back.version, format!("drydock-test-app:{one}"), "{back:#?}");
    assert_eq!(served(), one);
    assert_eq!(stage.running(), std::slice::from_ref(&one));
}

#[test]
fn a_served_build_that_is_not_the_new_one_switches_back() {
    let mut stage = Stage::new();
    let mut spec = stage.swap_spec(Duration::from_millis(2500));
    let one = stage.build(true);
    let two = stage.build(true);
    stage.deploy(&spec, &one).unwrap();
    let before = std::fs::read(stage.nginx.upstream_file()).unwrap();
    // The build answers its id, but not the one expected (a proxy_pass elsewhere, an
    // app that reports another id): the switch must not stand.
    spec.build_id.as_mut().unwrap().expect = "release-{rev}".into();

    let load = Load::start(stage.nginx.port());
    let failure = stage.deploy(&spec, &two).unwrap_err();
    let mut seen = load.finish();
    report("build-id mismatch", &mut seen);
    assert_eq!(failure.step, "build-id", "{failure:#?}");
    assert!(failure.old_still_served, "{failure:#?}");
    assert!(
        failure.cause.contains(&format!("expected `release-{two}`")),
        "{failure:#?}"
    );
    let actions: Vec<&str> = failure.steps.iter().map(|s| s.action.as_str()).collect();
    assert!(
        actions.ends_with(&["switch", "build-id", "switch-back", "drain", "remove-new"]),
        "{actions:?}"
    );
    assert!(seen.failed.is_empty(), "{:#?}", seen.failed);
    assert_eq!(stage.served(), one);
    assert_eq!(std::fs::read(stage.nginx.upstream_file()).unwrap(), before);
    assert_eq!(stage.containers(), [(one.clone(), true)]);
}

#[test]
fn a_deploy_cancelled_before_the_switch_removes_the_new_container() {
    let mut stage = Stage::new();
    let spec = stage.swap_spec(Duration::from_millis(300));
    let one = stage.build(true);
    let two = stage.build(true);
    stage.deploy(&spec, &one).unwrap();
    let before = std::fs::read(stage.nginx.upstream_file()).unwrap();

    // Cancelled as soon as the new container has started.
    let (ctx, _) = crate::support::cancelled_at_step(": start: ");
    let failure = stage.deploy_with(&spec, &two, &ctx).unwrap_err();
    assert!(failure.old_still_served, "{failure:#?}");
    assert!(failure.cause.contains("cancelled"), "{failure:#?}");
    assert_eq!(
        failure.steps.last().unwrap().action,
        "remove-new",
        "{failure:#?}"
    );
    assert_eq!(stage.served(), one);
    assert_eq!(std::fs::read(stage.nginx.upstream_file()).unwrap(), before);
    assert_eq!(stage.containers(), [(one.clone(), true)]);
}

#[test]
fn rollback_serves_the_build_before_and_pruning_never_takes_the_rollback_target() {
    let mut stage = Stage::new();
    let mut spec = stage.swap_spec(Duration::from_millis(300));
    spec.keep = 1;
    let one = stage.build(true);
    let two = stage.build(true);
    stage.deploy(&spec, &one).unwrap();
    stage.deploy(&spec, &two).unwrap();
    assert_eq!(stage.served(), two);

    let started = Instant::now();
    let back = stage.rollback(&spec, &two, None).unwrap();
    println!(
        "rollback (swap) until the old build is served: {:.2?}",
        started.elapsed()
    );
    assert_eq!(stage.served(), one, "{back:#?}");
    assert_eq!(back.version, format!("drydock-test-app:{one}"));
    assert_eq!(stage.running(), std::slice::from_ref(&one));
    // And back again: the version live before the rollback.
    stage.rollback(&spec, &one, None).unwrap();
    assert_eq!(stage.served(), two);

    // keep = 1: a third deploy prunes `one`, never `two` (the rollback target).
    let three = stage.build(true);
    stage.deploy(&spec, &three).unwrap();
    let mut want = vec![(three.clone(), true), (two.clone(), false)];
    want.sort();
    assert_eq!(stage.containers(), want);
    stage.rollback(&spec, &three, None).unwrap();
    assert_eq!(stage.served(), two);

    // A pruned commit whose image is still here comes back from its image.
    let again = stage.rollback(&spec, &two, Some(&one)).unwrap();
    assert_eq!(again.version, format!("drydock-test-app:{one}"));
    assert_eq!(stage.served(), one);
    // Nothing to go back to that is not here: refused, nothing changed.
    let missing = commit_id();
    let refused = stage.rollback(&spec, &one, Some(&missing)).unwrap_err();
    assert!(
        refused.old_still_served && refused.cause.contains(&missing),
        "{refused:#?}"
    );
    assert_eq!(stage.served(), one);
}

#[test]
fn a_failing_nginx_check_switches_nothing() {
    let mut stage = Stage::new();
    let spec = stage.swap_spec(Duration::from_millis(300));
    let one = stage.build(true);
    let two = stage.build(true);
    stage.deploy(&spec, &one).unwrap();
    let before = std::fs::read(stage.nginx.upstream_file()).unwrap();
    // The operator's main config is broken (a typo nginx -t refuses).
    let conf = stage.nginx.conf().to_path_buf();
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text = text.replace("events {", "this_is_not_a_directive on;\nevents {");
    std::fs::write(&conf, text).unwrap();

    let failure = stage.deploy(&spec, &two).unwrap_err();
    assert_eq!(failure.step, "switch", "{failure:#?}");
    assert!(failure.old_still_served, "{failure:#?}");
    assert!(
        failure.cause.contains("this_is_not_a_directive"),
        "nginx's own message: {failure:#?}"
    );
    assert_eq!(std::fs::read(stage.nginx.upstream_file()).unwrap(), before);
    assert_eq!(stage.served(), one);
    assert_eq!(stage.containers(), [(one.clone(), true)]);
    assert!(stage.nginx.running());
}
