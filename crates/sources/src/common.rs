//! What the PostgreSQL and MySQL/MariaDB adapters share: the database a
//! `SCHEME://USER@HOST:PORT/DATABASE` url names ([`Target`], [`parse_url`]), the
//! configured password and the secrets messages must hide ([`SqlServer`]), the
//! `schema:ddl` part of their fingerprints ([`ddl_part`]), and running a dump or
//! restore tool against the repository ([`tool_spec`], [`store_while_fingerprinting`],
//! [`expect_format`], [`pipe_into`]), and what their drill sandboxes and canaries have in
//! common ([`sandbox_name`], [`url_with_db`], [`describe_sandbox`], [`CANARY_TABLE`]).
//! Engine-specific parts (url parameters, error wording, tool arguments and
//! credentials) stay in each adapter.

use std::io::Write;
use std::path::Path;

use drydock_domain::{PartDigest, Secret, SourceRecord};
use sha2::{Digest, Sha256};

use crate::process::{Tool, ToolSpec};
use crate::{DataSource, Fetch, Inspection, SourceError, Store, Stored};

/// Where the database is, parsed from the configured url.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: String,
}

/// Parses `SCHEME://USER@HOST:PORT/DATABASE` (`scheme` names the expected form in
/// messages), taking `default_port` and `default_user` where the url has none. The
/// parsed url is returned too, for the parameters only one engine understands.
pub(crate) fn parse_url(
    raw: &str,
    scheme: &str,
    default_port: u16,
    default_user: &str,
) -> Result<(Target, url::Url), String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!("the url is not valid ({e}); expected {scheme}://USER@HOST:PORT/DATABASE")
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the url has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let user = percent_decode(url.username());
    let db = percent_decode(url.path().trim_start_matches('/'));
    if db.is_empty() || db.contains('/') {
        return Err(format!(
            "the url names no database; expected {scheme}://USER@HOST:PORT/DATABASE"
        ));
    }
    let target = Target {
        host,
        port: url.port().unwrap_or(default_port),
        user: if user.is_empty() {
            default_user.into()
        } else {
            user
        },
        db,
    };
    Ok((target, url))
}

/// `ENGINE HOST:PORT/DATABASE` for messages, or `ENGINE (invalid url)`.
pub(crate) fn location(engine: &str, target: &Result<Target, String>) -> String {
    match target {
        Ok(t) => format!("{engine} {}/{}", host_port(t), t.db),
        Err(_) => format!("{engine} (invalid url)"),
    }
}

/// `host:port`, with an IPv6 host in brackets.
pub(crate) fn host_port(t: &Target) -> String {
    if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What every drill sandbox database's name starts with; a sandbox only ever drops a
/// database whose name starts with it.
pub(crate) const SANDBOX_PREFIX: &str = "_drydock_sandbox_";

/// The table holding the drill canary (one row, id 1).
pub(crate) const CANARY_TABLE: &str = "_drydock_canary";

/// A fresh sandbox database name: [`SANDBOX_PREFIX`], who made it (`HOST_PID_`: 4
/// characters of a hash of this host's name and drydock's PID in base 36, so a later
/// run can tell a killed run's leftovers, see [`killed_runs_scratch`]) and 8 random
/// lowercase letters and digits.
pub(crate) fn sandbox_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut name = format!(
        "{SANDBOX_PREFIX}{}_{}_",
        host_tag(),
        base36(std::process::id() as u64)
    );
    let len = name.len();
    let mut bytes = random_bytes();
    while name.len() < len + 8 {
        let b = match bytes.pop() {
            Some(b) => b,
            None => {
                bytes = random_bytes();
                continue;
            }
        };
        // 252 = 7 * 36: rejecting the rest keeps every character equally likely.
        if b < 252 {
            name.push(ALPHABET[(b % 36) as usize] as char);
        }
    }
    name
}

/// Scratch databases (`names` starting with one of `prefixes`) that a drydock run on
/// this host made and that outlived it (killed before it could drop them), with the
/// PID of that run. Another host's, a live run's, and names of older versions (which
/// do not say who made them) are left alone.
pub(crate) fn killed_runs_scratch(names: &[String], prefixes: &[&str]) -> Vec<(String, u64)> {
    let host = host_tag();
    names
        .iter()
        .filter_map(|name| {
            let rest = prefixes.iter().find_map(|p| name.strip_prefix(p))?;
            let mut fields = rest.split('_');
            let (tag, pid, random) = (fields.next()?, fields.next()?, fields.next()?);
            if tag != host || random.len() != 8 || fields.next().is_some() {
                return None;
            }
            let pid = u64::from_str_radix(pid, 36).ok()?;
            let alive = pid == std::process::id() as u64
                || Path::new("/proc").join(pid.to_string()).exists();
            (!alive).then(|| (name.clone(), pid))
        })
        .collect()
}

/// 4 base-36 characters of a hash of this host's name.
fn host_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = Sha256::digest(host.trim().as_bytes());
    let n = u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % 36u64.pow(4);
    format!("{:0>4}", base36(n))
}

fn base36(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(ALPHABET[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// 32 random bytes from the kernel, else from the standard library's randomly keyed
/// hasher (fine for a name; nothing secret depends on it).
fn random_bytes() -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; 32];
    let from_kernel = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if from_kernel.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf
}

/// The configured url naming database `db` instead (everything else kept).
pub(crate) fn url_with_db(raw: &str, db: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            url.set_path(&format!("/{db}"));
            url.to_string()
        }
        Err(_) => raw.to_string(),
    }
}

/// `throwaway database NAME on HOST:PORT`, for the drill report.
pub(crate) fn describe_sandbox(t: &Target) -> String {
    format!("throwaway database {} on {}", t.db, host_port(t))
}

/// A source that reaches its database at a [`Target`] with an optional password.
pub(crate) trait SqlServer: DataSource {
    /// The configured url as parsed at construction, or what is wrong with it.
    fn parsed_target(&self) -> &Result<Target, String>;
    /// The configured password reference, if any.
    fn password_secret(&self) -> Option<&Secret>;

    /// The target, or the url's problem as a [`SourceError::Invalid`].
    fn target(&self) -> Result<&Target, SourceError> {
        self.parsed_target()
            .as_ref()
            .map_err(|e| SourceError::invalid(&self.location(), e.clone()))
    }

    fn password(&self) -> Option<&str> {
        self.password_secret().map(|s| s.expose())
    }

    /// The strings messages must never show.
    fn secrets(&self) -> Vec<String> {
        self.password()
            .map(|p| vec![p.to_string()])
            .unwrap_or_default()
    }
}

/// The `schema:ddl` fingerprint part: SHA-256 over the sorted lines that describe the
/// schema, one `\n` after each.
pub(crate) fn ddl_part(mut lines: Vec<String>) -> PartDigest {
    lines.sort();
    let mut h = Sha256::new();
    for line in &lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    PartDigest {
        count: 0,
        digest: hex::encode(h.finalize()),
    }
}

/// What starts `program` with `args`, its stdin and stdout piped as asked; the caller
/// adds the credentials.
pub(crate) fn tool_spec<'a>(
    program: &'a Path,
    args: &'a [String],
    stdin: bool,
    stdout: bool,
) -> ToolSpec<'a> {
    let mut spec = ToolSpec::new(program);
    for a in args {
        spec = spec.arg(a);
    }
    if stdin {
        spec = spec.stdin();
    }
    if stdout {
        spec = spec.stdout();
    }
    spec
}

/// Runs `store` (which stores the dump `tool` writes) on this thread while
/// `fingerprint` describes the same snapshot on another, and returns both results. When
/// fingerprinting fails the dump is killed (no point finishing a dump whose manifest
/// cannot be written); when storing fails, too.
pub(crate) fn store_while_fingerprinting<T, E>(
    tool: &mut Tool,
    location: &str,
    fingerprint: impl FnOnce() -> Result<Inspection, SourceError> + Send,
    store: impl FnOnce() -> Result<T, E>,
) -> (Result<T, E>, Result<Inspection, SourceError>) {
    let kill_dump = tool.kill_switch();
    std::thread::scope(|s| {
        let fingerprint = s.spawn(move || {
            let result = fingerprint();
            if result.is_err() {
                // The child is not reaped before this scope ends, so the pid is still ours.
                kill_dump.kill();
            }
            result
        });
        let stored = store();
        if stored.is_err() {
            tool.kill();
        }
        let inspection = fingerprint
            .join()
            .unwrap_or_else(|_| Err(SourceError::invalid(location, "fingerprinting panicked")));
        (stored, inspection)
    })
}

/// Stores the private file at `path` as one stream (`what` names it in errors): the
/// way a copy that other threads check at the same time is stored (SQLite, Redis).
pub(crate) fn store_file(
    store: &dyn Store,
    path: &Path,
    extension: &str,
    location: &str,
    what: &str,
) -> Result<Stored, SourceError> {
    let file = std::fs::File::open(path)
        .map_err(|e| SourceError::io(location, format!("reading {what}"), e))?;
    store
        .put_stream(Box::new(file), extension)
        .map_err(|e| SourceError::store(location, e))
}

/// A checking thread's result; its panic is an error of this operation, not drydock's end.
pub(crate) fn joined<T>(
    result: std::thread::Result<Result<T, SourceError>>,
    location: &str,
    what: &str,
) -> Result<T, SourceError> {
    result.unwrap_or_else(|_| Err(SourceError::invalid(location, format!("{what} panicked"))))
}

/// Refuses a backup recorded in another format than `format` (`what` names that format
/// for the message, e.g. "a MySQL dump").
pub(crate) fn expect_format(
    record: &SourceRecord,
    format: &str,
    what: &str,
    location: &str,
) -> Result<(), SourceError> {
    match record.format.as_deref().filter(|f| *f != format) {
        Some(other) => Err(SourceError::invalid(
            location,
            format!("the backup holds `{other}`, not {what} ({format})"),
        )),
        None => Ok(()),
    }
}

/// Streams the stored backup into a restore tool's stdin and waits for it. When the
/// tool fails first (the pipe breaks), its error (with its stderr) is the one reported;
/// when fetching fails on its own, the tool is killed before it sees a clean EOF.
pub(crate) fn pipe_into(
    mut tool: Tool,
    fetch: &dyn Fetch,
    location: &str,
) -> Result<(), SourceError> {
    let mut sink = PipeSink {
        inner: tool.take_stdin(),
        broken: false,
    };
    let copied = fetch.stream_into(&mut sink);
    match copied {
        Ok(_) => {
            drop(sink);
            tool.finish()
        }
        Err(e) if sink.broken => {
            drop(sink);
            tool.finish()?;
            Err(SourceError::store(location, e))
        }
        Err(e) => {
            tool.kill();
            drop(sink);
            Err(SourceError::store(location, e))
        }
    }
}

/// A tool's stdin that remembers whether a write to it failed.
struct PipeSink {
    inner: Box<dyn std::io::Write + Send>,
    broken: bool,
}

impl Write for PipeSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.broken |= r.is_err();
        r
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.broken |= r.is_err();
        r
    }
}

/// Drops a sandbox database by name, through the live source's credentials.
type Dropper = Box<dyn FnMut(&str) -> Result<(), crate::SourceError> + Send>;

/// A drill sandbox on a SQL server: a throwaway database next to the live one, dropped
/// (through the live source's credentials, by `dropper`) when this is dropped.
pub(crate) struct ScratchDatabase<S> {
    /// The live source pointed at the sandbox database.
    target: S,
    name: String,
    description: String,
    /// Where the live database is, for log lines.
    location: String,
    /// The statement an operator runs if dropping failed.
    drop_by_hand: String,
    dropper: Dropper,
}

impl<S: crate::DataSource + 'static> ScratchDatabase<S> {
    pub(crate) fn new(
        target: S,
        sandbox: &Target,
        location: String,
        drop_by_hand: String,
        dropper: impl FnMut(&str) -> Result<(), crate::SourceError> + Send + 'static,
    ) -> Self {
        ScratchDatabase {
            target,
            name: sandbox.db.clone(),
            description: describe_sandbox(sandbox),
            location,
            drop_by_hand,
            dropper: Box::new(dropper),
        }
    }
}

impl<S> ScratchDatabase<S> {
    /// The scratch database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl<S: crate::DataSource + 'static> crate::Sandbox for ScratchDatabase<S> {
    fn target(&self) -> &dyn crate::DataSource {
        &self.target
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl<S> Drop for ScratchDatabase<S> {
    fn drop(&mut self) {
        match (self.dropper)(&self.name) {
            Ok(()) => {
                tracing::info!(location = %self.location, sandbox = %self.name, "dropped the drill sandbox")
            }
            Err(e) => tracing::warn!(
                sandbox = %self.description,
                error = %e,
                "could not drop the drill sandbox; drop it by hand: {}",
                self.drop_by_hand
            ),
        }
    }
}

/// A private file where a tool runs: in the scratch directory on this host, or in the
/// container's /tmp when the tool runs inside it (written through the exec API, so no
/// secret ever passes through an argument). Removed when dropped.
pub(crate) struct Staged<'a> {
    path: String,
    inside: Option<&'a dyn drydock_runtimes::Runtime>,
    location: String,
}

impl Staged<'_> {
    pub fn path(&self) -> &str {
        &self.path
    }
}

pub(crate) fn stage<'a>(
    inside: Option<&'a dyn drydock_runtimes::Runtime>,
    scratch: &Path,
    name: &str,
    bytes: &[u8],
    location: &str,
) -> Result<Staged<'a>, SourceError> {
    let path = match inside {
        None => {
            use std::os::unix::fs::OpenOptionsExt;
            let path = scratch.join(name);
            let _ = std::fs::remove_file(&path);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| SourceError::io(location, format!("creating {name}"), e))?;
            f.write_all(bytes)
                .map_err(|e| SourceError::io(location, format!("writing {name}"), e))?;
            path.to_string_lossy().into_owned()
        }
        Some(runtime) => {
            let path = format!("/tmp/drydock-{}-{name}", std::process::id());
            let mut tool = ToolSpec::new(Path::new("sh"))
                .arg("-c")
                .arg("umask 077 && cat > \"$0\"")
                .arg(&path)
                .stdin()
                .inside(Some(runtime))
                .spawn(location)?;
            let mut stdin = tool.take_stdin();
            let written = stdin.write_all(bytes);
            drop(stdin);
            tool.finish()?;
            written.map_err(|e| {
                SourceError::io(location, format!("writing {name} into the container"), e)
            })?;
            path
        }
    };
    Ok(Staged {
        path,
        inside,
        location: location.to_string(),
    })
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        match self.inside {
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
            Some(runtime) => {
                if let Ok(tool) = ToolSpec::new(Path::new("rm"))
                    .arg("-f")
                    .arg(&self.path)
                    .inside(Some(runtime))
                    .spawn(&self.location)
                {
                    let _ = tool.finish();
                }
            }
        }
    }
}

/// Reads a stored stream through to its end, checking it against the backup's SHA-256
/// and size, before anything is replaced with it (the fallback when a restore cannot
/// be tried beside the live data first).
pub(crate) fn read_through(
    fetch: &dyn Fetch,
    record: &drydock_domain::SourceRecord,
    location: &str,
) -> Result<(), SourceError> {
    struct Sink(Sha256);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Sink(Sha256::new());
    let bytes = fetch
        .stream_into(&mut sink)
        .map_err(|e| SourceError::store(location, e))?;
    let sha = hex::encode(sink.0.finalize());
    let damaged = |what: String| {
        SourceError::invalid(
            location,
            format!("the stored backup is damaged ({what}); nothing was changed"),
        )
    };
    if bytes != record.logical_bytes {
        return Err(damaged(format!(
            "{bytes} bytes read, {} recorded",
            record.logical_bytes
        )));
    }
    match &record.sha256 {
        Some(want) if !want.eq_ignore_ascii_case(&sha) => {
            Err(damaged(format!("sha256 {sha}, expected {want}")))
        }
        _ => Ok(()),
    }
}

/// Restores the backup into `scratch`, a place beside the live data, and proves it
/// against `record`: what lets a restore change live data only for a copy already
/// verified. Every error goes through `unchanged`, which says the live data was not
/// changed.
pub(crate) fn restore_and_prove(
    scratch: &dyn DataSource,
    fetch: &dyn Fetch,
    record: &SourceRecord,
    ctx: &crate::SourceContext<'_>,
    unchanged: &dyn Fn(SourceError) -> SourceError,
) -> Result<(), SourceError> {
    scratch.restore(fetch, record, ctx).map_err(unchanged)?;
    let inspection = scratch.inspect_as(record, ctx).map_err(unchanged)?;
    let (differences, _) = crate::compare_with_record(record, &inspection);
    if !differences.is_empty() {
        return Err(unchanged(SourceError::invalid(
            &scratch.location(),
            format!("it does not match the backup: {}", differences.join("; ")),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_names_are_random_lowercase_alphanumerics() {
        let a = sandbox_name();
        let b = sandbox_name();
        assert_ne!(a, b);
        for name in [a, b] {
            let suffix = name.strip_prefix(SANDBOX_PREFIX).unwrap();
            let random = suffix.rsplit('_').next().unwrap();
            assert_eq!(random.len(), 8, "{name}");
            assert!(
                name.len() <= 63,
                "fits PostgreSQL's and MySQL's limits: {name}"
            );
            assert!(
                suffix
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn only_this_hosts_dead_runs_scratch_databases_are_leftovers() {
        let mine = sandbox_name();
        // PID 4194304 is above the kernel's maximum: no such process lives.
        let dead = format!(
            "{SANDBOX_PREFIX}{}_{}_abcdefgh",
            host_tag(),
            base36(4_194_304)
        );
        let other_host = format!("{SANDBOX_PREFIX}zzzz_{}_abcdefgh", base36(4_194_304));
        let old_style = format!("{SANDBOX_PREFIX}abcdefgh");
        let old_db = dead.replacen(SANDBOX_PREFIX, "_drydock_old_", 1);
        let names = vec![
            mine,
            dead.clone(),
            other_host,
            old_style,
            old_db.clone(),
            "app".into(),
        ];
        let found = killed_runs_scratch(&names, &[SANDBOX_PREFIX, "_drydock_old_"]);
        assert_eq!(found, vec![(dead, 4_194_304), (old_db, 4_194_304)]);
    }

    #[test]
    fn urls_name_another_database() {
        assert_eq!(
            url_with_db(
                "postgres://app@db:6543/live?sslmode=disable",
                "_drydock_sandbox_x"
            ),
            "postgres://app@db:6543/_drydock_sandbox_x?sslmode=disable"
        );
        let (t, _) = parse_url(
            &url_with_db("mysql://u%40x@[::1]/live", "_drydock_sandbox_y"),
            "mysql",
            3306,
            "root",
        )
        .unwrap();
        assert_eq!(
            (t.user.as_str(), t.db.as_str()),
            ("u@x", "_drydock_sandbox_y")
        );
        assert_eq!(
            describe_sandbox(&t),
            "throwaway database _drydock_sandbox_y on [::1]:3306"
        );
    }
}
