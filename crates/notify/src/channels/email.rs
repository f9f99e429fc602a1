//! `email`: a plain-text mail through SMTP (lettre), the title as subject and the
//! idempotency key in the `Message-ID`, so a resend after a crash is the same message
//! to mail clients and filters. Permanent SMTP answers (5xx) are refused at once;
//! connection problems and transient answers (4xx) are retried.

use std::time::Duration;

use drydock_domain::config::notify::{EmailChannel, SmtpTls};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

use crate::channel::{Channel, Delivery};
use crate::message::Message;

pub(super) struct Email(pub EmailChannel);

impl Channel for Email {
    fn send(&self, message: &Message, key: &str, timeout: Duration) -> Delivery {
        let c = &self.0;
        let reject = |error: String| Delivery::Reject { error };
        let mut mail = lettre::Message::builder()
            .subject(message.title.clone())
            .message_id(Some(format!("<{key}@drydock.{}>", message.host)))
            .header(ContentType::TEXT_PLAIN);
        match c.from.parse() {
            Ok(from) => mail = mail.from(from),
            Err(e) => {
                return reject(format!(
                    "the sender `{}` is not an address ({e}); fix `from`",
                    c.from
                ))
            }
        }
        for to in &c.to {
            match to.parse() {
                Ok(to) => mail = mail.to(to),
                Err(e) => {
                    return reject(format!(
                        "the recipient `{to}` is not an address ({e}); fix `to`"
                    ))
                }
            }
        }
        let mail = match mail.body(message.text()) {
            Ok(mail) => mail,
            Err(e) => return reject(format!("the mail cannot be built: {e}")),
        };
        let builder = match c.tls {
            SmtpTls::Starttls => SmtpTransport::starttls_relay(&c.server),
            SmtpTls::Tls => SmtpTransport::relay(&c.server),
            SmtpTls::None => Ok(SmtpTransport::builder_dangerous(&c.server)),
        };
        let mut builder = match builder {
            Ok(b) => b.port(c.port()).timeout(Some(timeout)),
            Err(e) => return reject(format!("SMTP server `{}`: {e}", c.server)),
        };
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        match builder.build().send(&mail) {
            Ok(_) => Delivery::Sent,
            Err(e) if e.is_permanent() => reject(format!(
                "the SMTP server {} refused the mail: {e}; check `from`, `to` and the login",
                c.server
            )),
            Err(e) => Delivery::Retry {
                error: format!("SMTP server {}:{}: {e}", c.server, c.port()),
                after: None,
            },
        }
    }
}
