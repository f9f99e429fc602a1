//! A real headless browser for tests: Debian's `chromium` driven through its
//! `chromedriver` (package `chromium-driver`) with [`fantoccini`]. [`Browser::start`]
//! runs chromedriver on a free port; [`Browser::client`] opens a headless session
//! whose console messages are kept, so [`console_errors`] can assert a page logged
//! none. Each session gets its own temporary profile.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// A chromedriver process; stopped on drop (with the browsers it started).
pub struct Browser {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and waits until it listens.
    pub fn start() -> Browser {
        let driver = crate::program("chromedriver");
        let port = crate::free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let up = crate::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "chromedriver did not listen on {port} within 20 s");
        Browser {
            child,
            port,
            profile: tempfile::tempdir().expect("browser profile dir"),
        }
    }

    /// A new headless session at `width` x `height` pixels.
    pub async fn client(&self, width: u32, height: u32) -> Client {
        let chromium = crate::program("chromium");
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // Tests run as root in containers, where the sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromedriver session")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver's (non-standard) log endpoint: the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }

    fn is_new_session(&self) -> bool {
        false
    }

    fn is_legacy(&self) -> bool {
        false
    }
}

/// Every console message at level SEVERE (errors, failed loads, CSP violations) since
/// the last call, as `LEVEL message`; also every message when `all` is set.
pub async fn console_messages(client: &Client, all: bool) -> Vec<String> {
    let log = client
        .issue_cmd(BrowserLog)
        .await
        .expect("chromedriver's browser log");
    log.as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| all || e["level"] == "SEVERE")
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The console errors since the last call (see [`console_messages`]).
pub async fn console_errors(client: &Client) -> Vec<String> {
    console_messages(client, false).await
}
