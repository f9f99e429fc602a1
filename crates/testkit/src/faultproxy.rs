//! An HTTP/1.1 proxy on a random loopback port in front of a real server (Garage),
//! injecting the faults S3 clients meet in the field: error answers (500
//! InternalError, 503 SlowDown, 429 TooManyRequests), responses cut mid-body (a short
//! body: the full Content-Length announced, then the connection closed), connections
//! reset mid-body (RST, on a download or an upload), requests that hang, uploads cut
//! mid-body, and a server that refuses everything.
//!
//! Two ways to choose faults, both changeable while the proxy runs ([`FaultProxy::set`]):
//! probabilities per request (`error_ratio`, `hang_ratio`, `cut_response_ratio`), and
//! deterministic [`Injection`]s: a [`FaultKind`] on chosen requests of one S3 operation
//! ([`Op`]: PUT, GET, HEAD, LIST, DELETE), by their index among that operation's
//! requests since the last `set` (e.g. "the 3rd PUT", "every LIST from the 2nd on").
//! Injections are checked first.
//!
//! Each request gets its own upstream connection (`Connection: close`), so a fault
//! affects exactly one request.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An S3 operation, told apart by method and query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    /// GET of an object (whole or ranged).
    Get,
    Head,
    /// GET of the bucket with `list-type=2`.
    List,
    Delete,
    /// Anything else (POST, ...).
    Other,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Put, Op::Get, Op::Head, Op::List, Op::Delete];

    fn of(method: &str, target: &str) -> Op {
        match method {
            "PUT" => Op::Put,
            "HEAD" => Op::Head,
            "DELETE" => Op::Delete,
            "GET" if target.contains("list-type=") => Op::List,
            "GET" => Op::Get,
            _ => Op::Other,
        }
    }
}

/// What an [`Injection`] does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer 500 InternalError without forwarding.
    InternalError,
    /// Answer 503 SlowDown without forwarding.
    SlowDown,
    /// Answer 429 TooManyRequests without forwarding.
    TooManyRequests,
    /// Never answer (until the proxy is dropped; at most 120 s).
    Hang,
    /// A download: forward, send the response head and half its body, then reset the
    /// connection (RST). An upload (a request with a body): read half the body, then
    /// reset; nothing is forwarded.
    ResetMidBody,
    /// Forward, send the response head (with the full Content-Length) and half the
    /// body, then close the connection normally (FIN).
    ShortBody,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::InternalError,
        FaultKind::SlowDown,
        FaultKind::TooManyRequests,
        FaultKind::Hang,
        FaultKind::ResetMidBody,
        FaultKind::ShortBody,
    ];
}

/// A deterministic fault: `kind` on the requests of `op` (any operation: `None`) whose
/// 0-based index among those requests since the last [`FaultProxy::set`] is in `at`, or
/// is at least `from`.
#[derive(Debug, Clone)]
pub struct Injection {
    pub op: Option<Op>,
    pub kind: FaultKind,
    pub at: Vec<u64>,
    pub from: Option<u64>,
}

impl Injection {
    fn hits(&self, op: Op, index_of_op: u64, index_any: u64) -> bool {
        let index = match self.op {
            None => index_any,
            Some(o) if o == op => index_of_op,
            Some(_) => return false,
        };
        self.at.contains(&index) || self.from.is_some_and(|f| index >= f)
    }
}

/// What to inject; probabilities are per request, checked in this order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Refuse every connection (close it at once): the server is down.
    pub down: bool,
    /// Answer 503 SlowDown or 500 InternalError without forwarding.
    pub error_ratio: f64,
    /// Never answer.
    pub hang_ratio: f64,
    /// Forward, then cut the response after half its body.
    pub cut_response_ratio: f64,
    /// Uploads (PUT) with a larger body: forward only this many body bytes, then close
    /// both connections, as when the link dies mid-upload.
    pub cut_upload_after: Option<usize>,
    /// Deterministic faults, checked before the probabilities.
    pub inject: Vec<Injection>,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub hangs: AtomicU64,
    pub cut_responses: AtomicU64,
    pub cut_uploads: AtomicU64,
    /// Requests an [`Injection`] hit.
    pub injected: AtomicU64,
}

/// Requests seen per operation since the last [`FaultProxy::set`] (indices for
/// [`Injection`]s).
#[derive(Debug, Default)]
struct Seen {
    per_op: HashMap<Op, u64>,
    any: u64,
    /// What the injections did, e.g. `SlowDown on PUT #3 (data/ab/ab12...)`.
    log: Vec<String>,
}

pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
    pub counters: Arc<Counters>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Proxies 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16, faults: Faults) -> FaultProxy {
        Self::start_on(0, upstream_port, faults)
    }

    /// Like [`FaultProxy::start`], listening on `port` (0: any free port), e.g. one a
    /// config already names while nothing listened there.
    pub fn start_on(port: u16, upstream_port: u16, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(faults));
        let counters = Arc::new(Counters::default());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (faults, counters, stop) = (faults.clone(), counters.clone(), stop.clone());
            let seen = seen.clone();
            std::thread::spawn(move || {
                let seed = AtomicU64::new(seed());
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let current = faults.lock().unwrap().clone();
                    let (counters, stop, seen) = (counters.clone(), stop.clone(), seen.clone());
                    let roll = next_random(&seed);
                    std::thread::spawn(move || {
                        let ctx = Ctx {
                            faults: &current,
                            roll,
                            counters: &counters,
                            seen: &seen,
                            stop: &stop,
                        };
                        let _ = serve(conn, upstream_port, &ctx);
                    });
                }
            });
        }
        FaultProxy {
            port,
            faults,
            counters,
            seen,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the faults and restarts the per-operation request indices.
    pub fn set(&self, faults: Faults) {
        let mut faults_now = self.faults.lock().unwrap();
        *self.seen.lock().unwrap() = Seen::default();
        *faults_now = faults;
    }

    /// What the injections did since the last [`FaultProxy::set`], one line per hit.
    pub fn injected(&self) -> Vec<String> {
        self.seen.lock().unwrap().log.clone()
    }

    /// Requests of `op` seen since the last [`FaultProxy::set`].
    pub fn requests_of(&self, op: Op) -> u64 {
        self.seen
            .lock()
            .unwrap()
            .per_op
            .get(&op)
            .copied()
            .unwrap_or(0)
    }
}

struct Ctx<'a> {
    faults: &'a Faults,
    roll: f64,
    counters: &'a Counters,
    seen: &'a Mutex<Seen>,
    stop: &'a AtomicBool,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    nanos | 1
}

/// A number in [0, 1) from a shared xorshift state.
fn next_random(state: &AtomicU64) -> f64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn serve(mut client: TcpStream, upstream_port: u16, ctx: &Ctx<'_>) -> std::io::Result<()> {
    let (faults, roll, counters) = (ctx.faults, ctx.roll, ctx.counters);
    if faults.down {
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, mut leftover) = read_head(&mut client)?;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let body_len = header(&text, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);

    let op = Op::of(&method, &target);
    let injected = {
        let mut seen = ctx.seen.lock().unwrap();
        let index_of_op = *seen.per_op.get(&op).unwrap_or(&0);
        let index_any = seen.any;
        *seen.per_op.entry(op).or_default() += 1;
        seen.any += 1;
        let hit = faults
            .inject
            .iter()
            .find(|i| i.hits(op, index_of_op, index_any))
            .map(|i| i.kind);
        if let Some(kind) = hit {
            let path = target.split('?').next().unwrap_or("");
            seen.log
                .push(format!("{kind:?} on {op:?} #{} ({path})", index_of_op + 1));
            counters.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    };

    let mut threshold = faults.error_ratio;
    let random_error = injected.is_none() && roll < threshold;
    let error = match injected {
        Some(FaultKind::InternalError) => Some(("500 Internal Server Error", "InternalError")),
        Some(FaultKind::SlowDown) => Some(("503 Service Unavailable", "SlowDown")),
        Some(FaultKind::TooManyRequests) => Some(("429 Too Many Requests", "TooManyRequests")),
        None if random_error && roll < threshold / 2.0 => {
            Some(("503 Service Unavailable", "SlowDown"))
        }
        None if random_error => Some(("500 Internal Server Error", "InternalError")),
        _ => None,
    };
    if let Some((status, code)) = error {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        read_rest(&mut client, &mut leftover, body_len)?;
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>");
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    threshold += faults.hang_ratio;
    if injected == Some(FaultKind::Hang) || (injected.is_none() && roll < threshold) {
        counters.hangs.fetch_add(1, Ordering::Relaxed);
        for _ in 0..1200 {
            if ctx.stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(());
    }
    if injected == Some(FaultKind::ResetMidBody) && body_len > 0 {
        // The link dies mid-upload: half the body arrives, then a reset.
        let half = body_len / 2;
        let mut buf = [0u8; 8192];
        let mut got = leftover.len();
        while got < half {
            let n = client.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        counters.cut_uploads.fetch_add(1, Ordering::Relaxed);
        reset(client);
        return Ok(());
    }

    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(&with_connection_close(&text))?;
    let cut = faults.cut_upload_after.filter(|limit| body_len > *limit);
    if let (Some(limit), "PUT", None) = (cut, method.as_str(), injected) {
        counters.cut_uploads.fetch_add(1, Ordering::Relaxed);
        let mut sent = leftover.len().min(limit);
        upstream.write_all(&leftover[..sent])?;
        let mut buf = [0u8; 8192];
        while sent < limit {
            let n = client.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let take = n.min(limit - sent);
            upstream.write_all(&buf[..take])?;
            sent += take;
        }
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    read_rest(&mut client, &mut leftover, body_len)?;
    upstream.write_all(&leftover)?;

    threshold += faults.cut_response_ratio;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    let short = injected == Some(FaultKind::ShortBody) || (injected.is_none() && roll < threshold);
    if short || injected == Some(FaultKind::ResetMidBody) {
        counters.cut_responses.fetch_add(1, Ordering::Relaxed);
        let head_end = find(&response, b"\r\n\r\n").map_or(response.len(), |i| i + 4);
        let body = response.len() - head_end;
        let keep = head_end + body / 2;
        client.write_all(&response[..keep])?;
        client.flush()?;
        if short {
            let _ = client.shutdown(Shutdown::Both);
        } else {
            reset(client);
        }
        return Ok(());
    }
    client.write_all(&response)?;
    Ok(())
}

/// Closes with a TCP reset (SO_LINGER 0) instead of a normal close.
fn reset(conn: TcpStream) {
    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
    drop(conn);
}

fn read_head(client: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(i) = find(&data, b"\r\n\r\n") {
            let rest = data.split_off(i + 4);
            return Ok((data, rest));
        }
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
    }
}

fn read_rest(client: &mut TcpStream, have: &mut Vec<u8>, total: usize) -> std::io::Result<()> {
    let mut buf = [0u8; 8192];
    while have.len() < total {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn with_connection_close(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.is_empty() {
            continue;
        }
        let is_connection = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
