//! A small S3 client for repository copies on any S3-compatible server (AWS, Garage,
//! MinIO, Ceph, Backblaze B2's S3 API, ...): get, ranged get, put, delete, list.
//!
//! What it guarantees, because a backup copy is only worth what it proves:
//! - **Integrity in both directions.** Every upload carries `Content-MD5` (the server
//!   rejects a body damaged on the way) and the returned `ETag` is compared with the
//!   MD5 drydock computed; a download's length is checked against what was asked for,
//!   and callers verify content hashes (restic file names are SHA-256 of the content).
//!   S3 makes a PUT visible only when complete, so an interrupted upload never leaves a
//!   partial object that would count as present.
//! - **Retries only where they help.** Connection failures, resets, timeouts, 500, 502,
//!   503, 504, 429 and the `SlowDown`/`InternalError`/`RequestTimeout` codes are retried
//!   with exponential backoff and jitter, a bounded number of times; a refusal (403,
//!   404 bucket, 400) fails at once with what to fix.
//! - **No secret in any message.** Requests are signed with query-string signatures
//!   (SigV4) built by `rusty-s3`; a signed URL is never printed or logged. Messages
//!   name the remote by its redacted location (`s3:https://host/bucket/prefix`) and the
//!   object key only.

use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::StorageError;

/// Where a remote copy lives and how to reach it. `Debug` hides the credentials.
#[derive(Clone)]
pub struct S3Options {
    /// `http(s)://host[:port]`, without credentials.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix inside the bucket, e.g. `backups/clinic/`; empty for the bucket root.
    pub prefix: String,
    /// `https://host/bucket/key` (true) or `https://bucket.host/key` (false).
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub tuning: S3Tuning,
}

impl S3Options {
    /// `s3:ENDPOINT/BUCKET/PREFIX`, with any credentials in the endpoint redacted.
    pub fn location(&self) -> String {
        location_of(self)
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Tuning {
    /// Tries per request, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub connect_timeout: Duration,
    /// Without any byte received or sent for this long, the request is given up (and
    /// retried).
    pub io_timeout: Duration,
}

impl Default for S3Tuning {
    fn default() -> Self {
        S3Tuning {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
        }
    }
}

/// The display form of an endpoint: any `user:password@` part is replaced by `***@`.
pub fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    format!("{scheme}{authority}{path}")
        .trim_end_matches('/')
        .to_string()
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the copy's prefix, e.g. `data/5b/5b67...`.
    pub key: String,
    pub size: u64,
    pub last_modified: Option<jiff::Timestamp>,
}

/// Why a request failed, after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Problem {
    /// No connection could be made (refused, unreachable, DNS, TLS).
    Unreachable(String),
    /// The connection broke or stalled mid-request (reset, timeout, short body).
    Interrupted(String),
    /// The server answered with an error status.
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// The bytes that came back are not the bytes that were meant.
    Integrity(String),
}

/// A failed request: which remote, which operation, what went wrong, how often tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub location: String,
    pub operation: String,
    pub problem: S3Problem,
    pub attempts: u32,
}

impl S3Error {
    /// The server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, S3Problem::Status { status: 404, code, .. } if code != "NoSuchBucket")
    }

    fn fix(&self) -> &'static str {
        match &self.problem {
            S3Problem::Unreachable(_) => {
                "check [[remote]].endpoint and that the S3 server is up and reachable from this host"
            }
            S3Problem::Interrupted(_) => {
                "the connection to the S3 server is unreliable; drydock retries at the next run (`drydock sync` retries now)"
            }
            S3Problem::Status { status: 403, .. } | S3Problem::Status { status: 401, .. } => {
                "check [[remote]].access_key_id / secret_access_key and that this key may read and write the bucket"
            }
            S3Problem::Status { code, .. } if code == "NoSuchBucket" => {
                "create the bucket, or fix [[remote]].bucket"
            }
            S3Problem::Status { status: 400, code, .. }
                if code.contains("Region") || code == "AuthorizationHeaderMalformed" =>
            {
                "check [[remote]].region: it must be the region the server expects"
            }
            S3Problem::Status { status, .. } if *status >= 500 || *status == 429 => {
                "the S3 server has trouble; drydock retries at the next run (`drydock sync` retries now)"
            }
            S3Problem::Status { .. } => "check the [[remote]] settings and the server's logs",
            S3Problem::Integrity(_) => {
                "the object on the remote is damaged or incomplete; `drydock verify --copy NAME --read-data` tells which backups depend on it"
            }
        }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote {}: {}: ", self.location, self.operation)?;
        match &self.problem {
            S3Problem::Unreachable(cause) => write!(f, "cannot connect ({cause})")?,
            S3Problem::Interrupted(cause) => write!(f, "interrupted ({cause})")?,
            S3Problem::Status {
                status,
                code,
                message,
            } => {
                write!(f, "HTTP {status}")?;
                if !code.is_empty() {
                    write!(f, " {code}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
            }
            S3Problem::Integrity(what) => write!(f, "{what}")?,
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        write!(f, "; {}", self.fix())
    }
}

impl std::error::Error for S3Error {}

impl From<S3Error> for StorageError {
    fn from(e: S3Error) -> Self {
        StorageError::Remote(e.to_string())
    }
}

/// One attempt's outcome: done, worth another try, or hopeless.
enum Attempt<T> {
    Done(T),
    Retry(S3Problem),
    Fail(S3Problem),
}

/// A connection to one bucket/prefix.
pub struct S3Client {
    location: String,
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    agent: ureq::Agent,
    tuning: S3Tuning,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// How long a signed URL stays valid: long enough for a slow upload of one pack.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(3600);

impl S3Client {
    pub fn new(opts: &S3Options) -> Result<S3Client, StorageError> {
        let location = location_of(opts);
        let endpoint = url::Url::parse(&opts.endpoint).map_err(|e| {
            StorageError::invalid(
                format!("remote endpoint {}", redact_url(&opts.endpoint)),
                format!("is not a URL ({e})"),
                "write it as http(s)://host[:port]",
            )
        })?;
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(StorageError::invalid(
                format!("remote endpoint {}", redact_url(&opts.endpoint)),
                "contains credentials",
                "remove them from the URL and set access_key_id / secret_access_key",
            ));
        }
        let style = if opts.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, opts.bucket.clone(), opts.region.clone())
            .map_err(|e| {
                StorageError::invalid(
                    format!("remote {location}"),
                    format!("the bucket cannot be addressed ({e})"),
                    "check [[remote]].endpoint, bucket and path_style",
                )
            })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.tuning.connect_timeout))
            .timeout_per_read(Some(opts.tuning.io_timeout))
            .timeout_per_write(Some(opts.tuning.io_timeout))
            .max_redirects(0)
            .build()
            .into();
        Ok(S3Client {
            location,
            bucket,
            credentials: Credentials::new(&opts.access_key_id, &opts.secret_access_key),
            prefix: normalized_prefix(&opts.prefix),
            agent,
            tuning: opts.tuning,
        })
    }

    /// `s3:http://host:port/bucket/prefix`, safe to print.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Checks that the bucket answers with these credentials.
    pub fn probe(&self) -> Result<(), S3Error> {
        // A listing of at most one key needs read permission on the bucket and tells a
        // missing bucket (404 NoSuchBucket) from bad credentials (403).
        self.list_page("", None, Some(1)).map(|_| ())
    }

    /// The object's bytes; `Ok(None)` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        let full = self.full_key(key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &full)
            .sign(SIGNATURE_LIFETIME);
        let result = self.retrying(&format!("GET {key}"), || {
            match self.agent.get(url.as_str()).call() {
                Err(e) => transport(e),
                Ok(mut resp) if resp.status().as_u16() == 200 => {
                    read_body(&mut resp, None).map_or_else(Attempt::Retry, Attempt::Done)
                }
                Ok(resp) => status_failure(resp),
            }
        });
        match result {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `length` bytes at `offset` of the object.
    pub fn get_range(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, S3Error> {
        self.ranged(key, offset, length, false)
    }

    /// Up to `length` bytes at `offset`: fewer only where the object ends (read-ahead
    /// that may run past the end).
    pub fn get_range_upto(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, S3Error> {
        self.ranged(key, offset, length, true)
    }

    fn ranged(&self, key: &str, offset: u64, length: u64, upto: bool) -> Result<Vec<u8>, S3Error> {
        if length == 0 {
            return Ok(Vec::new());
        }
        let full = self.full_key(key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &full)
            .sign(SIGNATURE_LIFETIME);
        let range = format!("bytes={}-{}", offset, offset + length - 1);
        self.retrying(&format!("GET {key} ({range})"), || {
            match self.agent.get(url.as_str()).header("range", &range).call() {
                Err(e) => transport(e),
                Ok(mut resp) if resp.status().as_u16() == 206 => {
                    let ends_early = upto
                        && content_range(&resp).is_some_and(|(start, end, total)| {
                            start == offset && end + 1 == total && total < offset + length
                        });
                    let want = if ends_early { None } else { Some(length) };
                    read_body(&mut resp, want).map_or_else(Attempt::Retry, Attempt::Done)
                }
                // A server that ignores Range sends the whole object: take our part.
                Ok(mut resp) if resp.status().as_u16() == 200 => match read_body(&mut resp, None) {
                    Ok(all) => {
                        let start = offset as usize;
                        let end = if upto {
                            (start + length as usize).min(all.len())
                        } else {
                            start + length as usize
                        };
                        if all.len() < end || start > end {
                            Attempt::Fail(S3Problem::Integrity(format!(
                                "the object has {} bytes, {end} were needed",
                                all.len()
                            )))
                        } else {
                            Attempt::Done(all[start..end].to_vec())
                        }
                    }
                    Err(p) => Attempt::Retry(p),
                },
                Ok(resp) => status_failure(resp),
            }
        })
    }

    /// Uploads `body`; returns once the server confirmed exactly these bytes.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<(), S3Error> {
        let full = self.full_key(key);
        let md5 = Md5::digest(body);
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(md5);
        let md5_hex = hex::encode(md5);
        let mut action = self.bucket.put_object(Some(&self.credentials), &full);
        action.headers_mut().insert("content-md5", md5_b64.clone());
        let url = action.sign(SIGNATURE_LIFETIME);
        self.retrying(&format!("PUT {key}"), || {
            let sent = self
                .agent
                .put(url.as_str())
                .header("content-md5", &md5_b64)
                .header("content-type", "application/octet-stream")
                .send(body);
            match sent {
                Err(e) => transport(e),
                Ok(resp) if resp.status().is_success() => {
                    let etag = resp
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim_matches('"').to_ascii_lowercase());
                    match etag {
                        // A plain PUT's ETag is the MD5 of the body on AWS, Garage, MinIO,
                        // Ceph; servers with other ETags (encryption at rest) already
                        // checked Content-MD5.
                        Some(tag) if is_md5_hex(&tag) && tag != md5_hex => {
                            Attempt::Retry(S3Problem::Integrity(format!(
                                "the server stored different bytes (ETag {tag}, MD5 sent {md5_hex})"
                            )))
                        }
                        _ => Attempt::Done(()),
                    }
                }
                Ok(resp) => status_failure(resp),
            }
        })
    }

    /// Deletes the object; deleting a missing object is not an error.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let full = self.full_key(key);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &full)
            .sign(SIGNATURE_LIFETIME);
        let result = self.retrying(&format!("DELETE {key}"), || {
            match self.agent.delete(url.as_str()).call() {
                Err(e) => transport(e),
                Ok(resp) if resp.status().is_success() => Attempt::Done(()),
                Ok(resp) => status_failure(resp),
            }
        });
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Every object whose key starts with `dir` (relative to the prefix).
    pub fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>, S3Error> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (objects, next) = self.list_page(dir, token.as_deref(), None)?;
            all.extend(objects);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    fn list_page(
        &self,
        dir: &str,
        token: Option<&str>,
        max_keys: Option<usize>,
    ) -> Result<(Vec<ObjectInfo>, Option<String>), S3Error> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        let full = self.full_key(dir);
        if !full.is_empty() {
            action.with_prefix(full.as_str());
        }
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        if let Some(n) = max_keys {
            action.with_max_keys(n);
        }
        let url = action.sign(SIGNATURE_LIFETIME);
        let text = self.retrying(
            &format!("LIST {}", if dir.is_empty() { "/" } else { dir }),
            || match self.agent.get(url.as_str()).call() {
                Err(e) => transport(e),
                Ok(mut resp) if resp.status().as_u16() == 200 => match read_body(&mut resp, None) {
                    Ok(bytes) => Attempt::Done(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(p) => Attempt::Retry(p),
                },
                Ok(resp) => status_failure(resp),
            },
        )?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
            self.error(
                "LIST",
                S3Problem::Integrity(format!("the listing is not valid S3 XML ({e})")),
                1,
            )
        })?;
        let objects = parsed
            .contents
            .into_iter()
            .filter_map(|c| {
                let key = percent_decode(&c.key);
                let rel = key.strip_prefix(&self.prefix)?.to_string();
                Some(ObjectInfo {
                    key: rel,
                    size: c.size.unwrap_or(0),
                    last_modified: c.last_modified.as_deref().and_then(|t| t.parse().ok()),
                })
            })
            .collect();
        Ok((objects, parsed.next_continuation_token))
    }

    fn error(&self, operation: &str, problem: S3Problem, attempts: u32) -> S3Error {
        S3Error {
            location: self.location.clone(),
            operation: operation.to_string(),
            problem,
            attempts,
        }
    }

    /// Runs `attempt` until it is done, fails for good, or the tries are used up,
    /// sleeping with exponential backoff and jitter in between.
    fn retrying<T>(
        &self,
        operation: &str,
        mut attempt: impl FnMut() -> Attempt<T>,
    ) -> Result<T, S3Error> {
        let mut delay = self.tuning.first_delay;
        let mut tries = 0;
        loop {
            tries += 1;
            let started = Instant::now();
            match attempt() {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(problem) => return Err(self.error(operation, problem, tries)),
                Attempt::Retry(problem) if tries >= self.tuning.attempts.max(1) => {
                    return Err(self.error(operation, problem, tries))
                }
                Attempt::Retry(problem) => {
                    log::warn!(
                        "remote {}: {operation}: {problem:?} after {} ms; retrying in {} ms",
                        self.location,
                        started.elapsed().as_millis(),
                        delay.as_millis()
                    );
                    std::thread::sleep(jitter(delay));
                    delay = (delay * 2).min(self.tuning.max_delay);
                }
            }
        }
    }
}

fn location_of(opts: &S3Options) -> String {
    let prefix = normalized_prefix(&opts.prefix);
    format!(
        "s3:{}/{}/{}",
        redact_url(&opts.endpoint),
        opts.bucket,
        prefix.trim_end_matches('/')
    )
    .trim_end_matches('/')
    .to_string()
}

/// `backups` and `/backups/` both become `backups/`; empty stays empty.
fn normalized_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

fn is_md5_hex(tag: &str) -> bool {
    tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Up to a quarter more or less than `d`, so clients that failed together do not
/// retry together.
fn jitter(d: Duration) -> Duration {
    let quarter = d.as_millis() as u64 / 4;
    if quarter == 0 {
        return d;
    }
    let offset = rand::random_range(0..=2 * quarter);
    Duration::from_millis(d.as_millis() as u64 - quarter + offset)
}

fn transport<T>(e: ureq::Error) -> Attempt<T> {
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Attempt::Retry(S3Problem::Unreachable(describe_transport(&e)))
        }
        ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Attempt::Retry(S3Problem::Unreachable(describe_transport(&e)))
        }
        ureq::Error::Tls(_) | ureq::Error::BadUri(_) => {
            Attempt::Fail(S3Problem::Unreachable(describe_transport(&e)))
        }
        _ => Attempt::Retry(S3Problem::Interrupted(describe_transport(&e))),
    }
}

fn describe_transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => io.to_string(),
        // Other variants carry no URL; still keep the text to one line.
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Reads a whole response body, checking its length against `Content-Length` and
/// against `expected` when given. A short body is an interruption (retried).
fn read_body(
    resp: &mut ureq::http::Response<ureq::Body>,
    expected: Option<u64>,
) -> Result<Vec<u8>, S3Problem> {
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(256 << 20) as usize);
    resp.body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| S3Problem::Interrupted(format!("reading the response: {e}")))?;
    for want in [declared, expected].into_iter().flatten() {
        if bytes.len() as u64 != want {
            return Err(S3Problem::Interrupted(format!(
                "short response: {} of {want} bytes",
                bytes.len()
            )));
        }
    }
    Ok(bytes)
}

/// `Content-Range: bytes START-END/TOTAL` as numbers.
fn content_range(resp: &ureq::http::Response<ureq::Body>) -> Option<(u64, u64, u64)> {
    let text = resp.headers().get("content-range")?.to_str().ok()?;
    let rest = text.strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()?))
}

/// Turns an error response into a retry (transient) or a failure (refusal).
fn status_failure<T>(mut resp: ureq::http::Response<ureq::Body>) -> Attempt<T> {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    let code = xml_field(&text, "Code").unwrap_or_default();
    let message = xml_field(&text, "Message").unwrap_or_default();
    let problem = S3Problem::Status {
        status,
        code: code.clone(),
        message: one_line(&message),
    };
    let transient = matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        || matches!(
            code.as_str(),
            "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable"
        );
    if transient {
        Attempt::Retry(problem)
    } else {
        Attempt::Fail(problem)
    }
}

fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_string())
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// Keys come back URL-encoded (`encoding-type=url`).
fn percent_decode(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(digits, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_credentials_are_redacted() {
        assert_eq!(
            redact_url("https://AKIA:secret@s3.example.net/"),
            "https://***@s3.example.net"
        );
        assert_eq!(redact_url("http://127.0.0.1:3900"), "http://127.0.0.1:3900");
        assert_eq!(redact_url("user:pw@host"), "***@host");
    }

    #[test]
    fn location_names_endpoint_bucket_and_prefix() {
        let mut opts = S3Options {
            endpoint: "https://k:s@s3.example.net".into(),
            region: "eu".into(),
            bucket: "clinic".into(),
            prefix: "/backups/".into(),
            path_style: true,
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            tuning: S3Tuning::default(),
        };
        assert_eq!(
            location_of(&opts),
            "s3:https://***@s3.example.net/clinic/backups"
        );
        opts.prefix.clear();
        assert_eq!(location_of(&opts), "s3:https://***@s3.example.net/clinic");
        let debug = format!("{opts:?}");
        assert!(!debug.contains("SECRET") && !debug.contains("AKID") && !debug.contains(":s@"));
    }

    #[test]
    fn error_messages_say_what_to_fix() {
        let e = S3Error {
            location: "s3:http://h/b".into(),
            operation: "PUT data/ab/abcd".into(),
            problem: S3Problem::Status {
                status: 403,
                code: "AccessDenied".into(),
                message: "Forbidden".into(),
            },
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "remote s3:http://h/b: PUT data/ab/abcd: HTTP 403 AccessDenied: Forbidden; check [[remote]].access_key_id / secret_access_key and that this key may read and write the bucket"
        );
        let e = S3Error {
            problem: S3Problem::Status {
                status: 503,
                code: "SlowDown".into(),
                message: String::new(),
            },
            attempts: 5,
            ..e
        };
        assert!(e
            .to_string()
            .contains("HTTP 503 SlowDown (after 5 attempts); the S3 server has trouble"));
    }

    #[test]
    fn keys_are_decoded() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("data/ab/abc%"), "data/ab/abc%");
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(400));
            assert!(j >= Duration::from_millis(300) && j <= Duration::from_millis(500));
        }
    }
}
