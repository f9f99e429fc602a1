//! `etcd`: each endpoint's `/health`, the member list, and exactly one leader that
//! every reachable member agrees on (through the v3 JSON gateway). A member down
//! while the cluster keeps quorum is a warning; no leader, split leadership or lost
//! quorum is critical.

use std::collections::BTreeSet;
use std::time::Instant;

use drydock_domain::config::health::EtcdCheck;
use serde_json::{json, Value};

use crate::{millis, net, Check, Outcome, Status, Verdict};

pub struct Etcd {
    config: EtcdCheck,
}

impl Etcd {
    pub fn new(config: EtcdCheck) -> Self {
        Etcd { config }
    }
}

/// etcd prints 64-bit ids as JSON strings (the gateway) or numbers.
fn id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| s != "0")
}

impl Check for Etcd {
    fn run(&self, deadline: Instant) -> Outcome {
        let anchors = match net::trust_anchors(self.config.ca_file.as_deref()) {
            Ok(a) => a,
            Err(e) => return Outcome::critical(e).definitive(),
        };
        let agent = net::agent(&anchors, deadline);
        let began = Instant::now();
        let mut v = Verdict::new();
        let mut unreachable = Vec::new();
        let mut unhealthy = Vec::new();
        let mut leaders = BTreeSet::new();
        let mut members: Option<Vec<Value>> = None;
        let mut endpoints = Vec::new();
        for ep in &self.config.endpoints {
            let base = ep.trim_end_matches('/');
            let health = net::get_json(&agent, &format!("{base}/health"));
            let healthy = matches!(&health, Ok((_, h)) if h.get("health").and_then(Value::as_str) == Some("true"));
            let status =
                net::post_json(&agent, &format!("{base}/v3/maintenance/status"), &json!({}));
            match (&health, &status) {
                (Err(e), _) => {
                    unreachable.push(format!("{base} ({e})"));
                    endpoints.push(json!({"endpoint": base, "reachable": false}));
                    continue;
                }
                (Ok(_), _) if !healthy => unhealthy.push(base.to_string()),
                _ => {}
            }
            let (leader, member) = match &status {
                Ok((200, s)) => (id(s.get("leader")), id(s.pointer("/header/member_id"))),
                _ => (None, None),
            };
            if let Some(l) = &leader {
                leaders.insert(l.clone());
            }
            endpoints.push(json!({"endpoint": base, "reachable": true, "healthy": healthy, "member_id": member, "leader": leader}));
            if members.is_none() {
                if let Ok((200, list)) = net::post_json(
                    &agent,
                    &format!("{base}/v3/cluster/member/list"),
                    &json!({}),
                ) {
                    members = list.get("members").and_then(Value::as_array).cloned();
                }
            }
        }
        let took = began.elapsed();
        let member_ids: BTreeSet<String> = members
            .iter()
            .flatten()
            .filter_map(|m| id(m.get("ID")))
            .collect();
        let member_count = members.as_ref().map_or(0, Vec::len);
        v.detail("endpoints", &endpoints);
        v.detail("members", member_count);
        v.detail("leader", leaders.iter().next());
        v.detail("latency_ms", millis(took));
        let reachable = self.config.endpoints.len() - unreachable.len();
        if reachable == 0 {
            v.transient(format!("no endpoint answers: {}", unreachable.join("; ")));
            return v.finish("");
        }
        match leaders.len() {
            0 => v.transient("no leader: the cluster has lost quorum or is electing"),
            1 => {
                let leader = leaders.iter().next().cloned().unwrap_or_default();
                if !member_ids.is_empty() && !member_ids.contains(&leader) {
                    v.transient(format!("the leader {leader} is not in the member list"));
                }
            }
            n => v.transient(format!("{n} different leaders reported: split brain")),
        }
        let healthy = reachable - unhealthy.len();
        let quorum = member_count.max(self.config.endpoints.len()) / 2 + 1;
        v.detail("healthy_endpoints", healthy);
        if healthy < quorum {
            v.transient(format!(
                "only {healthy} of {} members healthy; a quorum needs {quorum}",
                member_count.max(self.config.endpoints.len())
            ));
        } else {
            if !unhealthy.is_empty() {
                v.problem(
                    Status::Warning,
                    format!("unhealthy: {}", unhealthy.join(", ")),
                );
            }
            if !unreachable.is_empty() {
                v.problem(
                    Status::Warning,
                    format!(
                        "{} of {} endpoints unreachable: {}",
                        unreachable.len(),
                        self.config.endpoints.len(),
                        unreachable.join("; ")
                    ),
                );
            }
        }
        if let Some(want) = self.config.expect_members {
            if member_count != want {
                v.problem(
                    if member_count < want {
                        Status::Critical
                    } else {
                        Status::Warning
                    },
                    format!("{member_count} members, expected {want}"),
                );
            }
        }
        v.finish(format!(
            "{member_count} members, leader {}, {healthy}/{} endpoints healthy",
            leaders.iter().next().cloned().unwrap_or_default(),
            self.config.endpoints.len()
        ))
    }
}
