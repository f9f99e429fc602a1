//! `redis-sentinel`: the sentinel knows the master, does not see it down, and can
//! reach the quorum needed to fail it over (`SENTINEL CKQUORUM`).

use std::collections::BTreeMap;
use std::time::Instant;

use drydock_domain::config::health::SentinelCheck;

use crate::checks::redis::{connect, error_text};
use crate::{millis, Check, Outcome, Status, Verdict};

pub struct RedisSentinel {
    config: SentinelCheck,
}

impl RedisSentinel {
    pub fn new(config: SentinelCheck) -> Self {
        RedisSentinel { config }
    }
}

impl Check for RedisSentinel {
    fn run(&self, deadline: Instant) -> Outcome {
        let c = &self.config;
        let began = Instant::now();
        let (at, mut con) = match connect(&c.url, c.password.as_ref(), deadline) {
            Ok(x) => x,
            Err(e) => return Outcome::critical(e),
        };
        let master: Result<BTreeMap<String, String>, _> = redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(&c.master)
            .query(&mut con);
        let master = match master {
            Ok(m) => m,
            Err(e) if e.to_string().contains("No such master") => {
                return Outcome::critical(format!(
                    "sentinel {at} does not monitor a master named `{}`",
                    c.master
                ))
                .with("target", &at)
            }
            Err(e) => {
                return Outcome::critical(format!("sentinel {at}: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let quorum: Result<String, _> = redis::cmd("SENTINEL")
            .arg("CKQUORUM")
            .arg(&c.master)
            .query(&mut con);
        let took = began.elapsed();
        let mut v = Verdict::new();
        let flags = master.get("flags").cloned().unwrap_or_default();
        let address = format!(
            "{}:{}",
            master.get("ip").map(String::as_str).unwrap_or("?"),
            master.get("port").map(String::as_str).unwrap_or("?")
        );
        v.detail("target", &at);
        v.detail("master", &c.master);
        v.detail("master_address", &address);
        v.detail("flags", &flags);
        v.detail(
            "quorum",
            master.get("quorum").and_then(|q| q.parse::<u64>().ok()),
        );
        v.detail(
            "other_sentinels",
            master
                .get("num-other-sentinels")
                .and_then(|q| q.parse::<u64>().ok()),
        );
        v.detail(
            "replicas",
            master.get("num-slaves").and_then(|q| q.parse::<u64>().ok()),
        );
        v.detail("latency_ms", millis(took));
        if flags.split(',').any(|f| f == "o_down" || f == "s_down") {
            v.transient(format!(
                "master `{}` at {address} is down ({flags})",
                c.master
            ));
        }
        if flags.split(',').any(|f| f == "failover_in_progress") {
            v.problem(Status::Warning, "a failover is in progress");
        }
        match quorum {
            Ok(text) => v.detail("ckquorum", text),
            Err(e) => v.transient(format!("no failover quorum: {}", error_text(&e))),
        }
        v.finish(format!(
            "master `{}` at {address}, quorum reachable",
            c.master
        ))
    }
}
