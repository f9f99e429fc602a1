//! `kind = "webhook"`: a JSON POST of the notification to a URL the operator runs (or a
//! service such as a chat bridge). The URL often carries a token, so it is a secret.

use serde::{Deserialize, Serialize};

use super::spec::{ChannelSpec, ChannelValidation};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// Where the JSON is POSTed (`${env:DRYDOCK_WEBHOOK_URL}`).
    pub url: Secret,
}

impl ChannelSpec for WebhookChannel {
    fn secrets(&self) -> Vec<&Secret> {
        vec![&self.url]
    }

    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>) {
        v.secret_url("url", &mut self.url);
    }
}
