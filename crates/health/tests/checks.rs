//! Every check kind against the real thing it talks to: PostgreSQL, MariaDB, Redis
//! (plus a sentinel and a cluster), etcd (one node and three), Patroni, an HTTPS
//! server with certificates from a CA made here (valid, expiring, expired, wrong
//! host), dnsmasq, a tmpfs filled to the thresholds, shell commands, SQLite files.
//! Each check is also shown failing for the reason it exists.

mod common;

use std::time::{Duration, Instant};

use common::{expect, run};
use drydock_health::Status;
use drydock_testkit::dnsmasq::Dnsmasq;
use drydock_testkit::etcd::EtcdCluster;
use drydock_testkit::http::{HttpServer, Route, SilentListener, TestCa};
use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;
use drydock_testkit::redis_ha::{RedisCluster, RedisSentinel};

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn tcp_connects_and_names_refusals() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = drydock_testkit::free_port();
    let r = run(&[
        format!("{{ kind = \"tcp\", name = \"open\", address = \"127.0.0.1:{}\" }}", open.local_addr().unwrap().port()),
        format!("{{ kind = \"tcp\", name = \"closed\", address = \"127.0.0.1:{closed}\", retries = 1 }}"),
    ]);
    expect(&r, "open", Status::Healthy, "accepts connections");
    expect(&r, "closed", Status::Critical, "connection refused");
    assert_eq!(
        common::by_name(&r, "closed").attempts,
        2,
        "one retry after the refusal"
    );
}

#[test]
fn https_certificates_valid_expiring_expired_and_for_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file);
    let routes = || {
        vec![
            Route::new("/health", 200, r#"{"status":"UP","checks":{"db":"UP"}}"#)
                .header("strict-transport-security", "max-age=63072000"),
            Route::new("/down", 503, r#"{"status":"DOWN"}"#),
        ]
    };
    let valid = HttpServer::start(routes(), Some(ca.leaf(&["127.0.0.1", "localhost"], -1, 90)));
    let expiring = HttpServer::start(routes(), Some(ca.leaf(&["127.0.0.1"], -80, 5)));
    let expired = HttpServer::start(routes(), Some(ca.leaf(&["127.0.0.1"], -90, -2)));
    let wrong_host = HttpServer::start(routes(), Some(ca.leaf(&["other.example"], -1, 90)));
    let ca = ca_file.display();
    let check = |name: &str, url: &str, extra: &str| {
        format!(
            "{{ kind = \"https\", name = \"{name}\", url = \"{url}\", ca_file = \"{ca}\"{extra} }}"
        )
    };
    let r = run(&[
        check("valid", &valid.url("/health"), ", hsts = true, json_field = \"checks.db\", json_equals = \"UP\", body_contains = \"status\""),
        check("expiring", &expiring.url("/health"), ""),
        check("expired", &expired.url("/health"), ""),
        check("wrong-host", &wrong_host.url("/health"), ""),
        check("down", &valid.url("/down"), ", json_field = \"/status\", json_equals = \"UP\""),
        check("no-hsts", &valid.url("/down"), ", hsts = true, expect_status = 503"),
        // The system's CAs do not know the test CA.
        format!("{{ kind = \"https\", name = \"untrusted\", url = \"{}\" }}", valid.url("/health")),
    ]);
    expect(&r, "valid", Status::Healthy, "200 in");
    let valid = common::by_name(&r, "valid");
    assert!(valid.details["certificate"]["days_left"].as_i64().unwrap() >= 89);
    assert_eq!(valid.details["hsts"], "max-age=63072000");
    expect(
        &r,
        "expiring",
        Status::Warning,
        "certificate expires in 5 day(s)",
    );
    expect(
        &r,
        "expired",
        Status::Critical,
        "certificate expired 2 day(s) ago",
    );
    assert_eq!(
        common::by_name(&r, "expired").attempts,
        1,
        "an expired certificate is not retried"
    );
    expect(
        &r,
        "wrong-host",
        Status::Critical,
        "not valid for host `127.0.0.1` (it names other.example)",
    );
    expect(&r, "down", Status::Critical, "status 503, expected 2xx");
    assert!(common::by_name(&r, "down")
        .message
        .contains("`/status` is \"DOWN\", expected \"UP\""));
    expect(
        &r,
        "no-hsts",
        Status::Warning,
        "no Strict-Transport-Security header",
    );
    let untrusted = common::by_name(&r, "untrusted");
    assert_eq!(untrusted.status, Status::Critical);
    assert!(
        untrusted
            .message
            .contains("signed by an unknown CA (issuer CN=drydock test CA)")
            || untrusted.message.contains("no CA certificates to trust"),
        "{}",
        untrusted.message
    );
}

#[test]
fn http_latency_threshold_and_a_silent_target_times_out_alone() {
    let fast = HttpServer::start(vec![Route::new("/", 200, "ok")], None);
    let hanging = HttpServer::start(vec![Route::hanging("/")], None);
    let silent = SilentListener::start();
    let began = Instant::now();
    let r = run(&[
        format!("{{ kind = \"http\", name = \"fast\", url = \"{}\", body_contains = \"ok\" }}", fast.url("/")),
        format!("{{ kind = \"http\", name = \"strict\", url = \"{}\", max_latency_ms = 0 }}", fast.url("/")),
        format!("{{ kind = \"http\", name = \"hangs\", url = \"{}\", timeout = \"1s\" }}", hanging.url("/")),
        format!("{{ kind = \"postgres\", name = \"silent-pg\", url = \"postgres://app@127.0.0.1:{}/app\", timeout = \"1s\" }}", silent.port()),
        format!("{{ kind = \"redis\", name = \"silent-redis\", url = \"redis://127.0.0.1:{}\", timeout = \"1s\" }}", silent.port()),
    ]);
    let took = began.elapsed();
    expect(&r, "fast", Status::Healthy, "200 in");
    assert!(common::by_name(&r, "fast").latency_ms < 500.0);
    expect(&r, "strict", Status::Warning, "slow: answered in");
    for name in ["hangs", "silent-pg", "silent-redis"] {
        let res = common::by_name(&r, name);
        assert_eq!(res.status, Status::Critical, "{name}: {}", res.message);
        assert!(res.message.contains("time"), "{name}: {}", res.message);
    }
    // Three hanging targets with a 1 s timeout: about one second together.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn dns_through_a_real_dnsmasq_and_the_system_resolver() {
    let dns = Dnsmasq::start(&[
        ("app.drydock.test", "10.1.2.3"),
        ("db.drydock.test", "10.1.2.4"),
    ]);
    let at = dns.address();
    let r = run(&[
        format!("{{ kind = \"dns\", name = \"app\", host = \"app.drydock.test\", resolver = \"{at}\", expect = [\"10.1.2.3\"] }}"),
        format!("{{ kind = \"dns\", name = \"moved\", host = \"db.drydock.test\", resolver = \"{at}\", expect = [\"10.9.9.9\"] }}"),
        format!("{{ kind = \"dns\", name = \"unknown\", host = \"nope.drydock.test\", resolver = \"{at}\", retries = 0 }}"),
        s("{ kind = \"dns\", name = \"system\", host = \"localhost\" }"),
    ]);
    expect(&r, "app", Status::Healthy, "app.drydock.test -> 10.1.2.3");
    expect(
        &r,
        "moved",
        Status::Critical,
        "resolves to 10.1.2.4, expected 10.9.9.9",
    );
    let unknown = common::by_name(&r, "unknown");
    assert_eq!(unknown.status, Status::Critical, "{}", unknown.message);
    expect(&r, "system", Status::Healthy, "localhost ->");
}

#[test]
fn postgres_mysql_and_redis_answer_and_report_their_numbers() {
    let pg = PgServer::start();
    pg.create_db("app");
    let my = MariaDb::start();
    my.create_db("app");
    let redis = RedisServer::start_with_password("redis-Secr3t-pw");
    redis.cli(&["SET", "k1", "v"]);
    redis.cli(&["CONFIG", "SET", "maxmemory", "1200000"]);
    std::env::set_var("T_PG_PW", pg.password());
    std::env::set_var("T_MY_PW", my.password());
    std::env::set_var("T_REDIS_PW", "redis-Secr3t-pw");
    std::env::set_var("T_WRONG_PW", "wrong-password");
    let r = run(&[
        format!("{{ kind = \"postgres\", url = \"{}\", password = \"${{env:T_PG_PW}}\" }}", pg.url("app")),
        format!("{{ kind = \"postgres\", name = \"pg-busy\", url = \"{}\", password = \"${{env:T_PG_PW}}\", warn_connections_pct = 0.1, critical_connections_pct = 99 }}", pg.url("app")),
        format!("{{ kind = \"postgres\", name = \"pg-auth\", url = \"{}\", password = \"${{env:T_WRONG_PW}}\", retries = 0 }}", pg.url("app")),
        format!("{{ kind = \"mysql\", url = \"{}\", password = \"${{env:T_MY_PW}}\" }}", my.url("app")),
        format!("{{ kind = \"redis\", url = \"{}\", password = \"${{env:T_REDIS_PW}}\", expect_role = \"master\", warn_memory_pct = 50, critical_memory_pct = 99.9 }}", redis.url()),
        format!("{{ kind = \"redis\", name = \"redis-auth\", url = \"{}\", password = \"${{env:T_WRONG_PW}}\", retries = 0 }}", redis.url()),
    ]);
    expect(&r, "postgres", Status::Healthy, "SELECT 1 ok");
    let p = common::by_name(&r, "postgres");
    assert_eq!(p.details["max_connections"], 60);
    assert!(p.details["database_size_bytes"].as_i64().unwrap() > 1_000_000);
    expect(&r, "pg-busy", Status::Warning, "connections in use");
    expect(
        &r,
        "pg-auth",
        Status::Critical,
        "password authentication failed",
    );
    expect(&r, "mysql", Status::Healthy, "SELECT 1 ok");
    assert!(common::by_name(&r, "mysql").details["version"]
        .as_str()
        .unwrap()
        .contains("MariaDB"));
    // used_memory is about 1 MB of the 1.2 MB maxmemory.
    expect(&r, "redis", Status::Warning, "of maxmemory");
    assert_eq!(common::by_name(&r, "redis").details["keys"], 1);
    let auth = common::by_name(&r, "redis-auth");
    assert_eq!(auth.status, Status::Critical);
    let all = serde_json::to_string(&r).unwrap();
    assert!(
        !all.contains(pg.password())
            && !all.contains("redis-Secr3t-pw")
            && !all.contains("wrong-password")
    );
}

#[test]
fn sqlite_quick_check_sees_damage_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    let bad = dir.path().join("bad.db");
    {
        let c = rusqlite::Connection::open(&good).unwrap();
        c.execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t SELECT hex(randomblob(200)) FROM generate_series(1, 2000);")
            .or_else(|_| c.execute_batch("CREATE TABLE IF NOT EXISTS t (x TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) INSERT INTO t SELECT hex(randomblob(200)) FROM n;"))
            .unwrap();
    }
    std::fs::copy(&good, &bad).unwrap();
    // Overwrite pages in the middle of the file: the b-tree no longer adds up.
    let mut bytes = std::fs::read(&bad).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 2..len / 2 + 8192] {
        *b = 0x5a;
    }
    std::fs::write(&bad, bytes).unwrap();
    let r = run(&[
        format!(
            "{{ kind = \"sqlite\", name = \"good\", path = \"{}\" }}",
            good.display()
        ),
        format!(
            "{{ kind = \"sqlite\", name = \"bad\", path = \"{}\" }}",
            bad.display()
        ),
        format!(
            "{{ kind = \"sqlite\", name = \"gone\", path = \"{}\" }}",
            dir.path().join("gone.db").display()
        ),
    ]);
    expect(&r, "good", Status::Healthy, "quick_check ok");
    let bad = common::by_name(&r, "bad");
    assert_eq!(bad.status, Status::Critical, "{}", bad.message);
    assert_eq!(bad.attempts, 1, "damage is definitive");
    expect(&r, "gone", Status::Critical, "does not exist");
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn disk_on_a_small_filesystem_filled_to_the_thresholds() {
    let Some(fs) = Tmpfs::mount("8m") else {
        // No mount rights here: judge the temp dir's real filesystem with thresholds
        // set around its actual free space instead.
        let dir = tempfile::tempdir().unwrap();
        let (total, free) = drydock_health::checks::disk::space(dir.path()).unwrap();
        let pct = free as f64 * 100.0 / total as f64;
        let p = dir.path().display();
        let r = run(&[
            format!("{{ kind = \"disk\", name = \"warn\", path = \"{p}\", warn_free_pct = {}, critical_free_pct = 0 }}", (pct + 1.0).min(100.0)),
            format!("{{ kind = \"disk\", name = \"crit\", path = \"{p}\", warn_free_pct = 100, critical_free_pct = {} }}", (pct + 1.0).min(100.0)),
        ]);
        expect(&r, "warn", Status::Warning, "below the warning threshold");
        expect(&r, "crit", Status::Critical, "below the critical threshold");
        return;
    };
    let root = fs.0.path();
    let check = |name: &str| {
        format!("{{ kind = \"disk\", name = \"{name}\", path = \"{}\", warn_free_pct = 20, critical_free_pct = 10 }}", root.display())
    };
    let bytes_check = format!("{{ kind = \"disk\", name = \"bytes\", path = \"{}\", warn_free_pct = 0, critical_free_pct = 0, critical_free_bytes = \"2 MiB\" }}", root.display());
    let fill = |mib_tenths: usize, name: &str| {
        std::fs::write(root.join(name), vec![7u8; mib_tenths * 1024 * 1024 / 10]).unwrap();
    };
    expect(
        &run(&[check("empty")]),
        "empty",
        Status::Healthy,
        "free of 8.0 MiB",
    );
    fill(66, "a"); // 6.6 of 8 MiB used: ~17% free
    let r = run(&[check("filling"), bytes_check.clone()]);
    expect(
        &r,
        "filling",
        Status::Warning,
        "below the warning threshold",
    );
    expect(
        &r,
        "bytes",
        Status::Critical,
        "below the critical threshold",
    );
    fill(8, "b"); // 7.4 of 8 MiB: ~7% free
    expect(
        &run(&[check("full")]),
        "full",
        Status::Critical,
        "below the critical threshold",
    );
    std::fs::remove_file(root.join("a")).unwrap();
    expect(
        &run(&[check("freed")]),
        "freed",
        Status::Healthy,
        "free of 8.0 MiB",
    );
}

#[test]
fn commands_exit_codes_and_a_hanging_command_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("grandchild-ran");
    let began = Instant::now();
    let r = run(&[
        s("{ kind = \"command\", name = \"ok\", run = \"echo all good\" }"),
        s("{ kind = \"command\", name = \"warn\", run = \"echo degraded; exit 1\", warn_exit_codes = [1] }"),
        s("{ kind = \"command\", name = \"fail\", run = \"echo broken >&2; exit 2\", retries = 0 }"),
        format!("{{ kind = \"command\", name = \"hang\", run = \"sleep 30; touch {}\", timeout = \"500ms\" }}", marker.display()),
    ]);
    expect(&r, "ok", Status::Healthy, "exit 0: all good");
    expect(&r, "warn", Status::Warning, "exit 1: degraded");
    expect(&r, "fail", Status::Critical, "exit 2: broken");
    let hang = common::by_name(&r, "hang");
    assert_eq!(hang.status, Status::Critical);
    assert!(began.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!marker.exists());
}

#[test]
fn oidc_discovery_document_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file);
    let leaf = ca.leaf(&["127.0.0.1"], -1, 90);
    let good_doc = |base: &str| {
        format!(
            r#"{{"issuer":"{base}/realms/clinic","authorization_endpoint":"{base}/auth","token_endpoint":"{base}/token","jwks_uri":"{base}/certs"}}"#
        )
    };
    let server = OidcServer::start(leaf, |base| {
        vec![
            Route::new(
                "/realms/clinic/.well-known/openid-configuration",
                200,
                &good_doc(base),
            ),
            Route::new("/certs", 200, r#"{"keys":[{"kty":"RSA","kid":"k1"}]}"#),
            Route::new(
                "/realms/broken/.well-known/openid-configuration",
                200,
                &format!(r#"{{"issuer":"{base}/realms/other","token_endpoint":"{base}/token"}}"#),
            ),
        ]
    });
    let ca = ca_file.display();
    let r = run(&[
        format!("{{ kind = \"oidc\", name = \"good\", issuer = \"{}/realms/clinic\", ca_file = \"{ca}\" }}", server.base),
        format!("{{ kind = \"oidc\", name = \"broken\", issuer = \"{}/realms/broken\", ca_file = \"{ca}\" }}", server.base),
        format!("{{ kind = \"oidc\", name = \"absent\", issuer = \"{}/realms/none\", ca_file = \"{ca}\", retries = 0 }}", server.base),
    ]);
    expect(&r, "good", Status::Healthy, "discovery document ok");
    assert_eq!(common::by_name(&r, "good").details["jwks_keys"], 1);
    let broken = common::by_name(&r, "broken");
    assert_eq!(broken.status, Status::Critical);
    assert!(
        broken.message.contains("names issuer") && broken.message.contains("no `jwks_uri`"),
        "{}",
        broken.message
    );
    expect(&r, "absent", Status::Critical, "answered 404");
}

/// An HTTPS server whose routes may name its own address.
struct OidcServer {
    _server: HttpServer,
    base: String,
}

impl OidcServer {
    fn start(leaf: drydock_testkit::http::Leaf, routes: impl Fn(&str) -> Vec<Route>) -> OidcServer {
        // Routes are fixed at start, so take a port, then serve on exactly that one.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let base = format!("https://127.0.0.1:{port}");
        let server = HttpServer::start_on(port, routes(&base), Some(leaf));
        OidcServer {
            _server: server,
            base,
        }
    }
}

#[test]
fn etcd_single_node_and_three_nodes_losing_members() {
    let single = EtcdCluster::start(1);
    let mut three = EtcdCluster::start(3);
    let list = |eps: &[String]| {
        eps.iter()
            .map(|e| format!("\"{e}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let r = run(&[
        format!(
            "{{ kind = \"etcd\", name = \"single\", endpoints = [{}] }}",
            list(&single.endpoints())
        ),
        format!(
            "{{ kind = \"etcd\", name = \"three\", endpoints = [{}], expect_members = 3 }}",
            list(&three.endpoints())
        ),
        format!(
            "{{ kind = \"etcd\", name = \"expects-five\", endpoints = [{}], expect_members = 5 }}",
            list(&single.endpoints())
        ),
    ]);
    expect(&r, "single", Status::Healthy, "1 members, leader");
    expect(&r, "three", Status::Healthy, "3 members, leader");
    expect(
        &r,
        "expects-five",
        Status::Critical,
        "1 members, expected 5",
    );
    three.stop(2);
    let check = format!("{{ kind = \"etcd\", name = \"three\", endpoints = [{}], expect_members = 3, timeout = \"3s\" }}", list(&three.endpoints()));
    // The survivors may need a moment to agree again.
    let warned = drydock_testkit::wait_until(Duration::from_secs(10), || {
        run(std::slice::from_ref(&check))[0].status == Status::Warning
    });
    let r = run(std::slice::from_ref(&check));
    assert!(warned, "{r:#?}");
    expect(&r, "three", Status::Warning, "1 of 3 endpoints unreachable");
    // Two of three gone: no quorum, no leader.
    three.stop(1);
    let lost = drydock_testkit::wait_until(Duration::from_secs(15), || {
        run(std::slice::from_ref(&check))[0].status == Status::Critical
    });
    let r = run(&[check]);
    assert!(lost, "{:#?}", r);
    let msg = &r[0].message;
    assert!(
        msg.contains("no leader") || msg.contains("a quorum needs 2"),
        "{msg}"
    );
}

#[test]
fn redis_sentinel_knows_the_master_until_it_is_down() {
    let mut sentinel = RedisSentinel::start("clinic");
    let r = run(&[
        format!("{{ kind = \"redis-sentinel\", url = \"{}\", master = \"clinic\" }}", sentinel.url()),
        format!("{{ kind = \"redis-sentinel\", name = \"other\", url = \"{}\", master = \"nope\", retries = 0 }}", sentinel.url()),
    ]);
    expect(
        &r,
        "redis-sentinel",
        Status::Healthy,
        "master `clinic` at 127.0.0.1:",
    );
    expect(
        &r,
        "other",
        Status::Critical,
        "does not monitor a master named `nope`",
    );
    sentinel.master.stop();
    let check = format!(
        "{{ kind = \"redis-sentinel\", url = \"{}\", master = \"clinic\", retries = 0 }}",
        sentinel.url()
    );
    let down = drydock_testkit::wait_until(Duration::from_secs(10), || {
        run(std::slice::from_ref(&check))[0]
            .message
            .contains("is down")
    });
    assert!(down, "{:#?}", run(&[check]));
}

#[test]
fn redis_cluster_slots_and_a_failed_node() {
    let mut cluster = RedisCluster::start(3);
    let check = format!(
        "{{ kind = \"redis-cluster\", url = \"{}\", retries = 0 }}",
        cluster.url(0)
    );
    expect(
        &run(std::slice::from_ref(&check)),
        "redis-cluster",
        Status::Healthy,
        "all 16384 slots served by 3 nodes",
    );
    let plain = RedisServer::start();
    let r = run(&[format!(
        "{{ kind = \"redis-cluster\", name = \"plain\", url = \"{}\", retries = 0 }}",
        plain.url()
    )]);
    expect(&r, "plain", Status::Critical, "cluster support disabled");
    cluster.stop(2);
    let failing = drydock_testkit::wait_until(Duration::from_secs(15), || {
        run(std::slice::from_ref(&check))[0].status == Status::Critical
    });
    let r = run(&[check]);
    assert!(failing, "{r:#?}");
    assert!(
        r[0].message.contains("slots not served") || r[0].message.contains("cluster_state is fail"),
        "{}",
        r[0].message
    );
}

#[test]
fn process_check_asks_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("running");
    let pid_file = dir.path().join("app.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let runtime = format!(
        "{{ kind = \"process\", start = \"touch {f}\", stop = \"rm -f {f}\", status = \"test -e {f}\", pid_file = \"{p}\" }}",
        f = flag.display(),
        p = pid_file.display()
    );
    let checks = [s(
        "{ kind = \"process\", min_uptime = \"1h\", retries = 0 }",
    )];
    let config = common::config(dir.path(), &runtime, &checks);
    let r = common::run_config(&config);
    expect(&r, "process", Status::Critical, "not running");
    std::fs::write(&flag, "").unwrap();
    let r = common::run_config(&config);
    // This test process started moments ago: up, but for less than an hour.
    expect(&r, "process", Status::Warning, "crash loop?");
    assert_eq!(r[0].details["pids"][0], std::process::id());
}

#[test]
fn patroni_leader_and_replica_from_a_real_cluster() {
    let etcd = EtcdCluster::start(1);
    let dcs = etcd.endpoints()[0]
        .trim_start_matches("http://")
        .to_string();
    let mut patroni = drydock_testkit::patroni::PatroniCluster::start(&dcs, 2);
    let leader = patroni.api_url(0);
    let replica = patroni.api_url(1);
    let r = run(&[
        format!("{{ kind = \"patroni\", name = \"leader\", url = \"{leader}\" }}"),
        format!("{{ kind = \"patroni\", name = \"replica\", url = \"{replica}\", expect_replicas = 1 }}"),
        format!("{{ kind = \"patroni\", name = \"wants-two\", url = \"{leader}\", expect_replicas = 2 }}"),
    ]);
    expect(
        &r,
        "leader",
        Status::Healthy,
        "leader pg0, 1/1 replicas running",
    );
    assert_eq!(
        common::by_name(&r, "leader").details["member_role"],
        "primary"
    );
    expect(
        &r,
        "replica",
        Status::Healthy,
        "leader pg0, 1/1 replicas running",
    );
    expect(&r, "wants-two", Status::Warning, "1 of 2 replicas running");
    patroni.stop(1);
    let r = run(&[
        format!(
            "{{ kind = \"patroni\", name = \"leader\", url = \"{leader}\", expect_replicas = 1 }}"
        ),
        format!("{{ kind = \"patroni\", name = \"replica\", url = \"{replica}\", retries = 0 }}"),
    ]);
    expect(&r, "leader", Status::Warning, "0 of 1 replicas running");
    expect(&r, "replica", Status::Critical, "connection refused");
}
