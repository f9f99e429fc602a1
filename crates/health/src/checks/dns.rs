//! `dns`: a name resolves (optionally to an expected address), through the system
//! resolver or by asking a given DNS server directly (UDP, TCP when truncated).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Instant;

use drydock_domain::config::health::{parse_resolver, DnsCheck, DnsRecord};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::{millis, remaining, Check, Outcome};

pub struct Dns {
    config: DnsCheck,
}

impl Dns {
    pub fn new(config: DnsCheck) -> Self {
        Dns { config }
    }
}

impl Check for Dns {
    fn run(&self, deadline: Instant) -> Outcome {
        let c = &self.config;
        let began = Instant::now();
        let (via, answer) = match &c.resolver {
            None => ("the system resolver".to_string(), system(&c.host)),
            Some(r) => match parse_resolver(r) {
                Some(server) => (server.to_string(), ask(server, &c.host, c.record, deadline)),
                None => return Outcome::critical(format!("bad resolver `{r}`")).definitive(),
            },
        };
        let took = began.elapsed();
        let addresses = match answer {
            Ok(a) => a,
            Err(e) => {
                return Outcome::critical(format!("{} does not resolve via {via}: {e}", c.host))
                    .with("host", &c.host)
                    .with("resolver", &via)
            }
        };
        let out = |o: Outcome| {
            o.with("host", &c.host)
                .with("resolver", &via)
                .with("addresses", &addresses)
                .with("latency_ms", millis(took))
        };
        if addresses.is_empty() {
            return out(Outcome::critical(format!(
                "{} has no {:?} record via {via}",
                c.host, c.record
            )));
        }
        if !c.expect.is_empty() && !addresses.iter().any(|a| c.expect.contains(a)) {
            let got: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            let want: Vec<String> = c.expect.iter().map(IpAddr::to_string).collect();
            return out(Outcome::critical(format!(
                "{} resolves to {}, expected {}",
                c.host,
                got.join(", "),
                want.join(" or ")
            )));
        }
        let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        out(Outcome::healthy(format!(
            "{} -> {}",
            c.host,
            list.join(", ")
        )))
    }
}

/// getaddrinfo: /etc/hosts, nsswitch and the configured name servers.
fn system(host: &str) -> Result<Vec<IpAddr>, String> {
    let mut ips: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .map(|a| a.ip())
        .collect();
    ips.dedup();
    Ok(ips)
}

/// Asks `server` for `host`'s `record`s.
fn ask(
    server: SocketAddr,
    host: &str,
    record: DnsRecord,
    deadline: Instant,
) -> Result<Vec<IpAddr>, String> {
    let name = Name::from_ascii(if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    })
    .map_err(|e| format!("`{host}` is not a DNS name: {e}"))?;
    let rtype = match record {
        DnsRecord::A => RecordType::A,
        DnsRecord::Aaaa => RecordType::AAAA,
    };
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, rtype));
    let id = query.metadata.id;
    let bytes = query.to_vec().map_err(|e| e.to_string())?;

    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap();
    let socket = UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket.connect(server).map_err(|e| e.to_string())?;
    socket
        .send(&bytes)
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let reply = loop {
        socket
            .set_read_timeout(Some(remaining(deadline)))
            .map_err(|e| e.to_string())?;
        let n = socket.recv(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer from {server} (timed out)")
            }
            std::io::ErrorKind::ConnectionRefused => {
                format!("{server} refused the query (no DNS server there)")
            }
            _ => format!("{server}: {e}"),
        })?;
        let m = Message::from_vec(&buf[..n])
            .map_err(|e| format!("{server} sent a malformed answer: {e}"))?;
        if m.metadata.id == id {
            break m;
        }
    };
    let reply = if reply.metadata.truncation {
        ask_tcp(server, &bytes, deadline)?
    } else {
        reply
    };
    match reply.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Err(format!("{server} says the name does not exist (NXDOMAIN)"))
        }
        other => return Err(format!("{server} answered {other}")),
    }
    Ok(reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect())
}

/// The same query over TCP (length-prefixed), for answers too big for UDP.
fn ask_tcp(server: SocketAddr, query: &[u8], deadline: Instant) -> Result<Message, String> {
    let mut s = TcpStream::connect_timeout(&server, remaining(deadline))
        .map_err(|e| format!("{server} (TCP): {e}"))?;
    s.set_read_timeout(Some(remaining(deadline)))
        .map_err(|e| e.to_string())?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)
        .map_err(|e| format!("{server} (TCP): {e}"))?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("{server} (TCP): {e}"))?;
    Message::from_vec(&body).map_err(|e| format!("{server} sent a malformed answer: {e}"))
}
