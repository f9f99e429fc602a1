//! A real OpenSSH `sshd` on a random 127.0.0.1 port in a temp dir, with its own host
//! key and a throwaway client key (both from `ssh-keygen`), running as the current
//! user, and a client `ssh_config` naming it (a Host alias, the port, the key, a
//! known_hosts file in the temp dir with `StrictHostKeyChecking accept-new`). Stopped
//! on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::io::Read;

use crate::server::{spawn_until_ready, start_on_free_port};

/// The Host alias the client config defines.
pub const ALIAS: &str = "drydock-sshd";

pub struct SshServer {
    child: Option<Child>,
    port: u16,
    user: String,
    dir: tempfile::TempDir,
}

impl SshServer {
    pub fn start() -> SshServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd refuses to start without its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .expect("the current user has a passwd entry")
            .name;
        let mut child = None;
        let mut bound = 0;
        start_on_free_port("sshd", &["Address already in use"], |port| {
            let config = d.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {pid}\n\
                     AuthorizedKeysFile {keys}\nStrictModes no\nPubkeyAuthentication yes\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                     PermitRootLogin prohibit-password\nAllowUsers {user}\n\
                     Subsystem sftp internal-sftp\nLogLevel VERBOSE\n",
                    host_key = d.join("host_key").display(),
                    pid = d.join("sshd.pid").display(),
                    keys = d.join("authorized_keys").display(),
                ),
            )
            .unwrap();
            let log = d.join("sshd.log");
            let _ = std::fs::remove_file(&log);
            // sshd must be started by its absolute path (it re-executes itself).
            let mut cmd = Command::new("/usr/sbin/sshd");
            cmd.args(["-D", "-f"])
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let started = spawn_until_ready(
                &mut cmd,
                "sshd",
                &log,
                || banner(port),
                |c| {
                    let _ = c.kill();
                    let _ = c.wait();
                },
            )?;
            child = Some(started);
            bound = port;
            Ok(())
        });
        let server = SshServer {
            child,
            port: bound,
            user,
            dir,
        };
        server.write_client_config();
        server
    }

    fn write_client_config(&self) {
        let d = self.dir.path();
        std::fs::write(
            self.client_config(),
            format!(
                "Host {ALIAS} 127.0.0.1\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  \
                 StrictHostKeyChecking accept-new\n  LogLevel ERROR\n",
                port = self.port,
                user = self.user,
                key = d.join("client_key").display(),
                known = d.join("known_hosts").display(),
            ),
        )
        .unwrap();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that logs in (the current one).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The client config to pass as `ssh -F`.
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `script` on the server through `ssh -F <client config>` (a client as the
    /// operator's would be); its standard output.
    pub fn ssh(&self, script: &str) -> String {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.client_config())
            .args(["-o", "BatchMode=yes", ALIAS, script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh {script}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// How many sessions the server accepted (from its log).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            crate::server::stop(
                child,
                nix::sys::signal::Signal::SIGTERM,
                Duration::from_secs(5),
            );
        }
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "drydock-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen (openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether an SSH server answers on `port` with its banner.
fn banner(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}
