//! `drydock package SERVICE`: a release package built from one commit. The service's
//! `build` runs (`sh -c`, in the config's folder, `DRYDOCK_REV` = the commit), and the
//! folder it leaves (`output`) is packed with a `build_info.json` (who, what, when,
//! with which tools) into `<state_dir>/packages/<service>/<id>.tar.zst`, beside its
//! SHA-256 in `sha256sum` format (`<id>.tar.zst.sha256`), both 0600 in 0700 folders.
//! The id is `<UTC yyyymmddThhmmssZ>-<commit[..12]>`, so ids sort by build time.
//!
//! A package already built for the same commit is reused when its checksum still
//! verifies and its build info names that commit; one that does not is removed and
//! built again (a package is only ever what its checksum file says).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::ReleaseDeploy;
use drydock_domain::Cancel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::deploy::app::AppTarget;
use crate::RunContext;

/// The name of the build info file at the root of every package and release.
pub const BUILD_INFO: &str = "build_info.json";

/// What `build_info.json` says of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The release id (`<UTC yyyymmddThhmmssZ>-<commit[..12]>`).
    pub id: String,
    pub service: String,
    /// The full git commit built.
    pub commit: String,
    /// When the build started, RFC 3339 in UTC (with fractional seconds).
    pub built_at: String,
    /// Always `release` for these packages.
    pub build_type: String,
    /// Program -> the first line of its `--version` (git, sh, and `tools`).
    pub tools: BTreeMap<String, String>,
    /// The drydock that packed it.
    pub drydock: String,
}

/// A package on the deploying machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub id: String,
    /// `<state_dir>/packages/<service>/<id>.tar.zst`.
    pub file: PathBuf,
    /// Its `sha256sum`-format checksum file, beside it.
    pub checksum_file: PathBuf,
    /// The SHA-256 of `file`, in hex.
    pub sha256: String,
    pub bytes: u64,
    pub info: BuildInfo,
    /// An earlier package of the same commit, verified and used again.
    pub reused: bool,
}

/// Why a package could not be built. Each names the thing, the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the build of `{service}` failed ({status}); its output ends with:\n{tail}\nfix the build (run it by hand in {dir} with DRYDOCK_REV set) and package again")]
    Build {
        service: String,
        status: String,
        dir: PathBuf,
        tail: String,
    },
    #[error("the build of `{service}` left no folder at {path}; set `output` to the folder the build writes")]
    NoOutput { service: String, path: PathBuf },
    #[error("the build output {path} has its own {BUILD_INFO}, which drydock writes; rename that file in the build")]
    Reserved { path: PathBuf },
    #[error("cannot {what} {path}: {source}; check that folder's permissions and free space")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("packaging `{service}` was cancelled; nothing was kept, package again")]
    Cancelled { service: String },
}

/// How long one `--version` question may take.
const VERSION_LIMIT: Duration = Duration::from_secs(10);

/// Builds (or reuses) the package of `target.commit` for `target.service`.
pub fn package(
    spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<Package, PackageError> {
    let dir = target.state_dir.join("packages").join(target.service);
    private_dir(&dir)?;
    if let Some(found) = reusable(&dir, target.service, target.commit) {
        return Ok(found);
    }
    let now = jiff::Timestamp::now();
    let id = release_id(now, target.commit);
    let info = BuildInfo {
        id: id.clone(),
        service: target.service.to_string(),
        commit: target.commit.to_string(),
        // RFC 3339 with the fraction: releases built within one second still order.
        built_at: now.to_string(),
        build_type: "release".to_string(),
        tools: tool_versions(&spec.tools, target.config_dir),
        drydock: env!("CARGO_PKG_VERSION").to_string(),
    };
    build(spec, target, &dir, &ctx.cancel)?;
    if !spec.output.is_dir() {
        return Err(PackageError::NoOutput {
            service: target.service.to_string(),
            path: spec.output.clone(),
        });
    }
    if spec.output.join(BUILD_INFO).symlink_metadata().is_ok() {
        return Err(PackageError::Reserved {
            path: spec.output.join(BUILD_INFO),
        });
    }
    let file = dir.join(format!("{id}.tar.zst"));
    let (sha256, bytes) = write_archive(&file, &spec.output, &info)?;
    let checksum_file = checksum_path(&file);
    write_private(
        &checksum_file,
        format!("{sha256}  {id}.tar.zst\n").as_bytes(),
    )?;
    Ok(Package {
        id,
        file,
        checksum_file,
        sha256,
        bytes,
        info,
        reused: false,
    })
}

/// `<UTC yyyymmddThhmmssZ>-<commit[..12]>`.
pub fn release_id(at: jiff::Timestamp, commit: &str) -> String {
    let short: String = commit.chars().take(12).collect();
    format!("{}-{short}", at.strftime("%Y%m%dT%H%M%SZ"))
}

fn checksum_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The newest package of `commit` whose checksum verifies; a corrupt one is removed.
fn reusable(dir: &Path, service: &str, commit: &str) -> Option<Package> {
    let short: String = commit.chars().take(12).collect();
    let suffix = format!("-{short}.tar.zst");
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_suffix(".tar.zst")
                .map(str::to_string)
                .filter(|_| n.ends_with(&suffix))
        })
        .collect();
    ids.sort();
    while let Some(id) = ids.pop() {
        let file = dir.join(format!("{id}.tar.zst"));
        let checksum_file = checksum_path(&file);
        let found = verify_file(&file, &checksum_file).and_then(|sha256| {
            let info = read_build_info(&file)?;
            if info.commit != commit || info.service != service || info.id != id {
                return Err(format!("{} is of another build", file.display()));
            }
            Ok((sha256, info))
        });
        match found {
            Ok((sha256, info)) => {
                let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                return Some(Package {
                    id,
                    file,
                    checksum_file,
                    sha256,
                    bytes,
                    info,
                    reused: true,
                });
            }
            Err(_) => {
                // Ours, and no longer what its checksum says: never upload it.
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::remove_file(&checksum_file);
            }
        }
    }
    None
}

/// Checks `file` against its `sha256sum`-format `checksum_file`; Ok: the hex digest.
pub fn verify_file(file: &Path, checksum_file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(checksum_file)
        .map_err(|e| format!("cannot read {}: {e}", checksum_file.display()))?;
    let expected = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let actual = sha256_of(file)?;
    if expected == actual {
        Ok(actual)
    } else {
        Err(format!(
            "{} has SHA-256 {actual}, its checksum file says {expected}",
            file.display()
        ))
    }
}

pub(crate) fn sha256_of(file: &Path) -> Result<String, String> {
    let mut f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The build info inside a package (it is the archive's first entry).
pub fn read_build_info(file: &Path) -> Result<BuildInfo, String> {
    let f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let decoder = zstd::Decoder::new(f).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        let is_info = entry
            .path()
            .map(|p| p == Path::new(BUILD_INFO))
            .unwrap_or(false);
        if is_info {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            return serde_json::from_str(&text)
                .map_err(|e| format!("{BUILD_INFO} in {}: {e}", file.display()));
        }
    }
    Err(format!("{} has no {BUILD_INFO}", file.display()))
}

/// Runs `build`; its output goes to `<dir>/last-build.log` (a file, not a pipe, so a
/// process the build leaves behind cannot hold drydock up).
fn build(
    spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    dir: &Path,
    cancel: &Cancel,
) -> Result<(), PackageError> {
    let log_path = dir.join("last-build.log");
    let log = create_private(&log_path)?;
    let err_log = log.try_clone().map_err(|source| PackageError::Io {
        what: "write",
        path: log_path.clone(),
        source,
    })?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&spec.build)
        .current_dir(target.config_dir)
        .env("DRYDOCK_REV", target.commit)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .spawn()
        .map_err(|source| PackageError::Io {
            what: "run the build (sh) in",
            path: target.config_dir.to_path_buf(),
            source,
        })?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if cancel.is_cancelled() => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PackageError::Cancelled {
                    service: target.service.to_string(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                return Err(PackageError::Io {
                    what: "wait for the build in",
                    path: target.config_dir.to_path_buf(),
                    source,
                })
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Err(PackageError::Build {
        service: target.service.to_string(),
        status: status.to_string(),
        dir: target.config_dir.to_path_buf(),
        tail,
    })
}

/// git, sh and the configured tools, each with the first line of `--version`.
fn tool_versions(tools: &[String], dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let asked = |t: &str| version_of(t, dir).unwrap_or_else(|e| format!("unknown ({e})"));
    out.insert("git".to_string(), asked("git"));
    // Debian's sh (dash) has no `--version`: then the program sh resolves to is named.
    let sh = version_of("sh", dir).unwrap_or_else(|e| match std::fs::canonicalize("/bin/sh") {
        Ok(p) => format!(
            "{} (no --version)",
            p.file_name().unwrap_or_default().to_string_lossy()
        ),
        Err(_) => format!("unknown ({e})"),
    });
    out.insert("sh".to_string(), sh);
    for tool in tools {
        out.insert(tool.clone(), asked(tool));
    }
    out
}

/// The first line `program --version` prints; Err: why there is none.
fn version_of(program: &str, dir: &Path) -> Result<String, String> {
    let mut child = Command::new(program)
        .arg("--version")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > VERSION_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{program} --version` took over 10 s"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    if !status.success() {
        return Err(format!("`{program} --version` {status}"));
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("`{program} --version` printed nothing"))
}

/// Writes the archive (build info first, then `output`'s tree, symlinks kept as links)
/// to a temp file beside `file`, then renames it in place. Ok: its SHA-256 and size.
fn write_archive(
    file: &Path,
    output: &Path,
    info: &BuildInfo,
) -> Result<(String, u64), PackageError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Io { what, path, source }
    };
    // tempfile creates 0600 files.
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
    let hashing = HashingWriter {
        inner: tmp.as_file(),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let encoder = zstd::Encoder::new(hashing, 3).map_err(io("compress into", file))?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    let json = serde_json::to_vec_pretty(info).expect("build info serializes");
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(jiff::Timestamp::now().as_second().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, BUILD_INFO, json.as_slice())
        .map_err(io("write", file))?;
    append_tree(&mut builder, output, Path::new(""))?;
    let encoder = builder.into_inner().map_err(io("write", file))?;
    let mut hashing = encoder.finish().map_err(io("write", file))?;
    hashing.flush().map_err(io("write", file))?;
    let (sha256, bytes) = (hex::encode(hashing.hasher.finalize()), hashing.bytes);
    tmp.as_file().sync_all().map_err(io("write", file))?;
    tmp.persist(file).map_err(|e| PackageError::Io {
        what: "write",
        path: file.to_path_buf(),
        source: e.error,
    })?;
    Ok((sha256, bytes))
}

/// Adds `root/rel`'s entries in name order (the same tree gives the same order).
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
) -> Result<(), PackageError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|source| PackageError::Io {
            what: "read",
            path: dir.clone(),
            source,
        })?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        builder
            .append_path_with_name(&full, &rel)
            .map_err(|source| PackageError::Io {
                what: "pack",
                path: full.clone(),
                source,
            })?;
        let is_dir = full
            .symlink_metadata()
            .map(|m| m.file_type().is_dir())
            .unwrap_or(false);
        if is_dir {
            append_tree(builder, root, &rel)?;
        }
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Creates `dir` (and missing parents) 0700, and makes it 0700 if it was not.
fn private_dir(dir: &Path) -> Result<(), PackageError> {
    let io = |source| PackageError::Io {
        what: "create the folder",
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

fn create_private(path: &Path) -> Result<std::fs::File, PackageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| PackageError::Io {
            what: "create",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(file)
}

/// Writes `bytes` to `path` through a 0600 temp file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| PackageError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
