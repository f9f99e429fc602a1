//! The fingerprint of a database, computed inside the snapshot's transaction: rows
//! and a digest of them per user table ([`RowDigest`]: the rows as `pg_dump` writes
//! them, read back with COPY), sequences (`seq:` parts, taken from the archive's own
//! `setval` statements), and `schema:ddl` over an OID-free description of the schema.
//! Extension-owned objects and excluded tables are left out.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use drydock_domain::{Fingerprint, PartDigest};
use postgres::Client;

use crate::common::{self, ddl_part, SqlServer};
use crate::proof::CopyRows;
use crate::{DataSource, Inspection, SourceError};

use super::connect::{run_capture, Postgres};

/// Schemas that are never user data, and objects owned by extensions.
pub(super) const USER_OBJECT: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                     AND d.objid = c.oid AND d.deptype = 'e')";

/// How a fingerprint digests each table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowDigest {
    /// Rows read back with `COPY ... TO STDOUT`, the text `pg_dump` writes into its
    /// archive, each hashed here ([`CopyRows`], digest `x3:`): what a backup's archive
    /// is digested to, so restores and live comparisons read tables this way.
    Copy,
    /// `count(*)` alone (the digest is left empty): a backup takes each table's
    /// digest from the rows of its archive as they are stored, and needs from the
    /// snapshot only the count that proves the archive holds every row.
    CountOnly,
    /// A sum of a 64-bit hash of each row's text, computed by the server (digest
    /// `h64:`, or `md5:` before PostgreSQL 11): how backups made before the `x3:`
    /// digest were fingerprinted, kept so that they still verify.
    Server,
}

impl RowDigest {
    /// The way the fingerprint `expected` digested its tables (a backup's, to compare
    /// with): [`RowDigest::Server`] when any table part has a server-side digest.
    pub(super) fn of(expected: Option<&Fingerprint>) -> Self {
        let server = expected.is_some_and(|f| {
            f.parts
                .values()
                .any(|p| p.digest.starts_with("h64:") || p.digest.starts_with("md5:"))
        });
        if server {
            RowDigest::Server
        } else {
            RowDigest::Copy
        }
    }
}

/// The session settings `pg_dump` gives its own connection, where they change how
/// COPY writes a value (with [`super::connect::SESSION_SETTINGS`]' time zone, byte
/// array format and date style, which `pg_dump` gets through its environment: see
/// `Postgres::spawn_dump`). `lc_monetary` goes back to the server's and database's
/// default, which `pg_dump` also sees.
const COPY_LIKE_PG_DUMP: &str =
    "SET LOCAL extra_float_digits = 3; SET LOCAL lc_monetary TO DEFAULT; SET LOCAL row_security = off";

impl Postgres {
    /// Counts and fingerprint of the database now, in one snapshot.
    pub(super) fn inspect_rows(&self, rows: RowDigest) -> Result<Inspection, SourceError> {
        let t = self.target()?;
        let mut client = self.snapshot_connection(t)?;
        let inspection = self.fingerprint(&mut client, rows)?;
        client
            .batch_execute("COMMIT")
            .map_err(|e| self.query_error("ending the snapshot transaction", &e))?;
        Ok(inspection)
    }

    /// Counts and fingerprint of what `client`'s transaction sees, each table's rows
    /// digested as `rows` says.
    pub(super) fn fingerprint(
        &self,
        client: &mut Client,
        rows: RowDigest,
    ) -> Result<Inspection, SourceError> {
        let mut parts = BTreeMap::new();
        let mut rows_total = 0u64;

        let tables = client
            .query(
                &format!(
                    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), c.oid \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'r' AND {USER_OBJECT} AND {NOT_EXCLUDED} ORDER BY 1, 2"
                ),
                &[&self.config.exclude_tables],
            )
            .map_err(|e| self.query_error("listing tables", &e))?;
        let major = self.server_major(client)?;
        if rows == RowDigest::Copy {
            client
                .batch_execute(COPY_LIKE_PG_DUMP)
                .map_err(|e| self.query_error("setting up the session for COPY", &e))?;
        }
        for row in &tables {
            let (schema, name, quoted, oid): (String, String, String, u32) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let reading = || format!("reading table {schema}.{name}");
            let part = match rows {
                RowDigest::Copy => self.copy_digest(client, &quoted, oid, major, &reading)?,
                RowDigest::CountOnly => {
                    let counted = client
                        .query_one(&format!("SELECT count(*) FROM ONLY {quoted}"), &[])
                        .map_err(|e| self.query_error(reading(), &e))?;
                    PartDigest {
                        count: counted.get::<_, i64>(0) as u64,
                        digest: String::new(),
                    }
                }
                RowDigest::Server => self.server_digest(client, &quoted, major, &reading)?,
            };
            rows_total += part.count;
            parts.insert(format!("{schema}.{name}"), part);
        }
        let table_count = tables.len() as u64;

        let sequences = client
            .query(
                &format!(
                    "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'S' AND {USER_OBJECT} AND {NOT_EXCLUDED} ORDER BY 1, 2"
                ),
                &[&self.config.exclude_tables],
            )
            .map_err(|e| self.query_error("listing sequences", &e))?;
        for row in &sequences {
            let (schema, name, quoted): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let state = client
                .query_one(&format!("SELECT last_value, is_called FROM {quoted}"), &[])
                .map_err(|e| self.query_error(format!("reading sequence {schema}.{name}"), &e))?;
            parts.insert(
                format!("seq:{schema}.{name}"),
                sequence_part(state.get(0), state.get(1)),
            );
        }

        let ddl = client
            .query(DDL_QUERY, &[&self.config.exclude_tables])
            .map_err(|e| self.query_error("describing the schema", &e))?;
        let lines: Vec<String> = ddl.iter().map(|r| r.get::<_, String>(0)).collect();
        parts.insert("schema:ddl".to_string(), ddl_part(lines));

        let mut counts = BTreeMap::new();
        counts.insert("tables".to_string(), table_count);
        counts.insert("rows".to_string(), rows_total);
        counts.insert("sequences".to_string(), sequences.len() as u64);
        Ok(Inspection {
            counts,
            fingerprint: Fingerprint::from_parts(parts),
        })
    }

    /// One pass over the table on the server: the count and an order-independent sum
    /// (exact, as numeric) of a 64-bit hash of each row's canonical text. PostgreSQL's
    /// own 64-bit hash (the one hash partitioning relies on, so stable across versions)
    /// is about three times faster than MD5, which is the fallback before PostgreSQL 11.
    fn server_digest(
        &self,
        client: &mut Client,
        quoted: &str,
        major: u32,
        reading: &dyn Fn() -> String,
    ) -> Result<PartDigest, SourceError> {
        let (tag, row_hash) = if major >= 11 {
            ("h64", "pg_catalog.hashtextextended(ROW(r.*)::text, 0)")
        } else {
            (
                "md5",
                "('x' || substr(md5(ROW(r.*)::text), 1, 16))::bit(64)::bigint",
            )
        };
        let sql = format!(
            "SELECT count(*), '{tag}:' || coalesce(sum({row_hash}), 0)::text FROM ONLY {quoted} r"
        );
        let row = client
            .query_one(&sql, &[])
            .map_err(|e| self.query_error(reading(), &e))?;
        Ok(PartDigest {
            count: row.get::<_, i64>(0) as u64,
            digest: row.get(1),
        })
    }

    /// The table's rows as `pg_dump` writes them (`COPY` of the same columns: not
    /// dropped, not generated, in column order), counted and digested here.
    fn copy_digest(
        &self,
        client: &mut Client,
        quoted: &str,
        oid: u32,
        major: u32,
        reading: &dyn Fn() -> String,
    ) -> Result<PartDigest, SourceError> {
        let not_generated = if major >= 12 {
            " AND attgenerated = ''"
        } else {
            ""
        };
        let columns: Option<String> = client
            .query_one(
                &format!(
                    "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute \
                     WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped{not_generated}"
                ),
                &[&oid],
            )
            .map_err(|e| self.query_error(reading(), &e))?
            .get(0);
        let columns = columns.map(|c| format!(" ({c})")).unwrap_or_default();
        let mut out = client
            .copy_out(&format!("COPY {quoted}{columns} TO STDOUT"))
            .map_err(|e| self.query_error(reading(), &e))?;
        let mut rows = CopyRows::default();
        loop {
            let buf = out
                .fill_buf()
                .map_err(|e| SourceError::io(&self.location(), reading(), e))?;
            if buf.is_empty() {
                break;
            }
            rows.feed(buf);
            let n = buf.len();
            out.consume(n);
        }
        Ok(rows.finish())
    }

    /// The sequence values the archive will restore, read from its table of contents
    /// (`prefix` is the start of the archive). `None` when the prefix cannot be read
    /// (a table of contents larger than the prefix): the caller keeps the live values.
    pub(super) fn dumped_sequences(
        &self,
        client: &mut Client,
        prefix: &[u8],
        scratch: &Path,
        server_major: u32,
    ) -> Result<Option<BTreeMap<String, PartDigest>>, SourceError> {
        let loc = self.location();
        let pg_restore = self.program("pg_restore", server_major)?;
        let archive = common::stage(
            self.inside.as_deref(),
            scratch,
            "drydock-toc-prefix.pgdump",
            prefix,
            &loc,
        )?;
        let archive_arg = archive.path().to_string();
        let list = match run_capture(self.spawn_tool(
            &pg_restore,
            &["--list".into(), archive_arg.clone()],
            false,
            true,
        )?) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(location = %loc, error = %e, "cannot read the dump's table of contents; sequence values are taken live");
                drop(archive);
                return Ok(None);
            }
        };
        let wanted: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with(';') && l.contains(" SEQUENCE SET "))
            .collect();
        let mut out = BTreeMap::new();
        if !wanted.is_empty() {
            let list_file = common::stage(
                self.inside.as_deref(),
                scratch,
                "drydock-toc-sequences.list",
                wanted.join("\n").as_bytes(),
                &loc,
            )?;
            let args = vec![
                "--use-list".to_string(),
                list_file.path().to_string(),
                "--file=-".into(),
                archive_arg,
            ];
            let sql = run_capture(self.spawn_tool(&pg_restore, &args, false, true)?);
            drop(list_file);
            let sql = match sql {
                Ok(sql) => sql,
                Err(e) => {
                    tracing::warn!(location = %loc, error = %e, "cannot read the dump's sequence values; they are taken live");
                    drop(archive);
                    return Ok(None);
                }
            };
            for (name_literal, value, called) in sql.lines().filter_map(parse_setval) {
                let row = client
                    .query_one(
                        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::text::regclass",
                        &[&name_literal],
                    )
                    .map_err(|e| self.query_error(format!("resolving sequence {name_literal}"), &e))?;
                let (schema, name): (String, String) = (row.get(0), row.get(1));
                out.insert(format!("seq:{schema}.{name}"), sequence_part(value, called));
            }
        }
        drop(archive);
        Ok(Some(out))
    }
}

pub(super) fn sequence_part(last_value: i64, is_called: bool) -> PartDigest {
    PartDigest {
        count: 0,
        digest: format!("{last_value}:{is_called}"),
    }
}

/// Parses `SELECT pg_catalog.setval('name', 42, true);` into its arguments.
pub(super) fn parse_setval(line: &str) -> Option<(String, i64, bool)> {
    let rest = line.trim().strip_prefix("SELECT pg_catalog.setval(")?;
    let rest = rest.strip_prefix('\'')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                name.push('\'');
            } else {
                end = Some(i + 1);
                break;
            }
        } else {
            name.push(c);
        }
    }
    let rest = rest[end?..].strip_prefix(',')?.trim_start();
    let rest = rest.strip_suffix(");")?;
    let (value, called) = rest.split_once(',')?;
    Some((
        name,
        value.trim().parse().ok()?,
        called.trim().parse().ok()?,
    ))
}

/// One line per schema object, free of OIDs and physical details; sorted by the caller.
/// Keeps `exclude_tables` ($1) out of the fingerprint, as `pg_dump --exclude-table`
/// keeps them out of the archive (the sequences they own stay in both).
pub(super) const NOT_EXCLUDED: &str =
    "NOT (format('%s.%s', n.nspname, c.relname) = ANY($1::text[]))";

pub(super) const DDL_QUERY: &str = "
WITH rel AS (
    SELECT c.oid, c.relkind, n.nspname, c.relname
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      AND NOT (format('%s.%s', n.nspname, c.relname) = ANY($1::text[]))
)
SELECT format('relation %I.%I %s', nspname, relname, relkind) FROM rel
UNION ALL
SELECT format('column %I.%I %s %I %s notnull=%s default=%s identity=%s generated=%s collation=%s',
              rel.nspname, rel.relname,
              lpad((row_number() OVER (PARTITION BY rel.oid ORDER BY a.attnum))::text, 5, '0'),
              a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
              coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity, a.attgenerated,
              coalesce((SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_catalog.pg_collation co
                        JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                        JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                        WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation), ''))
FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT format('constraint %I.%I %I %s', rel.nspname, rel.relname, co.conname, pg_catalog.pg_get_constraintdef(co.oid))
FROM rel JOIN pg_catalog.pg_constraint co ON co.conrelid = rel.oid
UNION ALL
SELECT format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))
FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
UNION ALL
SELECT format('view %I.%I %s', rel.nspname, rel.relname, pg_catalog.pg_get_viewdef(rel.oid))
FROM rel WHERE rel.relkind IN ('v', 'm')
UNION ALL
SELECT format('sequence %I.%I %s start=%s increment=%s min=%s max=%s cache=%s cycle=%s',
              rel.nspname, rel.relname, s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement,
              s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
FROM rel JOIN pg_catalog.pg_sequence s ON s.seqrelid = rel.oid
UNION ALL
SELECT format('trigger %s', pg_catalog.pg_get_triggerdef(tg.oid))
FROM rel JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = rel.oid AND NOT tg.tgisinternal
UNION ALL
SELECT format('function %s', pg_catalog.pg_get_functiondef(p.oid))
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('enum %s %s', t.oid::pg_catalog.regtype, string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder))
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
GROUP BY t.oid
UNION ALL
SELECT format('schema %I', n.nspname) FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::host_port;

    use crate::postgres::connect::parse_url;

    /// Backups made before the `x3:` digest hold the server's row digests: comparing
    /// with one computes those again (same rows, same digests), with a newer one the
    /// COPY digest; both count the same rows.
    #[test]
    fn older_backups_are_compared_with_the_digest_they_hold() {
        let pg = drydock_testkit::postgres::PgServer::start();
        pg.create_db("app");
        pg.psql(
            "app",
            "CREATE TABLE t (id int, note text); INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 300) g;",
        );
        let src = Postgres::new(drydock_domain::config::PostgresSource {
            name: None,
            priority: drydock_domain::Priority::Critical,
            url: pg.url("app"),
            password: Some(drydock_domain::Secret::from_env_value(
                "PGPASSWORD",
                pg.password(),
            )),
            exclude_tables: vec![],
            bin_dir: None,
            exec: false,
            exec_in: None,
        });
        let old = src.inspect_rows(RowDigest::Server).unwrap();
        assert!(old.fingerprint.parts["public.t"].digest.starts_with("h64:"));
        assert_eq!(RowDigest::of(Some(&old.fingerprint)), RowDigest::Server);
        assert_eq!(src.inspect_rows(RowDigest::Server).unwrap(), old);

        let new = src.inspect_rows(RowDigest::Copy).unwrap();
        assert!(new.fingerprint.parts["public.t"]
            .digest
            .starts_with(crate::proof::COPY_ROWS_TAG));
        assert_eq!(RowDigest::of(Some(&new.fingerprint)), RowDigest::Copy);
        assert_eq!(RowDigest::of(None), RowDigest::Copy);
        assert_eq!(old.counts, new.counts);
        assert_eq!(new.fingerprint.parts["public.t"].count, 300);
        // A changed row changes both kinds of digest.
        pg.psql("app", "UPDATE t SET note = 'changed' WHERE id = 7");
        for (kind, before) in [(RowDigest::Server, &old), (RowDigest::Copy, &new)] {
            let now = src.inspect_rows(kind).unwrap();
            assert_ne!(
                now.fingerprint.parts["public.t"], before.fingerprint.parts["public.t"],
                "{kind:?}"
            );
        }
    }

    #[test]
    fn setval_lines_parse() {
        assert_eq!(
            parse_setval("SELECT pg_catalog.setval('public.items_id_seq', 1234, true);"),
            Some(("public.items_id_seq".to_string(), 1234, true))
        );
        assert_eq!(
            parse_setval("SELECT pg_catalog.setval('public.\"it''s, odd\"', 1, false);"),
            Some(("public.\"it's, odd\"".to_string(), 1, false))
        );
        assert_eq!(parse_setval("SET search_path = '';"), None);
    }

    #[test]
    fn urls_parse_without_secrets() {
        let t = parse_url("postgres://app%40x@db.example:6543/my%20db").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.db.as_str()),
            ("db.example", 6543, "app@x", "my db")
        );
        let t = parse_url("postgresql://[::1]/app").unwrap();
        assert_eq!(host_port(&t), "[::1]:5432");
        assert_eq!(t.user, "postgres");
        assert!(parse_url("postgres://app@host:5432/").is_err());
        assert!(parse_url("postgres://app@host/db?sslmode=require").is_err());
        assert!(parse_url("postgres://app@host/db?sslmode=disable").is_ok());
    }
}
