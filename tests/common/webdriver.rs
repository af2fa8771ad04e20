//! A small client for the W3C WebDriver protocol (chromedriver), over reqwest: enough to load
//! pages, find elements by CSS, type, click, wait for text and take screenshots.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `wait_*` keep polling before they give up.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// One browser session. Dropping it ends the session, so the browser goes away even when a
/// test fails half-way.
pub struct WebDriver {
    http: reqwest::Client,
    driver: String,
    session: String,
    ended: bool,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl WebDriver {
    /// Starts a session on the chromedriver at `driver` (e.g. `http://127.0.0.1:9515`).
    pub async fn start(driver: &str, capabilities: Value) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let answer: Value = http
            .post(format!("{driver}/session"))
            .json(&body)
            .send()
            .await
            .context("chromedriver did not answer")?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session from chromedriver: {answer}"))?
            .to_string();
        Ok(WebDriver {
            http,
            driver: driver.to_string(),
            session,
            ended: false,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .with_context(|| format!("{method} {path}"))?;
        if !status.is_success() {
            bail!(
                "{method} {path}: {} ({})",
                answer["value"]["error"],
                answer["value"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
        Ok(answer["value"].clone())
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn url(&self) -> Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .map(drop)
    }

    /// Runs `script` in the page (a function body; `arguments` holds `args`).
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn find(&self, css: &str) -> Result<Element> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no element matches {css}"))
    }

    pub async fn click(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Clears the input and types `text` into it, key by key.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let element = self.wait_for(css).await?;
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await?;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    pub async fn text(&self, element: &Element) -> Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        let value = self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// A DOM property, e.g. an input's current `value` (attributes hold only the initial one).
    pub async fn property(&self, element: &Element, name: &str) -> Result<serde_json::Value> {
        self.get(&format!("/element/{}/property/{name}", element.0))
            .await
    }

    pub async fn is_displayed(&self, element: &Element) -> Result<bool> {
        Ok(self
            .get(&format!("/element/{}/displayed", element.0))
            .await?
            .as_bool()
            .unwrap_or(false))
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
                if self.is_displayed(&element).await.unwrap_or(false) {
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
                if let Ok(text) = self.text(&element).await {
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
        let encoded = self.get("/screenshot").await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// The browser console's messages so far (chromedriver's log endpoint; needs
    /// `goog:loggingPrefs` in the capabilities).
    pub async fn console_messages(&self) -> Result<Vec<String>> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await?;
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
        self.call(reqwest::Method::DELETE, "", None).await.map(drop)
    }
}

impl Drop for WebDriver {
    /// A failing test unwinds without an async context: end the session with a plain blocking
    /// HTTP request so chromedriver closes the browser before the test kills chromedriver.
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
