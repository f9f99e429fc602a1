//! `drydock validate`'s look past the file: data paths that do not exist and database
//! servers that do not answer. These are warnings, never errors: a config is written
//! before its services exist, and validation runs offline (in CI, on a laptop), where
//! `offline` skips the network part.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use drydock_domain::config::Config;

/// How long a server has to accept a connection before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

/// One line per problem, naming the source, what is wrong and what to check.
pub fn warnings(config: &Config, offline: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (service, service_config, source) in config.sources() {
        let label = format!("{service}/{}", source.name());
        // The kind's traits say what to look at, so a new kind needs nothing here.
        let spec = source.spec();
        for path in spec.data_paths().into_iter().filter(|p| !p.exists()) {
            out.push(format!(
                "{label}: {} does not exist; a backup will fail until it does (check `path`)",
                path.display()
            ));
        }
        // A container's database is dumped from inside the container, where the URL's
        // host means something else: only host-run servers are tried from here.
        if offline || service_config.runtime.is_container() {
            continue;
        }
        let default_port = source.kind_spec().default_port().unwrap_or(0);
        let Some(address) = spec.url().and_then(|u| host_port(u, default_port)) else {
            continue;
        };
        if let Err(why) = reach(&address) {
            out.push(format!(
                "{label}: cannot reach {address} ({why}); start the server or fix `url` (`--offline` skips this check)"
            ));
        }
    }
    out
}

fn host_port(url: &str, default_port: u16) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(format!("{host}:{}", u.port().unwrap_or(default_port)))
}

fn reach(address: &str) -> Result<(), String> {
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, REACH_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
