//! `webhook`: the message as JSON (its fields plus `text` and `idempotency_key`),
//! POSTed to the URL.

use std::time::Duration;

use drydock_domain::config::notify::WebhookChannel;

use crate::channel::{Channel, Delivery, HttpPost};
use crate::message::Message;

pub(super) struct Webhook(pub WebhookChannel);

impl Channel for Webhook {
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery {
        let mut body = serde_json::to_value(message).unwrap_or_default();
        body["text"] = message.text().into();
        body["idempotency_key"] = key.into();
        HttpPost {
            url: self.0.url.expose(),
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
        .send(key, timeout)
    }
}
