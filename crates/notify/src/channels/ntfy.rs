//! `ntfy`: the text POSTed to `server/topic`, with `Title`, `Priority` (failures high,
//! successes low) and `Tags` (an emoji per event) headers.

use std::time::Duration;

use drydock_domain::config::notify::NtfyChannel;

use crate::channel::{Channel, Delivery, HttpPost};
use crate::message::Message;
use crate::outcome::Event;

pub(super) struct Ntfy(pub NtfyChannel);

impl Channel for Ntfy {
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery {
        let (priority, tags) = match message.event {
            Event::Failure => ("high", "rotating_light"),
            Event::Reminder => ("high", "warning"),
            Event::Recovery => ("default", "white_check_mark"),
            Event::Success => ("low", "heavy_check_mark"),
            Event::Start => ("min", "arrow_forward"),
        };
        let url = format!(
            "{}/{}",
            self.0.server.trim_end_matches('/'),
            self.0.topic.expose()
        );
        // Header values must be visible ASCII: ntfy reads RFC 2047 for anything else.
        let title: String = message
            .title
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let mut headers = vec![
            ("Title", title),
            ("Priority", priority.to_string()),
            ("Tags", format!("{tags},drydock,{}", message.event.as_str())),
        ];
        if let Some(token) = &self.0.token {
            headers.push(("Authorization", format!("Bearer {}", token.expose())));
        }
        HttpPost {
            url: &url,
            content_type: "text/plain; charset=utf-8",
            headers,
            body: message.text(),
        }
        .send(key, timeout)
    }
}
