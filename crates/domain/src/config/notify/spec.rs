//! What every channel kind shares: the events ([`NotifyOn`]), the trait a kind's config
//! struct implements ([`ChannelSpec`]) and the checks it calls at load
//! ([`ChannelValidation`]).

use serde::{Deserialize, Serialize};

use crate::config::errors::Collector;
use crate::config::fields::resolve;
use crate::secret::Secret;
use crate::spans::KeyPath;

/// What a channel is told about (`on = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// Something that was fine started failing (and, at most daily, that it still fails).
    Failure,
    /// Something that was failing works again.
    Recovery,
    /// Every run that did not fail.
    Success,
    /// Every run, as it starts.
    Start,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 4] = [
        NotifyOn::Failure,
        NotifyOn::Recovery,
        NotifyOn::Success,
        NotifyOn::Start,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Failure => "failure",
            NotifyOn::Recovery => "recovery",
            NotifyOn::Success => "success",
            NotifyOn::Start => "start",
        }
    }
}

/// The events a channel gets when its `on` is not given: state changes only.
pub const DEFAULT_ON: &[NotifyOn] = &[NotifyOn::Failure, NotifyOn::Recovery];

/// What a channel kind's config struct tells the loader and the senders.
pub trait ChannelSpec {
    /// The events the channel gets when `on` is not given.
    fn default_on(&self) -> &'static [NotifyOn] {
        DEFAULT_ON
    }

    /// Every secret the channel holds (resolved at load): what must never appear in
    /// anything drydock shows or sends elsewhere.
    fn secrets(&self) -> Vec<&Secret>;

    /// The kind's checks at load, after its keys parsed; secrets are resolved here.
    fn validate(&mut self, v: &mut ChannelValidation<'_, '_>);
}

/// The checks a kind's [`ChannelSpec::validate`] runs, each error pushed with the
/// entry's key path (`notify[0].url`) and line.
pub struct ChannelValidation<'v, 'a> {
    pub(super) collector: &'v mut Collector<'a>,
    pub(super) at: KeyPath,
}

impl ChannelValidation<'_, '_> {
    /// A problem with the entry's `key`.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.collector.push(&self.at.key(key), message);
    }

    /// Resolves the secret at `key` (a literal is refused); true when it resolved.
    pub fn secret(&mut self, key: &str, secret: &mut Secret) -> bool {
        let before = self.collector.errors.len();
        resolve(self.collector, &self.at.key(key), secret);
        self.collector.errors.len() == before
    }

    /// Resolves the secret at `key` and checks that its value is an http(s) URL with a
    /// host. The message never repeats the value: it is the secret.
    pub fn secret_url(&mut self, key: &str, secret: &mut Secret) {
        if !self.secret(key, secret) {
            return;
        }
        if let Err(why) = check_http_url(secret.expose()) {
            self.push(
                key,
                format!(
                    "the value of {} is not a usable URL: {why}",
                    secret.reference()
                ),
            );
        }
    }

    /// Checks a plain (non-secret) http(s) URL, which may be shown: no credentials in it.
    pub fn plain_url(&mut self, key: &str, raw: &str) {
        let problem = match url::Url::parse(raw) {
            Err(e) => Some(format!("`{raw}` is not a valid URL ({e})")),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(
                "the URL holds credentials; remove them (put a token in a secret reference)"
                    .to_string(),
            ),
            Ok(_) => check_http_url(raw).err(),
        };
        if let Some(message) = problem {
            self.push(key, message);
        }
    }
}

/// `Ok` for an `http://` or `https://` URL with a host; else why not, without the URL.
fn check_http_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{e}; expected https://HOST/..."))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not HTTP; expected https://HOST/...",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host; expected https://HOST/...".into());
    }
    Ok(())
}
