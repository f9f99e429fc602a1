//! Child processes for dump and restore tools: spawned with secrets only in their
//! environment or 0600 files (never argv), stderr's tail kept (redacted) for error
//! messages, killed if dropped unfinished so a failed run leaves no stray dump behind.
//!
//! A tool runs on this host, or (a source with `exec = true`) inside the service's
//! container through its runtime's exec API ([`ToolSpec::inside`]); the adapters see the
//! same [`Tool`] either way, so their consistency and fingerprint logic is shared.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use drydock_runtimes::docker::{ExecKill, ExecProcess};
use drydock_runtimes::Runtime;

use crate::SourceError;

/// Removes from a child's environment every variable a config secret was read from;
/// the caller then sets the one secret the child needs (`PGPASSWORD`, ...).
pub(crate) fn without_secret_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for name in drydock_domain::secret::secret_env_names() {
        cmd.env_remove(name);
    }
    cmd
}

/// How much of a tool's stderr an error message shows.
const STDERR_TAIL_BYTES: usize = 2048;

/// Where a tool runs.
enum Running {
    Host(Child),
    Container(ExecProcess),
}

/// Stops a running tool from another thread.
#[derive(Clone)]
pub enum KillSwitch {
    Pid(u32),
    Exec(Option<ExecKill>),
}

impl KillSwitch {
    pub fn kill(&self) {
        match self {
            KillSwitch::Pid(pid) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            KillSwitch::Exec(Some(k)) => k.kill(),
            KillSwitch::Exec(None) => {}
        }
    }
}

/// A running tool.
pub struct Tool {
    name: String,
    location: String,
    child: Option<Running>,
    tail: Arc<Mutex<VecDeque<u8>>>,
    reader: Option<JoinHandle<()>>,
    secrets: Vec<String>,
}

/// What to start.
pub struct ToolSpec<'a> {
    pub program: &'a Path,
    pub args: Vec<&'a OsStr>,
    /// Extra environment, e.g. `PGPASSWORD`, `REDISCLI_AUTH`.
    pub env: Vec<(&'a str, &'a str)>,
    pub stdin: bool,
    pub stdout: bool,
    /// Strings that must never appear in messages (passwords), besides `env` values.
    pub secrets: Vec<&'a str>,
    /// Run inside this runtime's container instead of on this host.
    pub inside: Option<&'a dyn Runtime>,
}

impl<'a> ToolSpec<'a> {
    pub fn new(program: &'a Path) -> Self {
        ToolSpec {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: false,
            stdout: false,
            secrets: Vec::new(),
            inside: None,
        }
    }
    /// Runs the tool inside `runtime`'s container (the program is looked up on the
    /// container's PATH).
    pub fn inside(mut self, runtime: Option<&'a dyn Runtime>) -> Self {
        self.inside = runtime;
        self
    }
    pub fn arg(mut self, a: &'a (impl AsRef<OsStr> + ?Sized)) -> Self {
        self.args.push(a.as_ref());
        self
    }
    /// An environment variable holding a secret: its value is redacted from messages.
    pub fn env(mut self, k: &'a str, v: &'a str) -> Self {
        self.env.push((k, v));
        self.secrets.push(v);
        self
    }
    /// An environment variable that is no secret (a time zone, a timeout), so messages
    /// that mention its value keep it.
    pub fn setting(mut self, k: &'a str, v: &'a str) -> Self {
        self.env.push((k, v));
        self
    }
    pub fn stdin(mut self) -> Self {
        self.stdin = true;
        self
    }
    pub fn stdout(mut self) -> Self {
        self.stdout = true;
        self
    }

    pub fn spawn(self, location: &str) -> Result<Tool, SourceError> {
        let name = self
            .program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(runtime) = self.inside {
            return self.spawn_inside(runtime, name, location);
        }
        let mut cmd = Command::new(self.program);
        without_secret_env(&mut cmd)
            .args(&self.args)
            .envs(self.env.iter().copied())
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if self.stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SourceError::MissingTool {
                    program: name.clone(),
                    fix: "install it (see README: Requirements) or put it on PATH".into(),
                }
            } else {
                SourceError::io(location, format!("cannot start {name}"), e)
            }
        })?;
        let stderr = child.stderr.take().expect("stderr piped");
        Ok(self.tool(name, location, Running::Host(child), Box::new(stderr)))
    }

    fn spawn_inside(
        &self,
        runtime: &dyn Runtime,
        name: String,
        location: &str,
    ) -> Result<Tool, SourceError> {
        let mut cmd = vec![self.program.to_string_lossy().into_owned()];
        cmd.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut exec = runtime
            .exec(&cmd, &env, self.stdin)
            .map_err(|e| SourceError::Invalid {
                location: location.to_string(),
                message: format!("cannot run {name} inside the container: {e}"),
            })?;
        let stderr = exec.stderr.take().expect("stderr piped");
        if !self.stdout {
            // Nobody reads it: drain it so the tool never blocks on a full pipe.
            if let Some(mut out) = exec.stdout.take() {
                std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            }
        }
        Ok(self.tool(name, location, Running::Container(exec), Box::new(stderr)))
    }

    fn tool(
        &self,
        name: String,
        location: &str,
        child: Running,
        mut stderr: Box<dyn Read + Send>,
    ) -> Tool {
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        let sink = Arc::clone(&tail);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = sink.lock().unwrap();
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL_BYTES);
                t.drain(..excess);
            }
        });
        Tool {
            name,
            location: location.to_string(),
            child: Some(child),
            tail,
            reader: Some(reader),
            secrets: self
                .secrets
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl Tool {
    /// A handle that stops this tool from another thread.
    pub fn kill_switch(&self) -> KillSwitch {
        match self.child.as_ref() {
            Some(Running::Host(c)) => KillSwitch::Pid(c.id()),
            Some(Running::Container(e)) => KillSwitch::Exec(e.kill_handle()),
            None => KillSwitch::Exec(None),
        }
    }

    pub fn take_stdout(&mut self) -> Box<dyn Read + Send> {
        match self.child.as_mut() {
            Some(Running::Host(c)) => {
                Box::new(c.stdout.take().expect("stdout piped and taken once"))
            }
            Some(Running::Container(e)) => {
                Box::new(e.stdout.take().expect("stdout piped and taken once"))
            }
            None => panic!("tool already finished"),
        }
    }

    pub fn take_stdin(&mut self) -> Box<dyn Write + Send> {
        match self.child.as_mut() {
            Some(Running::Host(c)) => Box::new(c.stdin.take().expect("stdin piped and taken once")),
            Some(Running::Container(e)) => {
                Box::new(e.stdin.take().expect("stdin piped and taken once"))
            }
            None => panic!("tool already finished"),
        }
    }

    /// The redacted tail of stderr so far.
    pub fn stderr_tail(&self) -> String {
        let bytes: Vec<u8> = self.tail.lock().unwrap().iter().copied().collect();
        redact(String::from_utf8_lossy(&bytes).trim(), &self.secrets)
    }

    /// Waits for the tool; a non-zero exit or a signal becomes [`SourceError::Tool`]
    /// carrying the redacted tail of its stderr.
    pub fn finish(mut self) -> Result<(), SourceError> {
        let status = match self.child.take().expect("not finished yet") {
            Running::Host(mut child) => {
                let status = child.wait().map_err(|e| {
                    SourceError::io(&self.location, format!("waiting for {}", self.name), e)
                })?;
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                if status.success() {
                    return Ok(());
                }
                match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => format!("exit status {code}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    _ => status.to_string(),
                }
            }
            Running::Container(mut exec) => {
                let result = exec.wait();
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                match result {
                    Ok(Some(0)) => return Ok(()),
                    Ok(Some(code)) => format!("exit status {code} in the container"),
                    Ok(None) => "no exit status from the container".to_string(),
                    Err(e) => format!("exec session failed: {e}"),
                }
            }
        };
        let tail = self.stderr_tail();
        Err(SourceError::Tool {
            tool: self.name.clone(),
            location: self.location.clone(),
            status,
            stderr: if tail.is_empty() {
                "(no error output)".into()
            } else {
                tail
            },
        })
    }

    /// Stops the tool now (used when the other side of a pipe failed).
    pub fn kill(&mut self) {
        match self.child.as_mut() {
            Some(Running::Host(child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(Running::Container(exec)) => exec.kill(),
            None => {}
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Replaces every secret in `text` with `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 3 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// A file only its owner can read (0600), created fresh, for passwords handed to tools
/// (PGPASSFILE, MariaDB option files). Removed on drop.
pub struct PrivateFile {
    path: PathBuf,
}

impl PrivateFile {
    pub fn create(dir: &Path, name: &str, content: &str) -> std::io::Result<Self> {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        Ok(PrivateFile { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_tool_reports_redacted_stderr_tail() {
        let sh = Path::new("/bin/sh");
        let tool = ToolSpec::new(sh)
            .arg("-c")
            .arg("echo \"connecting with $SECRET_PW failed\" >&2; exit 3")
            .env("SECRET_PW", "canary-secret-42")
            .spawn("test")
            .unwrap();
        let err = tool.finish().unwrap_err().to_string();
        assert!(err.contains("exit status 3"), "{err}");
        assert!(err.contains("connecting with *** failed"), "{err}");
        assert!(!err.contains("canary-secret-42"), "{err}");
    }

    #[test]
    fn killed_tool_is_a_failure() {
        let tool = ToolSpec::new(Path::new("/bin/sh"))
            .arg("-c")
            .arg("kill -9 $$")
            .spawn("test")
            .unwrap();
        assert!(tool
            .finish()
            .unwrap_err()
            .to_string()
            .contains("killed by signal 9"));
    }

    #[test]
    fn private_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = PrivateFile::create(dir.path(), "pw", "x").unwrap();
        assert_eq!(
            std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
