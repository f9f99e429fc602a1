//! `kind = "ntfy"`: a POST to `server/topic` of an ntfy server, with title, priority and
//! tags as headers. Anyone who knows a topic on a public server can read it, so the
//! topic is a secret; so is the optional access token.

use serde::{Deserialize, Serialize};

use super::spec::{ChannelSpec, ChannelValidation};
use crate::secret::Secret;

/// The public ntfy server, when `server` is not given.
pub const NTFY_DEFAULT_SERVER: &str = "https://ntfy.sh";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyChannel {
    /// The server's base URL, without credentials (default `https://ntfy.sh`).
    #[serde(default = "default_server")]
    pub server: String,
    /// The topic (`${env:NTFY_TOPIC}`).
    pub topic: Secret,
    /// An access token sent as `Authorization: Bearer` (servers with access control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

fn default_server() -> String {
    NTFY_DEFAULT_SERVER.to_string()
}

impl ChannelSpec for NtfyChannel {
    fn secrets(&self) -> Vec<&Secret> {
        let mut out = vec![&self.topic];
        out.extend(self.token.as_ref());
        out
    }

    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>) {
        v.plain_url("server", &self.server);
        if v.secret("topic", &mut self.topic) {
            let topic = self.topic.expose();
            let ok = topic.len() <= 64
                && topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                v.push(
                    "topic",
                    format!(
                        "the value of {} is not an ntfy topic: use 1-64 letters, digits, '-' or '_'",
                        self.topic.reference()
                    ),
                );
            }
        }
        if let Some(token) = self.token.as_mut() {
            v.secret("token", token);
        }
    }
}
