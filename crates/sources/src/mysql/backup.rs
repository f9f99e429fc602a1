//! What a backup relies on and proves: the consistent snapshot the dump and the
//! fingerprint share, the dump's header (read past before the data streams), and the
//! SQL dump read back, which must hold every fingerprinted table's rows.

use std::io::Read;

use drydock_domain::Fingerprint;
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::proof;
use crate::SourceError;

use super::connect::Mysql;

/// The dump format recorded in the manifest.
pub const FORMAT: &str = "mysql-dump-sql";

/// The dump's header is a few hundred bytes; output beyond this certainly comes from
/// after the dump's transaction started, even if the header's last line was not seen.
pub(super) const HEADER_LIMIT: usize = 64 * 1024;

/// The last line of the header `mysqldump`/`mariadb-dump` writes before starting its
/// transaction (unless `--compact`, which drydock never passes).
pub(super) const HEADER_END: &[u8] = b"SQL_NOTES=0 */;\n";

/// Engines whose tables a consistent snapshot covers.
pub(super) const TRANSACTIONAL_ENGINES: &str = "'InnoDB', 'ROCKSDB', 'TokuDB'";

impl Mysql {
    /// A connection to the database inside a consistent-snapshot transaction, with the
    /// session settings the row digests depend on.
    pub(super) fn start_snapshot(&self, conn: &mut Conn) -> Result<(), SourceError> {
        conn.query_drop("SET SESSION time_zone = '+00:00', SESSION sql_mode = '', NAMES utf8mb4")
            .map_err(|e| self.query_error("setting up the session", &e))?;
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .map_err(|e| self.query_error("setting the isolation level", &e))?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .map_err(|e| self.query_error("starting a snapshot transaction", &e))
    }
}

/// Reads the dump's output until its transaction has certainly started, and returns
/// what it read (to be stored first).
///
/// `mysqldump`/`mariadb-dump` write their header before `START TRANSACTION WITH
/// CONSISTENT SNAPSHOT` and everything else after it, so any byte after the header's
/// last line proves the snapshot exists. Watching the output (rather than, say, the
/// server's process list) ties the proof to the dump's own connection, whatever else
/// connects meanwhile. The tool's stdout is block-buffered, so usually the first bytes
/// to arrive are already past the header; if the header's last line never shows up,
/// [`HEADER_LIMIT`] bytes or EOF are proof enough. Until then the global read lock
/// is held, so the wait costs writers a few milliseconds, never consistency.
pub(super) fn read_past_header(stdout: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(pos) = find(&buf, HEADER_END) {
            if buf.len() > pos + HEADER_END.len() {
                return Ok(buf);
            }
        }
        if buf.len() > HEADER_LIMIT {
            return Ok(buf);
        }
        let n = stdout.read(&mut chunk)?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks that `dumped` (what the stored SQL holds) creates every table of the
/// snapshot's fingerprint and inserts exactly its rows.
pub(super) fn prove_dump(dumped: &proof::SqlDump, fingerprint: &Fingerprint) -> Result<(), String> {
    for (name, part) in &fingerprint.parts {
        // `schema:ddl` and `schema:database` describe the database, not a table.
        if name.starts_with("schema:") {
            continue;
        }
        if !dumped.created.contains(name) {
            return Err(format!("its dump has no CREATE TABLE for table `{name}`"));
        }
        let rows = dumped.rows.get(name).copied().unwrap_or(0);
        if rows != part.count {
            return Err(if rows == 0 {
                format!(
                    "its dump has no data for table `{name}` (fingerprint: {} rows)",
                    part.count
                )
            } else {
                format!(
                    "its dump holds {rows} rows of table `{name}` (fingerprint: {} rows)",
                    part.count
                )
            });
        }
    }
    Ok(())
}
