//! `redis-cluster`: all 16384 slots are assigned and served, and every node is
//! connected and not failing (`CLUSTER INFO`, `CLUSTER NODES`).

use std::time::Instant;

use drydock_domain::config::health::RedisClusterCheck;
use serde_json::json;

use crate::checks::redis::{connect, error_text, parse_info};
use crate::{millis, Check, Outcome, Status, Verdict};

pub struct RedisCluster {
    config: RedisClusterCheck,
}

impl RedisCluster {
    pub fn new(config: RedisClusterCheck) -> Self {
        RedisCluster { config }
    }
}

const SLOTS: u64 = 16384;

impl Check for RedisCluster {
    fn run(&self, deadline: Instant) -> Outcome {
        let c = &self.config;
        let began = Instant::now();
        let (at, mut con) = match connect(&c.url, c.password.as_ref(), deadline) {
            Ok(x) => x,
            Err(e) => return Outcome::critical(e),
        };
        let info: String = match redis::cmd("CLUSTER").arg("INFO").query(&mut con) {
            Ok(i) => i,
            Err(e) => {
                return Outcome::critical(format!("{at}: CLUSTER INFO failed: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let nodes: String = match redis::cmd("CLUSTER").arg("NODES").query(&mut con) {
            Ok(n) => n,
            Err(e) => {
                return Outcome::critical(format!("{at}: CLUSTER NODES failed: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let took = began.elapsed();
        let info = parse_info(&info);
        let num = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let mut v = Verdict::new();
        let state = info.get("cluster_state").cloned().unwrap_or_default();
        let (assigned, ok) = (num("cluster_slots_assigned"), num("cluster_slots_ok"));
        v.detail("target", &at);
        v.detail("cluster_state", &state);
        v.detail("slots_assigned", assigned);
        v.detail("slots_ok", ok);
        v.detail("known_nodes", num("cluster_known_nodes"));
        v.detail("latency_ms", millis(took));
        if assigned < SLOTS {
            v.problem(
                Status::Critical,
                format!("only {assigned} of {SLOTS} slots assigned"),
            );
        } else if ok < SLOTS {
            v.transient(format!(
                "{} of {SLOTS} slots not served (failing nodes)",
                SLOTS - ok
            ));
        }
        if state != "ok" {
            v.transient(format!("cluster_state is {state}"));
        }
        let mut troubled = Vec::new();
        let mut listed = Vec::new();
        for line in nodes.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let (addr, flags, link) = (f[1].split('@').next().unwrap_or(f[1]), f[2], f[7]);
            listed.push(json!({"address": addr, "flags": flags, "link": link}));
            let failing = flags
                .split(',')
                .any(|x| matches!(x, "fail" | "fail?" | "noaddr" | "handshake"));
            if failing || (link != "connected" && !flags.contains("myself")) {
                troubled.push(format!("{addr} ({flags}, {link})"));
            }
        }
        v.detail("nodes", &listed);
        if !troubled.is_empty() {
            v.problem(
                Status::Warning,
                format!("nodes not connected: {}", troubled.join(", ")),
            );
        }
        v.finish(format!(
            "all {SLOTS} slots served by {} nodes, all connected",
            listed.len()
        ))
    }
}
