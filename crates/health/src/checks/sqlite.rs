//! `sqlite`: the database file opens read-only and `PRAGMA quick_check` says ok.

use std::time::{Duration, Instant};

use drydock_domain::config::health::SqliteCheck;
use rusqlite::OpenFlags;

use crate::{millis, remaining, Check, Outcome};

pub struct Sqlite {
    config: SqliteCheck,
}

impl Sqlite {
    pub fn new(config: SqliteCheck) -> Self {
        Sqlite { config }
    }
}

impl Check for Sqlite {
    fn run(&self, deadline: Instant) -> Outcome {
        let path = &self.config.path;
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::critical(format!("{shown} does not exist (data missing)"))
                    .with("path", &shown)
                    .with("missing", true)
            }
            Err(e) => {
                return Outcome::critical(format!("cannot read {shown}: {e}")).with("path", &shown)
            }
        };
        let began = Instant::now();
        let conn = match rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::critical(format!("cannot open {shown}: {e}")).with("path", &shown)
            }
        };
        let _ = conn.busy_timeout(remaining(deadline).min(Duration::from_secs(30)));
        let verdict: Result<Vec<String>, _> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
        let took = began.elapsed();
        let out = |o: Outcome| {
            o.with("path", &shown)
                .with("size_bytes", meta.len())
                .with("latency_ms", millis(took))
        };
        match verdict {
            Ok(lines) if lines == ["ok"] => out(Outcome::healthy(format!(
                "quick_check ok in {} ms",
                millis(took)
            ))),
            Ok(lines) => out(Outcome::critical(format!(
                "{shown} is damaged: quick_check says {}",
                lines.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ))
            .with("quick_check", &lines)
            .definitive()),
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                out(Outcome::critical(format!(
                    "{shown} is locked: {}",
                    msg.unwrap_or_default()
                )))
            }
            Err(e) => {
                out(Outcome::critical(format!("{shown}: quick_check failed: {e}")).definitive())
            }
        }
    }
}
