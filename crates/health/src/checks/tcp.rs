//! `tcp`: something accepts connections at `HOST:PORT`.

use std::time::Instant;

use drydock_domain::config::health::{split_host_port, TcpCheck};

use crate::{millis, net, Check, Outcome};

pub struct Tcp {
    config: TcpCheck,
}

impl Tcp {
    pub fn new(config: TcpCheck) -> Self {
        Tcp { config }
    }
}

impl Check for Tcp {
    fn run(&self, deadline: Instant) -> Outcome {
        let Some((host, port)) = split_host_port(&self.config.address) else {
            return Outcome::critical(format!("`{}` is not HOST:PORT", self.config.address))
                .definitive();
        };
        let began = Instant::now();
        match net::connect(&host, port, deadline) {
            Ok(stream) => {
                let took = began.elapsed();
                Outcome::healthy(format!(
                    "{} accepts connections ({} ms)",
                    self.config.address,
                    millis(took)
                ))
                .with("address", &self.config.address)
                .with("peer", stream.peer_addr().ok().map(|a| a.to_string()))
                .with("connect_ms", millis(took))
            }
            Err(e) => Outcome::critical(e).with("address", &self.config.address),
        }
    }
}
