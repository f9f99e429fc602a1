//! Real HTTP and HTTPS servers for tests, on 127.0.0.1 and a free port, serving fixed
//! routes; a test CA ([`TestCa`]) issues their certificates with chosen names and
//! validity (valid, expiring soon, expired, for another host). A route can also hang:
//! accept the request and never answer. Also a TCP listener that accepts and stays
//! silent, and a separate process that holds a port ([`PortHog`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server certificate and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "drydock test CA");
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("self-signed ca");
        TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// Writes the CA certificate (PEM) to `path`, for `ca_file`.
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, &self.pem).expect("write ca pem");
    }

    /// A certificate for `names`, valid from `from_days` to `until_days` from now
    /// (negative: in the past).
    pub fn leaf(&self, names: &[&str], from_days: i64, until_days: i64) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(from_days);
        params.not_after = now + time::Duration::days(until_days) + time::Duration::hours(1);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// What a path answers.
#[derive(Clone)]
pub struct Route {
    pub path: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Accept the request and never answer.
    pub hang: bool,
}

impl Route {
    pub fn new(path: &str, status: u16, body: &str) -> Route {
        Route {
            path: path.into(),
            status,
            body: body.into(),
            headers: Vec::new(),
            hang: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Route {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn hanging(path: &str) -> Route {
        Route {
            hang: true,
            ..Route::new(path, 200, "")
        }
    }
}

/// An HTTP (or HTTPS, with a [`Leaf`]) server; stops on drop.
pub struct HttpServer {
    port: u16,
    tls: bool,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start(routes: Vec<Route>, tls: Option<Leaf>) -> HttpServer {
        Self::start_on(0, routes, tls)
    }

    /// The same on a given port (0: any free one), for routes that name the server.
    pub fn start_on(port: u16, routes: Vec<Route>, tls: Option<Leaf>) -> HttpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let config = tls.map(|leaf| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![leaf.cert.clone()],
                        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone())),
                    )
                    .expect("server config"),
            )
        });
        let tls = config.is_some();
        let routes = Arc::new(routes);
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (routes, config, flag) = (routes.clone(), config.clone(), flag.clone());
                        std::thread::spawn(move || serve(stream, &routes, config, &flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer { port, tls, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http(s)://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://127.0.0.1:{}{path}",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    routes: &[Route],
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut s = rustls::StreamOwned::new(conn, stream);
            answer(&mut s, routes, stop);
        }
        None => {
            let mut s = stream;
            answer(&mut s, routes, stop);
        }
    }
}

fn answer(s: &mut (impl Read + Write), routes: &[Route], stop: &AtomicBool) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let route = routes.iter().find(|r| r.path == path);
    let Some(route) = route else {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    if route.hang {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        route.status,
        route.body.len()
    );
    for (k, v) in &route.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&route.body);
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}

/// A TCP port that accepts connections and never says anything; stops on drop.
pub struct SilentListener {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SilentListener {
    pub fn start() -> SilentListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Ok((s, _)) = listener.accept() {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        SilentListener { port, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Another process (python3) that binds `127.0.0.1:port` and listens, so a service
/// cannot; killed on drop.
pub struct PortHog {
    child: Child,
}

impl PortHog {
    pub fn start(port: u16) -> PortHog {
        let script = format!(
            "import socket, time, sys\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', {port}))\ns.listen(16)\nprint('ready', flush=True)\ntime.sleep(600)\n"
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (install it: .ci/run does)");
        let mut line = [0u8; 6];
        let ok = child
            .stdout
            .as_mut()
            .map(|o| o.read_exact(&mut line).is_ok())
            .unwrap_or(false);
        assert!(
            ok && &line == b"ready\n",
            "the port hog could not bind port {port}"
        );
        PortHog { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PortHog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
