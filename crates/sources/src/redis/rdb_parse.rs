//! Reading an RDB file without a server: the counts and fingerprint of the keys it
//! holds, digested exactly as [`super::fingerprint`] digests a live server's (each
//! value as the read command would reply it), so a backup is fingerprinted from its
//! stored bytes while they are stored, with no throwaway `redis-server` loading it.
//!
//! The whole file is parsed, every encoding walked to its end, and the trailing CRC-64
//! checked (as `redis-server` does when it loads), so a truncated or damaged file is
//! refused. Streams, module types and the oldest encodings (zipmap) are not read here:
//! [`RdbError::Unsupported`] tells the caller to load the file into a throwaway server
//! instead. Keys already expired are skipped, as a server loading the file drops them.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use drydock_domain::{PartDigest, RowSetDigest};

use super::fingerprint::{
    add_key, bulk_array_digest, hash_digest, instance_fingerprint, set_digest, string_digest,
    Described,
};

/// The newest RDB format read here (Redis 7.4 writes 12).
const NEWEST_VERSION: u32 = 12;

/// Why an RDB was not fingerprinted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RdbError {
    /// The file holds something this reader does not read (a stream, a module type, a
    /// newer format); a throwaway server can still read it.
    Unsupported(String),
    /// The file is not a whole, valid RDB.
    Damaged(String),
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdbError::Unsupported(m) => write!(f, "not read without a server: {m}"),
            RdbError::Damaged(m) => write!(f, "the RDB is damaged: {m}"),
        }
    }
}

type Result<T> = std::result::Result<T, RdbError>;

fn damaged(what: impl Into<String>) -> RdbError {
    RdbError::Damaged(what.into())
}

/// Counts and fingerprint of the RDB read from `input`, keys expiring before `now_ms`
/// (Unix milliseconds) left out.
pub(super) fn fingerprint_rdb(input: impl Read, now_ms: i64) -> Result<Described> {
    let mut dbs: BTreeMap<u32, (RowSetDigest, RowSetDigest)> = BTreeMap::new();
    let mut row = Vec::with_capacity(128);
    walk(input, now_ms, false, |key| {
        let (persistent, expiring) = dbs.entry(key.db).or_default();
        add_key(
            &mut row,
            &key.key,
            key.type_name,
            key.expires_at_ms.is_some(),
            &key.digest,
            persistent,
            expiring,
        );
        Ok::<(), std::convert::Infallible>(())
    })
    .map_err(|stop| match stop {
        Stop::Rdb(e) => e,
        Stop::Visit(never) => match never {},
    })?;
    let parts: Vec<(u32, PartDigest, PartDigest)> = dbs
        .into_iter()
        .map(|(db, (p, e))| (db, p.finish(), e.finish()))
        .collect();
    Ok(instance_fingerprint(parts))
}

/// One key of an RDB.
pub(super) struct RdbKey {
    pub(super) db: u32,
    pub(super) key: Vec<u8>,
    pub(super) expires_at_ms: Option<i64>,
    type_name: &'static str,
    digest: [u8; 32],
    /// The `RESTORE` payload of the value (only when asked for): its type and bytes as
    /// the file holds them, the file's RDB version and the CRC-64 of both, as `DUMP`
    /// writes it.
    pub(super) payload: Vec<u8>,
}

/// Why a walk over an RDB stopped early.
pub(super) enum Stop<E> {
    Rdb(RdbError),
    Visit(E),
}

impl<E> From<RdbError> for Stop<E> {
    fn from(e: RdbError) -> Self {
        Stop::Rdb(e)
    }
}

/// Every key of the RDB read from `input`, in file order, handed to `visit` (keys
/// expiring before `now_ms` left out); with `payloads`, each with its `RESTORE`
/// payload. The file's checksum is checked after the last key.
pub(super) fn walk<E>(
    input: impl Read,
    now_ms: i64,
    payloads: bool,
    mut visit: impl FnMut(RdbKey) -> std::result::Result<(), E>,
) -> std::result::Result<(), Stop<E>> {
    let mut r = Input::new(input);
    let head = r.exact(9)?;
    if &head[..5] != b"REDIS" {
        return Err(damaged("no REDIS header").into());
    }
    let version: u16 = std::str::from_utf8(&head[5..])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| damaged("the header's version is not a number"))?;
    if u32::from(version) > NEWEST_VERSION {
        return Err(RdbError::Unsupported(format!("RDB format version {version}")).into());
    }
    let mut db = 0u32;
    let mut expiry: Option<i64> = None;
    loop {
        let op = r.byte()?;
        match op {
            0xFF => break,
            0xFE => {
                db = u32::try_from(r.length()?).map_err(|_| damaged("database number"))?;
            }
            0xFD => expiry = Some(i64::from(u32::from_le_bytes(r.array()?)) * 1000),
            0xFC => expiry = Some(i64::from_le_bytes(r.array()?)),
            0xFB => {
                r.length()?;
                r.length()?;
            }
            0xFA => {
                r.string()?;
                r.string()?;
            }
            0xF9 => {
                r.byte()?;
            }
            0xF8 => {
                r.length()?;
            }
            0xF5 => {
                r.string()?; // a function library's code: not part of the keyspace
            }
            0xF4 => {
                // slot info (cluster): slot, its size, its expires' size
                r.length()?;
                r.length()?;
                r.length()?;
            }
            0xF6 | 0xF7 => {
                return Err(RdbError::Unsupported(format!(
                    "the RDB holds module or early function data (opcode {op})"
                ))
                .into())
            }
            ty => {
                let key = r.string()?;
                if payloads {
                    r.recording = Some(vec![ty]);
                }
                let (type_name, digest) = r.value(ty)?;
                let payload = match r.recording.take() {
                    Some(mut raw) => {
                        raw.extend_from_slice(&version.to_le_bytes());
                        let crc = CRC64.checksum(&raw);
                        raw.extend_from_slice(&crc.to_le_bytes());
                        raw
                    }
                    None => Vec::new(),
                };
                let expires_at_ms = expiry.take();
                if expires_at_ms.is_some_and(|t| t < now_ms) {
                    continue; // a server loading the file drops it
                }
                visit(RdbKey {
                    db,
                    key,
                    expires_at_ms,
                    type_name,
                    digest,
                    payload,
                })
                .map_err(Stop::Visit)?;
            }
        }
    }
    let computed = r.crc.get();
    let stored = u64::from_le_bytes(r.array()?);
    // Version 5 added the checksum; 0 means the server was told not to compute it.
    if version >= 5 && stored != 0 && stored != computed {
        return Err(damaged(format!(
            "its CRC-64 is {computed:016x}, the file says {stored:016x}"
        ))
        .into());
    }
    let mut rest = [0u8; 1];
    if r.inner.read(&mut rest).map_err(read_error)? != 0 {
        return Err(damaged("bytes after the end of the RDB").into());
    }
    Ok(())
}

fn read_error(e: std::io::Error) -> RdbError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        damaged("it ends early (truncated)")
    } else {
        damaged(format!("reading it failed: {e}"))
    }
}

/// The file, read once, its CRC-64 (Redis' Jones polynomial) kept as it goes.
struct Input<R: Read> {
    inner: BufReader<R>,
    crc: Crc,
    /// Every byte read, while a value's payload is wanted.
    recording: Option<Vec<u8>>,
}

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// The running CRC-64 of what was read.
struct Crc(crc::Digest<'static, u64>);

impl Crc {
    fn get(&self) -> u64 {
        self.0.clone().finalize()
    }
}

/// A value's member, as the read command replies it: bytes or an integer's decimal.
type Member = Vec<u8>;

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner: BufReader::with_capacity(1 << 20, inner),
            crc: Crc(CRC64.digest()),
            recording: None,
        }
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(read_error)?;
        if buf.len() != n {
            return Err(damaged("it ends early (truncated)"));
        }
        self.crc.0.update(&buf);
        if let Some(rec) = &mut self.recording {
            rec.extend_from_slice(&buf);
        }
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(read_error)?;
        self.crc.0.update(&buf);
        if let Some(rec) = &mut self.recording {
            rec.extend_from_slice(&buf);
        }
        Ok(buf)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A length, or Err for the special string encodings (`Ok(Err(kind))`).
    fn length_or_special(&mut self) -> Result<std::result::Result<u64, u8>> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3F)),
            1 => Ok((u64::from(b & 0x3F) << 8) | u64::from(self.byte()?)),
            2 if b == 0x80 => Ok(u64::from(u32::from_be_bytes(self.array()?))),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.array()?)),
            2 => return Err(damaged(format!("unknown length encoding {b:#x}"))),
            _ => Err(b & 0x3F),
        })
    }

    fn length(&mut self) -> Result<u64> {
        self.length_or_special()?
            .map_err(|_| damaged("a string encoding where a length belongs"))
    }

    /// A count of items, bounded so that a damaged length cannot ask for the machine.
    fn count(&mut self) -> Result<usize> {
        let n = self.length()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= u32::MAX as usize)
            .ok_or_else(|| damaged(format!("an impossible item count {n}")))
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        match self.length_or_special()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| damaged("string length"))?;
                self.exact(n)
            }
            Err(0) => Ok(i64::from(self.array::<1>()?[0] as i8)
                .to_string()
                .into_bytes()),
            Err(1) => Ok(i64::from(i16::from_le_bytes(self.array()?))
                .to_string()
                .into_bytes()),
            Err(2) => Ok(i64::from(i32::from_le_bytes(self.array()?))
                .to_string()
                .into_bytes()),
            Err(3) => {
                let compressed = self.length()? as usize;
                let plain = self.length()? as usize;
                let data = self.exact(compressed)?;
                lzf_decompress(&data, plain)
            }
            Err(k) => Err(damaged(format!("unknown string encoding {k}"))),
        }
    }

    /// A zset score stored as text (the oldest zset type): length 253/254/255 for
    /// NaN/+inf/-inf.
    fn text_double(&mut self) -> Result<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_double(&self.exact(usize::from(n))?),
        }
    }

    /// One value of object type `ty`: its type name and digest.
    fn value(&mut self, ty: u8) -> Result<(&'static str, [u8; 32])> {
        Ok(match ty {
            0 => ("string", string_digest(&self.string()?)),
            1 => {
                let n = self.count()?;
                let items = (0..n).map(|_| self.string()).collect::<Result<Vec<_>>>()?;
                ("list", list_digest(&items))
            }
            2 => {
                let n = self.count()?;
                let items = (0..n).map(|_| self.string()).collect::<Result<Vec<_>>>()?;
                ("set", set_digest(items))
            }
            3 | 5 => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    let member = self.string()?;
                    let score = if ty == 5 {
                        f64::from_le_bytes(self.array()?)
                    } else {
                        self.text_double()?
                    };
                    items.push((member, score));
                }
                ("zset", zset_digest(items))
            }
            4 => {
                let n = self.count()?;
                let mut pairs = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    pairs.push((self.string()?, self.string()?));
                }
                ("hash", hash_digest(pairs))
            }
            10 => ("list", list_digest(&ziplist(&self.string()?)?)),
            11 => ("set", set_digest(intset(&self.string()?)?)),
            12 => ("zset", zset_digest(scored(ziplist(&self.string()?)?)?)),
            13 => ("hash", hash_digest(paired(ziplist(&self.string()?)?)?)),
            14 | 18 => {
                let nodes = self.count()?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    // Quicklist 2 names each node's container: 1 plain, 2 listpack.
                    let container = if ty == 18 { self.length()? } else { 2 };
                    let blob = self.string()?;
                    match (ty, container) {
                        (18, 1) => items.push(blob),
                        (18, 2) => items.extend(listpack(&blob)?),
                        (14, _) => items.extend(ziplist(&blob)?),
                        _ => return Err(damaged(format!("quicklist container {container}"))),
                    }
                }
                ("list", list_digest(&items))
            }
            16 => ("hash", hash_digest(paired(listpack(&self.string()?)?)?)),
            17 => ("zset", zset_digest(scored(listpack(&self.string()?)?)?)),
            20 => ("set", set_digest(listpack(&self.string()?)?)),
            9 => {
                return Err(RdbError::Unsupported(
                    "a hash in the zipmap encoding".into(),
                ))
            }
            15 | 19 | 21 => return Err(RdbError::Unsupported("a stream".into())),
            6 | 7 => return Err(RdbError::Unsupported("a module type".into())),
            other => {
                return Err(RdbError::Unsupported(format!("object type {other}")));
            }
        })
    }
}

fn list_digest(items: &[Member]) -> [u8; 32] {
    bulk_array_digest(items.iter().map(Vec::as_slice))
}

/// `ZRANGE key 0 -1 WITHSCORES`: by score, ties by member, each score as the server
/// formats it.
fn zset_digest(mut items: Vec<(Member, f64)>) -> [u8; 32] {
    // Not total_cmp: the server orders -0 and +0 as equal scores, by member.
    items.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    let scores: Vec<Vec<u8>> = items.iter().map(|(_, s)| reply_double(*s)).collect();
    let flat: Vec<&[u8]> = items
        .iter()
        .zip(&scores)
        .flat_map(|((m, _), s)| [m.as_slice(), s.as_slice()])
        .collect();
    bulk_array_digest(flat.into_iter())
}

/// A double as a RESP2 reply carries it: `inf`, `-inf`, else C's `%.17g`.
pub(super) fn reply_double(d: f64) -> Vec<u8> {
    if d.is_infinite() {
        return if d > 0.0 {
            b"inf".to_vec()
        } else {
            b"-inf".to_vec()
        };
    }
    if d.is_nan() {
        return b"nan".to_vec();
    }
    // 17 significant digits, correctly rounded (as glibc's printf): d.dddddddddddddddde±X
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e}'s exponent is a number");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (-4..17).contains(&exp) {
        // Fixed notation with 17 significant digits, trailing zeros dropped.
        let (int, frac) = if exp >= 0 {
            let split = (exp + 1) as usize;
            (digits[..split].to_string(), digits[split..].to_string())
        } else {
            ("0".to_string(), "0".repeat((-exp - 1) as usize) + &digits)
        };
        out.push_str(&int);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str(&digits[..1]);
        let frac = digits[1..].trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out.into_bytes()
}

fn parse_double(text: &[u8]) -> Result<f64> {
    let s = std::str::from_utf8(text).map_err(|_| damaged("a score that is not text"))?;
    match s {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| damaged(format!("a score that is not a number: {s:?}"))),
    }
}

/// Members taken two at a time as (member, score).
fn scored(items: Vec<Member>) -> Result<Vec<(Member, f64)>> {
    if !items.len().is_multiple_of(2) {
        return Err(damaged("a sorted set with a member but no score"));
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        out.push((m, parse_double(&s)?));
    }
    Ok(out)
}

/// Items taken two at a time as (field, value).
fn paired(items: Vec<Member>) -> Result<Vec<(Member, Member)>> {
    if !items.len().is_multiple_of(2) {
        return Err(damaged("a hash with a field but no value"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        out.push((f, v));
    }
    Ok(out)
}

/// A slice walked front to back, every read bounded.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| damaged(format!("a {} overruns its bytes", self.what)))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
}

fn int_member(v: i64) -> Member {
    v.to_string().into_bytes()
}

/// The entries of a listpack (Redis 7 small lists, hashes, sets, sorted sets).
fn listpack(blob: &[u8]) -> Result<Vec<Member>> {
    let mut c = Cursor {
        data: blob,
        at: 0,
        what: "listpack",
    };
    let total = u32::from_le_bytes(c.le()?) as usize;
    let count = u16::from_le_bytes(c.le()?);
    if total != blob.len() {
        return Err(damaged("a listpack whose size does not match its header"));
    }
    let mut out = Vec::new();
    loop {
        let start = c.at;
        let b = c.byte()?;
        let member = match b {
            0xFF => break,
            _ if b & 0x80 == 0 => int_member(i64::from(b & 0x7F)),
            _ if b & 0xC0 == 0x80 => c.take(usize::from(b & 0x3F))?.to_vec(),
            _ if b & 0xE0 == 0xC0 => {
                let v = (i64::from(b & 0x1F) << 8) | i64::from(c.byte()?);
                int_member(if v >= 1 << 12 { v - (1 << 13) } else { v })
            }
            _ if b & 0xF0 == 0xE0 => {
                let n = (usize::from(b & 0x0F) << 8) | usize::from(c.byte()?);
                c.take(n)?.to_vec()
            }
            0xF0 => {
                let n = u32::from_le_bytes(c.le()?) as usize;
                c.take(n)?.to_vec()
            }
            0xF1 => int_member(i64::from(i16::from_le_bytes(c.le()?))),
            0xF2 => {
                let [a, b2, b3] = c.le::<3>()?;
                int_member(i64::from(i32::from_le_bytes([0, a, b2, b3]) >> 8))
            }
            0xF3 => int_member(i64::from(i32::from_le_bytes(c.le()?))),
            0xF4 => int_member(i64::from_le_bytes(c.le()?)),
            _ => return Err(damaged(format!("a listpack entry encoding {b:#x}"))),
        };
        // The back-length: the entry's size (encoding + data) in 1-5 bytes.
        let len = c.at - start;
        let backlen = match len {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            2_097_152..=268_435_455 => 4,
            _ => 5,
        };
        c.take(backlen)?;
        out.push(member);
    }
    if c.at != blob.len() {
        return Err(damaged("bytes after a listpack's end"));
    }
    // 65535 means "count them": the header's count saturates.
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(damaged("a listpack whose entries do not match its count"));
    }
    Ok(out)
}

/// The entries of a ziplist (the small encodings before Redis 7).
fn ziplist(blob: &[u8]) -> Result<Vec<Member>> {
    let mut c = Cursor {
        data: blob,
        at: 0,
        what: "ziplist",
    };
    let total = u32::from_le_bytes(c.le()?) as usize;
    let _tail = c.le::<4>()?;
    let count = u16::from_le_bytes(c.le()?);
    if total != blob.len() {
        return Err(damaged("a ziplist whose size does not match its header"));
    }
    let mut out = Vec::new();
    loop {
        let prev = c.byte()?;
        if prev == 0xFF {
            break;
        }
        if prev == 0xFE {
            c.take(4)?;
        }
        let b = c.byte()?;
        let member = match b >> 6 {
            0 => c.take(usize::from(b & 0x3F))?.to_vec(),
            1 => {
                let n = (usize::from(b & 0x3F) << 8) | usize::from(c.byte()?);
                c.take(n)?.to_vec()
            }
            2 => {
                let n = u32::from_be_bytes(c.le()?) as usize;
                c.take(n)?.to_vec()
            }
            _ => match b {
                0xC0 => int_member(i64::from(i16::from_le_bytes(c.le()?))),
                0xD0 => int_member(i64::from(i32::from_le_bytes(c.le()?))),
                0xE0 => int_member(i64::from_le_bytes(c.le()?)),
                0xF0 => {
                    let [a, b2, b3] = c.le::<3>()?;
                    int_member(i64::from(i32::from_le_bytes([0, a, b2, b3]) >> 8))
                }
                0xFE => int_member(i64::from(c.byte()? as i8)),
                0xF1..=0xFD => int_member(i64::from(b & 0x0F) - 1),
                _ => return Err(damaged(format!("a ziplist entry encoding {b:#x}"))),
            },
        };
        out.push(member);
    }
    if c.at != blob.len() {
        return Err(damaged("bytes after a ziplist's end"));
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(damaged("a ziplist whose entries do not match its count"));
    }
    Ok(out)
}

/// The members of an intset (a small set of integers).
fn intset(blob: &[u8]) -> Result<Vec<Member>> {
    let mut c = Cursor {
        data: blob,
        at: 0,
        what: "intset",
    };
    let width = u32::from_le_bytes(c.le()?) as usize;
    let n = u32::from_le_bytes(c.le()?) as usize;
    if !matches!(width, 2 | 4 | 8) || n.checked_mul(width) != Some(blob.len() - 8) {
        return Err(damaged("an intset whose size does not match its header"));
    }
    (0..n)
        .map(|_| {
            Ok(int_member(match width {
                2 => i64::from(i16::from_le_bytes(c.le()?)),
                4 => i64::from(i32::from_le_bytes(c.le()?)),
                _ => i64::from_le_bytes(c.le()?),
            }))
        })
        .collect()
}

/// LZF (the compression of long strings in an RDB), into exactly `plain` bytes.
fn lzf_decompress(data: &[u8], plain: usize) -> Result<Vec<u8>> {
    let bad = || damaged("an LZF-compressed string that does not decompress");
    let mut out: Vec<u8> = Vec::with_capacity(plain);
    let mut i = 0;
    while i < data.len() {
        let ctrl = usize::from(data[i]);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = data.get(i..i + n).ok_or_else(bad)?;
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*data.get(i).ok_or_else(bad)?);
                i += 1;
            }
            let back = ((ctrl & 0x1F) << 8) + usize::from(*data.get(i).ok_or_else(bad)?) + 1;
            i += 1;
            let from = out.len().checked_sub(back).ok_or_else(bad)?;
            for k in 0..len + 2 {
                let b = out[from + k];
                out.push(b);
            }
        }
        if out.len() > plain {
            return Err(bad());
        }
    }
    if out.len() != plain {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_read_as_the_server_replies_them() {
        for (d, text) in [
            (1.5, "1.5"),
            (-3.0, "-3"),
            (1e10, "10000000000"),
            (0.1, "0.10000000000000001"),
            (1.0 / 3.0, "0.33333333333333331"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (0.0, "0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
        ] {
            assert_eq!(String::from_utf8(reply_double(d)).unwrap(), text, "{d}");
        }
    }

    #[test]
    fn listpack_integers_and_strings() {
        // 7-bit 5, 13-bit -2, a 3-byte string "abc", int16 1000.
        let entries: Vec<u8> = [
            vec![0x05, 0x01],
            vec![0xDF, 0xFE, 0x02],
            vec![0x83, b'a', b'b', b'c', 0x04],
            vec![0xF1, 0xE8, 0x03, 0x03],
        ]
        .concat();
        let total = (6 + entries.len() + 1) as u32;
        let mut blob = total.to_le_bytes().to_vec();
        blob.extend_from_slice(&4u16.to_le_bytes());
        blob.extend_from_slice(&entries);
        blob.push(0xFF);
        assert_eq!(
            listpack(&blob).unwrap(),
            vec![
                b"5".to_vec(),
                b"-2".to_vec(),
                b"abc".to_vec(),
                b"1000".to_vec()
            ]
        );
        let mut short = blob.clone();
        short.truncate(blob.len() - 3);
        assert!(matches!(listpack(&short), Err(RdbError::Damaged(_))));
    }

    #[test]
    fn lzf_back_references_and_bounds() {
        // literal "ab", then a back-reference of length 4 at distance 2: "ababab".
        assert_eq!(
            lzf_decompress(&[0x01, b'a', b'b', 0x40, 0x01], 6).unwrap(),
            b"ababab"
        );
        assert!(lzf_decompress(&[0x40, 0x05], 4).is_err());
        assert!(lzf_decompress(&[0x01, b'a', b'b'], 3).is_err());
    }

    #[test]
    fn not_an_rdb_or_truncated_is_damaged() {
        assert!(matches!(
            fingerprint_rdb(&b"HELLO0010"[..], 0),
            Err(RdbError::Damaged(_))
        ));
        assert!(matches!(
            fingerprint_rdb(&b"REDIS0010\xfe"[..], 0),
            Err(RdbError::Damaged(_))
        ));
        assert!(matches!(
            fingerprint_rdb(&b"REDIS0099"[..], 0),
            Err(RdbError::Unsupported(_))
        ));
    }

    /// Against a real server: every type in its small and big encodings, integers of
    /// every width, compressed long strings, odd scores, binary keys, expiring keys and
    /// several databases; the file's fingerprint must be the server's own read-back.
    #[test]
    fn an_rdb_reads_as_the_server_holding_it() {
        use drydock_testkit::redis::RedisServer;
        let server = RedisServer::start();
        let cmds: Vec<Vec<String>> = {
            let mut c: Vec<Vec<String>> = Vec::new();
            let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            for (k, val) in [
                ("s:small", "hello"),
                ("s:int8", "-12"),
                ("s:int16", "30000"),
                ("s:int32", "-2000000000"),
                ("s:int64", "9223372036854775807"),
                ("s:empty", ""),
                ("s:lead0", "007"),
            ] {
                c.push(v(&["SET", k, val]));
            }
            c.push(v(&["SET", "s:long", &"abcdefgh".repeat(100)]));
            c.push(v(&[
                "SET",
                "s:rand",
                &(0..300)
                    .map(|i| (1 + (i * 7919) % 250) as u8 as char)
                    .collect::<String>(),
            ]));
            let mut list = v(&[
                "RPUSH",
                "l:small",
                "a",
                "1",
                "-5",
                "200",
                "70000",
                "-9000000000",
                "",
            ]);
            c.push(list.clone());
            list[1] = "l:big".into();
            for i in 0..300 {
                list.push(format!("item-{i}-{}", "y".repeat(i % 70)));
            }
            list.push("z".repeat(9000)); // longer than a listpack entry may be
            c.push(list);
            c.push(v(&[
                "SADD",
                "set:ints",
                "1",
                "-2",
                "300",
                "70000",
                "5000000000",
            ]));
            c.push(v(&["SADD", "set:lp", "a", "b", "12"]));
            let mut big = v(&["SADD", "set:big"]);
            big.extend((0..600).map(|i| format!("m{i}")));
            c.push(big);
            c.push(v(&[
                "ZADD",
                "z:small",
                "1.5",
                "ann",
                "1.5",
                "abe",
                "-3",
                "zed",
                "1e10",
                "top",
                "0.1",
                "tenth",
                "inf",
                "far",
                "-inf",
                "near",
                "0",
                "zero",
                "-0",
                "nzero",
                "12345678901234567890",
                "huge",
                "1e-7",
                "tiny",
            ]));
            let mut zbig = v(&["ZADD", "z:big"]);
            for i in 0..300 {
                zbig.push(format!("{}", f64::from(i) / 7.0));
                zbig.push(format!("member-{i}"));
            }
            c.push(zbig);
            c.push(v(&[
                "HSET", "h:small", "name", "Ada", "n", "1", "neg", "-77", "", "empty",
            ]));
            let mut hbig = v(&["HSET", "h:big"]);
            for i in 0..300 {
                hbig.push(format!("f{i}"));
                hbig.push(format!("{i}"));
            }
            hbig.push("long".into());
            hbig.push("q".repeat(500));
            c.push(hbig);
            c.push(v(&["SET", "e:one", "x", "EX", "3600"]));
            c.push(v(&["HSET", "e:hash", "a", "1"]));
            c.push(v(&["PEXPIRE", "e:hash", "7200000"]));
            c
        };
        for cmd in &cmds {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            assert!(server.cli(&args).status.success(), "{args:?}");
        }
        server.cli(&["-n", "5", "SET", "other-db", "v"]);
        server.cli(&["-n", "5", "RPUSH", "other-list", "1", "2"]);
        let src = crate::redis::Redis::new(drydock_domain::config::RedisSource {
            name: None,
            priority: drydock_domain::plan::Priority::Low,
            url: server.url(),
            password: None,
            exec: false,
            exec_in: None,
        });
        let work = tempfile::tempdir().unwrap();
        let rdb = work.path().join("dump.rdb");
        crate::redis::rdb::create_private(&rdb).unwrap();
        src.fetch_rdb_via_cli(&rdb).unwrap();
        let now = jiff::Timestamp::now().as_millisecond();
        let from_file = fingerprint_rdb(std::fs::File::open(&rdb).unwrap(), now).unwrap();
        let mut con = src.connect().unwrap();
        let live = crate::redis::fingerprint_instance(&mut con, &|| src.connect_again()).unwrap();
        assert_eq!(from_file, live);
        assert_eq!(from_file.0["keys"], 20);
        assert_eq!(from_file.0["expiring_keys"], 2);
        assert_eq!(from_file.0["dbs"], 2);

        // One byte changed anywhere fails the checksum, or the structure before it (a
        // changed opcode can read as a type this reader leaves to a throwaway server,
        // which then refuses the file).
        let bytes = std::fs::read(&rdb).unwrap();
        for at in [20, bytes.len() / 2, bytes.len() - 12] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(
                fingerprint_rdb(&bad[..], now).is_err(),
                "byte {at} changed was not noticed"
            );
        }
        let short = &bytes[..bytes.len() - 9];
        assert!(matches!(
            fingerprint_rdb(short, now),
            Err(RdbError::Damaged(_))
        ));
        // A key that has expired by the time the file is read is left out, like a load.
        let later = fingerprint_rdb(&bytes[..], now + 3_700_000).unwrap();
        assert_eq!(later.0["expiring_keys"], 1);

        // A stream is not read here: the caller falls back to a throwaway server.
        server.cli(&["XADD", "events", "1-1", "type", "login"]);
        let rdb2 = work.path().join("with-stream.rdb");
        crate::redis::rdb::create_private(&rdb2).unwrap();
        src.fetch_rdb_via_cli(&rdb2).unwrap();
        assert!(matches!(
            fingerprint_rdb(std::fs::File::open(&rdb2).unwrap(), now),
            Err(RdbError::Unsupported(_))
        ));
    }
}
