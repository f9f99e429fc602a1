//! The channel kinds, one file each, and [`build`]: the one place a `[[notify]]` entry
//! becomes its [`Channel`]. Adding a kind adds its file, its `mod` line and one match
//! arm here (its config is one file in `domain/src/config/notify/`).

mod email;
mod healthchecks;
mod ntfy;
mod slack;
mod webhook;

use drydock_domain::config::ChannelConfig;

use crate::channel::Channel;

/// The sender of a channel's config.
pub fn build(config: &ChannelConfig) -> Box<dyn Channel> {
    match config {
        ChannelConfig::Webhook(c) => Box::new(webhook::Webhook(c.clone())),
        ChannelConfig::Slack(c) => Box::new(slack::Slack(c.clone())),
        ChannelConfig::Ntfy(c) => Box::new(ntfy::Ntfy(c.clone())),
        ChannelConfig::Healthchecks(c) => Box::new(healthchecks::Healthchecks(c.clone())),
        ChannelConfig::Email(c) => Box::new(email::Email(c.clone())),
    }
}
