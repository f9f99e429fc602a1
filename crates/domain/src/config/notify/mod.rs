//! `[[notify]]`: where `drydock serve` tells people that something failed, recovered,
//! succeeded or started. One file per channel kind (webhook, slack, ntfy, healthchecks,
//! email), each a config struct with `deny_unknown_fields` implementing
//! [`ChannelSpec`] (its secrets, the events it gets by default, its validation);
//! `registry.rs` lists them once in `channel_kinds!`.
//!
//! Every address that lets someone post to a channel (a webhook URL with its token, a
//! ntfy topic, a healthchecks ping URL, an SMTP password) is a [`Secret`](crate::Secret) reference: it
//! is resolved at load and never shown in logs, JSON or errors.
//!
//! **Adding a kind**: write `KIND.rs` here with its struct and [`ChannelSpec`], add its
//! `mod` line below and one line to `channel_kinds!` in `registry.rs`; its sender is one
//! file in the notify crate plus one line in that crate's registry.

mod email;
mod healthchecks;
mod ntfy;
mod parse;
mod registry;
mod slack;
mod spec;
mod webhook;

pub use email::{EmailChannel, SmtpTls};
pub use healthchecks::HealthchecksChannel;
pub use ntfy::{NtfyChannel, NTFY_DEFAULT_SERVER};
pub(super) use parse::parse_notify;
pub use parse::NotifyConfig;
pub use registry::{ChannelConfig, CHANNEL_KINDS};
pub use slack::SlackChannel;
pub use spec::{ChannelSpec, ChannelValidation, NotifyOn, DEFAULT_ON};
pub use webhook::WebhookChannel;

#[cfg(test)]
mod tests;
