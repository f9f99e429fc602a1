//! `process`: shell commands the operator declares to start, stop and query a service
//! (`systemctl start app`, `pg_ctl -D ... start`, a script). `status` exits 0 while the
//! service runs; start and stop are followed by polling `status` until it agrees.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::ProcessRuntimeConfig;

use crate::{Runtime, RuntimeError, State};

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
                    return Ok((status.success(), tail));
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
        let (running, _) = self.run(&self.config.status)?;
        Ok(if running {
            State::Running
        } else {
            State::Stopped
        })
    }

    fn stop(&self) -> Result<(), RuntimeError> {
        if self.state()? == State::Stopped {
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
                timeout: Duration::from_secs(5),
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
