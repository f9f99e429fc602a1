//! The fingerprint of a database file: rows and a digest per table and a digest of
//! the schema (`schema:ddl`), read through one connection so they describe one
//! state of the file.

use std::io::Write;

use drydock_domain::{Fingerprint, PartDigest, RowSetDigest};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// The fingerprint part holding the schema (DDL, user_version, application_id).
pub const SCHEMA_PART: &str = "schema:ddl";

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Counts (`tables`, `rows`) and the fingerprint of a database: a part per table (the
/// rows as a multiset, each value encoded with its storage class, so 1 and '1' differ),
/// `sqlite_sequence` when present (AUTOINCREMENT counters), and [`SCHEMA_PART`].
/// Virtual tables get no part of their own: their data lives in their shadow tables.
pub fn describe(
    conn: &Connection,
) -> rusqlite::Result<(std::collections::BTreeMap<String, u64>, Fingerprint)> {
    let mut parts = std::collections::BTreeMap::new();
    let mut schema: Vec<(String, String, String, String)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    schema.sort();
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let application_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let mut h = Sha256::new();
    for (ty, name, tbl, sql) in &schema {
        for field in [ty, name, tbl, sql] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
    }
    h.update(user_version.to_le_bytes());
    h.update(application_id.to_le_bytes());
    parts.insert(
        SCHEMA_PART.to_string(),
        PartDigest {
            count: schema.len() as u64,
            digest: hex::encode(h.finalize()),
        },
    );

    let tables: Vec<String> = schema
        .iter()
        .filter(|(ty, name, _, sql)| {
            ty == "table"
                && !name.starts_with("sqlite_")
                && !sql
                    .trim_start()
                    .get(..14)
                    .is_some_and(|p| p.eq_ignore_ascii_case("CREATE VIRTUAL"))
        })
        .map(|(_, name, _, _)| name.clone())
        .collect();
    let has_sequence: bool = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;

    let mut rows_total = 0u64;
    for table in tables
        .iter()
        .chain(has_sequence.then(|| "sqlite_sequence".to_string()).iter())
    {
        let digest = table_digest(conn, table)?;
        if table != "sqlite_sequence" {
            rows_total += digest.count;
        }
        parts.insert(table.clone(), digest);
    }
    let mut counts = std::collections::BTreeMap::new();
    counts.insert("tables".to_string(), tables.len() as u64);
    counts.insert("rows".to_string(), rows_total);
    Ok((counts, Fingerprint::from_parts(parts)))
}

pub(super) fn table_digest(conn: &Connection, table: &str) -> rusqlite::Result<PartDigest> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {}", quote_ident(table)))?;
    let ncols = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut set = RowSetDigest::default();
    let mut buf = Vec::with_capacity(256);
    while let Some(row) = rows.next()? {
        buf.clear();
        for i in 0..ncols {
            match row.get_ref(i)? {
                ValueRef::Null => buf.push(b'n'),
                ValueRef::Integer(v) => {
                    buf.push(b'i');
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                ValueRef::Real(v) => {
                    buf.push(b'r');
                    buf.extend_from_slice(&v.to_bits().to_le_bytes());
                }
                ValueRef::Text(t) => {
                    buf.push(b't');
                    buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                    buf.extend_from_slice(t);
                }
                ValueRef::Blob(b) => {
                    buf.push(b'b');
                    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    buf.extend_from_slice(b);
                }
            }
        }
        set.add(&buf);
    }
    Ok(set.finish())
}

/// Writes through while hashing what passed.
pub(super) struct HashingWriter<W: Write> {
    pub(super) inner: W,
    pub(super) hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
