//! `slack`: an incoming webhook's `{"text": ...}`, the title in bold and the body as a
//! code block (Slack's mrkdwn would otherwise read `*` and `_` in source names).

use std::time::Duration;

use drydock_domain::config::notify::SlackChannel;

use crate::channel::{Channel, Delivery, HttpPost};
use crate::message::Message;

pub(super) struct Slack(pub SlackChannel);

impl Channel for Slack {
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery {
        let text = message.text();
        let body = text.split_once('\n').map_or("", |(_, body)| body).trim();
        let text = format!("*{}*\n```\n{body}\n```", message.title);
        HttpPost {
            url: self.0.url.expose(),
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::json!({ "text": text }).to_string(),
        }
        .send(key, timeout)
    }
}
