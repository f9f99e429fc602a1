//! Hostile input (issue 7, item 7). Tortures what drydock reads from others: the config
//! and manifest decoders under mutation fuzzing (no panic, bounded memory and time,
//! line-accurate config errors), restores of snapshots whose stored names try to escape
//! the target (`../`, absolute names, repeated names with a symlink), and `files`
//! sources full of hostile names and special files or with files changing while read.
//! Every trial checks real outcomes: exit codes, what is on disk outside the target
//! before and after, `verify --read-data`, the backup list, and the restored data
//! against what was live.
//!
//! The bounded fuzz here runs in quick mode (about 20 s); the open-ended one is the
//! cargo-fuzz workspace in `fuzz/` (see RELIABILITY.md).

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::torture::{runs, Failure, Tally};
use common::{Stack, REPO_PASSWORD};
use drydock_domain::{Config, Manifest};
use hostile::{run_with_deadline, tree_diff, tree_state, CraftedEntry, CraftedKind};
use rand::rngs::StdRng;
use rand::{Rng, RngCore};

const BINARY: &str = "torture_hostile";

// ---------------------------------------------------------------------------------
// Memory accounting: the decoders must not allocate far beyond their input.

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            note_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `decode`, returning (panic message if any, bytes allocated at the peak above
/// the starting level, time taken).
fn measured(decode: impl FnOnce()) -> (Option<String>, usize, Duration) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(decode));
    let took = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let panic = outcome.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    });
    (panic, peak, took)
}

/// What a decoder may allocate for an input of `len` bytes: linear in the input. The
/// TOML parser keeps about 2 KiB per key (an inline table of 20 000 repeated `t = 20,`
/// keys, 210 KB, took 48 MB), so a config load may use ~256 bytes per input byte;
/// `CONFIG_MAX_BYTES` (1 MiB) caps that at ~256 MiB.
fn memory_bound(len: usize) -> usize {
    (16 << 20) + 256 * len
}

// ---------------------------------------------------------------------------------
// Seed corpora.

/// Every `${env:NAME}` the corpus uses is set, so unmutated seeds load and mutations
/// reach validation, not just the first missing variable.
fn set_corpus_env(texts: &[String]) {
    for text in texts {
        for part in text.split("${env:").skip(1) {
            if let Some(end) = part.find('}') {
                // Single-threaded here: the fuzz runs before any thread reads the env.
                std::env::set_var(&part[..end], "fuzz-env-value");
            }
        }
    }
}

fn config_corpus(secret_file: &Path) -> Vec<String> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut corpus = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            corpus.push(std::fs::read_to_string(&path).unwrap().replace(
                "/etc/drydock/shop-repo.password",
                secret_file.to_str().unwrap(),
            ));
        }
    }
    corpus.push(format!(
        r#"[stack]
name = "fuzz"
state_dir = "state"

[repository]
path = "repo"
password = "${{file:{secret}}}"

[[remote]]
name = "offsite"
kind = "s3"
endpoint = "https://s3.example.net:9000"
region = "garage"
bucket = "fuzz-bucket"
prefix = "p/q"
path_style = true
access_key_id = "${{env:FUZZ_S3_KEY}}"
secret_access_key = "${{env:FUZZ_S3_SECRET}}"

[retention]
daily = 7
weekly = 4
monthly = 12
timezone = "Europe/Berlin"
anomaly_ratio = 0.5
anomaly_window = 7
[retention.critical]
daily = 30

[drill]
rto_target = "30m"
rpo_target = "24h"
[drill.critical]
rpo_target = "15m"

[services.db]
role = "infra"
runtime = {{ kind = "external" }}
data = [
  {{ kind = "postgres", priority = "critical", url = "postgres://app@127.0.0.1:5432/app", password = "${{env:FUZZ_PG}}", exclude_tables = ["audit_log", "ops.sessions"] }},
  {{ kind = "redis", name = "cache", priority = "low", url = "redis://127.0.0.1:6379", password = "${{env:FUZZ_REDIS}}" }},
]
health = [
  {{ kind = "tcp", address = "127.0.0.1:5432", timeout = "500ms" }},
  {{ kind = "disk", name = "data-disk", path = "/var/lib", warn_free_pct = 20, critical_free_bytes = "2 GiB" }},
]

[services.app]
runtime = {{ kind = "process", start = "true", stop = "true", status = "true", timeout = "60s" }}
stop_during_backup = true
data = [
  {{ kind = "sqlite", priority = "high", path = "app.db" }},
  {{ kind = "files", name = "uploads", priority = "medium", path = "uploads", exclude = ["cache/**", "*.tmp"] }},
  {{ kind = "mysql", name = "shop", priority = "high", url = "mysql://shop@127.0.0.1:3306/shop", password = "${{env:FUZZ_MY}}" }},
]
"#,
        secret = secret_file.display()
    ));
    corpus
}

fn manifest_corpus() -> Vec<Vec<u8>> {
    let stream = serde_json::json!({
        "format": 1, "id": "20261130-120000-abcdef", "stack": "fuzz", "host": "h",
        "drydock_version": "0.1.0", "started_at": "2026-11-30T12:00:00Z",
        "finished_at": "2026-11-30T12:00:05Z", "status": "partial",
        "sources": [
            {"service": "db", "source": "postgres", "kind": "postgres", "priority": "critical",
             "status": "ok", "snapshot_id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
             "stored_path": "/db/postgres.pgdump", "format": "pg_dump-custom",
             "logical_bytes": 123456, "stored_bytes": 2345, "sha256": "00ff",
             "counts": {"tables": 2, "rows": 3500, "sequences": 1},
             "fingerprint": {"digest": "ab", "parts": {"public.t": {"count": 3, "digest": "cd"}}},
             "consistent_at": "2026-11-30T12:00:01Z", "duration_ms": 1200},
            {"service": "app", "source": "files", "kind": "files", "priority": "low",
             "status": "failed", "error": "directory /x does not exist",
             "logical_bytes": 0, "stored_bytes": 0, "duration_ms": 3,
             "pruned_at": "2026-12-01T00:00:00Z"},
            {"service": "cache", "source": "redis", "kind": "redis", "priority": "none",
             "status": "skipped", "logical_bytes": 0, "stored_bytes": 0, "counts": {},
             "duration_ms": 0}
        ]
    });
    let mut corpus = vec![serde_json::to_vec_pretty(&stream).unwrap()];
    let mut minimal = stream.clone();
    minimal["sources"] = serde_json::json!([]);
    minimal["status"] = "ok".into();
    corpus.push(serde_json::to_vec(&minimal).unwrap());
    for seed in &corpus {
        Manifest::from_json(seed).expect("the manifest seeds are valid");
    }
    corpus
}

// ---------------------------------------------------------------------------------
// Mutations.

const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\n",
    "#",
    "\\",
    "\\u0000",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "${env:",
    "${file:",
    "${file:/dev/zero}",
    "${file:/proc/self/status}",
    "${env:PATH}",
    "}",
    "-1",
    "0",
    "1e400",
    "nan",
    "inf",
    "18446744073709551616",
    "99999999999999999999999",
    "-9223372036854775809",
    "999999999999999999h",
    "0s",
    "1 EiB",
    "99999999 GiB",
    "2026-13-45T99:99:99Z",
    "\"\"\"",
    "'''",
    "true",
    "null",
    "[]",
    "{}",
    "\"kind\"",
    "kind = \"files\"",
    "[services.x]",
    "[[remote]]",
    "[stack]",
    "../../../etc",
    "/",
    "%00",
    "\u{ffff}",
];

/// Applies 1-4 random edits to `input`, drawing splices from `corpus`.
fn mutate(rng: &mut StdRng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..=len)
        };
        match rng.random_range(0..10) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let end = (at + rng.random_range(1..64)).min(len);
                data.drain(at..end);
            }
            2 => {
                let mut bytes = vec![0u8; rng.random_range(1..16)];
                rng.fill_bytes(&mut bytes);
                data.splice(at..at, bytes);
            }
            3 | 4 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                // Replace a value-ish span (up to the next delimiter) with a token.
                let end = data[at..]
                    .iter()
                    .position(|b| b"\n,}]\" ".contains(b))
                    .map_or(len, |p| at + p);
                let token = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                data.splice(at..end, token.iter().copied());
            }
            6 if len > 0 => {
                let end = (at + rng.random_range(1..200)).min(len);
                let piece = data[at.min(end)..end].to_vec();
                data.splice(at..at, piece);
            }
            7 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let a = rng.random_range(0..other.len());
                    let b = (a + rng.random_range(1..400)).min(other.len());
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            8 if len > 0 => {
                // Repetition: deep nesting and long runs, up to 256 KiB.
                let end = (at + rng.random_range(1..8)).min(len);
                let piece = data[at.min(end)..end].to_vec();
                let times = rng
                    .random_range(1..(256 << 10) / piece.len().max(1))
                    .min(40_000);
                let run: Vec<u8> = piece
                    .iter()
                    .copied()
                    .cycle()
                    .take(piece.len() * times)
                    .collect();
                data.splice(at..at, run);
            }
            _ if len > 0 => data.truncate(at),
            _ => {}
        }
    }
    data
}

fn save_crash(kind: &str, input: &[u8]) -> PathBuf {
    let dir = common::torture::records_dir().join("fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(input));
    let path = dir.join(format!("{kind}-{}", &digest[..16]));
    std::fs::write(&path, input).unwrap();
    path
}

/// One decoded input's checks: no panic, memory and time bounded, and (for configs)
/// every error names the file and a line that exists.
fn check_decode(
    kind: &str,
    input: &[u8],
    decode: impl FnOnce() -> Result<(), String>,
) -> Result<(), Failure> {
    let mut verdict = Ok(());
    let (panic, peak, took) = measured(|| verdict = decode());
    if let Some(msg) = panic {
        let saved = save_crash(kind, input);
        return Err(Failure::Failed(format!(
            "{kind} decoder panicked ({msg}); input saved at {}",
            saved.display()
        )));
    }
    if peak > memory_bound(input.len()) {
        let saved = save_crash(kind, input);
        return Err(Failure::Failed(format!(
            "{kind} decoder allocated {peak} bytes at its peak for a {}-byte input (bound {}); input saved at {}",
            input.len(),
            memory_bound(input.len()),
            saved.display()
        )));
    }
    if took > Duration::from_secs(2) {
        let saved = save_crash(kind, input);
        return Err(Failure::Failed(format!(
            "{kind} decoder took {took:?} for a {}-byte input; input saved at {}",
            input.len(),
            saved.display()
        )));
    }
    verdict.map_err(|why| {
        let saved = save_crash(kind, input);
        Failure::Failed(format!("{why}; input saved at {}", saved.display()))
    })
}

const FUZZ_FILE: &str = "/fuzz/drydock.toml";

fn decode_config(input: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    let lines = text.lines().count() + 1;
    match Config::from_text(Path::new(FUZZ_FILE), &text) {
        Ok(_) => Ok(()),
        Err(errors) => {
            if errors.0.is_empty() {
                return Err("config rejected with an empty error list".into());
            }
            for e in &errors.0 {
                let shown = e.to_string();
                if e.file != Path::new(FUZZ_FILE) || !shown.starts_with(FUZZ_FILE) {
                    return Err(format!("error does not name the file: {shown}"));
                }
                if e.message.trim().is_empty() {
                    return Err(format!("error without a message: {shown}"));
                }
                if let Some(line) = e.line {
                    if line == 0 || line > lines {
                        return Err(format!("error names line {line} of {lines}: {shown}"));
                    }
                }
                if shown.contains("fuzz-env-value") || shown.contains("fuzz-file-secret") {
                    return Err(format!("error shows a secret value: {shown}"));
                }
            }
            Ok(())
        }
    }
}

fn decode_manifest(input: &[u8]) -> Result<(), String> {
    if let Ok(m) = Manifest::from_json(input) {
        // What decodes must round-trip: the engine rewrites manifests (prune marks).
        let again = Manifest::from_json(&m.to_json())
            .map_err(|e| format!("a decoded manifest does not decode again: {e}"))?;
        if again != m {
            return Err("a decoded manifest changes when written and read again".into());
        }
    }
    Ok(())
}

#[test]
fn config_and_manifest_decoders_survive_mutation_fuzzing() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("repo.password");
    std::fs::write(&secret, "fuzz-file-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let configs = config_corpus(&secret);
    set_corpus_env(&configs);
    for seed in &configs {
        Config::from_text(Path::new(FUZZ_FILE), seed)
            .unwrap_or_else(|e| panic!("a config seed does not load:\n{e}"));
    }
    let configs: Vec<Vec<u8>> = configs.into_iter().map(String::into_bytes).collect();
    let manifests = manifest_corpus();
    // A panic is caught and reported per input; the default hook would print each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    // The open-ended fuzz is cargo-fuzz's (fuzz/); this one is bounded in both modes.
    let budget = Duration::from_secs(runs(20, 600) as u64);
    let mut tally = Tally::new(
        "Hostile input: config and manifest fuzz",
        BINARY,
        "config_and_manifest_decoders_survive_mutation_fuzzing",
    );
    let started = Instant::now();
    let (mut n_config, mut n_manifest) = (0usize, 0usize);
    // Fixed hostile inputs first: sizes and nesting a mutation rarely reaches.
    let fixed: Vec<(&str, Vec<u8>)> = vec![
        ("config", "[".repeat(100_000).into_bytes()),
        ("config", format!("a = {}", "[".repeat(50_000)).into_bytes()),
        (
            "config",
            format!("a = {}", "{ b = ".repeat(20_000)).into_bytes(),
        ),
        (
            "config",
            format!("x = \"{}\"", "\\u0000".repeat(100_000)).into_bytes(),
        ),
        // Full-mode findings: an overflowing duration (panicked), and ~2 KiB per
        // parsed key (inside the bound).
        ("config", drydock_duration_overflow()),
        // A full-mode finding: ~2 KiB per parsed key, inside the bound.
        (
            "config",
            format!("x = {{ {} }}", "t = 20,".repeat(20_000)).into_bytes(),
        ),
        ("manifest", "[".repeat(100_000).into_bytes()),
        ("manifest", "{\"a\":".repeat(100_000).into_bytes()),
        (
            "manifest",
            format!("\"{}\"", "\\ud800".repeat(100_000)).into_bytes(),
        ),
        ("manifest", b"{\"format\": 18446744073709551616}".to_vec()),
        ("manifest", vec![b' '; MANIFEST_OVER]),
    ];
    for (kind, input) in fixed {
        tally.trial(|_| match kind {
            "config" => check_decode(kind, &input, || decode_config(&input)),
            _ => check_decode(kind, &input, || decode_manifest(&input)),
        });
    }
    while started.elapsed() < budget {
        let pick_config = tally.rng().random_bool(0.5);
        tally.trial(|rng| {
            if pick_config {
                n_config += 1;
                let seed = &configs[rng.random_range(0..configs.len())];
                let input = mutate(rng, seed, &configs);
                check_decode("config", &input, || decode_config(&input))
            } else {
                n_manifest += 1;
                let seed = &manifests[rng.random_range(0..manifests.len())];
                let input = mutate(rng, seed, &manifests);
                check_decode("manifest", &input, || decode_manifest(&input))
            }
        });
    }
    std::panic::set_hook(hook);
    eprintln!(
        "torture: fuzz: {n_config} config and {n_manifest} manifest inputs in {:?}",
        started.elapsed()
    );
    tally.finish();
}

/// Just over the manifest cap: refused by size, before parsing.
const MANIFEST_OVER: usize = drydock_domain::manifest::MANIFEST_MAX_BYTES + 1;

// ---------------------------------------------------------------------------------
// Line-accurate config errors.

/// A mutation of one seed line and what the error must say.
struct LineCase {
    what: String,
    text: String,
    line: usize,
    /// The error's key must contain this segment (empty: any key, or none for syntax).
    key: String,
    /// Or, for a key inside an inline table, the table's own key: a tagged table
    /// (`runtime = { kind = ... }`) is reported at the table, serde cannot say more.
    table: String,
    syntax: bool,
}

fn line_cases(seed: &str) -> Vec<LineCase> {
    let lines: Vec<&str> = seed.lines().collect();
    let mut cases = Vec::new();
    let with_line = |i: usize, new: &str| -> String {
        let mut all: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        all[i] = new.to_string();
        all.join("\n") + "\n"
    };
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let n = i + 1;
        // A header: an unknown key right below it.
        if trimmed.starts_with('[') && !trimmed.contains('=') {
            let mut all: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            all.insert(i + 1, "drydock_bogus_key = 1".into());
            cases.push(LineCase {
                what: format!("unknown key below line {n}"),
                text: all.join("\n") + "\n",
                line: n + 1,
                key: "drydock_bogus_key".into(),
                table: String::new(),
                syntax: false,
            });
            continue;
        }
        // `key = value` on one line: a value of the wrong type.
        if let Some((key, value)) = trimmed.split_once('=') {
            let key = key.trim();
            let value = value.trim();
            let balanced = value.matches('[').count() == value.matches(']').count()
                && value.matches('{').count() == value.matches('}').count();
            let plain_key = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if plain_key && balanced && !value.starts_with('{') && !value.starts_with('[') {
                cases.push(LineCase {
                    what: format!("wrong type for `{key}` at line {n}"),
                    text: with_line(i, &format!("{key} = {{ drydock_bogus = 1 }}")),
                    line: n,
                    key: if key == "kind" {
                        String::new()
                    } else {
                        key.to_string()
                    },
                    table: String::new(),
                    syntax: false,
                });
            }
            if plain_key && value.contains("${env:") && value.starts_with('"') {
                cases.push(LineCase {
                    what: format!("literal secret for `{key}` at line {n}"),
                    text: with_line(i, &format!("{key} = \"hunter2-literal-canary\"")),
                    line: n,
                    key: key.to_string(),
                    table: String::new(),
                    syntax: false,
                });
            }
        }
        // Inline tables: each `k = "v"` inside gets a wrong type.
        if trimmed.starts_with('{') || trimmed.contains("= {") {
            let table = trimmed
                .split_once("= {")
                .map(|(k, _)| k.trim().to_string())
                .unwrap_or_default();
            let mut from = 0;
            while let Some(p) = line[from..].find(" = \"") {
                let at = from + p;
                let key_start = line[..at].rfind(['{', ',', ' ']).map_or(0, |s| s + 1);
                let key = &line[key_start..at];
                let value_end = line[at + 4..].find('"').map(|e| at + 4 + e + 1);
                // `json_equals` takes any value, a table too.
                if key == "json_equals" {
                    from = value_end.unwrap_or(line.len());
                    continue;
                }
                if let (false, Some(end)) = (key.is_empty(), value_end) {
                    let mutated =
                        format!("{}{{ drydock_bogus = 1 }}{}", &line[..at + 3], &line[end..]);
                    cases.push(LineCase {
                        what: format!("wrong type for inline `{key}` at line {n}"),
                        text: with_line(i, &mutated),
                        line: n,
                        key: if key == "kind" {
                            String::new()
                        } else {
                            key.to_string()
                        },
                        table: table.clone(),
                        syntax: false,
                    });
                    from = end;
                } else {
                    break;
                }
            }
        }
        // Broken syntax: an unterminated string.
        cases.push(LineCase {
            what: format!("unterminated string at line {n}"),
            text: with_line(i, &format!("{line} \"unterminated")),
            line: n,
            key: String::new(),
            table: String::new(),
            syntax: true,
        });
    }
    cases
}

#[test]
fn malformed_configs_are_reported_at_their_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("repo.password");
    std::fs::write(&secret, "fuzz-file-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let seeds = config_corpus(&secret);
    set_corpus_env(&seeds);
    let mut tally = Tally::new(
        "Hostile input: malformed config lines",
        BINARY,
        "malformed_configs_are_reported_at_their_file_line_and_key",
    );
    for seed in &seeds {
        for case in line_cases(seed) {
            tally.trial(|_| {
                let errors = match Config::from_text(Path::new(FUZZ_FILE), &case.text) {
                    Ok(_) => return Err(format!("{}: the config loaded", case.what).into()),
                    Err(e) => e,
                };
                let shown = errors.to_string();
                if shown.contains("hunter2-literal-canary") {
                    return Err(format!(
                        "{}: the error repeats the literal secret:\n{shown}",
                        case.what
                    )
                    .into());
                }
                let prefix = format!("{FUZZ_FILE}:{}: ", case.line);
                let hit = errors.0.iter().any(|e| {
                    let text = e.to_string();
                    e.line == Some(case.line)
                        && text.starts_with(&prefix)
                        && (case.syntax || !e.key.is_empty())
                        && (case.key.is_empty()
                            || e.key.split(['.', '[']).any(|seg| seg == case.key)
                            || (!case.table.is_empty()
                                && e.key.ends_with(&format!(".{}", case.table))))
                });
                if hit {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: expected an error at `{prefix}` naming `{}`, got:\n{shown}",
                        case.what, case.key
                    )
                    .into())
                }
            });
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------
// Path traversal in restore.

fn files_stack(target: &Path) -> Stack {
    Stack::new(&format!(
        "[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [{{ kind = \"files\", priority = \"critical\", path = \"{}\" }}]\n",
        target.display()
    ))
}

fn snapshot_json(stack: &Stack, tag: &str) -> Result<serde_json::Value, String> {
    let out = stack.restic(&["snapshots", "--json", "--tag", tag]);
    if !out.status.success() {
        return Err(format!("restic snapshots: {}", common::text(&out)));
    }
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let list = all.as_array().cloned().unwrap_or_default();
    match list.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!(
            "expected one snapshot tagged {tag}, found {}",
            other.len()
        )),
    }
}

/// The ways a stored tree can try to leave the restore target. `outer` is the folder
/// holding the target's parent; escapes aim into it (never further) so a write that
/// gets out is seen and is harmless.
fn hostile_trees(outer: &Path, salt: u32) -> Vec<(&'static str, String, Vec<CraftedEntry>)> {
    let file = |archive: &str, name: &[u8], body: &str| CraftedEntry {
        archive_path: PathBuf::from(archive),
        name: OsString::from_vec(name.to_vec()),
        kind: CraftedKind::File(body.as_bytes().to_vec()),
    };
    let dir = |archive: &str, name: &[u8]| CraftedEntry {
        archive_path: PathBuf::from(archive),
        name: OsString::from_vec(name.to_vec()),
        kind: CraftedKind::Dir,
    };
    let benign = || file("a-benign", b"a-benign", "fine");
    let abs = outer.join(format!("abs-escape-{salt}"));
    vec![
        (
            "parent-dir name",
            format!("../../../parent-escape-{salt}"),
            vec![
                benign(),
                file(
                    "b",
                    format!("../../../parent-escape-{salt}").as_bytes(),
                    "escaped",
                ),
            ],
        ),
        (
            "absolute name",
            abs.display().to_string(),
            vec![benign(), file("b", abs.as_os_str().as_bytes(), "escaped")],
        ),
        (
            "directory named ..",
            "..".to_string(),
            vec![
                benign(),
                dir("b", b".."),
                file("b/c", format!("dotdot-escape-{salt}").as_bytes(), "escaped"),
            ],
        ),
        (
            "name with a slash",
            format!("x/../../../../slash-escape-{salt}"),
            vec![
                benign(),
                file(
                    "b",
                    format!("x/../../../../slash-escape-{salt}").as_bytes(),
                    "escaped",
                ),
            ],
        ),
        (
            "symlink then directory of the same name",
            "link".to_string(),
            vec![
                benign(),
                CraftedEntry {
                    archive_path: PathBuf::from("b"),
                    name: OsString::from("link"),
                    kind: CraftedKind::Symlink(outer.to_path_buf()),
                },
                dir("c", b"link"),
                file("c/d", format!("through-link-{salt}").as_bytes(), "escaped"),
            ],
        ),
        (
            "dot name",
            ".".to_string(),
            vec![
                benign(),
                dir("b", b"."),
                file("b/c", format!("dot-{salt}").as_bytes(), "x"),
            ],
        ),
    ]
}

#[test]
fn a_snapshot_whose_names_escape_the_target_writes_nothing_outside_it() {
    let mut tally = Tally::new(
        "Hostile input: path traversal in restore",
        BINARY,
        "a_snapshot_whose_names_escape_the_target_writes_nothing_outside_it",
    );
    let rounds = runs(1, 3);
    for round in 0..rounds {
        let kinds = hostile_trees(Path::new("/unused"), 0).len();
        for k in 0..kinds {
            tally.trial(|rng| traversal_trial(rng, round, k));
        }
        tally.trial(|_| symlinks_out_restore_as_links_trial());
    }
    tally.finish();
}

fn traversal_trial(rng: &mut StdRng, _round: usize, k: usize) -> Result<(), Failure> {
    let outer = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outer_path = std::fs::canonicalize(outer.path()).map_err(|e| e.to_string())?;
    let parent = outer_path.join("sentinel");
    let target = parent.join("data");
    std::fs::create_dir_all(target.join("sub")).map_err(|e| e.to_string())?;
    std::fs::write(target.join("live.txt"), "live data").map_err(|e| e.to_string())?;
    std::fs::write(target.join("sub/deep.txt"), "deep").map_err(|e| e.to_string())?;
    std::fs::write(parent.join("neighbour.txt"), "not drydock's").map_err(|e| e.to_string())?;
    std::fs::write(outer_path.join("outer.txt"), "outside").map_err(|e| e.to_string())?;
    let salt: u32 = rng.random();
    let (what, named, entries) = hostile_trees(&outer_path, salt).swap_remove(k);

    let stack = files_stack(&target);
    let (code, backup) = stack.json(&["backup"]);
    if code != 0 {
        return Err(format!("{what}: the honest backup failed: {backup}").into());
    }
    let backup_id = backup["id"].as_str().unwrap_or_default().to_string();
    let honest = snapshot_json(&stack, &format!("backup:{backup_id},service:app"))?;
    let tags: Vec<String> = honest["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let host = honest["hostname"].as_str().unwrap_or("localhost");
    // The crafted tree takes the honest snapshot's place, as an attacker holding the
    // repository key would arrange it.
    hostile::write_crafted_snapshot(&stack.repo(), REPO_PASSWORD, &tags, host, entries)
        .map_err(|e| format!("{what}: crafting the snapshot: {e}"))?;
    let forget = stack.restic(&["forget", honest["id"].as_str().unwrap_or_default()]);
    if !forget.status.success() {
        return Err(format!("restic forget: {}", common::text(&forget)).into());
    }

    let before = tree_state(&outer_path);
    let out = run_with_deadline(
        &mut stack.command(&["restore", "latest", "--all", "--force", "--json"]),
        Duration::from_secs(120),
    )?;
    let after = tree_state(&outer_path);
    let text = common::text(&out);
    let diff = tree_diff(&before, &after);
    let escaped: Vec<&String> = diff
        .iter()
        .filter(|d| {
            !d.contains("sentinel/data") || d.contains("escape") || d.contains("through-link")
        })
        .collect();
    if !escaped.is_empty() {
        return Err(Failure::DataLost(format!(
            "{what}: the restore wrote outside its target: {escaped:?}\n{text}"
        )));
    }
    if out.status.code() == Some(0) {
        return Err(format!("{what}: the restore of a hostile tree exited 0:\n{text}").into());
    }
    if !diff.is_empty() {
        return Err(Failure::DataLost(format!(
            "{what}: a refused restore changed the existing target: {diff:?}"
        )));
    }
    let shown = format!("{:?}", named);
    let shown = &shown[1..shown.len() - 1];
    if !(text.contains(shown) || text.contains(&named)) {
        return Err(format!("{what}: the error does not name the entry {named:?}:\n{text}").into());
    }
    // The repository itself is sound; only the tree is hostile.
    let verify = stack.run(&["verify", "--read-data"]);
    if verify.status.code() != Some(0) {
        return Err(format!(
            "{what}: verify --read-data failed: {}",
            common::text(&verify)
        )
        .into());
    }
    Ok(())
}

/// Symlinks pointing outside the tree are data like any other: they restore as links
/// (never followed), and nothing is written where they point.
fn symlinks_out_restore_as_links_trial() -> Result<(), Failure> {
    let outer = tempfile::tempdir().map_err(|e| e.to_string())?;
    let outer_path = std::fs::canonicalize(outer.path()).map_err(|e| e.to_string())?;
    let target = outer_path.join("sentinel/data");
    let victim = outer_path.join("victim");
    std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&victim).map_err(|e| e.to_string())?;
    std::fs::write(victim.join("precious"), "precious").map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink(&victim, target.join("abs-link")).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("../../victim/precious", target.join("rel-link"))
        .map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/etc/passwd", target.join("etc-link"))
        .map_err(|e| e.to_string())?;
    std::fs::write(target.join("file"), "data").map_err(|e| e.to_string())?;
    let stack = files_stack(&target);
    let (code, backup) = stack.json(&["backup"]);
    if code != 0 {
        return Err(format!("backup of symlinks failed: {backup}").into());
    }
    let live = tree_state(&target);
    // The victim changes after the backup: a restore that followed a link would
    // overwrite it with what the backup saw.
    std::fs::write(
        victim.join("precious"),
        "precious, changed after the backup",
    )
    .map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&target).map_err(|e| e.to_string())?;
    let victim_before = tree_state(&victim);
    let out = run_with_deadline(
        &mut stack.command(&["restore", "latest", "--all", "--json"]),
        Duration::from_secs(120),
    )?;
    if out.status.code() != Some(0) {
        return Err(format!("restore of symlinks failed: {}", common::text(&out)).into());
    }
    let victim_diff = tree_diff(&victim_before, &tree_state(&victim));
    if !victim_diff.is_empty() {
        return Err(Failure::DataLost(format!(
            "a restore wrote through a symlink: {victim_diff:?}"
        )));
    }
    let restored_diff = tree_diff(&live, &tree_state(&target));
    if !restored_diff.is_empty() {
        return Err(Failure::DataLost(format!(
            "restored links differ from the live ones: {restored_diff:?}"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Hostile names and special files in a `files` source.

/// Builds a tree of hostile names and special files under `root`; returns the paths
/// that may change while read (excluded from the exact comparison).
fn hostile_tree(rng: &mut StdRng, root: &Path) -> Result<Vec<PathBuf>, String> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let e = |what: &str, err: &dyn std::fmt::Display| format!("{what}: {err}");
    std::fs::create_dir_all(root).map_err(|x| e("mkdir", &x))?;
    let mut names: Vec<Vec<u8>> = vec![
        b"line\nbreak".to_vec(),
        b"\xff\xfe invalid utf-8 \x80".to_vec(),
        b"-rf".to_vec(),
        b"--help".to_vec(),
        b"-".to_vec(),
        b" leading and trailing space ".to_vec(),
        b"back\\slash and \"quotes\" and 'single'".to_vec(),
        b"*?[glob]{a,b}".to_vec(),
        b"tab\there\x01\x1b[31mescape".to_vec(),
        "emoji \u{1f600} and RTL \u{202e}txt.exe"
            .as_bytes()
            .to_vec(),
        vec![b'L'; 255],
        b"..foo".to_vec(),
        b"...".to_vec(),
        b".hidden".to_vec(),
        b"-".repeat(3),
    ];
    // A random name of arbitrary bytes (no '/' or NUL) on every trial.
    let mut random_name: Vec<u8> = (0..rng.random_range(1..200))
        .map(|_| rng.random_range(1..=255u8))
        .filter(|b| *b != b'/')
        .collect();
    if random_name.is_empty() || random_name == b"." || random_name == b".." {
        random_name = b"r".to_vec();
    }
    names.push(random_name);
    for (i, name) in names.iter().enumerate() {
        let path = root.join(OsString::from_vec(name.clone()));
        if path.exists() {
            continue;
        }
        if i % 3 == 0 {
            std::fs::create_dir(&path).map_err(|x| e("mkdir hostile", &x))?;
            std::fs::write(path.join(OsString::from_vec(name.clone())), name)
                .map_err(|x| e("write", &x))?;
        } else {
            std::fs::write(&path, name).map_err(|x| e("write hostile", &x))?;
        }
    }
    // Deep nesting: a long path (well under PATH_MAX, with room for the restore's work dir).
    let mut deep = root.to_path_buf();
    for level in 0..10 {
        deep.push(format!("{level}{}", "d".repeat(200)));
    }
    std::fs::create_dir_all(&deep).map_err(|x| e("deep", &x))?;
    std::fs::write(deep.join("bottom"), "bottom").map_err(|x| e("deep file", &x))?;
    // Special files: none may hang the backup; each restores as what it was.
    nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600))
        .map_err(|x| e("mkfifo", &x))?;
    nix::unistd::mkfifo(
        &root.join("-fifo-with-dash"),
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|x| e("mkfifo", &x))?;
    mknod(
        &root.join("null-dev"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .map_err(|x| e("mknod c", &x))?;
    mknod(
        &root.join("loop-dev"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(7, 200),
    )
    .map_err(|x| e("mknod b", &x))?;
    let socket =
        std::os::unix::net::UnixListener::bind(root.join("sock")).map_err(|x| e("socket", &x))?;
    drop(socket);
    std::fs::write(root.join("empty"), "").map_err(|x| e("empty", &x))?;
    std::fs::set_permissions(root.join("empty"), std::fs::Permissions::from_mode(0o4750))
        .map_err(|x| e("chmod", &x))?;
    std::os::unix::fs::symlink(
        OsString::from_vec(b"\xff-dangling\ntarget".to_vec()),
        root.join("dangling"),
    )
    .map_err(|x| e("symlink", &x))?;
    // Changing files: rewritten, shrunk and grown by a writer during the backup.
    let changing = vec![root.join("shrinking.bin"), root.join("growing.log")];
    std::fs::write(&changing[0], vec![7u8; 8 << 20]).map_err(|x| e("shrinking", &x))?;
    std::fs::write(&changing[1], b"start\n").map_err(|x| e("growing", &x))?;
    Ok(changing)
}

/// Keeps truncating, shrinking and growing `files` until `stop` is set.
fn churn(
    files: Vec<PathBuf>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        use rand::SeedableRng;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rounds = 0u64;
        while !stop.load(Ordering::Relaxed) {
            rounds += 1;
            for f in &files {
                let Ok(file) = std::fs::OpenOptions::new().append(true).open(f) else {
                    continue;
                };
                match rng.random_range(0..3) {
                    0 => {
                        let _ = file.set_len(rng.random_range(0..(8u64 << 20)));
                    }
                    1 => {
                        let _ = std::io::Write::write_all(
                            &mut &file,
                            &vec![b'g'; rng.random_range(1..65536)],
                        );
                    }
                    _ => {
                        let _ = file.set_len(0);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
        }
        rounds
    })
}

fn backup_count(stack: &Stack) -> Result<usize, String> {
    let (code, list) = stack.json(&["backups"]);
    if code != 0 {
        return Err(format!("drydock backups exited {code}: {list}"));
    }
    Ok(list["backups"].as_array().map_or(0, Vec::len))
}

#[test]
fn hostile_names_special_files_and_changing_files_back_up_and_restore_in_bounded_time() {
    let mut tally = Tally::new(
        "Hostile input: names, special files, files changing while read",
        BINARY,
        "hostile_names_special_files_and_changing_files_back_up_and_restore_in_bounded_time",
    );
    for _ in 0..runs(3, 15) {
        tally.trial(hostile_names_trial);
    }
    tally.finish();
}

fn hostile_names_trial(rng: &mut StdRng) -> Result<(), Failure> {
    let outer = tempfile::tempdir().map_err(|e| e.to_string())?;
    let target = std::fs::canonicalize(outer.path())
        .map_err(|e| e.to_string())?
        .join("data");
    let changing = hostile_tree(rng, &target)?;
    let stack = files_stack(&target);
    let count_before = 0; // a fresh stack: no repository yet
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = churn(changing.clone(), stop.clone(), rng.random());
    let out = run_with_deadline(
        &mut stack.command(&["backup", "--json"]),
        Duration::from_secs(120),
    );
    stop.store(true, Ordering::Relaxed);
    let churned = writer.join().unwrap_or(0);
    let out = out?;
    let code = out.status.code().unwrap_or(-1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("backup stdout is not JSON ({e}): {}", common::text(&out)))?;
    let count_after = backup_count(&stack)?;
    if code != 0 {
        // A failure is acceptable only if it is clear and nothing half-done is listed.
        let error = report["sources"][0]["error"].as_str().unwrap_or_default();
        if error.is_empty() || count_after != count_before {
            return Err(format!(
                "backup exited {code} without a clear source error, or left a listed backup ({count_before} -> {count_after}): {report}"
            )
            .into());
        }
        return Err(format!("backup failed (clearly, but it should cope): {error}").into());
    }
    if count_after != count_before + 1 {
        return Err(
            format!("backup list went {count_before} -> {count_after}, expected +1").into(),
        );
    }
    eprintln!("torture: hostile names: the writer changed files {churned} times during the backup");
    let verify = run_with_deadline(
        &mut stack.command(&["verify", "--read-data"]),
        Duration::from_secs(120),
    )?;
    if verify.status.code() != Some(0) {
        return Err(format!("verify --read-data: {}", common::text(&verify)).into());
    }
    // The live tree minus the changing files is what must come back byte-exact.
    let mut live = tree_state(&target);
    for c in &changing {
        live.remove(c.strip_prefix(&target).unwrap().as_os_str().as_bytes());
    }
    std::fs::remove_dir_all(&target).map_err(|e| e.to_string())?;
    let out = run_with_deadline(
        &mut stack.command(&["restore", "latest", "--all", "--json"]),
        Duration::from_secs(120),
    )?;
    let restored: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("restore stdout is not JSON ({e}): {}", common::text(&out)))?;
    if out.status.code() != Some(0) || restored["verified"] != true {
        return Err(Failure::DataLost(format!(
            "the backup does not restore verified: {restored}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut back = tree_state(&target);
    for c in &changing {
        back.remove(c.strip_prefix(&target).unwrap().as_os_str().as_bytes());
    }
    let diff = tree_diff(&live, &back);
    if !diff.is_empty() {
        return Err(Failure::DataLost(format!(
            "restored tree differs from the live one: {diff:?}"
        )));
    }
    Ok(())
}

fn drydock_duration_overflow() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/clinic.toml");
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str("\n[drill.high]\nrpo_target = \"999999999999999999h\"\n");
    text.into_bytes()
}
