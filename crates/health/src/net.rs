//! Network plumbing the HTTP-speaking checks share: which CAs to trust, a TLS
//! handshake that reports the server's certificate (validity for the host, days to
//! expiry, why it is rejected), and an HTTP agent bounded by the check's deadline.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;

use crate::remaining;

/// The CAs to trust: those in `ca_file` (PEM), or else the system's store.
pub fn trust_anchors(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    match ca_file {
        Some(path) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file {} is not PEM certificates: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_file {} holds no certificate", path.display()));
            }
            Ok(certs)
        }
        None => {
            static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
            Ok(SYSTEM
                .get_or_init(|| rustls_native_certs::load_native_certs().certs)
                .clone())
        }
    }
}

/// The server certificate as seen in a handshake.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    pub dns_names: Vec<String>,
}

/// Why a certificate was rejected.
#[derive(Debug, Clone)]
pub enum TlsFailure {
    /// The connection itself failed (refused, timed out, reset).
    Connect(String),
    /// The server's certificate is not acceptable: the reason, and the certificate
    /// when one was received.
    Certificate(String, Option<Box<CertInfo>>),
    /// The handshake failed for another reason (protocol, alert).
    Handshake(String),
}

/// Connects to `host:port`, does a TLS handshake for `host` trusting `anchors`, and
/// returns the verified server certificate.
pub fn probe(
    host: &str,
    port: u16,
    anchors: &[CertificateDer<'static>],
    deadline: Instant,
) -> Result<CertInfo, TlsFailure> {
    if anchors.is_empty() {
        return Err(TlsFailure::Certificate(
            "no CA certificates to trust on this host: install ca-certificates or set ca_file"
                .into(),
            None,
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(anchors.iter().cloned());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsFailure::Handshake(format!("no usable CA certificate: {e}")))?;
    let recorder = Arc::new(Recording {
        inner,
        seen: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsFailure::Handshake(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        TlsFailure::Handshake(format!("`{host}` is not a valid TLS server name: {e}"))
    })?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| TlsFailure::Handshake(e.to_string()))?;
    let mut tcp = connect(host, port, deadline).map_err(TlsFailure::Connect)?;
    let _ = tcp.set_read_timeout(Some(remaining(deadline)));
    let _ = tcp.set_write_timeout(Some(remaining(deadline)));
    let result = loop {
        if !conn.is_handshaking() {
            break Ok(());
        }
        if let Err(e) = conn.complete_io(&mut tcp) {
            break Err(e);
        }
    };
    let seen = recorder.seen.lock().ok().and_then(|s| s.clone());
    let info = seen.as_deref().and_then(cert_info);
    match result {
        Ok(()) => {
            let _ = tcp.flush();
            info.ok_or_else(|| TlsFailure::Handshake("the server sent no certificate".into()))
        }
        Err(e) => {
            let cert_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .and_then(|re| match re {
                    rustls::Error::InvalidCertificate(ce) => Some(ce.clone()),
                    _ => None,
                });
            match cert_error {
                Some(ce) => Err(TlsFailure::Certificate(
                    reason(&ce, host, info.as_ref()),
                    info.map(Box::new),
                )),
                None if seen.is_none() && is_io_failure(&e) => {
                    Err(TlsFailure::Connect(e.to_string()))
                }
                None => Err(TlsFailure::Handshake(e.to_string())),
            }
        }
    }
}

fn is_io_failure(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | TimedOut | WouldBlock | UnexpectedEof | BrokenPipe
    )
}

/// A plain-words reason for a rejected certificate.
fn reason(e: &CertificateError, host: &str, info: Option<&CertInfo>) -> String {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => match info {
            Some(i) => format!(
                "certificate expired {} day(s) ago (not after {})",
                -i.days_left, i.not_after
            ),
            None => "certificate expired".into(),
        },
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet (check the clocks)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            match info {
                Some(i) => format!(
                    "certificate is not valid for host `{host}` (it names {})",
                    if i.dns_names.is_empty() {
                        i.subject.clone()
                    } else {
                        i.dns_names.join(", ")
                    }
                ),
                None => format!("certificate is not valid for host `{host}`"),
            }
        }
        CertificateError::UnknownIssuer => match info {
            Some(i) => format!(
                "certificate is signed by an unknown CA (issuer {}); trust it with ca_file or fix the chain",
                i.issuer
            ),
            None => "certificate is signed by an unknown CA".into(),
        },
        CertificateError::Revoked => "certificate is revoked".into(),
        other => format!("certificate rejected: {other:?}"),
    }
}

/// Subject, issuer, expiry and names of a DER certificate.
fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = jiff::Timestamp::now().as_second();
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                        4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: jiff::Timestamp::from_second(not_after)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        days_left: (not_after - now).div_euclid(86_400),
        dns_names,
    })
}

/// Remembers the server's certificate, then lets webpki judge it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.as_ref().to_vec());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TCP connection to the first address of `host:port` that answers before `deadline`.
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)) {
            Ok(s) => return Ok(s),
            Err(e) => last = connect_error(&addr.to_string(), &e),
        }
    }
    Err(last)
}

/// `connection refused at 127.0.0.1:5432` rather than `os error 111`.
pub fn connect_error(target: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused at {target} (nothing listens there)")
        }
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("no answer from {target} (timed out)")
        }
        _ => format!("cannot connect to {target}: {e}"),
    }
}

/// An HTTP agent that does not follow redirects, treats every status as an answer,
/// trusts `anchors`, and gives up at `deadline`.
pub fn agent(anchors: &[CertificateDer<'static>], deadline: Instant) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let certs: Vec<Certificate<'static>> = anchors
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    ureq::Agent::config_builder()
        .timeout_global(Some(remaining(deadline)))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent("drydock-health")
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(certs)))
                .build(),
        )
        .build()
        .into()
}

/// GETs `url` and parses a JSON body (at most 4 MiB); the status comes along.
pub fn get_json(agent: &ureq::Agent, url: &str) -> Result<(u16, serde_json::Value), String> {
    let mut resp = agent.get(url).call().map_err(|e| http_error(url, &e))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the answer failed: {e}"))?;
    let json = serde_json::from_str(&body)
        .map_err(|e| format!("{url} answered {status} but not with JSON ({e})"))?;
    Ok((status, json))
}

/// POSTs a JSON body and parses the JSON answer (etcd's gRPC gateway).
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    let mut resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .map_err(|e| http_error(url, &e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the answer failed: {e}"))?;
    let json = serde_json::from_str(&text)
        .map_err(|e| format!("{url} answered {status} but not with JSON ({e})"))?;
    Ok((status, json))
}

/// An HTTP client error in plain words.
pub fn http_error(url: &str, e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => connect_error(url, io),
        ureq::Error::Timeout(_) => format!("no answer from {url} (timed out)"),
        ureq::Error::HostNotFound => format!("{url}: host not found"),
        other => format!("{url}: {other}"),
    }
}
