//! The one list of channel kinds: `channel_kinds!` writes [`ChannelConfig`] (one variant
//! per kind, serialized with the name as `kind`), [`CHANNEL_KINDS`], the match from an
//! entry to its [`ChannelSpec`] and the parse of `kind = "..."`, so a kind named in a
//! message is always one the parse accepts.

use serde::Serialize;

use super::email::EmailChannel;
use super::healthchecks::HealthchecksChannel;
use super::ntfy::NtfyChannel;
use super::slack::SlackChannel;
use super::spec::ChannelSpec;
use super::webhook::WebhookChannel;
use crate::config::errors::Collector;
use crate::spans::KeyPath;

macro_rules! channel_kinds {
    ($($variant:ident($keys:ty) = $name:literal),+ $(,)?) => {
        /// Where one `[[notify]]` entry sends, per kind.
        #[derive(Debug, Clone, Serialize)]
        #[serde(tag = "kind")]
        pub enum ChannelConfig {
            $(#[serde(rename = $name)] $variant($keys),)+
        }

        /// The kinds, as written in `kind = "..."`, in the order messages list them.
        pub const CHANNEL_KINDS: &[&str] = &[$($name,)+];

        impl ChannelConfig {
            /// The kind's name (`webhook`).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ChannelConfig::$variant(_) => $name,)+
                }
            }

            /// The entry's keys, through its kind's [`ChannelSpec`].
            pub fn spec(&self) -> &dyn ChannelSpec {
                match self {
                    $(ChannelConfig::$variant(keys) => keys,)+
                }
            }

            pub(super) fn spec_mut(&mut self) -> &mut dyn ChannelSpec {
                match self {
                    $(ChannelConfig::$variant(keys) => keys,)+
                }
            }
        }

        /// The kind `name`'s keys from `rest`; `None` when no kind has that name,
        /// `Some(None)` when its keys did not parse (the error is recorded).
        pub(super) fn parse_kind(
            name: &str,
            at: &KeyPath,
            rest: toml::Value,
            c: &mut Collector<'_>,
        ) -> Option<Option<ChannelConfig>> {
            match name {
                $($name => Some(c.section(at, rest).map(ChannelConfig::$variant)),)+
                _ => None,
            }
        }
    };
}

channel_kinds! {
    Webhook(WebhookChannel) = "webhook",
    Slack(SlackChannel) = "slack",
    Ntfy(NtfyChannel) = "ntfy",
    Healthchecks(HealthchecksChannel) = "healthchecks",
    Email(EmailChannel) = "email",
}
