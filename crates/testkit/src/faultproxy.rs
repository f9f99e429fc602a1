//! An HTTP/1.1 proxy on a random loopback port in front of a real server (Garage),
//! injecting the faults S3 clients meet in the field: error answers (500
//! InternalError, 503 SlowDown), responses cut mid-body, requests that hang, uploads
//! cut mid-body, and a server that refuses everything. Faults are chosen per request
//! with the configured probabilities and can be changed while the proxy runs.
//!
//! Each request gets its own upstream connection (`Connection: close`), so a fault
//! affects exactly one request.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub hangs: AtomicU64,
    pub cut_responses: AtomicU64,
    pub cut_uploads: AtomicU64,
}

pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
    pub counters: Arc<Counters>,
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
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (faults, counters, stop) = (faults.clone(), counters.clone(), stop.clone());
            std::thread::spawn(move || {
                let seed = AtomicU64::new(seed());
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let current = faults.lock().unwrap().clone();
                    let (counters, stop) = (counters.clone(), stop.clone());
                    let roll = next_random(&seed);
                    std::thread::spawn(move || {
                        let _ = serve(conn, upstream_port, &current, roll, &counters, &stop);
                    });
                }
            });
        }
        FaultProxy {
            port,
            faults,
            counters,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }
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

fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    faults: &Faults,
    roll: f64,
    counters: &Counters,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    if faults.down {
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, mut leftover) = read_head(&mut client)?;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&head).into_owned();
    let method = text.split_whitespace().next().unwrap_or("").to_string();
    let body_len = header(&text, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);

    let mut threshold = faults.error_ratio;
    if roll < threshold {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        read_rest(&mut client, &mut leftover, body_len)?;
        let (status, code) = if roll < threshold / 2.0 {
            ("503 Service Unavailable", "SlowDown")
        } else {
            ("500 Internal Server Error", "InternalError")
        };
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>");
        write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    threshold += faults.hang_ratio;
    if roll < threshold {
        counters.hangs.fetch_add(1, Ordering::Relaxed);
        for _ in 0..1200 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(());
    }

    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(&with_connection_close(&text))?;
    let cut = faults.cut_upload_after.filter(|limit| body_len > *limit);
    if let (Some(limit), "PUT") = (cut, method.as_str()) {
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
    if roll < threshold {
        counters.cut_responses.fetch_add(1, Ordering::Relaxed);
        let head_end = find(&response, b"\r\n\r\n").map_or(response.len(), |i| i + 4);
        let body = response.len() - head_end;
        let keep = head_end + body / 2;
        client.write_all(&response[..keep])?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    client.write_all(&response)?;
    Ok(())
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
