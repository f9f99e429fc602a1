//! The fingerprint of a database, computed in the dump's snapshot: rows and a row-hash
//! sum per base table, the database's defaults (`schema:database`) and a digest of
//! the schema.

use std::collections::BTreeMap;

use drydock_domain::{Fingerprint, PartDigest};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::common::ddl_part;
use crate::{Inspection, SourceError};

use super::connect::{quote_ident, Mysql};

impl Mysql {
    pub(super) fn fingerprint(&self, conn: &mut Conn, db: &str) -> Result<Inspection, SourceError> {
        let tables: Vec<(String, String, Option<String>)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (db,),
            )
            .map_err(|e| self.query_error("listing tables", &e))?;
        let mut parts = BTreeMap::new();
        let mut rows_total = 0u64;
        let mut table_count = 0u64;
        let mut ddl = Vec::new();
        for (name, kind, _engine) in &tables {
            let quoted = format!("{}.{}", quote_ident(db), quote_ident(name));
            // Tables answer with two columns, views with four: the text is the second.
            let create: Option<mysql::Row> = conn
                .query_first(format!("SHOW CREATE TABLE {quoted}"))
                .map_err(|e| self.query_error(format!("reading the definition of {name}"), &e))?;
            if let Some(text) = create
                .and_then(|mut r| r.take_opt::<String, usize>(1))
                .and_then(Result::ok)
            {
                ddl.push(format!("table {name} {}", strip_auto_increment(&text)));
            }
            if kind != "BASE TABLE" && kind != "SYSTEM VERSIONED" {
                continue;
            }
            let columns: Vec<(String, String)> = conn
                .exec(
                    "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                    (db, name),
                )
                .map_err(|e| self.query_error(format!("listing the columns of {name}"), &e))?;
            let exprs: Vec<String> = columns
                .iter()
                .map(|(col, ty)| {
                    let bytes = format!("CAST({} AS BINARY)", quote_ident(col));
                    // Long values are hashed on their own so a row's text never grows
                    // past max_allowed_packet (CONCAT would turn it into NULL).
                    if is_long_type(ty) {
                        format!("IFNULL(MD5({bytes}), '\\\\N')")
                    } else {
                        format!("IFNULL(HEX({bytes}), '\\\\N')")
                    }
                })
                .collect();
            let sql = format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {})), 1, 16), 16, 10) AS DECIMAL(65,0))), 0) AS CHAR) FROM {quoted}",
                exprs.join(", ")
            );
            let (count, sum): (u64, String) = conn
                .query_first(&sql)
                .map_err(|e| self.query_error(format!("reading table {name}"), &e))?
                .unwrap_or((0, "0".into()));
            rows_total += count;
            table_count += 1;
            parts.insert(
                name.clone(),
                PartDigest {
                    count,
                    digest: format!("md5:{sum}"),
                },
            );
        }

        // Triggers, routines and events, one line each.
        let others: Vec<Option<String>> = conn
            .exec(
                "SELECT CONCAT_WS(' ', 'trigger', TRIGGER_NAME, 'on', EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, \
                                  ACTION_ORDER, DEFINER, ACTION_STATEMENT) \
                 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
                 UNION ALL \
                 SELECT CONCAT_WS(' ', 'routine', ROUTINE_TYPE, ROUTINE_NAME, IFNULL(DTD_IDENTIFIER, ''), DEFINER, \
                                  IFNULL(ROUTINE_DEFINITION, '')) \
                 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
                 UNION ALL \
                 SELECT CONCAT_WS(' ', 'event', EVENT_NAME, STATUS, IFNULL(EVENT_DEFINITION, '')) \
                 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (db, db, db),
            )
            .map_err(|e| self.query_error("listing triggers, routines and events", &e))?;
        ddl.extend(others.into_iter().flatten());
        parts.insert("schema:ddl".to_string(), ddl_part(ddl));
        // The database's own defaults decide what later CREATE TABLEs get (a utf8mb4
        // database restored as latin1 rejects emoji in every new table).
        let defaults: Option<(String, String)> = conn
            .exec_first(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .map_err(|e| self.query_error("reading the database's character set", &e))?;
        if let Some((charset, collation)) = defaults {
            parts.insert(
                DATABASE_PART.to_string(),
                PartDigest {
                    count: 0,
                    digest: format!("{charset} {collation}"),
                },
            );
        }

        let mut counts = BTreeMap::new();
        counts.insert("tables".to_string(), table_count);
        counts.insert("rows".to_string(), rows_total);
        Ok(Inspection {
            counts,
            fingerprint: Fingerprint::from_parts(parts),
        })
    }
}

/// The fingerprint part holding the database's default character set and collation.
pub(super) const DATABASE_PART: &str = "schema:database";

/// Types whose values can be long: hashed per value instead of hex-encoded.
pub(super) fn is_long_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "json"
            | "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
    )
}

/// `SHOW CREATE TABLE` without the ` AUTO_INCREMENT=N` table option (a counter, not
/// the schema).
pub(super) fn strip_auto_increment(create: &str) -> String {
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
            continue;
        }
        out.push_str(&rest[..i]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
