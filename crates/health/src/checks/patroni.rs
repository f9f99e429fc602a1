//! `patroni`: the member's REST `/health` says running, and `/cluster` shows exactly
//! one leader, the replicas running (or streaming), and replication lag under the
//! thresholds.

use std::time::Instant;

use drydock_domain::config::health::PatroniCheck;
use serde_json::{json, Value};

use crate::{millis, net, Check, Outcome, Status, Verdict};

pub struct Patroni {
    config: PatroniCheck,
}

impl Patroni {
    pub fn new(config: PatroniCheck) -> Self {
        Patroni { config }
    }
}

impl Check for Patroni {
    fn run(&self, deadline: Instant) -> Outcome {
        let anchors = match net::trust_anchors(self.config.ca_file.as_deref()) {
            Ok(a) => a,
            Err(e) => return Outcome::critical(e).definitive(),
        };
        let agent = net::agent(&anchors, deadline);
        let base = self.config.url.trim_end_matches('/');
        let began = Instant::now();
        let health = net::get_json(&agent, &format!("{base}/health"));
        let cluster = net::get_json(&agent, &format!("{base}/cluster"));
        let took = began.elapsed();
        let mut v = Verdict::new();
        v.detail("url", base);
        v.detail("latency_ms", millis(took));
        match (&health, &cluster) {
            (Err(e), _) | (_, Err(e)) => {
                v.transient(e.clone());
                v.finish("")
            }
            (Ok(h), Ok((_, c))) => judge(&self.config, h, c, v),
        }
    }
}

/// Judges a member's `/health` answer (status, body) and the `/cluster` document.
pub fn judge(
    config: &PatroniCheck,
    health: &(u16, Value),
    cluster: &Value,
    mut v: Verdict,
) -> Outcome {
    let (status, body) = health;
    let state = body
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    v.detail("member_state", state);
    v.detail("member_role", body.get("role"));
    if *status != 200 || state != "running" {
        v.transient(format!(
            "this member is not running (HTTP {status}, state {state})"
        ));
    }
    let members = cluster
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let leaders: Vec<&Value> = members
        .iter()
        .filter(|m| matches!(role(m).as_str(), "leader" | "standby_leader"))
        .collect();
    let replicas: Vec<&Value> = members
        .iter()
        .filter(|m| {
            matches!(
                role(m).as_str(),
                "replica" | "sync_standby" | "quorum_standby"
            )
        })
        .collect();
    let running = |m: &&&Value| {
        matches!(
            m.get("state").and_then(Value::as_str),
            Some("running" | "streaming")
        )
    };
    let running_replicas = replicas.iter().filter(running).count();
    let summary: Vec<Value> = members
        .iter()
        .map(|m| json!({"name": m.get("name"), "role": m.get("role"), "state": m.get("state"), "lag": m.get("lag")}))
        .collect();
    v.detail("members", &summary);
    v.detail("scope", cluster.get("scope"));
    match leaders.len() {
        1 => {
            let leader = leaders[0];
            if !running(&&leader) {
                v.transient(format!(
                    "the leader {} is {}",
                    leader.get("name").and_then(Value::as_str).unwrap_or("?"),
                    leader
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("not running")
                ));
            }
        }
        0 => v.transient("no leader in the cluster"),
        n => v.transient(format!("{n} leaders in the cluster")),
    }
    let expected = config.expect_replicas.unwrap_or(replicas.len());
    if running_replicas < expected {
        v.problem(
            Status::Warning,
            format!("{running_replicas} of {expected} replicas running"),
        );
    }
    let warn = config.warn_lag_bytes.as_u64();
    let critical = config.critical_lag_bytes.as_u64();
    for r in &replicas {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("?");
        match r.get("lag") {
            Some(Value::Number(n)) => {
                let lag = n.as_u64().unwrap_or(0);
                if lag >= critical {
                    v.problem(
                        Status::Critical,
                        format!(
                            "replica {name} lags {} (critical at {})",
                            bytesize::ByteSize::b(lag),
                            config.critical_lag_bytes
                        ),
                    );
                } else if lag >= warn {
                    v.problem(
                        Status::Warning,
                        format!(
                            "replica {name} lags {} (warning at {})",
                            bytesize::ByteSize::b(lag),
                            config.warn_lag_bytes
                        ),
                    );
                }
            }
            Some(Value::String(s)) if running(&r) => {
                v.problem(Status::Warning, format!("replica {name} lag is {s}"));
            }
            _ => {}
        }
    }
    let leader_name = leaders
        .first()
        .and_then(|l| l.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    v.finish(format!(
        "leader {leader_name}, {running_replicas}/{} replicas running",
        replicas.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Patroni 4.1.5 (PostgreSQL 15, etcd 3.4) with one replica.
    const HEALTH: &str = r#"{"state": "running", "postmaster_start_time": "2026-11-30 16:24:48.724855+00:00", "role": "primary", "server_version": 150018, "xlog": {"location": 22028000}, "timeline": 1, "dcs_last_seen": 1796055896, "database_system_identifier": "7714001299429592831", "patroni": {"version": "4.1.5", "scope": "drydocktest", "name": "pg1"}}"#;
    const CLUSTER: &str = r#"{"members": [{"name": "pg1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:28008/patroni", "host": "127.0.0.1", "port": 25432, "timeline": 1}, {"name": "pg2", "role": "replica", "state": "streaming", "api_url": "http://127.0.0.1:28009/patroni", "host": "127.0.0.1", "port": 25433, "timeline": 1, "receive_lag": 0, "receive_lsn": "0/3000060", "replay_lag": 0, "replay_lsn": "0/3000060", "lag": 0, "lsn": "0/3000060"}], "scope": "drydocktest"}"#;

    fn config() -> PatroniCheck {
        PatroniCheck {
            url: "http://127.0.0.1:8008".into(),
            expect_replicas: None,
            warn_lag_bytes: bytesize::ByteSize::mib(1),
            critical_lag_bytes: bytesize::ByteSize::mib(16),
            ca_file: None,
        }
    }

    fn run(config: &PatroniCheck, health: &str, cluster: &str) -> Outcome {
        let health = (200, serde_json::from_str(health).unwrap());
        judge(
            config,
            &health,
            &serde_json::from_str(cluster).unwrap(),
            Verdict::new(),
        )
    }

    #[test]
    fn a_recorded_healthy_cluster_is_healthy() {
        let o = run(&config(), HEALTH, CLUSTER);
        assert_eq!(o.status, Status::Healthy, "{}", o.message);
        assert_eq!(o.message, "leader pg1, 1/1 replicas running");
    }

    #[test]
    fn lag_missing_replicas_and_no_leader_are_named() {
        let lagging = CLUSTER.replace(r#""lag": 0"#, r#""lag": 33554432"#);
        let o = run(&config(), HEALTH, &lagging);
        assert_eq!(o.status, Status::Critical);
        assert!(
            o.message.contains("replica pg2 lags 32.0 MiB"),
            "{}",
            o.message
        );
        let mut two = config();
        two.expect_replicas = Some(2);
        let o = run(&two, HEALTH, CLUSTER);
        assert_eq!(o.status, Status::Warning);
        assert!(
            o.message.contains("1 of 2 replicas running"),
            "{}",
            o.message
        );
        let leaderless = CLUSTER.replace(r#""role": "leader""#, r#""role": "replica""#);
        let o = run(&config(), HEALTH, &leaderless);
        assert_eq!(o.status, Status::Critical);
        assert!(o.message.contains("no leader"), "{}", o.message);
    }
}
