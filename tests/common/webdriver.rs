//! The browser tests' WebDriver session: fantoccini drives chromedriver; this adds what the
//! tests wait for (an element displayed, a text, a URL) with failure messages that show the
//! page, and ends the session when a failing test unwinds.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

pub use fantoccini::elements::Element;

/// How long `wait_*` keep polling before they give up.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// One browser session. Dropping it ends the session, so the browser goes away even when a
/// test fails half-way.
pub struct WebDriver {
    client: Client,
    driver: String,
    session: String,
    ended: bool,
}

/// chromedriver's console log (`POST /session/{id}/se/log`), which W3C WebDriver lacks.
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

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

impl WebDriver {
    /// Starts a session on the chromedriver at `driver` (e.g. `http://127.0.0.1:9515`).
    pub async fn start(driver: &str, capabilities: Value) -> Result<Self> {
        let Value::Object(capabilities) = capabilities else {
            return Err(anyhow!("capabilities are a JSON object"));
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(driver)
            .await
            .context("chromedriver did not start a session")?;
        let session = client
            .session_id()
            .await?
            .ok_or_else(|| anyhow!("no session id from chromedriver"))?;
        Ok(WebDriver {
            client,
            driver: driver.to_string(),
            session,
            ended: false,
        })
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        Ok(self.client.goto(url).await?)
    }

    pub async fn url(&self) -> Result<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        Ok(self.client.set_window_size(width, height).await?)
    }

    /// Runs `script` in the page (a function body; `arguments` holds `args`).
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        let args = match args {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            one => vec![one],
        };
        Ok(self.client.execute(script, args).await?)
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        Ok(self.client.find_all(Locator::Css(css)).await?)
    }

    pub async fn find(&self, css: &str) -> Result<Element> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no element matches {css}"))
    }

    pub async fn click(&self, element: &Element) -> Result<()> {
        Ok(element.click().await?)
    }

    /// Clears the input and types `text` into it, key by key.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let element = self.wait_for(css).await?;
        element.clear().await?;
        Ok(element.send_keys(text).await?)
    }

    pub async fn text(&self, element: &Element) -> Result<String> {
        Ok(element.text().await?)
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        Ok(element.attr(name).await?)
    }

    /// A DOM property, e.g. an input's current `value` (attributes hold only the initial one).
    pub async fn property(&self, element: &Element, name: &str) -> Result<Value> {
        Ok(element.prop(name).await?.map_or(Value::Null, Value::from))
    }

    pub async fn is_displayed(&self, element: &Element) -> Result<bool> {
        Ok(element.is_displayed().await?)
    }

    /// The page's visible text, for failure messages.
    pub async fn page_text(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(|s| s.chars().take(1500).collect()))
        .unwrap_or_default()
    }

    async fn timed_out(&self, what: &str) -> anyhow::Error {
        let url = self.url().await.unwrap_or_default();
        anyhow!(
            "timed out after {WAIT:?} waiting for {what}\n  at {url}\n  page text:\n{}",
            self.page_text().await
        )
    }

    /// Waits until an element matching `css` is displayed, and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            for element in self.find_all(css).await? {
                // The page may replace the element between the two calls: look again.
                if element.is_displayed().await.unwrap_or(false) {
                    return Ok(element);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Err(self.timed_out(&format!("{css} to be displayed")).await)
    }

    /// Waits until the first displayed element matching `css` contains `needle`; returns its text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            for element in self.find_all(css).await? {
                if let Ok(text) = element.text().await {
                    if text.contains(needle) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Err(self
            .timed_out(&format!(
                "{css} to contain {needle:?} (last seen: {last:?})"
            ))
            .await)
    }

    /// Waits until the page's URL satisfies `check`.
    pub async fn wait_for_url(&self, what: &str, check: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let url = self.url().await?;
            if check(&url) {
                return Ok(url);
            }
            tokio::time::sleep(POLL).await;
        }
        Err(self.timed_out(&format!("the URL to be {what}")).await)
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// The browser console's messages so far (needs `goog:loggingPrefs` in the capabilities).
    pub async fn console_messages(&self) -> Result<Vec<String>> {
        let entries = self.client.issue_cmd(BrowserLog).await?;
        Ok(entries
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or(""),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Ends the session (the browser quits).
    pub async fn quit(mut self) -> Result<()> {
        self.ended = true;
        Ok(self.client.clone().close().await?)
    }
}

impl Drop for WebDriver {
    /// A failing test unwinds without an async context to finish fantoccini's own close: end
    /// the session with a plain blocking HTTP request so chromedriver closes the browser
    /// before the test kills chromedriver.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let Some(authority) = self.driver.strip_prefix("http://") else {
            return;
        };
        let Ok(mut stream) = TcpStream::connect(authority) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {authority}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
    }
}
