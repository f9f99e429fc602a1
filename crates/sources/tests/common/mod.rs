//! Test doubles for the repository: streams kept in memory, trees copied with `cp -a`
//! (the real repository is tested in drydock-storage and drydock-engine); and helpers
//! the adapters' tests share.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use drydock_domain::config::SourceKind;
use drydock_domain::{Fingerprint, NoEvents, Priority, SourceRecord, SourceStatus};
use drydock_sources::tree::{self, Excludes};
use drydock_sources::{
    BackupOutcome, DataSource, Fetch, Inspection, SourceContext, SourceError, Store, StoreError,
    Stored, TreeEntry,
};
use sha2::{Digest, Sha256};

/// A private scratch directory like the engine's (0700).
pub fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

pub fn ctx(scratch: &Path) -> SourceContext<'_> {
    SourceContext {
        label: "svc/data",
        scratch,
        events: &NoEvents,
        replacing_live: &drydock_sources::no_live_change,
    }
}

/// Something a test does in the middle of a transfer (kill a session, look at the
/// tool's command line, ...).
pub type Hook = Box<dyn Fn() + Send + Sync>;

/// Keeps what a backup stored; `hook` runs once, after a stream's first bytes arrived.
#[derive(Default)]
pub struct MemStore {
    dir: RefCell<Option<tempfile::TempDir>>,
    pub stream: RefCell<Option<Vec<u8>>>,
    pub extension: RefCell<Option<String>>,
    pub tree: RefCell<Option<PathBuf>>,
    pub calls: Cell<u32>,
    hook: Option<Hook>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_hook(hook: impl Fn() + Send + Sync + 'static) -> Self {
        MemStore {
            hook: Some(Box::new(hook)),
            ..Self::default()
        }
    }

    /// What a restore reads from.
    pub fn fetch(&self) -> MemFetch {
        MemFetch {
            stream: self.stream.borrow().clone(),
            tree: self.tree.borrow().clone(),
            hook: None,
        }
    }

    pub fn stored_anything(&self) -> bool {
        self.calls.get() > 0
    }
}

impl Store for MemStore {
    fn put_stream(
        &self,
        mut reader: Box<dyn Read + Send>,
        extension: &str,
    ) -> Result<Stored, StoreError> {
        self.calls.set(self.calls.get() + 1);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut hooked = false;
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError(format!("reading the stream: {e}"))),
            };
            buf.extend_from_slice(&chunk[..n]);
            if !hooked {
                hooked = true;
                if let Some(hook) = &self.hook {
                    hook();
                }
            }
        }
        let sha = hex::encode(Sha256::digest(&buf));
        let n = buf.len() as u64;
        *self.stream.borrow_mut() = Some(buf);
        *self.extension.borrow_mut() = Some(extension.to_string());
        Ok(Stored {
            snapshot_id: "mem-stream".into(),
            path: Some(format!("/data{extension}")),
            logical_bytes: n,
            stored_bytes: n,
            sha256: Some(sha),
        })
    }

    fn put_tree(
        &self,
        root: &Path,
        excludes: &[String],
        each: &mut (dyn FnMut(TreeEntry) + Send),
    ) -> Result<Stored, StoreError> {
        self.calls.set(self.calls.get() + 1);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("tree");
        cp_a(root, &copy)?;
        // Leave out what the excludes name, as the repository does.
        let ex = Excludes::new(&copy, excludes).map_err(StoreError)?;
        let dropped = RefCell::new(Vec::new());
        tree::walk_with(&copy, &|rel, is_dir| {
            let x = ex.is_excluded(rel, is_dir);
            if x {
                dropped.borrow_mut().push((rel.to_path_buf(), is_dir));
            }
            x
        })
        .map_err(|e| StoreError(e.to_string()))?;
        for (rel, is_dir) in dropped.into_inner() {
            let p = copy.join(rel);
            if is_dir {
                std::fs::remove_dir_all(&p).unwrap()
            } else {
                std::fs::remove_file(&p).unwrap()
            }
        }
        let entries = tree::walk(&copy, &|_| false).map_err(|e| StoreError(e.to_string()))?;
        let bytes = entries.iter().map(|e| e.size).sum();
        *self.tree.borrow_mut() = Some(copy);
        *self.dir.borrow_mut() = Some(dir);
        entries.into_iter().for_each(each);
        Ok(Stored {
            snapshot_id: "mem-tree".into(),
            path: None,
            logical_bytes: bytes,
            stored_bytes: bytes,
            sha256: None,
        })
    }
}

/// Reads back what a [`MemStore`] kept; `hook` runs once the stream's first 4 KiB are
/// written.
pub struct MemFetch {
    pub stream: Option<Vec<u8>>,
    pub tree: Option<PathBuf>,
    pub hook: Option<Hook>,
}

impl Fetch for MemFetch {
    fn stream_into(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let data = self
            .stream
            .as_ref()
            .ok_or_else(|| StoreError("no stream stored".into()))?;
        let (first, rest) = data.split_at(data.len().min(4096));
        out.write_all(first)
            .map_err(|e| StoreError(format!("writing: {e}")))?;
        if let Some(hook) = &self.hook {
            hook();
        }
        out.write_all(rest)
            .map_err(|e| StoreError(format!("writing: {e}")))?;
        Ok(data.len() as u64)
    }

    fn tree_into(&self, dest: &Path) -> Result<(), StoreError> {
        let src = self
            .tree
            .as_ref()
            .ok_or_else(|| StoreError("no tree stored".into()))?;
        assert!(
            !dest.exists(),
            "tree_into: {} must not exist yet",
            dest.display()
        );
        cp_a(src, dest)
    }
}

/// Copies a tree as it is (modes, links, special files) with `cp -a`.
fn cp_a(from: &Path, to: &Path) -> Result<(), StoreError> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(StoreError(format!(
            "cp -a failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The manifest record the engine would write for `outcome`.
pub fn record(kind: SourceKind, outcome: &BackupOutcome) -> SourceRecord {
    SourceRecord {
        service: "svc".into(),
        source: "data".into(),
        kind,
        priority: Priority::Critical,
        status: SourceStatus::Ok,
        error: None,
        snapshot_id: Some(outcome.stored.snapshot_id.clone()),
        stored_path: outcome.stored.path.clone(),
        format: Some(outcome.format.to_string()),
        logical_bytes: outcome.stored.logical_bytes,
        stored_bytes: outcome.stored.stored_bytes,
        sha256: outcome.stored.sha256.clone(),
        counts: outcome.counts.clone(),
        fingerprint: Some(outcome.fingerprint.clone()),
        consistent_at: Some(outcome.consistent_at),
        duration_ms: 0,
        pruned_at: None,
    }
}

/// The names of what is in `dir`.
pub fn entry_names(dir: &Path) -> Vec<OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

/// Restores the backup `out` that `store` kept into `target`, as the engine would.
pub fn restore_stored(
    target: &dyn DataSource,
    store: &MemStore,
    out: &BackupOutcome,
    scratch: &Path,
) -> Result<(), SourceError> {
    target.restore(&store.fetch(), &record(target.kind(), out), &ctx(scratch))
}

/// Fails, naming the parts that differ (counts in `unit`), unless what `target` holds
/// now has the fingerprint `want`; returns what it holds.
#[track_caller]
pub fn assert_holds(
    target: &dyn DataSource,
    want: &Fingerprint,
    unit: &str,
    ctx: &SourceContext<'_>,
) -> Inspection {
    let got = target.inspect(ctx).unwrap();
    // The engine's criterion: no difference outside advisory parts (a directory's
    // mtime moves when an excluded entry is added).
    let differences = got.fingerprint.differences(want, unit);
    assert!(differences.is_empty(), "{differences:?}");
    got
}

/// How what `src` holds now differs from `backup` (counts in `unit`).
pub fn differences_now(
    src: &dyn DataSource,
    backup: &Fingerprint,
    unit: &str,
    ctx: &SourceContext<'_>,
) -> Vec<String> {
    src.inspect(ctx)
        .unwrap()
        .fingerprint
        .differences(backup, unit)
}

/// Fails with the parts that differ (rows) when `got` is not `want`.
pub fn assert_same(got: &Fingerprint, want: &Fingerprint, what: &str) {
    let diff = got.differences(want, "rows");
    assert!(
        diff.is_empty(),
        "{what}: fingerprints differ:\n{}",
        diff.join("\n")
    );
    assert_eq!(got, want, "{what}");
}

/// This process's children right now (the dump/restore tools): (pid, command name,
/// command line).
pub fn children() -> Vec<(i32, String, String)> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split at the last ')'.
        let Some((head, after)) = stat.rsplit_once(')') else {
            continue;
        };
        if after.split_whitespace().nth(1) != Some(me.as_str()) {
            continue;
        }
        let comm = head
            .split_once('(')
            .map(|(_, c)| c.to_string())
            .unwrap_or_default();
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        out.push((pid, comm, String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    out
}

/// The command lines of this process's children right now.
pub fn children_cmdlines() -> Vec<String> {
    children().into_iter().map(|(_, _, cmd)| cmd).collect()
}

/// SIGKILLs this process's children called `name` (a dump tool dying mid-stream).
pub fn kill_children_named(name: &str) {
    for (pid, comm, _) in children() {
        if comm == name {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The database name in a SQL sandbox's description (`throwaway database
/// _drydock_sandbox_XXXXXXXX on HOST:PORT`), checking its form and the server it names.
#[track_caller]
pub fn sandbox_db_name(describe: &str, host_port: &str) -> String {
    let name = describe
        .strip_prefix("throwaway database ")
        .and_then(|rest| rest.strip_suffix(&format!(" on {host_port}")))
        .unwrap_or_else(|| panic!("unexpected sandbox description: {describe}"));
    let suffix = name
        .strip_prefix("_drydock_sandbox_")
        .unwrap_or_else(|| panic!("sandbox name {name}"));
    // `HOST_PID_RANDOM`: who made it (so a killed run's leftovers can be told), then
    // 8 random characters.
    let fields: Vec<&str> = suffix.split('_').collect();
    assert!(
        fields.len() == 3
            && fields[2].len() == 8
            && suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "sandbox name {name}"
    );
    name.to_string()
}

/// The test data set's whole life on one source: populated and measured back exactly,
/// backed up, wiped (nothing left), restored (exact again), and replaced by another
/// seed's set.
pub fn assert_populate_wipe_restore(source: &dyn DataSource) {
    use drydock_sources::TestData;
    let dir = scratch();
    let data = TestData::generate(42, 1 << 20);
    source.populate(&data).unwrap();
    assert_eq!(source.measure_test_data().unwrap(), data.expected());

    let store = MemStore::new();
    let out = source.backup(&store, &ctx(dir.path())).unwrap();
    source.wipe().unwrap();
    assert!(!source.has_data().unwrap(), "wiped, yet data is there");

    restore_stored(source, &store, &out, dir.path()).unwrap();
    assert_eq!(
        source
            .measure_test_data()
            .unwrap()
            .differences(&data.expected()),
        Vec::<String>::new()
    );

    let other = TestData::generate(7, 200_000);
    source.populate(&other).unwrap();
    assert_eq!(source.measure_test_data().unwrap(), other.expected());
}
