//! `oidc`: the issuer's discovery document is served, names the same issuer, and has
//! the authorization, token and JWKS endpoints; the JWKS holds keys.

use std::time::Instant;

use drydock_domain::config::health::OidcCheck;

use crate::{millis, net, Check, Outcome, Status, Verdict};

pub struct Oidc {
    config: OidcCheck,
}

impl Oidc {
    pub fn new(config: OidcCheck) -> Self {
        Oidc { config }
    }
}

impl Check for Oidc {
    fn run(&self, deadline: Instant) -> Outcome {
        let issuer = self.config.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let anchors = match net::trust_anchors(self.config.ca_file.as_deref()) {
            Ok(a) => a,
            Err(e) => return Outcome::critical(e).definitive(),
        };
        let agent = net::agent(&anchors, deadline);
        let began = Instant::now();
        let mut v = Verdict::new();
        v.detail("discovery_url", &url);
        let doc = match net::get_json(&agent, &url) {
            Ok((200, doc)) => doc,
            Ok((status, _)) => {
                v.transient(format!("{url} answered {status}"));
                return v.finish("");
            }
            Err(e) => {
                v.transient(e);
                return v.finish("");
            }
        };
        let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match text("issuer") {
            Some(i) if i.trim_end_matches('/') == issuer => {}
            Some(i) => v.problem(
                Status::Critical,
                format!("the document names issuer `{i}`, not `{issuer}`"),
            ),
            None => v.problem(Status::Critical, "the document has no `issuer`"),
        }
        for key in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            match text(key) {
                Some(u) => v.detail(key, u),
                None => v.problem(Status::Critical, format!("the document has no `{key}`")),
            }
        }
        if let Some(jwks) = text("jwks_uri") {
            match net::get_json(&agent, &jwks) {
                Ok((200, keys)) => {
                    let n = keys
                        .get("keys")
                        .and_then(|k| k.as_array())
                        .map_or(0, Vec::len);
                    v.detail("jwks_keys", n);
                    if n == 0 {
                        v.problem(
                            Status::Critical,
                            "the JWKS holds no keys; tokens cannot be verified",
                        );
                    }
                }
                Ok((status, _)) => v.transient(format!("{jwks} answered {status}")),
                Err(e) => v.transient(e),
            }
        }
        let took = began.elapsed();
        v.detail("latency_ms", millis(took));
        v.finish(format!("discovery document ok in {} ms", millis(took)))
    }
}
