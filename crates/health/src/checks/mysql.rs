//! `mysql` (MariaDB too): connect, `SELECT 1`, database size, and connections in
//! use against `max_connections`.

use std::time::Instant;

use drydock_domain::config::health::SqlCheck;
use mysql::prelude::Queryable;

use crate::checks::postgres::judge_connections;
use crate::checks::url_parts;
use crate::{millis, remaining, Check, Outcome, Verdict};

/// `1`, database size, connections, max connections, version.
type ServerNumbers = (i64, i64, i64, i64, String);

pub struct Mysql {
    config: SqlCheck,
}

impl Mysql {
    pub fn new(config: SqlCheck) -> Self {
        Mysql { config }
    }
}

impl Check for Mysql {
    fn run(&self, deadline: Instant) -> Outcome {
        let (user, host, port, db) = match url_parts(&self.config.url, 3306) {
            Ok(p) => p,
            Err(e) => return Outcome::critical(e).definitive(),
        };
        let at = format!("mysql {host}:{port}/{db}");
        let began = Instant::now();
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some(host.clone()))
            .tcp_port(port)
            .prefer_socket(false)
            .user(Some(user))
            .pass(
                self.config
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
            )
            .db_name(Some(db.clone()))
            .tcp_connect_timeout(Some(remaining(deadline)))
            .read_timeout(Some(remaining(deadline)))
            .write_timeout(Some(remaining(deadline)));
        let mut conn = match mysql::Conn::new(opts) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::critical(format!("{at}: {}", error_text(&e))).with("target", &at)
            }
        };
        let row: Result<Option<ServerNumbers>, _> = conn.query_first(
            "SELECT 1, \
                    (SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()), \
                    (SELECT COUNT(*) FROM information_schema.processlist), \
                    @@max_connections, VERSION()",
        );
        let (_, size, connections, max, version) = match row {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::critical(format!("{at}: SELECT 1 returned nothing")),
            Err(e) => {
                return Outcome::critical(format!("{at}: query failed: {}", error_text(&e)))
                    .with("target", &at)
            }
        };
        let took = began.elapsed();
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
        v.detail("version", &version);
        v.finish(format!(
            "SELECT 1 ok in {} ms; {connections} of {max} connections; database {}",
            millis(took),
            bytesize::ByteSize::b(size.max(0) as u64)
        ))
    }
}

fn error_text(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!("{} (error {})", m.message, m.code),
        mysql::Error::IoError(io) => crate::net::connect_error("the server", io),
        mysql::Error::DriverError(d) => d.to_string(),
        other => other.to_string(),
    }
}
