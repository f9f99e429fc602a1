//! `healthchecks`: pings the check's URL: `/start` as a run starts, the URL itself for
//! a success or recovery, `/fail` for a failure or reminder; the text goes in the body
//! (healthchecks.io shows it as the ping's log).

use std::time::Duration;

use drydock_domain::config::notify::HealthchecksChannel;

use crate::channel::{Channel, Delivery, HttpPost};
use crate::message::Message;
use crate::outcome::Event;

pub(super) struct Healthchecks(pub HealthchecksChannel);

impl Channel for Healthchecks {
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery {
        let suffix = match message.event {
            Event::Start => "/start",
            Event::Success | Event::Recovery => "",
            Event::Failure | Event::Reminder => "/fail",
        };
        let url = format!("{}{suffix}", self.0.url.expose().trim_end_matches('/'));
        HttpPost {
            url: &url,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: message.text(),
        }
        .send(key, timeout)
    }

    fn every_run(&self) -> bool {
        true
    }
}
