//! `command`: a shell command's exit code (0 healthy, `warn_exit_codes` a warning,
//! anything else critical), killed with its whole process group at the deadline.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_domain::config::health::CommandCheck;

use crate::{millis, Check, Outcome};

pub struct ShellCommand {
    config: CommandCheck,
}

impl ShellCommand {
    pub fn new(config: CommandCheck) -> Self {
        ShellCommand { config }
    }
}

impl Check for ShellCommand {
    fn run(&self, deadline: Instant) -> Outcome {
        let began = Instant::now();
        let mut child = match Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.config.run)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Outcome::critical(format!("cannot start /bin/sh: {e}")),
        };
        // Read output in the background so a chatty command cannot block on a full pipe.
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_string(&mut out);
            }
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_string(&mut out);
            }
            out
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) | Err(_) => break None,
            }
        };
        let Some(status) = status else {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Outcome::critical(format!(
                "`{}` did not finish in time (killed)",
                self.config.run
            ))
            .with("command", &self.config.run)
            .definitive();
        };
        let took = began.elapsed();
        let output = reader.join().unwrap_or_default();
        let last = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let last: String = last.chars().take(200).collect();
        let out = |o: Outcome| {
            o.with("command", &self.config.run)
                .with("exit_code", status.code())
                .with("output", &last)
                .with("latency_ms", millis(took))
        };
        match status.code() {
            Some(0) => out(Outcome::healthy(if last.is_empty() {
                "exit 0".to_string()
            } else {
                format!("exit 0: {last}")
            })),
            Some(code) if self.config.warn_exit_codes.contains(&code) => {
                out(Outcome::warning(format!("exit {code}: {last}")))
            }
            Some(code) => out(Outcome::critical(format!("exit {code}: {last}"))),
            None => out(Outcome::critical(format!("killed by a signal: {last}"))),
        }
    }
}
