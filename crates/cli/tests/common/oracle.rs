//! Oracles drydock did not write, to judge live data before and after: `pg_dump`,
//! `mariadb-dump` + `CHECKSUM TABLE`, Redis `DEBUG DIGEST`, `sqlite3 .dump`, and an
//! `lstat` walk hashing every file. Each returns a digest line, so a failing
//! comparison stays readable.

use std::path::Path;
use std::process::Command;

use drydock_testkit::mariadb::MariaDb;
use drydock_testkit::postgres::PgServer;
use drydock_testkit::redis::RedisServer;

pub fn pg_dump(pg: &PgServer, db: &str) -> String {
    let out = Command::new(drydock_testkit::program("pg_dump"))
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U"])
        .arg(pg.superuser())
        .args(["--no-owner", "--format=plain", db])
        .env("PGPASSWORD", pg.password())
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {}", super::text(&out));
    // `\restrict KEY` lines carry a random key per dump.
    let text: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .map(|l| format!("{l}\n"))
        .collect();
    digest_of(&text)
}

/// Oracle outputs are compared by digest, so a failure message stays readable.
pub fn digest_of(text: &str) -> String {
    use sha2::Digest;
    format!(
        "{} bytes, sha256 {}",
        text.len(),
        hex::encode(sha2::Sha256::digest(text))
    )
}

/// `mariadb-dump` of the database plus `CHECKSUM TABLE` of every table.
pub fn mariadb_oracle(db: &MariaDb, database: &str) -> String {
    let out = Command::new(drydock_testkit::program("mariadb-dump"))
        .args(["-h", "127.0.0.1", "-P", &db.port().to_string(), "-u"])
        .arg(db.user())
        .args([
            "--skip-dump-date",
            "--skip-comments",
            "--routines",
            database,
        ])
        .env("MYSQL_PWD", db.password())
        .output()
        .unwrap();
    assert!(out.status.success(), "mariadb-dump: {}", super::text(&out));
    let tables = db.exec(
        database,
        &format!("SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"),
    );
    let checksums = db.exec(database, &format!("CHECKSUM TABLE {tables}"));
    digest_of(&format!(
        "{}\n{checksums}",
        String::from_utf8_lossy(&out.stdout)
    ))
}

pub fn redis_digest(redis: &RedisServer) -> String {
    let out = redis.cli(&["DEBUG", "DIGEST"]);
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(digest.len(), 40, "DEBUG DIGEST: {}", super::text(&out));
    digest
}

pub fn sqlite_dump(path: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(out.status.success(), "sqlite3: {}", super::text(&out));
    digest_of(&String::from_utf8(out.stdout).unwrap())
}

/// Every entry under `dir`: path, type, mode, and a content hash for files.
pub fn lstat_walk(dir: &Path) -> String {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let content = if m.is_file() {
            hex::encode(sha2::Sha256::digest(std::fs::read(e.path()).unwrap()))
        } else {
            String::new()
        };
        lines.push(format!(
            "{} {:o} {} {content}",
            e.path().strip_prefix(dir).unwrap().display(),
            m.mode(),
            m.size()
        ));
    }
    digest_of(&lines.join("\n"))
}
