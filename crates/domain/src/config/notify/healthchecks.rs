//! `kind = "healthchecks"`: a healthchecks.io-style dead man's switch. Its ping URL is
//! pinged as a run starts (`/start`), succeeds (the URL itself) and fails (`/fail`), so
//! the service also notices when nothing ran at all. It gets every run by default, not
//! only state changes: the service tracks the state itself.

use serde::{Deserialize, Serialize};

use super::spec::{ChannelSpec, ChannelValidation, NotifyOn};
use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthchecksChannel {
    /// The check's ping URL (`${env:HC_PING_URL}`, e.g. `https://hc-ping.com/UUID`).
    pub url: Secret,
}

impl ChannelSpec for HealthchecksChannel {
    fn default_on(&self) -> &'static [NotifyOn] {
        &[NotifyOn::Failure, NotifyOn::Success, NotifyOn::Start]
    }

    fn secrets(&self) -> Vec<&Secret> {
        vec![&self.url]
    }

    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>) {
        v.secret_url("url", &mut self.url);
    }
}
