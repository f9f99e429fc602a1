//! `kind = "slack"`: a Slack incoming webhook (also what Mattermost and Rocket.Chat
//! accept): a JSON `{"text": ...}` POST. The webhook URL is the credential.

use serde::{Deserialize, Serialize};

use super::spec::{ChannelSpec, ChannelValidation};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    /// The incoming webhook's URL (`${env:SLACK_WEBHOOK_URL}`).
    pub url: Secret,
}

impl ChannelSpec for SlackChannel {
    fn secrets(&self) -> Vec<&Secret> {
        vec![&self.url]
    }

    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>) {
        v.secret_url("url", &mut self.url);
    }
}
