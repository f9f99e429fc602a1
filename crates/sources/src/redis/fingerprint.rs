//! The fingerprint of an instance: per logical database the key count and a digest
//! over every key's type, value and TTL class, read with `SCAN` so a large instance
//! is never blocked, the pages of keys read on [`READERS`] connections at once.

use std::collections::{BTreeMap, HashSet};

use drydock_domain::{Fingerprint, PartDigest, RowSetDigest};
use redis::{Connection, Value};
use sha2::{Digest, Sha256};

/// The counts and fingerprint of an instance, as a manifest holds them.
pub(super) type Described = (BTreeMap<String, u64>, Fingerprint);

/// Keys per SCAN page and per pipeline.
pub(super) const SCAN_COUNT: usize = 1000;

/// Non-empty databases and their key counts, from `INFO keyspace`.
pub(super) fn keyspace(con: &mut Connection) -> redis::RedisResult<Vec<(u32, u64)>> {
    let info: String = redis::cmd("INFO").arg("keyspace").query(con)?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some(rest) = line.trim().strip_prefix("db") else {
            continue;
        };
        let Some((idx, fields)) = rest.split_once(':') else {
            continue;
        };
        let Ok(idx) = idx.parse::<u32>() else {
            continue;
        };
        let keys = fields
            .split(',')
            .find_map(|f| f.strip_prefix("keys="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        out.push((idx, keys));
    }
    out.sort();
    Ok(out)
}

/// How many connections read a database's keys at once: the server answers one
/// connection's pipeline while drydock hashes another's replies, so two keep both the
/// (single-threaded) server and drydock busy on a 2-core machine.
pub(super) const READERS: usize = 2;

/// Opens another connection to the same server (for [`READERS`]).
pub type Connector<'a> = dyn Fn() -> redis::RedisResult<Connection> + Sync + 'a;

/// SCANs database `db` on `con` and hands every page of keys (each key once: SCAN may
/// return a key twice) to one of [`READERS`] threads. Each thread's state comes from
/// `start` (its own connections, already on `db`) and handles its pages with `page`;
/// the states are returned. The first error stops the scan and is returned.
pub(super) fn scan_fanned_out<S: Send, E: Send>(
    con: &mut Connection,
    scan_error: impl Fn(redis::RedisError) -> E,
    start: impl Fn() -> Result<S, E> + Sync,
    page: impl Fn(&mut S, Vec<Vec<u8>>) -> Result<(), E> + Sync,
) -> Result<Vec<S>, E> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(READERS * 2);
    // Shared by the readers only, so that when all of them have stopped the channel
    // closes and the scan stops sending.
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let (start, page) = (&start, &page);
    std::thread::scope(move |s| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                s.spawn(move || {
                    let mut state = start()?;
                    loop {
                        // Held only while waiting: the page is handled after the lock.
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(keys) = next else {
                            return Ok(state);
                        };
                        page(&mut state, keys)?;
                    }
                })
            })
            .collect();
        drop(rx);
        let mut seen: HashSet<u128> = HashSet::new();
        let mut cursor: u64 = 0;
        let scanned = loop {
            let reply: redis::RedisResult<(u64, Vec<Vec<u8>>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(con);
            let (next, keys) = match reply {
                Ok(r) => r,
                Err(e) => break Err(scan_error(e)),
            };
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| {
                    let h = Sha256::digest(k);
                    seen.insert(u128::from_be_bytes(h[..16].try_into().expect("16 bytes")))
                })
                .collect();
            // A send fails only when every reader has stopped (on an error, below).
            if !keys.is_empty() && tx.send(keys).is_err() {
                break Ok(());
            }
            cursor = next;
            if cursor == 0 {
                break Ok(());
            }
        };
        drop(tx);
        let mut states = Vec::with_capacity(READERS);
        let mut failed = scanned.err();
        for r in readers {
            match r.join().expect("a key reader panicked") {
                Ok(state) => states.push(state),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(states),
        }
    })
}

/// Counts (`keys`, `expiring_keys`, `dbs`) and the fingerprint of a whole instance: a
/// part per non-empty database, `db0`, `db1` ..., over (key, type, value digest) of its
/// keys without expiry, and a part `dbN:expiring` for keys with one. Keys with an expiry
/// may legitimately be gone by the time a backup is restored (loading an RDB drops
/// expired keys), so that part is advisory when a restore is verified. `connect` opens
/// the connections that read the keys.
pub fn fingerprint_instance(
    con: &mut Connection,
    connect: &Connector<'_>,
) -> redis::RedisResult<(BTreeMap<String, u64>, Fingerprint)> {
    let mut dbs = Vec::new();
    for (db, _) in keyspace(con)? {
        redis::cmd("SELECT").arg(db).query::<Value>(con)?;
        let (persistent, expiring) = digest_db(con, db, connect)?;
        dbs.push((db, persistent, expiring));
    }
    redis::cmd("SELECT").arg(0).query::<Value>(con)?;
    Ok(instance_fingerprint(dbs))
}

/// The counts and fingerprint of an instance from each database's digests (without
/// expiry, with expiry), however they were read.
pub(super) fn instance_fingerprint(dbs: Vec<(u32, PartDigest, PartDigest)>) -> Described {
    let mut parts = BTreeMap::new();
    let (mut persistent_total, mut expiring_total) = (0u64, 0u64);
    let mut non_empty = 0u64;
    for (db, persistent, expiring) in dbs {
        if persistent.count + expiring.count > 0 {
            non_empty += 1;
        }
        if persistent.count > 0 {
            persistent_total += persistent.count;
            parts.insert(format!("db{db}"), persistent);
        }
        if expiring.count > 0 {
            expiring_total += expiring.count;
            parts.insert(
                format!("db{db}{}", drydock_domain::fingerprint::ADVISORY_SUFFIX),
                expiring,
            );
        }
    }
    let mut counts = BTreeMap::new();
    counts.insert("keys".to_string(), persistent_total);
    counts.insert(
        drydock_domain::fingerprint::ADVISORY_COUNT.to_string(),
        expiring_total,
    );
    counts.insert("dbs".to_string(), non_empty);
    (counts, Fingerprint::from_parts(parts))
}

/// Digests of one database's keys (`con` is on it): (without expiry, with expiry).
pub(super) fn digest_db(
    con: &mut Connection,
    db: u32,
    connect: &Connector<'_>,
) -> redis::RedisResult<(PartDigest, PartDigest)> {
    let readers = scan_fanned_out(
        con,
        |e| e,
        || {
            let mut reader = connect()?;
            redis::cmd("SELECT").arg(db).query::<Value>(&mut reader)?;
            Ok((reader, RowSetDigest::default(), RowSetDigest::default()))
        },
        |(reader, persistent, expiring), keys| digest_keys(reader, &keys, persistent, expiring),
    )?;
    let mut persistent = RowSetDigest::default();
    let mut expiring = RowSetDigest::default();
    for (_, p, e) in readers {
        persistent.merge(p);
        expiring.merge(e);
    }
    Ok((persistent.finish(), expiring.finish()))
}

/// Adds one page of keys to the digests: their type and expiry, then their values.
fn digest_keys(
    con: &mut Connection,
    keys: &[Vec<u8>],
    persistent: &mut RowSetDigest,
    expiring: &mut RowSetDigest,
) -> redis::RedisResult<()> {
    let mut meta = redis::pipe();
    for k in keys {
        meta.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
    }
    let meta: Vec<Value> = meta.query(con)?;
    let mut present = Vec::with_capacity(keys.len());
    let mut values = redis::pipe();
    for (k, pair) in keys.iter().zip(meta.chunks(2)) {
        let ty = match &pair[0] {
            Value::SimpleString(s) => s.clone(),
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Okay => "ok".into(),
            _ => continue,
        };
        let pttl = match &pair[1] {
            Value::Int(t) => *t,
            _ => -1,
        };
        if ty == "none" || pttl == -2 {
            continue; // expired or deleted meanwhile
        }
        match ty.as_str() {
            "string" => values.cmd("GET").arg(k),
            "list" => values.cmd("LRANGE").arg(k).arg(0).arg(-1),
            "set" => values.cmd("SMEMBERS").arg(k),
            "zset" => values.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES"),
            "hash" => values.cmd("HGETALL").arg(k),
            "stream" => values.cmd("XRANGE").arg(k).arg("-").arg("+"),
            _ => values.cmd("DUMP").arg(k),
        };
        present.push((k, ty, pttl >= 0));
    }
    if present.is_empty() {
        return Ok(());
    }
    let vals: Vec<Value> = values.query(con)?;
    let mut row = Vec::with_capacity(128);
    for ((k, ty, expires), v) in present.into_iter().zip(vals) {
        if matches!(v, Value::Nil) {
            continue; // vanished between TYPE and read
        }
        add_key(
            &mut row,
            k,
            &ty,
            expires,
            &value_digest(&ty, v),
            persistent,
            expiring,
        );
    }
    Ok(())
}

/// Adds one key's row (key, type, expiry class, value digest) to the digest of its
/// class; `row` is a reusable buffer. The RDB reader (`rdb_parse`) adds its keys here
/// too, so a file and a live server digest alike.
pub(super) fn add_key(
    row: &mut Vec<u8>,
    key: &[u8],
    ty: &str,
    expires: bool,
    value: &[u8; 32],
    persistent: &mut RowSetDigest,
    expiring: &mut RowSetDigest,
) {
    row.clear();
    row.extend_from_slice(&(key.len() as u64).to_le_bytes());
    row.extend_from_slice(key);
    row.extend_from_slice(ty.as_bytes());
    row.push(0);
    row.push(u8::from(expires));
    row.extend_from_slice(value);
    if expires {
        expiring.add(row);
    } else {
        persistent.add(row);
    }
}

/// SHA-256 of a value read logically; sets and hashes are sorted first.
pub(super) fn value_digest(ty: &str, v: Value) -> [u8; 32] {
    match (ty, v) {
        ("set", Value::Array(items)) | ("set", Value::Set(items)) => {
            set_digest(items.into_iter().map(bytes_of).collect())
        }
        ("hash", Value::Array(items)) => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                pairs.push((bytes_of(f), bytes_of(v)));
            }
            hash_digest(pairs)
        }
        ("hash", Value::Map(items)) => hash_digest(
            items
                .into_iter()
                .map(|(f, v)| (bytes_of(f), bytes_of(v)))
                .collect(),
        ),
        (_, v) => {
            let mut h = Sha256::new();
            feed_value(&mut h, &v);
            h.finalize().into()
        }
    }
}

/// The digest of a set's members, in any order.
pub(super) fn set_digest(mut members: Vec<Vec<u8>>) -> [u8; 32] {
    members.sort_unstable();
    let mut h = Sha256::new();
    h.update(b"S");
    for m in &members {
        feed_bytes(&mut h, m);
    }
    h.finalize().into()
}

/// The digest of a hash's (field, value) pairs, in any order.
pub(super) fn hash_digest(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> [u8; 32] {
    pairs.sort_unstable();
    let mut h = Sha256::new();
    h.update(b"H");
    for (f, v) in &pairs {
        feed_bytes(&mut h, f);
        feed_bytes(&mut h, v);
    }
    h.finalize().into()
}

/// The digest of a reply that is an array of bulk strings (LRANGE, ZRANGE
/// WITHSCORES), as [`feed_value`] encodes it.
pub(super) fn bulk_array_digest<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"A");
    h.update((items.len() as u64).to_le_bytes());
    for i in items {
        h.update(b"B");
        feed_bytes(&mut h, i);
    }
    h.finalize().into()
}

/// The digest of a GET reply, as [`feed_value`] encodes it.
pub(super) fn string_digest(value: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"B");
    feed_bytes(&mut h, value);
    h.finalize().into()
}

pub(super) fn bytes_of(v: Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        other => {
            let mut h = Sha256::new();
            feed_value(&mut h, &other);
            h.finalize().to_vec()
        }
    }
}

pub(super) fn feed_bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

/// A canonical, unambiguous encoding of a reply tree.
pub(super) fn feed_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Nil => h.update(b"N"),
        Value::Int(i) => {
            h.update(b"I");
            h.update(i.to_le_bytes());
        }
        Value::BulkString(b) => {
            h.update(b"B");
            feed_bytes(h, b);
        }
        Value::SimpleString(s) => {
            h.update(b"B");
            feed_bytes(h, s.as_bytes());
        }
        Value::Okay => h.update(b"O"),
        Value::Array(items) | Value::Set(items) => {
            h.update(b"A");
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                feed_value(h, i);
            }
        }
        Value::Map(pairs) => {
            h.update(b"M");
            h.update((pairs.len() as u64).to_le_bytes());
            for (k, v) in pairs {
                feed_value(h, k);
                feed_value(h, v);
            }
        }
        Value::Double(d) => {
            h.update(b"D");
            h.update(d.to_bits().to_le_bytes());
        }
        Value::Boolean(b) => {
            h.update(b"T");
            h.update([u8::from(*b)]);
        }
        other => {
            h.update(b"?");
            feed_bytes(h, format!("{other:?}").as_bytes());
        }
    }
}
