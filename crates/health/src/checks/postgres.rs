//! `postgres`: connect, `SELECT 1`, database size, and connections in use against
//! `max_connections`.

use std::time::Instant;

use drydock_domain::config::health::SqlCheck;

use crate::checks::url_parts;
use crate::{millis, remaining, Check, Outcome, Status, Verdict};

pub struct Postgres {
    config: SqlCheck,
}

impl Postgres {
    pub fn new(config: SqlCheck) -> Self {
        Postgres { config }
    }
}

impl Check for Postgres {
    fn run(&self, deadline: Instant) -> Outcome {
        let (user, host, port, db) = match url_parts(&self.config.url, 5432) {
            Ok(p) => p,
            Err(e) => return Outcome::critical(e).definitive(),
        };
        let at = format!("postgres {host}:{port}/{db}");
        let began = Instant::now();
        let mut cfg = postgres::Config::new();
        cfg.host(&host)
            .port(port)
            .user(&user)
            .dbname(&db)
            .application_name("drydock-health")
            .connect_timeout(remaining(deadline));
        if let Some(pw) = &self.config.password {
            cfg.password(pw.expose());
        }
        let mut client = match cfg.connect(postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::critical(format!("{at}: {}", error_text(&e))).with("target", &at)
            }
        };
        let timeout_ms = remaining(deadline).as_millis().max(1);
        let _ = client.batch_execute(&format!("SET statement_timeout = {timeout_ms}"));
        let row = match client.query_one(
            "SELECT 1, pg_database_size(current_database()), \
                    (SELECT count(*) FROM pg_stat_activity), \
                    current_setting('max_connections')::bigint, \
                    pg_is_in_recovery(), current_setting('server_version')",
            &[],
        ) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::critical(format!("{at}: query failed: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let took = began.elapsed();
        let size: i64 = row.get(1);
        let connections: i64 = row.get(2);
        let max: i64 = row.get(3);
        let in_recovery: bool = row.get(4);
        let version: String = row.get(5);
        let mut v = Verdict::new();
        judge_connections(
            &mut v,
            connections,
            max,
            self.config.warn_connections_pct,
            self.config.critical_connections_pct,
        );
        v.detail("target", &at);
        v.detail("latency_ms", millis(took));
        v.detail("database_size_bytes", size);
        v.detail("connections", connections);
        v.detail("max_connections", max);
        v.detail("role", if in_recovery { "replica" } else { "primary" });
        v.detail("version", &version);
        v.finish(format!(
            "SELECT 1 ok in {} ms; {connections} of {max} connections; database {}",
            millis(took),
            bytesize::ByteSize::b(size.max(0) as u64)
        ))
    }
}

/// Connections in use against the maximum, by the configured percentages.
pub(crate) fn judge_connections(
    v: &mut Verdict,
    used: i64,
    max: i64,
    warn_pct: f64,
    critical_pct: f64,
) {
    if max <= 0 {
        return;
    }
    let pct = used as f64 * 100.0 / max as f64;
    v.detail("connections_pct", (pct * 10.0).round() / 10.0);
    if pct >= critical_pct {
        v.problem(
            Status::Critical,
            format!("{used} of {max} connections in use ({pct:.0}%, critical at {critical_pct}%)"),
        );
    } else if pct >= warn_pct {
        v.problem(
            Status::Warning,
            format!("{used} of {max} connections in use ({pct:.0}%, warning at {warn_pct}%)"),
        );
    }
}

/// The server's words for a failure, or the I/O cause, never the password.
fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return crate::net::connect_error("the server", io);
        }
        source = s.source();
    }
    e.to_string()
}
