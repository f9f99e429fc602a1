//! `process`: shell commands the operator declares to start, stop and query a service
//! (`systemctl start app`, `pg_ctl -D ... start`, a script). `status` exits 0 while the
//! service runs (4 means not deployed, as with LSB scripts, `systemctl` and `pg_ctl`);
//! start and stop are followed by polling `status` until it agrees. The optional
//! `pid_file`, `log_file` and `data_dir` let `diagnose` and `heal` see the processes,
//! the log and the data.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::ProcessRuntimeConfig;

use crate::procinfo::{self, PidFile};
use crate::runtime::{Details, LogTail, Runtime, RuntimeError, State};

/// How much of a log's end is read to find its last lines.
const LOG_TAIL_BYTES: u64 = 512 * 1024;

pub struct Process {
    service: String,
    config: ProcessRuntimeConfig,
}

impl Process {
    pub fn new(service: &str, config: ProcessRuntimeConfig) -> Self {
        Process {
            service: service.to_string(),
            config,
        }
    }

    /// Runs `command` with `sh -c`, killing it at the timeout. Returns whether it
    /// exited 0, and its combined output's tail.
    fn run(&self, command: &str) -> Result<(bool, String), RuntimeError> {
        let (code, output) = self.run_code(command)?;
        Ok((code == Some(0), output))
    }

    /// Like [`Process::run`], with the exit code (`None` when killed by a signal).
    fn run_code(&self, command: &str) -> Result<(Option<i32>, String), RuntimeError> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(command, "could not start /bin/sh".into(), e.to_string()))?;
        let deadline = Instant::now() + self.config.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let mut out = String::new();
                    if let Some(mut s) = child.stdout.take() {
                        let _ = s.read_to_string(&mut out);
                    }
                    if let Some(mut s) = child.stderr.take() {
                        let _ = s.read_to_string(&mut out);
                    }
                    let tail: String = out
                        .trim()
                        .chars()
                        .rev()
                        .take(500)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    return Ok((status.code(), tail));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RuntimeError::Timeout {
                        service: self.service.clone(),
                        command: command.to_string(),
                        seconds: self.config.timeout.as_secs(),
                    });
                }
                Err(e) => return Err(self.failed(command, "wait failed".into(), e.to_string())),
            }
        }
    }

    fn failed(&self, command: &str, status: String, output: String) -> RuntimeError {
        RuntimeError::Command {
            service: self.service.clone(),
            command: command.to_string(),
            status,
            output,
        }
    }

    fn wait_for(&self, want: State) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + self.config.timeout;
        loop {
            if self.state()? == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::Timeout {
                    service: self.service.clone(),
                    command: format!("{} (waiting for {want})", self.config.status),
                    seconds: self.config.timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Runtime for Process {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn can_stop(&self) -> bool {
        true
    }

    fn state(&self) -> Result<State, RuntimeError> {
        let (code, _) = self.run_code(&self.config.status)?;
        Ok(match code {
            Some(0) => State::Running,
            Some(4) => State::Missing,
            _ => State::Stopped,
        })
    }

    fn stop(&self) -> Result<(), RuntimeError> {
        if matches!(self.state()?, State::Stopped | State::Missing) {
            return Ok(());
        }
        let (ok, output) = self.run(&self.config.stop)?;
        if !ok {
            return Err(self.failed(&self.config.stop, "non-zero exit".into(), output));
        }
        self.wait_for(State::Stopped)
    }

    fn start(&self) -> Result<(), RuntimeError> {
        if self.state()? == State::Running {
            return Ok(());
        }
        let (ok, output) = self.run(&self.config.start)?;
        if !ok {
            return Err(self.failed(&self.config.start, "non-zero exit".into(), output));
        }
        self.wait_for(State::Running)
    }

    fn can_recreate(&self) -> Result<(), String> {
        Ok(())
    }

    /// The `recreate` command when there is one (it stops, replaces and starts the
    /// service itself), else `stop` then `start`; then the status must say running.
    fn recreate(&self) -> Result<(), RuntimeError> {
        let Some(command) = &self.config.recreate else {
            self.stop()?;
            return self.start();
        };
        let (ok, output) = self.run(command)?;
        if !ok {
            return Err(self.failed(command, "non-zero exit".into(), output));
        }
        self.wait_for(State::Running)
    }

    fn details(&self) -> Result<Details, RuntimeError> {
        let mut details = Details {
            state: self.state()?,
            ..Details::default()
        };
        if let Some(pid_file) = &self.config.pid_file {
            match procinfo::pid_from_file(pid_file) {
                PidFile::Alive(pid) => {
                    details.pids.push(pid);
                    details.started_at = procinfo::started_at(pid);
                }
                PidFile::Stale(pid) => details.notes.push(format!(
                    "stale PID file {}{}: its process is gone",
                    pid_file.display(),
                    pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
                )),
                PidFile::Absent => {}
            }
        }
        Ok(details)
    }

    fn logs(&self, lines: usize) -> Result<Option<LogTail>, RuntimeError> {
        let Some(path) = &self.config.log_file else {
            return Ok(None);
        };
        let text = match read_tail(path) {
            Ok(t) => t,
            Err(e) => {
                return Ok(Some(LogTail {
                    source: path.display().to_string(),
                    lines: vec![format!("(cannot read {}: {e})", path.display())],
                }))
            }
        };
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        Ok(Some(LogTail {
            source: path.display().to_string(),
            lines: all[start..].iter().map(|l| l.to_string()).collect(),
        }))
    }

    fn data_paths(&self) -> Vec<PathBuf> {
        self.config.data_dir.iter().cloned().collect()
    }
}

/// The end of a file (at most [`LOG_TAIL_BYTES`]), starting at a whole line.
fn read_tail(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(if from > 0 {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(dir: &std::path::Path) -> Process {
        let flag = dir.join("running");
        let f = flag.display();
        Process::new(
            "app",
            ProcessRuntimeConfig {
                start: format!("touch '{f}'"),
                stop: format!("rm -f '{f}'"),
                status: format!("test -e '{f}'"),
                recreate: None,
                timeout: Duration::from_secs(5),
                log_file: None,
                pid_file: None,
                data_dir: None,
            },
        )
    }

    #[test]
    fn start_and_stop_follow_status() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        assert_eq!(rt.state().unwrap(), State::Stopped);
        rt.start().unwrap();
        assert_eq!(rt.state().unwrap(), State::Running);
        rt.stop().unwrap();
        assert_eq!(rt.state().unwrap(), State::Stopped);
    }

    #[test]
    fn details_logs_and_missing_come_from_pid_file_log_file_and_exit_4() {
        let dir = tempfile::tempdir().unwrap();
        let mut rt = runtime(dir.path());
        let log = dir.path().join("app.log");
        let lines: String = (1..=300).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, lines).unwrap();
        let pid_file = dir.path().join("app.pid");
        std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
        rt.config.log_file = Some(log.clone());
        rt.config.pid_file = Some(pid_file);
        rt.start().unwrap();
        let d = rt.details().unwrap();
        assert_eq!(d.state, State::Running);
        assert_eq!(d.pids, [std::process::id()]);
        assert!(d.uptime_secs().is_some());
        let tail = rt.logs(3).unwrap().unwrap();
        assert_eq!(tail.lines, ["line 298", "line 299", "line 300"]);
        assert_eq!(tail.source, log.display().to_string());
        rt.config.status = "exit 4".into();
        assert_eq!(rt.state().unwrap(), State::Missing);
    }

    #[test]
    fn failing_and_hanging_commands_are_errors_that_name_the_command() {
        let mut rt = runtime(tempfile::tempdir().unwrap().path());
        rt.config.start = "echo no permission >&2; exit 4".into();
        let e = rt.start().unwrap_err().to_string();
        assert!(
            e.contains("service `app`") && e.contains("no permission"),
            "{e}"
        );
        rt.config.start = "sleep 10".into();
        rt.config.timeout = Duration::from_millis(300);
        let e = rt.start().unwrap_err().to_string();
        assert!(e.contains("did not finish within"), "{e}");
    }
}
