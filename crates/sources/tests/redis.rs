//! The Redis adapter against real redis-server instances.

mod common;

use std::time::{Duration, Instant};

use common::{assert_holds, ctx, differences_now, record, restore_stored, scratch, MemStore};
use drydock_domain::config::{RedisSource, SourceKind};
use drydock_domain::{Priority, Secret};
use drydock_sources::redis::Redis;
use drydock_sources::{count_unit, DataSource, RestoreMode, SourceError};
use drydock_testkit::redis::RedisServer;
use redis::Commands;

fn source(server: &RedisServer) -> Redis {
    source_at(&server.url(), server.password())
}

fn source_at(url: &str, password: Option<&str>) -> Redis {
    Redis::new(RedisSource {
        name: None,
        priority: Priority::High,
        url: url.to_string(),
        password: password.map(|p| Secret::from_env_value("REDIS_PASSWORD", p)),
        exec: false,
        exec_in: None,
    })
}

fn client(server: &RedisServer, db: i64) -> redis::Connection {
    let info = redis::ConnectionInfo {
        addr: redis::ConnectionAddr::Tcp("127.0.0.1".into(), server.port()),
        redis: redis::RedisConnectionInfo {
            db,
            username: None,
            password: server.password().map(str::to_string),
            ..Default::default()
        },
    };
    redis::Client::open(info).unwrap().get_connection().unwrap()
}

/// Every value type, binary keys and values, and keys with an expiry, in db0 and db3.
fn populate(server: &RedisServer) {
    populate_without_streams(server);
    let mut c = client(server, 0);
    let _: String = redis::cmd("XADD")
        .arg("events")
        .arg("1-1")
        .arg("type")
        .arg("login")
        .arg("user")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg("events")
        .arg("2-0")
        .arg("type")
        .arg("logout")
        .query(&mut c)
        .unwrap();
}

/// [`populate`] but the stream: what drydock's RDB reader reads without a server.
fn populate_without_streams(server: &RedisServer) {
    let mut c = client(server, 0);
    let _: () = c.set("greeting", "hello").unwrap();
    let _: () = c
        .set(b"bin\x00\xffkey".as_slice(), b"\x00\x01\xfe\xff".as_slice())
        .unwrap();
    let _: () = c.set("counter", 42).unwrap();
    let _: () = c.rpush("queue", &["a", "b", "c", "a"]).unwrap();
    let _: () = c.sadd("tags", &["x", "y", "z"]).unwrap();
    let _: () = c.sadd("small-ints", &[1, 2, 3]).unwrap();
    let _: () = c
        .zadd_multiple(
            "board",
            &[(1.5, "ann"), (1.5, "abe"), (-3.0, "zed"), (1e10, "top")],
        )
        .unwrap();
    let _: () = c
        .hset_multiple(
            "user:1",
            &[("name", "Ada"), ("email", "ada@example.org"), ("n", "1")],
        )
        .unwrap();
    let _: () = c.set_ex("session:abc", "token", 3600).unwrap();
    let _: () = c.rpush("expiring-list", &["1", "2"]).unwrap();
    let _: () = c.expire("expiring-list", 7200).unwrap();
    let mut c3 = client(server, 3);
    let _: () = c3.set("other-db", "value").unwrap();
    let _: () = c3.hset_multiple("cfg", &[("a", "1"), ("b", "2")]).unwrap();
    let _: () = c3.expire("cfg", 600).unwrap();
    let _: () = c3
        .sadd(
            "big-set",
            (0..500).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        )
        .unwrap();
}

#[test]
fn round_trip_all_types_two_dbs_with_expiry() {
    let live = RedisServer::start_with_password("live-pass-canary-1");
    populate(&live);
    let s = scratch();
    let src = source(&live);
    assert_eq!(src.kind(), SourceKind::Redis);
    assert_eq!(src.restore_mode(), RestoreMode::Logical);
    assert_eq!(src.location(), format!("redis 127.0.0.1:{}", live.port()));
    src.check().unwrap();
    assert!(src.has_data().unwrap());

    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    assert_eq!(out.format, "redis-rdb");
    assert_eq!(store.extension.borrow().as_deref(), Some(".rdb"));
    assert!(store
        .stream
        .borrow()
        .as_ref()
        .unwrap()
        .starts_with(b"REDIS"));
    // Keys with an expiry are counted and digested apart (they may expire before a
    // restore): db0 has 2 of its 11 keys with one, db3 1 of its 3.
    assert_eq!(out.counts["keys"], 11);
    assert_eq!(out.counts["expiring_keys"], 3);
    assert_eq!(out.counts["dbs"], 2);
    assert_eq!(
        out.fingerprint.parts.keys().collect::<Vec<_>>(),
        vec!["db0", "db0:expiring", "db3", "db3:expiring"]
    );
    assert_eq!(out.fingerprint.parts["db0"].count, 9);
    assert_eq!(
        src.inspect(&ctx(s.path())).unwrap().fingerprint,
        out.fingerprint
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "scratch not cleaned: {leftovers:?}");

    // Into an empty instance with another password.
    let empty = RedisServer::start_with_password("target-pass-canary-2");
    let target = source(&empty);
    assert!(!target.has_data().unwrap());
    restore_stored(&target, &store, &out, s.path()).unwrap();
    let got = assert_holds(&target, &out.fingerprint, "keys", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    let mut c = client(&empty, 0);
    let ttl: i64 = c.ttl("session:abc").unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "ttl {ttl}");
    let ttl: i64 = c.ttl("greeting").unwrap();
    assert_eq!(ttl, -1);
    let v: Vec<u8> = c.get(b"bin\x00\xffkey".as_slice()).unwrap();
    assert_eq!(v, b"\x00\x01\xfe\xff");
    let mut c3 = client(&empty, 3);
    let ttl: i64 = c3.ttl("cfg").unwrap();
    assert!(ttl > 500, "ttl {ttl}");
}

/// Without a stream the backup is read and restored from the RDB file itself (no
/// throwaway server): Redis' own `DEBUG DIGEST` (every key, value and expiry time) of
/// the restored instance is the live one's, and a non-empty target is replaced.
/// The step messages of a run.
#[derive(Default)]
struct Steps(std::sync::Mutex<Vec<String>>);

impl drydock_domain::EventSink for Steps {
    fn emit(&self, event: drydock_domain::Event) {
        if let drydock_domain::Event::Step { message } = event {
            self.0.lock().unwrap().push(message);
        }
    }
}

#[test]
fn restore_from_the_rdb_file_matches_redis_debug_digest() {
    let live = RedisServer::start_with_password("live-pass-canary-3");
    populate_without_streams(&live);
    let s = scratch();
    let src = source(&live);
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    assert_eq!(out.counts["keys"], 10);
    assert_eq!(out.counts["expiring_keys"], 3);
    let digest = |server: &RedisServer| -> String {
        let mut c = client(server, 0);
        redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap()
    };
    let before = digest(&live);

    let other = RedisServer::start_with_password("target-pass-canary-4");
    {
        let mut c = client(&other, 0);
        let _: () = c.set("greeting", "other value").unwrap();
        let _: () = c.set("only-here", "1").unwrap();
        let mut c7 = client(&other, 7);
        let _: () = c7.set("db7-only", "1").unwrap();
    }
    let target = source(&other);
    let steps = Steps::default();
    let restore_ctx = drydock_sources::SourceContext {
        events: &steps,
        ..ctx(s.path())
    };
    target
        .restore(
            &store.fetch(),
            &record(SourceKind::Redis, &out),
            &restore_ctx,
        )
        .unwrap();
    let steps = steps.0.into_inner().unwrap();
    assert!(
        steps.iter().any(|m| m.contains("reading the backup's RDB")),
        "{steps:?}"
    );
    assert!(!steps.iter().any(|m| m.contains("throwaway")), "{steps:?}");
    assert_holds(&target, &out.fingerprint, "keys", &ctx(s.path()));
    assert_eq!(digest(&other), before);
    let leftovers: Vec<_> = std::fs::read_dir(s.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "scratch not cleaned: {leftovers:?}");
}

#[test]
fn non_empty_target_is_replaced_exactly() {
    let live = RedisServer::start();
    populate(&live);
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live).backup(&store, &ctx(s.path())).unwrap();

    let busy = RedisServer::start();
    {
        let mut c = client(&busy, 0);
        let _: () = c.set("greeting", "something else").unwrap();
        let _: () = c.set("stray", "1").unwrap();
        let _: () = c.sadd("tags", "extra").unwrap();
        let mut c5 = client(&busy, 5);
        let _: () = c5.set("in-db5", "gone after restore").unwrap();
    }
    let target = source(&busy);
    assert!(target.has_data().unwrap());
    restore_stored(&target, &store, &out, s.path()).unwrap();
    assert_holds(&target, &out.fingerprint, "keys", &ctx(s.path()));
    let mut c = client(&busy, 0);
    let greeting: String = c.get("greeting").unwrap();
    assert_eq!(greeting, "hello");
    let stray: bool = c.exists("stray").unwrap();
    assert!(!stray);
    let mut c5 = client(&busy, 5);
    let n: i64 = redis::cmd("DBSIZE").query(&mut c5).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn a_change_is_named_by_database() {
    let live = RedisServer::start();
    populate(&live);
    let s = scratch();
    let store = MemStore::new();
    let src = source(&live);
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    let unit = count_unit(SourceKind::Redis);

    let mut c3 = client(&live, 3);
    let _: () = c3.set("other-db", "changed").unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert_eq!(
        diff,
        vec!["db3: same keys count (2) but different content".to_string()]
    );
    let _: () = c3.set("other-db", "value").unwrap();
    assert!(differences_now(&src, &out.fingerprint, unit, &ctx(s.path())).is_empty());

    // A change to a key with an expiry is advisory, not a failure.
    let _: () = c3.hset("cfg", "b", "3").unwrap();
    let now = src.inspect(&ctx(s.path())).unwrap().fingerprint;
    assert!(now.differences(&out.fingerprint, unit).is_empty());
    assert_eq!(
        now.advisory_differences(&out.fingerprint, unit),
        vec!["db3:expiring: same keys count (1) but different content".to_string()]
    );

    // Losing its expiry moves a key into the part that must match.
    let mut c = client(&live, 0);
    let _: () = c.persist("session:abc").unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert_eq!(diff, vec!["db0: 9 keys in backup, 10 now".to_string()]);

    let _: () = c.del("queue").unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert_eq!(
        diff,
        vec!["db0: same keys count (9) but different content".to_string()]
    );

    let _: () = c.set("1", "x").unwrap();
    let mut c7 = client(&live, 7);
    let _: () = c7.set("new-db", "x").unwrap();
    let diff = differences_now(&src, &out.fingerprint, unit, &ctx(s.path()));
    assert!(
        diff.contains(&"db7: not in the backup (1 keys now)".to_string()),
        "{diff:?}"
    );
}

#[test]
fn fingerprint_does_not_depend_on_encoding() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    {
        let mut ca = client(&a, 0);
        let _: () = ca.sadd("s", &[1, 2, 3]).unwrap(); // intset
        let _: () = ca.rpush("l", &["a", "b"]).unwrap(); // listpack
        let _: () = ca.hset_multiple("h", &[("f", "v"), ("g", "w")]).unwrap();
        let mut cb = client(&b, 0);
        // Same content reached through the big encodings.
        let _: () = cb.sadd("s", &["1", "2", "3", "not-an-int"]).unwrap();
        let _: () = cb.srem("s", "not-an-int").unwrap();
        let long = "x".repeat(200);
        let _: () = cb.rpush("l", &["a", "b", long.as_str()]).unwrap();
        let _: () = cb.rpop("l", None).unwrap();
        let _: () = cb
            .hset_multiple("h", &[("g", "w"), ("f", long.as_str())])
            .unwrap();
        let _: () = cb.hset("h", "f", "v").unwrap();
        let ea: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("s")
            .query(&mut ca)
            .unwrap();
        let eb: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("s")
            .query(&mut cb)
            .unwrap();
        assert_ne!(ea, eb, "the test needs two encodings");
    }
    let s = scratch();
    let fa = source(&a).inspect(&ctx(s.path())).unwrap().fingerprint;
    let fb = source(&b).inspect(&ctx(s.path())).unwrap().fingerprint;
    assert_eq!(fa, fb);
}

#[test]
fn wrong_password_is_a_connect_error_without_the_password() {
    let server = RedisServer::start_with_password("right-pass-canary-3");
    let s = scratch();
    let src = source_at(&server.url(), Some("wrong-pass-canary-4"));
    for err in [
        src.check().unwrap_err(),
        src.backup(&MemStore::new(), &ctx(s.path())).unwrap_err(),
        src.has_data().unwrap_err(),
    ] {
        assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains("password"), "{text}");
        assert!(!text.contains("canary"), "leaks a password: {text}");
    }
    let no_pw = source_at(&server.url(), None);
    let text = no_pw.check().unwrap_err().to_string();
    assert!(text.contains("requires a password"), "{text}");
}

#[test]
fn unreachable_is_a_connect_error() {
    let mut server = RedisServer::start_with_password("gone-pass-canary-5");
    let port = server.port();
    server.stop();
    let s = scratch();
    let src = source_at(
        &format!("redis://127.0.0.1:{port}"),
        Some("gone-pass-canary-5"),
    );
    let store = MemStore::new();
    for err in [
        src.check().unwrap_err(),
        src.backup(&store, &ctx(s.path())).unwrap_err(),
        src.inspect(&ctx(s.path())).unwrap_err(),
    ] {
        assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("is redis running at 127.0.0.1:{port}?")),
            "{text}"
        );
        assert!(!text.contains("canary"), "{text}");
    }
    assert!(!store.stored_anything());
}

#[test]
fn damaged_rdb_fails_the_restore_before_touching_the_target() {
    let live = RedisServer::start();
    populate(&live);
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live).backup(&store, &ctx(s.path())).unwrap();
    let mut rec = record(SourceKind::Redis, &out);

    let target_server = RedisServer::start();
    let mut c = client(&target_server, 0);
    let _: () = c.set("precious", "1").unwrap();
    let mut fetch = store.fetch();
    let data = fetch.stream.as_mut().unwrap();
    let n = data.len();
    data[n - 20] ^= 0xff;
    let target = source(&target_server);
    let err = target
        .restore(&fetch, &rec, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum"), "{err}");
    // Without a recorded checksum, redis-server's own RDB check refuses it.
    rec.sha256 = None;
    let err = target
        .restore(&fetch, &rec, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not load"), "{err}");
    let v: String = c.get("precious").unwrap();
    assert_eq!(v, "1");
}

/// The same without a stream, so drydock's own RDB reader (not a throwaway server)
/// refuses the damaged copy; the target keeps its data.
#[test]
fn damaged_rdb_is_refused_by_the_rdb_reader_before_touching_the_target() {
    let live = RedisServer::start();
    {
        let mut c = client(&live, 0);
        let _: () = c.set("greeting", "hello").unwrap();
        let _: () = c
            .hset_multiple("user:1", &[("name", "Ada"), ("n", "1")])
            .unwrap();
        let _: () = c.rpush("queue", &["a", "b"]).unwrap();
    }
    let s = scratch();
    let store = MemStore::new();
    let out = source(&live).backup(&store, &ctx(s.path())).unwrap();
    assert_eq!(out.counts["keys"], 3);
    let mut rec = record(SourceKind::Redis, &out);
    rec.sha256 = None;

    let target_server = RedisServer::start();
    let mut c = client(&target_server, 0);
    let _: () = c.set("precious", "1").unwrap();
    let mut fetch = store.fetch();
    let data = fetch.stream.as_mut().unwrap();
    let n = data.len();
    data[n - 20] ^= 0xff;
    let err = source(&target_server)
        .restore(&fetch, &rec, &ctx(s.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the RDB is damaged"), "{err}");
    assert!(err.contains("the live instance was not changed"), "{err}");
    let v: String = c.get("precious").unwrap();
    assert_eq!(v, "1");
}

#[test]
fn many_keys_are_fingerprinted_quickly() {
    let live = RedisServer::start();
    {
        let mut c = client(&live, 0);
        for chunk in 0..200 {
            let mut p = redis::pipe();
            for i in 0..1000 {
                p.cmd("SET").arg(format!("key:{chunk}:{i}")).arg(i).ignore();
            }
            p.query::<()>(&mut c).unwrap();
        }
    }
    let s = scratch();
    let src = source(&live);
    let t = Instant::now();
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    let backup_took = t.elapsed();
    assert_eq!(out.counts["keys"], 200_000);
    let t = Instant::now();
    let fresh = RedisServer::start();
    restore_stored(&source(&fresh), &store, &out, s.path()).unwrap();
    let restore_took = t.elapsed();
    let got = source(&fresh).inspect(&ctx(s.path())).unwrap();
    assert_eq!(got.fingerprint, out.fingerprint);
    eprintln!("200k keys: backup {backup_took:?}, restore {restore_took:?}");
    assert!(backup_took < Duration::from_secs(60) && restore_took < Duration::from_secs(60));
}

/// The port a sandbox's description names (`throwaway redis-server on 127.0.0.1:PORT`).
fn sandbox_port(describe: &str) -> u16 {
    describe
        .strip_prefix("throwaway redis-server on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected description {describe:?}"))
        .parse()
        .unwrap()
}

fn port_is_closed(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[test]
fn sandbox_holds_the_backup_and_the_canary_written_before_it() {
    let live = RedisServer::start_with_password("live-pass-canary-6");
    populate(&live);
    let s = scratch();
    let src = source(&live);
    src.write_canary("drill-token-1").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-1"));
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    // The canary is ordinary data without an expiry: counted and fingerprinted in db0.
    assert_eq!(out.counts["keys"], 12);
    assert_eq!(out.fingerprint.parts["db0"].count, 10);
    // Written after the backup: the sandbox must not have it.
    src.write_canary("drill-token-2").unwrap();

    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    let text = sandbox.describe();
    let port = sandbox_port(&text);
    assert_ne!(port, live.port());
    let target = sandbox.target();
    assert_eq!(target.kind(), SourceKind::Redis);
    assert_eq!(target.location(), format!("redis 127.0.0.1:{port}"));
    assert!(!text.contains("canary") && !target.location().contains("canary"));
    target.check().unwrap();
    assert!(!target.has_data().unwrap(), "a sandbox starts empty");
    assert_eq!(target.read_canary().unwrap(), None);
    let dirs = common::entry_names(s.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(
        dirs[0].to_string_lossy().starts_with("sandbox-"),
        "{dirs:?}"
    );

    restore_stored(target, &store, &out, s.path()).unwrap();
    let got = assert_holds(target, &out.fingerprint, "keys", &ctx(s.path()));
    assert_eq!(got.counts, out.counts);
    assert_eq!(
        target.read_canary().unwrap().as_deref(),
        Some("drill-token-1")
    );
    // The live instance is untouched and keeps the newer canary.
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("drill-token-2"));

    drop(sandbox);
    assert!(port_is_closed(port), "the throwaway server still listens");
    assert!(
        common::entry_names(s.path()).is_empty(),
        "sandbox directory left behind"
    );
}

#[test]
fn sandbox_of_a_backup_without_canary_has_none() {
    let live = RedisServer::start();
    populate(&live);
    let s = scratch();
    let src = source(&live);
    assert_eq!(src.read_canary().unwrap(), None);
    let store = MemStore::new();
    let out = src.backup(&store, &ctx(s.path())).unwrap();
    src.write_canary("too-late").unwrap();

    let sandbox = src.sandbox(&ctx(s.path())).unwrap();
    restore_stored(sandbox.target(), &store, &out, s.path()).unwrap();
    assert_holds(sandbox.target(), &out.fingerprint, "keys", &ctx(s.path()));
    assert_eq!(sandbox.target().read_canary().unwrap(), None);
    // The live data changed with the canary, so it no longer matches the backup.
    let diff = differences_now(&src, &out.fingerprint, "keys", &ctx(s.path()));
    assert_eq!(diff, vec!["db0: 9 keys in backup, 10 now".to_string()]);
}

#[test]
fn canary_replaces_the_earlier_one_and_never_expires() {
    let live = RedisServer::start_with_password("live-pass-canary-7");
    let src = source(&live);
    let s = scratch();
    let empty = src.inspect(&ctx(s.path())).unwrap().fingerprint;
    src.write_canary("first").unwrap();
    let mut c = client(&live, 0);
    let _: () = c.expire("_drydock:canary", 100).unwrap();
    src.write_canary("second").unwrap();
    assert_eq!(src.read_canary().unwrap().as_deref(), Some("second"));
    let ttl: i64 = c.ttl("_drydock:canary").unwrap();
    assert_eq!(ttl, -1, "the canary must not expire");
    let v: String = c.get("_drydock:canary").unwrap();
    assert_eq!(v, "second");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let now = src.inspect(&ctx(s.path())).unwrap();
    assert_ne!(now.fingerprint, empty);
    assert_eq!(now.counts["keys"], 1);
    // Other databases are not touched.
    let mut c1 = client(&live, 1);
    let n: i64 = redis::cmd("DBSIZE").query(&mut c1).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn canary_errors_are_connect_errors_without_the_password() {
    let server = RedisServer::start_with_password("right-pass-canary-8");
    let src = source_at(&server.url(), Some("wrong-pass-canary-9"));
    for err in [
        src.write_canary("t").unwrap_err(),
        src.read_canary().unwrap_err(),
    ] {
        assert!(matches!(err, SourceError::Connect { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("pass-canary"), "leaks a password: {text}");
    }
}

#[test]
fn sandboxes_are_independent_and_removed_on_drop() {
    let live = RedisServer::start();
    let s = scratch();
    let src = source(&live);
    let a = src.sandbox(&ctx(s.path())).unwrap();
    let b = src.sandbox(&ctx(s.path())).unwrap();
    let (pa, pb) = (sandbox_port(&a.describe()), sandbox_port(&b.describe()));
    assert_ne!(pa, pb);
    a.target().write_canary("in-a").unwrap();
    assert_eq!(b.target().read_canary().unwrap(), None);
    assert_eq!(src.read_canary().unwrap(), None);
    assert_eq!(common::entry_names(s.path()).len(), 2);
    drop(a);
    assert!(port_is_closed(pa));
    assert!(!port_is_closed(pb));
    assert_eq!(common::entry_names(s.path()).len(), 1);
    drop(b);
    assert!(port_is_closed(pb));
    assert!(common::entry_names(s.path()).is_empty());
}

#[test]
fn test_data_populates_wipes_and_restores_exactly() {
    let server = RedisServer::start();
    common::assert_populate_wipe_restore(&source(&server));
}
