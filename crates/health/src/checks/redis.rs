//! `redis`: PING, then INFO: role, keys, used memory against `maxmemory`, and whether
//! the last RDB/AOF write worked.

use std::collections::BTreeMap;
use std::time::Instant;

use drydock_domain::config::health::RedisCheck;
use drydock_domain::Secret;

use crate::{millis, remaining, Check, Outcome, Status, Verdict};

pub struct Redis {
    config: RedisCheck,
}

impl Redis {
    pub fn new(config: RedisCheck) -> Self {
        Redis { config }
    }
}

/// A connection to the server at `url` (password from `password`), bounded by
/// `deadline`; errors name the target.
pub(crate) fn connect(
    url: &str,
    password: Option<&Secret>,
    deadline: Instant,
) -> Result<(String, redis::Connection), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad URL {url}: {e}"))?;
    let host = parsed
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let port = parsed.port().unwrap_or(6379);
    let at = format!("redis {host}:{port}");
    let user = Some(parsed.username())
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let info = redis::ConnectionInfo {
        addr: redis::ConnectionAddr::Tcp(host, port),
        redis: redis::RedisConnectionInfo {
            db: 0,
            username: user,
            password: password.map(|p| p.expose().to_string()),
            ..Default::default()
        },
    };
    let client = redis::Client::open(info).map_err(|e| format!("{at}: {e}"))?;
    let con = client
        .get_connection_with_timeout(remaining(deadline))
        .map_err(|e| format!("{at}: {}", error_text(&e)))?;
    let _ = con.set_read_timeout(Some(remaining(deadline)));
    let _ = con.set_write_timeout(Some(remaining(deadline)));
    Ok((at, con))
}

/// A Redis error in plain words (never with the password: the client does not echo it).
pub(crate) fn error_text(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        return "connection refused (nothing listens there)".into();
    }
    if e.is_timeout() {
        return "no answer (timed out)".into();
    }
    e.to_string()
}

/// `key:value` lines of an INFO reply.
pub(crate) fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Check for Redis {
    fn run(&self, deadline: Instant) -> Outcome {
        let c = &self.config;
        let began = Instant::now();
        let (at, mut con) = match connect(&c.url, c.password.as_ref(), deadline) {
            Ok(x) => x,
            Err(e) => return Outcome::critical(e),
        };
        let pong: Result<String, _> = redis::cmd("PING").query(&mut con);
        if let Err(e) = pong {
            return Outcome::critical(format!("{at}: PING failed: {}", error_text(&e)))
                .with("target", &at);
        }
        let info: String = match redis::cmd("INFO").query(&mut con) {
            Ok(i) => i,
            Err(e) => {
                return Outcome::critical(format!("{at}: INFO failed: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let took = began.elapsed();
        let info = parse_info(&info);
        let num = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok());
        let role = info.get("role").cloned().unwrap_or_default();
        let keys: u64 = info
            .iter()
            .filter(|(k, _)| k.starts_with("db"))
            .filter_map(|(_, v)| {
                v.split(',')
                    .find_map(|p| p.strip_prefix("keys="))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .sum();
        let used = num("used_memory").unwrap_or(0);
        let max = num("maxmemory").unwrap_or(0);
        let mut v = Verdict::new();
        v.detail("target", &at);
        v.detail("latency_ms", millis(took));
        v.detail("role", &role);
        v.detail("keys", keys);
        v.detail("used_memory_bytes", used);
        v.detail("maxmemory_bytes", max);
        v.detail("version", info.get("redis_version"));
        if let Some(want) = &c.expect_role {
            let want = if want == "replica" {
                "slave"
            } else {
                want.as_str()
            };
            if role != want {
                v.problem(
                    Status::Critical,
                    format!(
                        "role is {role}, expected {}",
                        c.expect_role.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        if max > 0 {
            let pct = used as f64 * 100.0 / max as f64;
            v.detail("memory_pct", (pct * 10.0).round() / 10.0);
            let text = format!(
                "{} of maxmemory {} used ({pct:.0}%)",
                bytesize::ByteSize::b(used),
                bytesize::ByteSize::b(max)
            );
            if pct >= c.critical_memory_pct {
                v.problem(Status::Critical, text);
            } else if pct >= c.warn_memory_pct {
                v.problem(Status::Warning, text);
            }
        }
        for (key, what) in [
            ("rdb_last_bgsave_status", "the last RDB save"),
            ("aof_last_write_status", "the last AOF write"),
        ] {
            if info.get(key).is_some_and(|s| s == "err") {
                v.problem(
                    Status::Warning,
                    format!("{what} failed (see the server log: disk full or permissions?)"),
                );
            }
        }
        if info.get("loading").is_some_and(|l| l == "1") {
            v.problem(Status::Warning, "still loading its data set");
        }
        v.finish(format!(
            "PONG in {} ms; {role}, {keys} keys, {} used",
            millis(took),
            bytesize::ByteSize::b(used)
        ))
    }
}
