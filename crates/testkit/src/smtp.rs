//! A real SMTP receiver: `aiosmtpd` (from PyPI, installed by `.ci/run` into
//! [`AIOSMTPD_DIR`]) on 127.0.0.1 and a free port, writing each message it accepts to
//! a file in its own folder; or answering every message with a chosen SMTP error (a
//! permanent 550, a transient 451). Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where `.ci/run` installs aiosmtpd.
pub const AIOSMTPD_DIR: &str = "/opt/drydock-test/aiosmtpd";

const SCRIPT: &str = r#"
import asyncio, os, sys, time
from aiosmtpd.controller import Controller
out, port, answer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        if answer != "ok":
            return answer
        n = len(os.listdir(out))
        path = os.path.join(out, "%04d.eml" % n)
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
while True:
    time.sleep(60)
"#;

/// The receiver; killed on drop.
pub struct SmtpReceiver {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpReceiver {
    /// Accepts every message.
    pub fn start() -> SmtpReceiver {
        Self::answering("ok")
    }

    /// Answers every message's data with `answer` (`"550 no such user"`), or accepts
    /// them with `"ok"`.
    pub fn answering(answer: &str) -> SmtpReceiver {
        assert!(
            Path::new(AIOSMTPD_DIR).join("aiosmtpd").is_dir(),
            "aiosmtpd is missing from {AIOSMTPD_DIR}: run .ci/run (or: python3 -m pip install --target {AIOSMTPD_DIR} aiosmtpd)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::free_port();
        // The system's python3: the one `.ci/run` installed aiosmtpd with.
        let python = if Path::new("/usr/bin/python3").is_file() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir.path())
            .arg(port.to_string())
            .arg(answer)
            .env("PYTHONPATH", AIOSMTPD_DIR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (install it: .ci/run does)");
        let mut line = [0u8; 6];
        let ok = child
            .stdout
            .as_mut()
            .map(|o| std::io::Read::read_exact(o, &mut line).is_ok())
            .unwrap_or(false);
        assert!(ok && &line == b"ready\n", "aiosmtpd did not start");
        SmtpReceiver { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages accepted so far (envelope headers first, then the message as
    /// sent), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Waits up to `timeout` for `n` messages.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        crate::wait_until(timeout, || self.messages().len() >= n);
        self.messages()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
