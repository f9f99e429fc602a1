//! A real nginx (Debian's, /usr/sbin/nginx) as the reverse proxy in front of a test's
//! app containers: its own prefix and config in a temp dir, listening on a random
//! 127.0.0.1 port, `include`-ing the upstream file a deployer writes and sending every
//! request to `proxy_pass http://NAME`. Keep-alive to clients, `worker_shutdown_timeout`
//! for graceful reloads, a pid file (what `nginx -s reload -c CONF` signals), the error
//! and access logs in the temp dir. Runs in the foreground as a child of the test
//! (`daemon off;`), as the current user, and is stopped on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{free_port, wait_until};

pub const NGINX: &str = "/usr/sbin/nginx";

pub struct NginxServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    conf: PathBuf,
    upstream_file: PathBuf,
}

impl NginxServer {
    /// nginx proxying to upstream `name`, defined in `upstream_file()`. Until a deployer
    /// writes that file, it holds a placeholder server on a port nothing listens on.
    pub fn start(name: &str) -> NginxServer {
        let dir = tempfile::Builder::new()
            .prefix("drydock-nginx-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::create_dir_all(root.join("conf.d")).unwrap();
        let upstream_file = root.join("conf.d").join(format!("{name}-upstream.conf"));
        std::fs::write(
            &upstream_file,
            format!("upstream {name} {{\n    server 127.0.0.1:9;\n}}\n"),
        )
        .unwrap();
        let conf = root.join("nginx.conf");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(&conf, config(root, &upstream_file, name, port)).unwrap();
            let mut child = Command::new(NGINX)
                .arg("-p")
                .arg(root)
                .arg("-e")
                .arg(root.join("error.log"))
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {NGINX} ({e}); .ci/run installs nginx"));
            let up = wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return NginxServer {
                    child,
                    port,
                    dir,
                    conf,
                    upstream_file,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
            if !last.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not start:\n{last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: where users reach the app.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The main config (`-c`).
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The include file holding `upstream NAME { ... }`.
    pub fn upstream_file(&self) -> &Path {
        &self.upstream_file
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Whether the master still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        // SIGTERM: a fast shutdown of the master and its workers.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let gone = wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !gone {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn config(root: &Path, upstream_file: &Path, name: &str, port: u16) -> String {
    let r = root.display();
    // As root, nginx's workers would switch to `nobody`, who cannot enter the temp dir.
    let user = if nix::unistd::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "{user}daemon off;
master_process on;
worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/error.log notice;
# Old workers finish the requests they hold after a reload, for at most this long.
worker_shutdown_timeout 15s;
events {{
    worker_connections 1024;
}}
http {{
    log_format up '$remote_addr $request $status $request_time up=$upstream_addr $upstream_status';
    access_log {r}/access.log up;
    client_body_temp_path {r}/tmp/client_body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fastcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    include {upstream};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{name};
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
",
        upstream = upstream_file.display()
    )
}
