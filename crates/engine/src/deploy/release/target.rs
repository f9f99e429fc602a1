//! The operations a release deploy does on its target, one implementation per kind of
//! target: a local folder (std::fs, the tar and zstd crates, rename(2)), or a folder
//! on an ssh host through the system's OpenSSH (`ssh`/`scp` with `-o BatchMode=yes`,
//! so a missing key fails instead of prompting; `~/.ssh/config`, or `ssh_config` as
//! `-F`, is honoured; the URL's port is `-p`).
//!
//! The layout on the target, the same for both:
//!
//! ```text
//! <root>/releases/<id>/          one extracted package each (with build_info.json)
//! <root>/releases/<id>.partial/  an extraction under way (never switched to)
//! <root>/shared/<dir>/           linked into every release (uploads, logs)
//! <root>/current -> releases/<id>    what is served
//! <root>/previous -> releases/<id>   what was served before (the rollback target)
//! <root>/.drydock/incoming/      packages uploaded and not yet extracted
//! <root>/.drydock/restart.log    the last restart command's output
//! ```
//!
//! Links are relative and switched atomically: a new link under a temporary name,
//! then rename(2) over the old one (`ln -s` + `mv -T` over ssh), so a reader of
//! `current/...` sees the old release or the new one and never a missing file (unlink
//! then symlink, as `ln -sfn` does, leaves a moment with no `current` at all).
//!
//! An ssh target needs a POSIX `sh`, GNU coreutils (`sha256sum`, `mv -T`, `readlink`,
//! `ln`), `tar` and `zstd` (Debian: `apt-get install zstd`); the user logs in by key.

use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::{ReleaseDeploy, ReleaseTarget};

use super::package::{BuildInfo, Package, BUILD_INFO};

/// How long the restart command may run before it is stopped and counted failed.
pub const RESTART_LIMIT: Duration = Duration::from_secs(120);
/// How long any other command on an ssh target may take.
const SSH_LIMIT: Duration = Duration::from_secs(300);

/// The two links a target keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Current,
    Previous,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Current => "current",
            Link::Previous => "previous",
        }
    }
}

/// What is on a target: its links and its releases (oldest first) with their build
/// info (`None` when a release's `build_info.json` is missing or unreadable).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub current: Option<String>,
    pub previous: Option<String>,
    pub releases: Vec<(String, Option<BuildInfo>)>,
    /// Extractions a crash left behind.
    pub partial: Vec<String>,
}

impl Layout {
    pub fn info(&self, id: &str) -> Option<&BuildInfo> {
        self.releases
            .iter()
            .find(|(r, _)| r == id)
            .and_then(|(_, i)| i.as_ref())
    }

    pub fn has(&self, id: &str) -> bool {
        self.releases.iter().any(|(r, _)| r == id)
    }
}

/// The operations on one target.
pub trait Target {
    /// The target as the operator wrote it.
    fn describe(&self) -> String;
    fn inspect(&self) -> Result<Layout, String>;
    /// Puts the package and its checksum file under `.drydock/incoming/`.
    fn upload(&self, package: &Package) -> Result<(), String>;
    /// Checks the uploaded package against its checksum file, on the target.
    fn verify(&self, id: &str) -> Result<(), String>;
    /// Extracts the uploaded package to `releases/<id>/` (through `<id>.partial`),
    /// links the shared folders into it, and drops the upload.
    fn extract(&self, id: &str, shared: &[String]) -> Result<(), String>;
    /// Points `link` at `releases/<id>` atomically.
    fn switch(&self, link: Link, id: &str) -> Result<(), String>;
    /// Removes `link` (a first deploy that failed leaves no `current`).
    fn unlink(&self, link: Link) -> Result<(), String>;
    /// Runs `command` with `sh -c` in `current`, with DRYDOCK_RELEASE and DRYDOCK_REV.
    fn restart(&self, command: &str, id: &str, commit: &str) -> Result<(), String>;
    /// Removes `releases/<id>` (or a `.partial` one).
    fn remove(&self, id: &str) -> Result<(), String>;
    /// Removes an upload that will not be extracted.
    fn discard_upload(&self, id: &str) -> Result<(), String>;
}

/// The target `spec` names.
pub fn open(spec: &ReleaseDeploy) -> Box<dyn Target> {
    match &spec.target {
        ReleaseTarget::Local(root) => Box::new(Local { root: root.clone() }),
        ReleaseTarget::Ssh {
            user,
            host,
            port,
            path,
        } => Box::new(Ssh {
            described: spec.target.to_string(),
            destination: match user {
                Some(u) => format!("{u}@{host}"),
                None => host.clone(),
            },
            port: *port,
            config: spec.ssh_config.clone(),
            root: path.clone(),
            control: tempfile::Builder::new()
                .prefix("drydock-ssh")
                .tempdir()
                .ok(),
        }),
    }
}

/// The relative link from `releases/<id>/<dir>` to `shared/<dir>`.
fn shared_link(dir: &str) -> String {
    let depth = Path::new(dir).components().count();
    // Up from the link's folder to the release (depth - 1), to releases/, to the root.
    format!("{}shared/{dir}", "../".repeat(depth + 1))
}

fn valid_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{id}` is not a release id"))
    }
}

// ---------------------------------------------------------------------------------
// A local folder.

pub struct Local {
    pub root: PathBuf,
}

impl Local {
    fn incoming(&self) -> PathBuf {
        self.root.join(".drydock/incoming")
    }

    fn package_file(&self, id: &str) -> PathBuf {
        self.incoming().join(format!("{id}.tar.zst"))
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let message = format!("cannot {what} {}", path.display());
    move |e| format!("{message}: {e}")
}

/// Points `<root>/<link>` at `releases/<id>` atomically: a new symlink under a
/// temporary name, then rename(2) over the old link, then the folder synced so the
/// switch survives a crash.
pub fn switch_link(root: &Path, link: &str, id: &str) -> std::io::Result<()> {
    let tmp = root.join(format!(
        ".{link}.tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    symlink(format!("releases/{id}"), &tmp)?;
    if let Err(e) = std::fs::rename(&tmp, root.join(link)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(root)?.sync_all()
}

fn read_link_id(path: &Path) -> Option<String> {
    let to = std::fs::read_link(path).ok()?;
    to.file_name().and_then(|n| n.to_str()).map(str::to_string)
}

impl Target for Local {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn inspect(&self) -> Result<Layout, String> {
        let mut layout = Layout {
            current: read_link_id(&self.root.join("current")),
            previous: read_link_id(&self.root.join("previous")),
            ..Layout::default()
        };
        let releases = self.root.join("releases");
        let entries = match std::fs::read_dir(&releases) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(layout),
            Err(e) => return Err(io_err("read", &releases)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            if let Some(id) = name.strip_suffix(".partial") {
                layout.partial.push(id.to_string());
                continue;
            }
            let info = std::fs::read_to_string(releases.join(&name).join(BUILD_INFO))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            layout.releases.push((name, info));
        }
        Ok(layout)
    }

    fn upload(&self, package: &Package) -> Result<(), String> {
        let dir = self.incoming();
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        for (from, name) in [
            (&package.file, format!("{}.tar.zst", package.id)),
            (
                &package.checksum_file,
                format!("{}.tar.zst.sha256", package.id),
            ),
        ] {
            let to = dir.join(name);
            std::fs::copy(from, &to).map_err(io_err("copy the package to", &to))?;
        }
        Ok(())
    }

    fn verify(&self, id: &str) -> Result<(), String> {
        let file = self.package_file(id);
        let checksum = self.incoming().join(format!("{id}.tar.zst.sha256"));
        super::package::verify_file(&file, &checksum).map(|_| ())
    }

    fn extract(&self, id: &str, shared: &[String]) -> Result<(), String> {
        valid_id(id)?;
        let file = self.package_file(id);
        let releases = self.root.join("releases");
        let partial = releases.join(format!("{id}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(io_err("create", &partial))?;
        let f = std::fs::File::open(&file).map_err(io_err("open", &file))?;
        let decoder = zstd::Decoder::new(f).map_err(io_err("decompress", &file))?;
        let mut archive = tar::Archive::new(decoder);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        // `unpack` refuses entries that would land outside `partial` (.., absolute).
        archive.unpack(&partial).map_err(io_err("extract", &file))?;
        for dir in shared {
            let in_shared = self.root.join("shared").join(dir);
            std::fs::create_dir_all(&in_shared).map_err(io_err("create", &in_shared))?;
            let at = partial.join(dir);
            if at.symlink_metadata().is_ok() {
                // The package's own copy gives way to the shared one (as Capistrano does).
                let removed = if at.is_dir() && !at.is_symlink() {
                    std::fs::remove_dir_all(&at)
                } else {
                    std::fs::remove_file(&at)
                };
                removed.map_err(io_err("replace", &at))?;
            }
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            symlink(shared_link(dir), &at).map_err(io_err("link", &at))?;
        }
        let done = releases.join(id);
        std::fs::rename(&partial, &done).map_err(io_err("rename", &partial))?;
        self.discard_upload(id)
    }

    fn switch(&self, link: Link, id: &str) -> Result<(), String> {
        valid_id(id)?;
        switch_link(&self.root, link.name(), id)
            .map_err(io_err("switch", &self.root.join(link.name())))
    }

    fn unlink(&self, link: Link) -> Result<(), String> {
        let path = self.root.join(link.name());
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    fn restart(&self, command: &str, id: &str, commit: &str) -> Result<(), String> {
        let log_path = self.root.join(".drydock/restart.log");
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        // A file, not a pipe: a server the command starts keeps its output open.
        let log = std::fs::File::create(&log_path).map_err(io_err("create", &log_path))?;
        let err = log.try_clone().map_err(io_err("create", &log_path))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(self.root.join("current"))
            .env("DRYDOCK_RELEASE", id)
            .env("DRYDOCK_REV", commit)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let result = wait_limited(&mut cmd, RESTART_LIMIT);
        let tail = tail_of(&std::fs::read_to_string(&log_path).unwrap_or_default());
        match result {
            Ok(()) => Ok(()),
            Err(e) if tail.is_empty() => Err(e),
            Err(e) => Err(format!("{e}: {tail}")),
        }
    }

    fn remove(&self, id: &str) -> Result<(), String> {
        valid_id(id)?;
        for path in [
            self.root.join("releases").join(id),
            self.root.join("releases").join(format!("{id}.partial")),
        ] {
            match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("remove", &path)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn discard_upload(&self, id: &str) -> Result<(), String> {
        for name in [format!("{id}.tar.zst"), format!("{id}.tar.zst.sha256")] {
            let path = self.incoming().join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("remove", &path)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs `cmd` to its end, or stops it after `limit`. Err: how it failed.
fn wait_limited(cmd: &mut Command, limit: Duration) -> Result<(), String> {
    let mut child = cmd.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}, stopped"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The last lines of a command's output, for an error message.
fn tail_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}

// ---------------------------------------------------------------------------------
// A folder on an ssh host.

pub struct Ssh {
    described: String,
    /// `user@host` or `host` (a Host alias of the ssh config works too).
    destination: String,
    port: Option<u16>,
    config: Option<PathBuf>,
    root: PathBuf,
    /// A private folder for the connection one deploy's commands share (OpenSSH's
    /// ControlMaster): one login instead of one per command.
    control: Option<tempfile::TempDir>,
}

impl Drop for Ssh {
    /// Ends the shared connection now rather than when its idle time runs out.
    fn drop(&mut self) {
        if self.control.is_some() {
            let mut cmd = Command::new("ssh");
            self.common(&mut cmd, "-p");
            let _ = cmd
                .args(["-O", "exit", "--"])
                .arg(&self.destination)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `'...'` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Ssh {
    fn common(&self, cmd: &mut Command, port_flag: &str) {
        cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        if let Some(config) = &self.config {
            cmd.arg("-F").arg(config);
        }
        if let Some(port) = self.port {
            cmd.arg(port_flag).arg(port.to_string());
        }
        if let Some(dir) = &self.control {
            // The master outlives a drydock killed midway by 30 s at most.
            cmd.arg("-o")
                .arg(format!("ControlPath={}", dir.path().join("c").display()))
                .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]);
        }
    }

    fn root(&self) -> String {
        quote(&self.root.to_string_lossy())
    }

    /// Runs `script` with `sh -c` on the host, in the root folder when `in_root`.
    /// Ok: its standard output. Err: its standard error's last lines.
    fn run(&self, script: &str, limit: Duration) -> Result<String, String> {
        let mut cmd = Command::new("ssh");
        self.common(&mut cmd, "-p");
        cmd.arg("--")
            .arg(&self.destination)
            .arg(format!("sh -c {}", quote(script)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run ssh: {e}; install OpenSSH's client"))?;
        // Read both pipes on threads so a chatty command cannot fill one and stall.
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("still running after {limit:?}, stopped"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => break Err(e.to_string()),
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let status = status?;
        if status.success() {
            return Ok(stdout);
        }
        let tail = tail_of(&stderr);
        if status.code() == Some(255) {
            return Err(format!(
                "ssh to {} failed: {tail}; check that the host is up and that this user can log in by key (ssh -o BatchMode=yes {})",
                self.destination, self.destination
            ));
        }
        Err(if tail.is_empty() {
            format!("exited with {status}")
        } else {
            format!("{status}: {tail}")
        })
    }
}

impl Target for Ssh {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn inspect(&self) -> Result<Layout, String> {
        // One round trip: the links, then each release with its build info on one line
        // (JSON has no raw newlines inside strings, so removing them keeps it valid).
        let script = format!(
            r#"cd {root} 2>/dev/null || exit 0
printf 'current %s\n' "$(readlink current 2>/dev/null)"
printf 'previous %s\n' "$(readlink previous 2>/dev/null)"
for d in releases/*; do
  [ -d "$d" ] || continue
  id=${{d#releases/}}
  case "$id" in *.partial) printf 'partial %s\n' "${{id%.partial}}"; continue;; esac
  printf 'release %s %s\n' "$id" "$(tr -d '\n' < "$d/{BUILD_INFO}" 2>/dev/null)"
done"#,
            root = self.root()
        );
        let out = self.run(&script, SSH_LIMIT)?;
        let mut layout = Layout::default();
        let id_of = |link: &str| {
            let name = link.rsplit('/').next().unwrap_or_default();
            (!name.is_empty()).then(|| name.to_string())
        };
        for line in out.lines() {
            let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
            match kind {
                "current" => layout.current = id_of(rest.trim()),
                "previous" => layout.previous = id_of(rest.trim()),
                "partial" => layout.partial.push(rest.trim().to_string()),
                "release" => {
                    let (id, json) = rest.split_once(' ').unwrap_or((rest, ""));
                    layout
                        .releases
                        .push((id.to_string(), serde_json::from_str(json).ok()));
                }
                _ => {}
            }
        }
        layout.releases.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(layout)
    }

    fn upload(&self, package: &Package) -> Result<(), String> {
        let incoming = format!("{}/.drydock/incoming", self.root.to_string_lossy());
        self.run(
            &format!(
                "mkdir -p {} {root}/releases {root}/shared",
                quote(&incoming),
                root = self.root()
            ),
            SSH_LIMIT,
        )?;
        let mut cmd = Command::new("scp");
        self.common(&mut cmd, "-P");
        cmd.arg("-q")
            .arg("--")
            .arg(&package.file)
            .arg(&package.checksum_file)
            .arg(format!("{}:{incoming}/", self.destination))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run scp: {e}; install OpenSSH's client"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scp to {} failed: {}",
                self.destination,
                tail_of(&String::from_utf8_lossy(&out.stderr))
            ))
        }
    }

    fn verify(&self, id: &str) -> Result<(), String> {
        valid_id(id)?;
        self.run(
            &format!(
                // Its verdict on stderr, so a mismatch's lines are in the error.
                "cd {}/.drydock/incoming && sha256sum -c --strict {id}.tar.zst.sha256 >&2",
                self.root()
            ),
            SSH_LIMIT,
        )
        .map(|_| ())
        .map_err(|e| format!("sha256sum -c on the target: {e}"))
    }

    fn extract(&self, id: &str, shared: &[String]) -> Result<(), String> {
        valid_id(id)?;
        let mut script = format!(
            "set -e\ncd {root}\nrm -rf releases/{id}.partial\nmkdir -p releases/{id}.partial shared\n\
             zstd -q -t .drydock/incoming/{id}.tar.zst\n\
             zstd -q -dc .drydock/incoming/{id}.tar.zst | tar -x --no-same-owner -f - -C releases/{id}.partial\n\
             [ -f releases/{id}.partial/{BUILD_INFO} ]\n",
            root = self.root()
        );
        for dir in shared {
            let at = format!("releases/{id}.partial/{dir}");
            script.push_str(&format!(
                "mkdir -p {shared}\nrm -rf {at}\nmkdir -p \"$(dirname {at})\"\nln -s {link} {at}\n",
                shared = quote(&format!("shared/{dir}")),
                at = quote(&at),
                link = quote(&shared_link(dir)),
            ));
        }
        script.push_str(&format!(
            "mv -T releases/{id}.partial releases/{id}\nrm -f .drydock/incoming/{id}.tar.zst .drydock/incoming/{id}.tar.zst.sha256\n"
        ));
        self.run(&script, SSH_LIMIT).map(|_| ())
    }

    fn switch(&self, link: Link, id: &str) -> Result<(), String> {
        valid_id(id)?;
        let name = link.name();
        // Never `ln -sfn`: it unlinks, then links, and readers see nothing in between.
        self.run(
            &format!(
                "cd {} && ln -s releases/{id} .{name}.tmp-$$ && mv -T .{name}.tmp-$$ {name}",
                self.root()
            ),
            SSH_LIMIT,
        )
        .map(|_| ())
    }

    fn unlink(&self, link: Link) -> Result<(), String> {
        self.run(&format!("rm -f {}/{}", self.root(), link.name()), SSH_LIMIT)
            .map(|_| ())
    }

    fn restart(&self, command: &str, id: &str, commit: &str) -> Result<(), String> {
        valid_id(id)?;
        let commit = quote(commit);
        // The output goes to a file on the host, so a server the command starts does
        // not keep the ssh session open; its last lines come back on failure.
        let script = format!(
            "cd {root}/current || exit 1\nmkdir -p {root}/.drydock\n\
             DRYDOCK_RELEASE={id} DRYDOCK_REV={commit} sh -c {command} >{root}/.drydock/restart.log 2>&1 </dev/null\n\
             rc=$?\n[ $rc = 0 ] || tail -n 5 {root}/.drydock/restart.log >&2\nexit $rc",
            root = self.root(),
            command = quote(command),
        );
        self.run(&script, RESTART_LIMIT).map(|_| ())
    }

    fn remove(&self, id: &str) -> Result<(), String> {
        valid_id(id)?;
        self.run(
            &format!(
                "cd {} && rm -rf releases/{id} releases/{id}.partial",
                self.root()
            ),
            SSH_LIMIT,
        )
        .map(|_| ())
    }

    fn discard_upload(&self, id: &str) -> Result<(), String> {
        valid_id(id)?;
        self.run(
            &format!(
                "rm -f {root}/.drydock/incoming/{id}.tar.zst {root}/.drydock/incoming/{id}.tar.zst.sha256",
                root = self.root()
            ),
            SSH_LIMIT,
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_links_climb_back_to_the_root() {
        assert_eq!(shared_link("uploads"), "../../shared/uploads");
        assert_eq!(shared_link("storage/logs"), "../../../shared/storage/logs");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), "'a'\\''b'");
    }
}
