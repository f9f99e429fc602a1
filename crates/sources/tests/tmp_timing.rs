mod common;
use common::*;
use drydock_domain::config::RedisSource;
use drydock_domain::Priority;
use drydock_sources::DataSource;
use drydock_testkit::redis::RedisServer;
use std::time::Instant;
#[test]
fn timing() {
    let live = RedisServer::start();
    let info = redis::ConnectionInfo { addr: redis::ConnectionAddr::Tcp("127.0.0.1".into(), live.port()), redis: Default::default() };
    let mut c = redis::Client::open(info).unwrap().get_connection().unwrap();
    for chunk in 0..200 { let mut p = redis::pipe(); for i in 0..1000 { p.cmd("SET").arg(format!("key:{chunk}:{i}")).arg(i).ignore(); } p.query::<()>(&mut c).unwrap(); }
    let src = drydock_sources::redis::Redis::new(RedisSource { name: None, priority: Priority::High, url: live.url(), password: None });
    let s = scratch();
    let t = Instant::now(); src.inspect(&ctx(s.path())).unwrap(); eprintln!("inspect {:?}", t.elapsed());
    let t = Instant::now();
    let o = std::process::Command::new("redis-cli").args(["-p", &live.port().to_string(), "--rdb", s.path().join("x.rdb").to_str().unwrap()]).output().unwrap();
    eprintln!("cli {:?} {}", t.elapsed(), o.status);
    let t = Instant::now(); src.backup(&MemStore::new(), &ctx(s.path())).unwrap(); eprintln!("backup {:?}", t.elapsed());
}
