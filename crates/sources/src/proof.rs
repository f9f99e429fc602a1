//! The structural completeness proof of a stored dump: the bytes that go to the
//! repository are teed ([`tee`]) into a checker on another thread, which reads them once,
//! as they are stored, and says what they hold: per table, how many rows the dump
//! carries, and whether the stream ends where the dump format says it ends. The adapters
//! compare that with their SQL fingerprint of the same snapshot, so a dump tool that
//! exits 0 with a truncated, partial or garbled stream fails the source instead of being
//! recorded `ok`.
//!
//! - [`read_pg_archive`]: a sequential reader of `pg_dump --format=custom` archives
//!   (header, table of contents, then the data blocks in the order they follow), for
//!   archive versions 1.12 to 1.16 (PostgreSQL 9.0 to 19). Each table's data block is
//!   inflated and its COPY lines counted (COPY's text format escapes newlines inside
//!   values, so one line is one row). Reading the format directly, rather than through
//!   `pg_restore --file=-`, is what lets it see bytes after the archive's last block
//!   (pg_restore stops reading there and exits 0) and costs no extra process, in the
//!   same way with `exec = true`.
//! - [`SqlDumpChecker`]: a state machine over a `mariadb-dump`/`mysqldump` SQL stream
//!   that counts the tuples of each `INSERT INTO` (respecting quoted strings and
//!   backslash escapes), records each `CREATE TABLE`, and requires the
//!   `-- Dump completed` trailer with nothing after it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use drydock_domain::PartDigest;

/// How many chunks may wait for the checker before storing waits for it.
const QUEUE: usize = 64;

/// Passes `inner` through, sending a copy of every chunk to `check`, which runs on its
/// own thread and sees EOF when `inner` does (or when the returned reader is dropped).
pub(crate) fn tee<T: Send + 'static>(
    inner: Box<dyn Read + Send>,
    check: impl FnOnce(ChannelReader) -> T + Send + 'static,
) -> (Box<dyn Read + Send>, JoinHandle<T>) {
    let (tx, rx) = sync_channel(QUEUE);
    let handle = std::thread::spawn(move || {
        check(ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        })
    });
    (
        Box::new(Tee {
            inner,
            tx: Some(tx),
        }),
        handle,
    )
}

struct Tee {
    inner: Box<dyn Read + Send>,
    tx: Option<SyncSender<Vec<u8>>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.tx = None;
        } else if let Some(tx) = &self.tx {
            // A checker that already gave its verdict stops listening; storing goes on.
            if tx.send(buf[..n].to_vec()).is_err() {
                self.tx = None;
            }
        }
        Ok(n)
    }
}

/// The checker's side of [`tee`]: the teed bytes as a reader.
pub(crate) struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = (self.chunk.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What a `pg_dump` custom archive holds, as read from its bytes.
#[derive(Debug, Default)]
pub(crate) struct PgArchive {
    /// `schema.table` of every TABLE DATA entry whose data block was read, with its
    /// rows counted and digested ([`CopyRows`]).
    pub tables: BTreeMap<String, PartDigest>,
    /// `schema.name` of every SEQUENCE SET entry.
    pub sequences: BTreeSet<String>,
}

const K_OFFSET_NO_DATA: u8 = 3;
const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;

struct TocEntry {
    desc: String,
    name: String,
    has_data: bool,
    seen: bool,
}

#[derive(Clone, Copy)]
enum Compression {
    None,
    Gzip,
}

/// Byte-counting reader with the archive's integer and string encodings.
struct ArchiveReader<R> {
    inner: R,
    int_size: usize,
    pos: u64,
}

impl<R: Read> ArchiveReader<R> {
    fn exact(&mut self, buf: &mut [u8], inside: &str) -> Result<(), String> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(format!(
                "its archive ends early (at byte {}, inside {inside})",
                self.pos
            )),
            Err(e) => Err(format!("its archive could not be read: {e}")),
        }
    }
    fn byte(&mut self, inside: &str) -> Result<u8, String> {
        let mut b = [0u8; 1];
        self.exact(&mut b, inside)?;
        Ok(b[0])
    }
    /// A sign byte, then `int_size` bytes little-endian.
    fn int(&mut self, inside: &str) -> Result<i64, String> {
        let negative = self.byte(inside)? != 0;
        let mut v: i64 = 0;
        for i in 0..self.int_size {
            let b = self.byte(inside)? as i64;
            if i < 8 {
                v |= b << (i * 8);
            }
        }
        Ok(if negative { -v } else { v })
    }
    /// A length (negative: NULL), then that many bytes.
    fn string(&mut self, inside: &str) -> Result<Option<String>, String> {
        let len = self.int(inside)?;
        if len < 0 {
            return Ok(None);
        }
        if len > (1 << 30) {
            return Err(format!(
                "its archive is garbled (a {len}-byte string at byte {}, inside {inside})",
                self.pos
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf, inside)?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

/// Reads a whole `pg_dump --format=custom` archive from `input`, checking that every
/// entry with data has its block, every block is complete and nothing follows the last.
/// The error says what is wrong, worded to follow "pg_dump exited 0 but ".
pub(crate) fn read_pg_archive(input: impl Read) -> Result<PgArchive, String> {
    let mut r = ArchiveReader {
        inner: std::io::BufReader::with_capacity(1 << 16, input),
        int_size: 4,
        pos: 0,
    };
    let head = "the archive header";
    let mut magic = [0u8; 5];
    r.exact(&mut magic, head)?;
    if &magic != b"PGDMP" {
        return Err("its output is not a pg_dump archive (no PGDMP header)".into());
    }
    let version = (r.byte(head)?, r.byte(head)?, r.byte(head)?);
    if version.0 != 1 || !(12..=16).contains(&version.1) {
        return Err(format!(
            "its archive has version {}.{}.{}, which drydock cannot prove (it reads 1.12 to 1.16, PostgreSQL 9.0 to 19); use a pg_dump of those versions or a newer drydock",
            version.0, version.1, version.2
        ));
    }
    let minor = version.1;
    r.int_size = r.byte(head)? as usize;
    let off_size = r.byte(head)? as usize;
    if !(1..=8).contains(&r.int_size) || !(1..=8).contains(&off_size) {
        return Err("its archive header is garbled (integer sizes)".into());
    }
    if r.byte(head)? != 1 {
        return Err("its archive is not in the custom format".into());
    }
    let compression = if minor >= 15 {
        match r.byte(head)? {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => return Err("its archive is lz4-compressed, which drydock cannot read; leave pg_dump's compression at its default".into()),
            3 => return Err("its archive is zstd-compressed, which drydock cannot read; leave pg_dump's compression at its default".into()),
            other => return Err(format!("its archive header is garbled (compression {other})")),
        }
    } else {
        match r.int(head)? {
            0 => Compression::None,
            _ => Compression::Gzip,
        }
    };
    for _ in 0..7 {
        r.int(head)?; // creation time
    }
    r.string(head)?; // database name
    r.string(head)?; // server version
    r.string(head)?; // pg_dump version

    let toc = "the table of contents";
    let count = r.int(toc)?;
    if !(0..=100_000_000).contains(&count) {
        return Err(format!(
            "its archive is garbled ({count} table-of-contents entries)"
        ));
    }
    let mut entries: BTreeMap<i64, TocEntry> = BTreeMap::new();
    let mut out = PgArchive::default();
    for _ in 0..count {
        let dump_id = r.int(toc)?;
        r.int(toc)?; // had a dumper
        r.string(toc)?; // table oid
        r.string(toc)?; // oid
        let tag = r.string(toc)?.unwrap_or_default();
        let desc = r.string(toc)?.unwrap_or_default();
        r.int(toc)?; // section
        r.string(toc)?; // definition
        r.string(toc)?; // drop statement
        r.string(toc)?; // copy statement
        let namespace = r.string(toc)?.unwrap_or_default();
        r.string(toc)?; // tablespace
        if minor >= 14 {
            r.string(toc)?; // table access method
        }
        if minor >= 16 {
            r.int(toc)?; // relkind
        }
        r.string(toc)?; // owner
        r.string(toc)?; // with oids
        while r.string(toc)?.is_some() {} // dependencies
        let flag = r.byte(toc)?;
        let mut offset = vec![0u8; off_size];
        r.exact(&mut offset, toc)?;
        let name = format!("{namespace}.{tag}");
        if desc == "SEQUENCE SET" {
            out.sequences.insert(name.clone());
        }
        entries.insert(
            dump_id,
            TocEntry {
                desc,
                name,
                has_data: flag != K_OFFSET_NO_DATA,
                seen: false,
            },
        );
    }

    let mut missing = entries.values().filter(|e| e.has_data).count();
    loop {
        let mut b = [0u8; 1];
        let n = loop {
            match r.inner.read(&mut b) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("its archive could not be read: {e}")),
            }
        };
        if n == 0 {
            break;
        }
        r.pos += 1;
        if missing == 0 {
            let mut rest = 1u64;
            let _ = std::io::copy(&mut r.inner, &mut std::io::sink()).map(|n| rest += n);
            return Err(format!(
                "its archive has garbage after its last data block ({rest} bytes from byte {})",
                r.pos - 1
            ));
        }
        let block_at = r.pos - 1;
        let kind = b[0];
        let id = r.int("a data block header")?;
        let entry = match entries.get_mut(&id) {
            Some(e) if e.has_data && !e.seen && (kind == BLK_DATA || kind == BLK_BLOBS) => e,
            _ => {
                return Err(format!(
                    "its archive is garbled at byte {block_at} (expected a data block, found block type {kind} for entry {id})"
                ))
            }
        };
        entry.seen = true;
        missing -= 1;
        let inside = format!("the data of {} {}", entry.desc, entry.name);
        if kind == BLK_DATA {
            let lines = read_chunks(&mut r, compression, &inside)?;
            if entry.desc == "TABLE DATA" {
                out.tables.insert(entry.name.clone(), lines);
            }
        } else {
            while r.int(&inside)? != 0 {
                read_chunks(&mut r, compression, &inside)?;
            }
        }
    }
    if let Some(e) = entries.values().find(|e| e.has_data && !e.seen) {
        return Err(format!(
            "its archive ends early (the data of {} {} never came)",
            e.desc, e.name
        ));
    }
    Ok(out)
}

/// The rows of a COPY text stream, counted and digested: its lines up to the `\.`
/// terminator line that pg_dump writes after them in an archive (the blank lines after
/// it are no rows; `COPY ... TO STDOUT` over the protocol has no terminator). The same
/// reader digests a table's data block as the archive is stored and the table read back
/// from a live server ([`CopyRows::feed`] chunk by chunk, lines may span chunks), so a
/// backup's fingerprint and a restore's describe rows the same way: an order-independent
/// sum of the 128-bit XXH3 hash of each line, as `x3:` and 32 hex digits.
#[derive(Default)]
pub(crate) struct CopyRows {
    tally: Tally,
    /// The start of a line that continues in the next chunk.
    pending: Vec<u8>,
}

#[derive(Default)]
struct Tally {
    rows: u64,
    sum: u128,
    ended: bool,
}

impl Tally {
    fn line(&mut self, line: &[u8]) {
        if line == b"\\." {
            self.ended = true;
        } else {
            self.rows += 1;
            self.sum = self.sum.wrapping_add(twox_hash::XxHash3_128::oneshot(line));
        }
    }
}

/// The digest tag of [`CopyRows`]: rows as COPY's text format writes them.
pub(crate) const COPY_ROWS_TAG: &str = "x3:";

impl CopyRows {
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.tally.ended {
            let Some(i) = memchr::memchr(b'\n', data) else {
                self.pending.extend_from_slice(data);
                return;
            };
            if self.pending.is_empty() {
                self.tally.line(&data[..i]);
            } else {
                self.pending.extend_from_slice(&data[..i]);
                self.tally.line(&self.pending);
                self.pending.clear();
            }
            data = &data[i + 1..];
        }
    }

    /// The count and digest of the rows read; a last line without its newline counts.
    pub(crate) fn finish(mut self) -> PartDigest {
        if !self.pending.is_empty() && !self.tally.ended {
            self.tally.line(&self.pending);
        }
        PartDigest {
            count: self.tally.rows,
            digest: format!("{COPY_ROWS_TAG}{:032x}", self.tally.sum),
        }
    }
}

/// Reads one run of length-prefixed chunks (ended by a zero length), inflating them when
/// compressed; returns the rows of the COPY data, counted and digested.
fn read_chunks<R: Read>(
    r: &mut ArchiveReader<R>,
    compression: Compression,
    inside: &str,
) -> Result<PartDigest, String> {
    let mut inflate = flate2::Decompress::new(true);
    let mut out = vec![0u8; 1 << 16];
    let mut lines = CopyRows::default();
    let mut ended = false;
    let mut chunk = Vec::new();
    loop {
        let len = r.int(inside)?;
        if len == 0 {
            break;
        }
        if !(1..=(1 << 30)).contains(&len) {
            return Err(format!(
                "its archive is garbled (a chunk of {len} bytes at byte {}, inside {inside})",
                r.pos
            ));
        }
        chunk.resize(len as usize, 0);
        r.exact(&mut chunk, inside)?;
        match compression {
            Compression::None => lines.feed(&chunk),
            Compression::Gzip => {
                let mut input = &chunk[..];
                while !input.is_empty() && !ended {
                    let before_in = inflate.total_in();
                    let before_out = inflate.total_out();
                    let status = inflate
                        .decompress(input, &mut out, flate2::FlushDecompress::None)
                        .map_err(|e| {
                            format!(
                                "its archive is garbled (bad compressed data inside {inside}: {e})"
                            )
                        })?;
                    let used = (inflate.total_in() - before_in) as usize;
                    let made = (inflate.total_out() - before_out) as usize;
                    lines.feed(&out[..made]);
                    input = &input[used..];
                    ended = status == flate2::Status::StreamEnd;
                    if used == 0 && made == 0 {
                        break;
                    }
                }
            }
        }
    }
    if matches!(compression, Compression::Gzip) && inflate.total_in() > 0 && !ended {
        return Err(format!(
            "its archive is garbled (the compressed data of {inside} stops before its end)"
        ));
    }
    Ok(lines.finish())
}

/// What a `mariadb-dump`/`mysqldump` SQL stream holds, as read from its bytes.
#[derive(Debug, Default)]
pub(crate) struct SqlDump {
    /// Rows (`INSERT` tuples) per table.
    pub rows: BTreeMap<String, u64>,
    /// Tables with a `CREATE TABLE`.
    pub created: BTreeSet<String>,
}

/// How much of a line is kept to classify it (statement heads are short).
const HEAD_CAP: usize = 64 * 1024;

/// Reads a SQL dump stream chunk by chunk ([`SqlDumpChecker::feed`]), then gives its
/// verdict ([`SqlDumpChecker::finish`]).
#[derive(Default)]
pub(crate) struct SqlDumpChecker {
    out: SqlDump,
    /// The start of the current line, while not inside an INSERT's values.
    head: Vec<u8>,
    /// Inside an INSERT's values: the table and the tuple state.
    insert: Option<Insert>,
    /// Skipping the rest of a line already classified.
    skip_line: bool,
    trailer: bool,
    garbage_at: Option<u64>,
    pos: u64,
}

struct Insert {
    table: String,
    depth: u32,
    quote: Option<u8>,
    escaped: bool,
}

impl SqlDumpChecker {
    pub fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.trailer {
                if self.garbage_at.is_none() {
                    if let Some(i) = buf.iter().position(|b| !b.is_ascii_whitespace()) {
                        self.garbage_at = Some(self.pos + i as u64);
                    }
                }
                self.pos += buf.len() as u64;
                break;
            }
            if let Some(ins) = &mut self.insert {
                let mut end = None;
                for (i, &c) in buf.iter().enumerate() {
                    if ins.escaped {
                        ins.escaped = false;
                    } else if let Some(q) = ins.quote {
                        if c == b'\\' {
                            ins.escaped = true;
                        } else if c == q {
                            ins.quote = None;
                        }
                    } else {
                        match c {
                            b'\'' | b'"' => ins.quote = Some(c),
                            b'(' => {
                                if ins.depth == 0 {
                                    *self.out.rows.entry(ins.table.clone()).or_default() += 1;
                                }
                                ins.depth += 1;
                            }
                            b')' => ins.depth = ins.depth.saturating_sub(1),
                            b';' if ins.depth == 0 => {
                                end = Some(i);
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                match end {
                    Some(i) => {
                        self.insert = None;
                        self.skip_line = true;
                        self.pos += i as u64 + 1;
                        buf = &buf[i + 1..];
                    }
                    None => {
                        self.pos += buf.len() as u64;
                        break;
                    }
                }
                continue;
            }
            let nl = memchr::memchr(b'\n', buf);
            let upto = nl.unwrap_or(buf.len());
            if !self.skip_line && self.head.len() < HEAD_CAP {
                let room = (HEAD_CAP - self.head.len()).min(upto);
                self.head.extend_from_slice(&buf[..room]);
                if let Some(start) = self.classify() {
                    // An INSERT: its values began inside the head; run them through
                    // the tuple state machine, then go on after what the head took.
                    let values = self.head.split_off(start);
                    self.head.clear();
                    self.feed_values(&values);
                    self.pos += room as u64;
                    buf = &buf[room..];
                    continue;
                }
            }
            match nl {
                Some(i) => {
                    self.end_line();
                    self.pos += i as u64 + 1;
                    buf = &buf[i + 1..];
                }
                None => {
                    self.pos += buf.len() as u64;
                    break;
                }
            }
        }
    }

    /// Feeds bytes that are known to be inside an INSERT's values.
    fn feed_values(&mut self, values: &[u8]) {
        let pos = self.pos;
        self.feed(values);
        self.pos = pos;
    }

    /// When the head is an `INSERT INTO `t` ... VALUES `, enters the INSERT and returns
    /// where its values start in the head.
    fn classify(&mut self) -> Option<usize> {
        let rest = self.head.strip_prefix(b"INSERT INTO `")?;
        let (table, after) = backquoted(rest)?;
        // MariaDB 11 ends the line after VALUES (one tuple a line); others go on.
        let at = memchr::memmem::find(after, b" VALUES")?;
        let start = self.head.len() - after.len() + at + b" VALUES".len();
        self.out.rows.entry(table.clone()).or_default();
        self.insert = Some(Insert {
            table,
            depth: 0,
            quote: None,
            escaped: false,
        });
        Some(start)
    }

    /// A whole line (not an INSERT) ended: note what it says.
    fn end_line(&mut self) {
        if !self.skip_line {
            if let Some(rest) = self.head.strip_prefix(b"CREATE TABLE `") {
                if let Some((table, _)) = backquoted(rest) {
                    self.out.created.insert(table);
                }
            } else if self.head.starts_with(b"-- Dump completed") {
                self.trailer = true;
            }
        }
        self.head.clear();
        self.skip_line = false;
    }

    /// The verdict, worded to follow "mariadb-dump exited 0 but ".
    pub fn finish(mut self) -> Result<SqlDump, String> {
        if let Some(ins) = &self.insert {
            return Err(format!(
                "its dump ends early (inside the INSERT of table `{}`, at byte {})",
                ins.table, self.pos
            ));
        }
        if !self.trailer && !self.head.is_empty() {
            self.end_line();
        }
        if let Some(at) = self.garbage_at {
            return Err(format!(
                "its dump has garbage after its `-- Dump completed` trailer (from byte {at})"
            ));
        }
        if !self.trailer {
            return Err(format!(
                "its dump ends early (no `-- Dump completed` trailer; {} bytes)",
                self.pos
            ));
        }
        Ok(self.out)
    }
}

/// A backquoted identifier's text (`` `` `` is one backquote) and what follows it.
fn backquoted(s: &[u8]) -> Option<(String, &[u8])> {
    let mut name = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'`' {
            if s.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some((String::from_utf8_lossy(&name).into_owned(), &s[i + 1..]));
        }
        name.push(s[i]);
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backups store uncompressed archives now; older ones hold pg_dump's default
    /// (zlib) compression. Both, made by the real pg_dump, read to the same rows.
    #[test]
    fn pg_archives_read_the_same_uncompressed_and_zlib_compressed() {
        let pg = drydock_testkit::postgres::PgServer::start();
        pg.create_db("app");
        pg.psql(
            "app",
            "CREATE TABLE t (id int, note text); INSERT INTO t SELECT g, md5(g::text) || E'\\n' FROM generate_series(1, 5000) g; CREATE SEQUENCE s;",
        );
        let dump = |compress: &[&str]| {
            let out = std::process::Command::new(drydock_testkit::program("pg_dump"))
                .args([
                    "--format=custom",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pg.port().to_string(),
                ])
                .args(["-U", pg.superuser(), "-d", "app"])
                .args(compress)
                .env("PGPASSWORD", pg.password())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let (plain, zlib) = (dump(&["--compress=0"]), dump(&[]));
        assert!(
            plain.len() > zlib.len() * 2,
            "{} vs {}",
            plain.len(),
            zlib.len()
        );
        let (a, b) = (
            read_pg_archive(&plain[..]).unwrap(),
            read_pg_archive(&zlib[..]).unwrap(),
        );
        assert_eq!(a.tables.get("public.t").map(|t| t.count), Some(5000));
        assert_eq!(a.tables, b.tables);
        // A truncated uncompressed archive is caught as the compressed one is.
        let cut = &plain[..plain.len() * 9 / 10];
        assert!(read_pg_archive(cut).is_err());
    }

    fn sql(chunks: &[&[u8]]) -> Result<SqlDump, String> {
        let mut c = SqlDumpChecker::default();
        for ch in chunks {
            c.feed(ch);
        }
        c.finish()
    }

    const DUMP: &[u8] = b"-- MariaDB dump\nCREATE TABLE `a``b` (\n  `x` int\n);\nINSERT INTO `a``b` VALUES (1,'x),(y\\'z;'),(2,0x2829),(3,'it''s (');\nINSERT INTO `a``b` VALUES\n(4,NULL),\n(5,'\\n');\nCREATE TABLE `e` (x int);\n-- Dump completed\n";

    #[test]
    fn sql_dumps_are_counted_in_any_chunking() {
        let whole = sql(&[DUMP]).unwrap();
        assert_eq!(whole.rows.get("a`b"), Some(&5));
        assert!(whole.created.contains("a`b") && whole.created.contains("e"));
        for split in 1..DUMP.len() {
            let parts = sql(&[&DUMP[..split], &DUMP[split..]]).unwrap();
            assert_eq!(parts.rows, whole.rows, "split at {split}");
            assert_eq!(parts.created, whole.created, "split at {split}");
        }
    }

    #[test]
    fn copy_rows_stop_at_the_terminator_in_any_chunking() {
        let data = b"1\tx\n2\t\\.\n\\.x\n\\.\n\n\n";
        let whole = {
            let mut c = CopyRows::default();
            c.feed(data);
            c.finish()
        };
        assert_eq!(whole.count, 3);
        for split in 0..data.len() {
            let mut c = CopyRows::default();
            c.feed(&data[..split]);
            c.feed(&data[split..]);
            assert_eq!(c.finish(), whole, "split at {split}");
        }
    }

    #[test]
    fn copy_rows_digest_the_set_of_lines() {
        let digest = |data: &[u8]| {
            let mut c = CopyRows::default();
            c.feed(data);
            c.finish()
        };
        // Order does not matter (a restored heap may be in another order) ...
        assert_eq!(digest(b"1\ta\n2\tb\n"), digest(b"2\tb\n1\ta\n"));
        // ... but every byte of every row, and how many times a row is there, does.
        assert_ne!(digest(b"1\ta\n2\tb\n"), digest(b"1\ta\n2\tc\n"));
        assert_ne!(digest(b"1\ta\n1\ta\n"), digest(b"1\ta\n"));
        // A last row without its newline (a live COPY may end so) is a row.
        assert_eq!(digest(b"1\ta\n2\tb"), digest(b"1\ta\n2\tb\n"));
        assert!(digest(b"").digest.starts_with(COPY_ROWS_TAG));
    }

    #[test]
    fn sql_dumps_cut_or_with_garbage_fail() {
        for cut in [10, DUMP.len() / 2, DUMP.len() - 5] {
            let e = sql(&[&DUMP[..cut]]).unwrap_err();
            assert!(e.contains("ends early"), "{cut}: {e}");
        }
        let mut extra = DUMP.to_vec();
        extra.extend_from_slice(b"\n\nxx garbage");
        assert!(sql(&[&extra]).unwrap_err().contains("garbage after"));
        let mut blank = DUMP.to_vec();
        blank.extend_from_slice(b"\n \n");
        assert!(sql(&[&blank]).is_ok());
    }
}
