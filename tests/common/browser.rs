//! The harness of the headless-Chromium tests: the cell they set up, picd and chromedriver
//! started on free ports and killed when the test ends (picd's log printed if it failed), a
//! browser session, and the clicks, waits and screenshots the tests share. Included by each
//! browser test with `#[path]`, beside `webdriver.rs`.

// Each browser test uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::webdriver::{WebDriver, WAIT};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const INSTALL_HINT: &str = "run packaging/install-test-deps as root \
     (or: apt-get install -y chromium chromium-driver)";

pub const ADMIN: &str = "owner";
pub const ADMIN_PASSWORD: &str = "quiet harbour lantern 42";
pub const ANSWERS: &str = r#"[admin]
username = "owner"
password = "quiet harbour lantern 42"
[cell]
name = "home"
domain = "home.example"
public_endpoint = "vpn.home.example"
wireguard_port = 51820
subnet_v4 = "10.77.0.0/24"
subnet_v6 = "fd77:77::/64"
[dns]
upstreams = ["127.0.0.1:9", "[::1]:9"]
split_horizon = true
"#;

/// Kills what the test started, also when it fails; unless the test passed, prints picd's log.
pub struct Processes {
    pub children: Vec<(&'static str, Child)>,
    pub picd_log: PathBuf,
    /// picd's state directory (set by `start_browser_cell`).
    pub state_dir: PathBuf,
    pub passed: bool,
    /// Folders removed once the children are gone.
    dirs: Vec<tempfile::TempDir>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.passed {
            let log = std::fs::read_to_string(&self.picd_log).unwrap_or_default();
            eprintln!("---- picd log ----\n{log}");
        }
    }
}

pub use crate::ports::free_port;

/// The picd binary with no inherited `PICD_*` variable, and no WireGuard interface or
/// nftables table in the machine's own namespace (the tests run as root: a firewall rule
/// made through the UI must not reach the host): the desired state is still recorded, which
/// is what the UI shows.
pub fn picd_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_picd"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PICD_") {
            command.env_remove(key);
        }
    }
    command.env("PICD_WIREGUARD_MODE", "off");
    command.env("PICD_ROUTING_MODE", "off");
    command.env("PICD_DNS_LISTEN", "");
    command.env("PICD_CADDY_ADMIN", "127.0.0.1:1");
    command
}

/// Polls `url` until it answers with success, or the child exits, or time runs out.
pub async fn wait_until_up(name: &str, url: &str, child: &mut Child) -> Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited early with {status}");
        }
        if let Ok(response) = http.get(url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} did not answer at {url} within 30 s")
}

/// Completes setup from an answers file (no wizard), then starts picd and chromedriver on
/// free ports; returns the guard and both base URLs once each answers.
pub async fn launch(state_dir: &Path, picd_log: &Path) -> Result<(Processes, String, String)> {
    launch_with(state_dir, picd_log, &[]).await
}

/// `launch`, with these variables in picd's environment.
pub async fn launch_with(
    state_dir: &Path,
    picd_log: &Path,
    env: &[(&str, &str)],
) -> Result<(Processes, String, String)> {
    let answers = state_dir.with_extension("answers.toml");
    std::fs::write(&answers, ANSWERS)?;
    let setup = picd_command()
        .arg("setup")
        .arg("--answers")
        .arg(&answers)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .context("running picd setup --answers")?;
    ensure!(
        setup.status.success(),
        "picd setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    launch_unset(state_dir, picd_log, env).await
}

/// Starts picd on `state_dir` as it is (a fresh one: the wizard pending) and chromedriver on
/// free ports; returns the guard and both base URLs once each answers.
pub async fn launch_unset(
    state_dir: &Path,
    picd_log: &Path,
    env: &[(&str, &str)],
) -> Result<(Processes, String, String)> {
    let mut processes = Processes {
        children: Vec::new(),
        picd_log: picd_log.to_path_buf(),
        state_dir: state_dir.to_path_buf(),
        passed: false,
        dirs: Vec::new(),
    };
    let picd_port = free_port();
    let picd = picd_command()
        .args(["serve", "--state-dir"])
        .arg(state_dir)
        .args(["--listen", &format!("127.0.0.1:{picd_port}")])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(picd_log)?)
        .spawn()
        .context("starting picd")?;
    processes.children.push(("picd", picd));
    let driver_port = free_port();
    let chromedriver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {CHROMEDRIVER}: {INSTALL_HINT}"))?;
    processes.children.push(("chromedriver", chromedriver));

    let base = format!("http://127.0.0.1:{picd_port}");
    let driver = format!("http://127.0.0.1:{driver_port}");
    for (name, child) in processes.children.iter_mut() {
        let url = match *name {
            "picd" => format!("{base}/health"),
            _ => format!("{driver}/status"),
        };
        wait_until_up(name, &url, child).await?;
    }
    Ok((processes, base, driver))
}

pub async fn open_browser(driver: &str, profile_dir: &Path) -> Result<WebDriver> {
    WebDriver::start(
        driver,
        json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile_dir.display()),
                    "--window-size=1280,900",
                ],
            },
            // Console messages, so CSP refusals and script errors fail the test.
            "goog:loggingPrefs": { "browser": "ALL" },
        }),
    )
    .await
    .with_context(|| format!("starting a Chromium session: {INSTALL_HINT}"))
}

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

pub async fn shot(browser: &WebDriver, name: &str) -> Result<()> {
    let path = screenshot_dir().join(format!("{name}.png"));
    browser.screenshot(&path).await?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// Clicks the element matching `css` once it is displayed. Lists refresh themselves, so an
/// element found a moment ago may have been replaced: then it is looked up again.
pub async fn click(browser: &WebDriver, css: &str) -> Result<()> {
    let mut attempts = 3;
    loop {
        let element = browser.wait_for(css).await?;
        // Away from the sticky header, which would take a click at the top edge.
        browser
            .execute(
                "document.querySelector(arguments[0])?.scrollIntoView({ block: 'center' });",
                json!([css]),
            )
            .await?;
        match browser.click(&element).await {
            Err(e) if attempts > 1 && e.to_string().contains("stale element") => attempts -= 1,
            other => return other,
        }
    }
}

/// A screenshot of the whole page at `width`: the window grows to the page's height for it,
/// then returns to the desktop size.
pub async fn full_page_shot(browser: &WebDriver, name: &str, width: u32) -> Result<()> {
    browser.set_window_size(width, 900).await?;
    let height = browser
        .execute("return document.documentElement.scrollHeight;", json!([]))
        .await?
        .as_u64()
        .unwrap_or(900);
    browser
        .set_window_size(width, (height as u32 + 140).clamp(900, 6000))
        .await?;
    browser.execute("window.scrollTo(0, 0);", json!([])).await?;
    // The resize re-lays the page out; give it a frame before the picture.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shot(browser, name).await?;
    browser.set_window_size(1280, 900).await
}

/// Polls a script (a function body returning a value) until it returns something truthy;
/// returns that value.
/// Waits until nothing on the page matches `css`.
pub async fn wait_gone(browser: &WebDriver, css: &str, what: &str) -> Result<()> {
    let script = "return document.querySelector(arguments[0]) === null;";
    wait_js(browser, what, script, json!([css])).await.map(drop)
}

pub async fn wait_js(browser: &WebDriver, what: &str, script: &str, args: Value) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = browser.execute(script, args.clone()).await?;
        let truthy = match &last {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "timed out waiting for {what} (last: {last})\n  page text:\n{}",
        browser.page_text().await
    )
}

pub async fn text_of(browser: &WebDriver, css: &str) -> Result<String> {
    let mut attempts = 3;
    loop {
        let element = browser.wait_for(css).await?;
        match browser.text(&element).await {
            Err(e) if attempts > 1 && e.to_string().contains("stale element") => attempts -= 1,
            other => return other,
        }
    }
}

/// One test's picd (set up from the answers file, these variables in its environment) and
/// Chromium, in folders the guard keeps until it drops. Bind the browser after the guard, so
/// it drops first: the session ends before chromedriver dies.
pub async fn start_browser_cell(env: &[(&str, &str)]) -> Result<(Processes, String, WebDriver)> {
    let root = tempfile::tempdir()?;
    let profile = tempfile::tempdir()?;
    let state_dir = root.path().join("state");
    let (mut processes, base, driver) =
        launch_with(&state_dir, &root.path().join("picd.log"), env).await?;
    let browser = open_browser(&driver, profile.path()).await?;
    processes.state_dir = state_dir;
    processes.dirs = vec![profile, root];
    Ok((processes, base, browser))
}

/// Signs the admin in through the login page and waits for the admin app.
pub async fn admin_app(browser: &WebDriver, base: &str) -> Result<()> {
    log_in(browser, base, ADMIN, ADMIN_PASSWORD).await?;
    let app = format!("{base}/#");
    browser
        .wait_for_url("the admin app", |u| u.starts_with(&app))
        .await
        .map(drop)
}

pub async fn log_in(browser: &WebDriver, base: &str, user: &str, password: &str) -> Result<()> {
    browser.goto(&format!("{base}/login")).await?;
    browser.fill("#username", user).await?;
    browser.fill("#password", password).await?;
    click(browser, "#login-submit").await
}

/// No script errors and no CSP refusals. Failed requests the test provoked on purpose (the
/// refused name, key, certificate and the used invitation) are logged by Chromium too and
/// are expected.
pub async fn check_console(browser: &WebDriver) -> Result<()> {
    let problems: Vec<String> = browser
        .console_messages()
        .await?
        .into_iter()
        .filter(|m| m.starts_with("SEVERE") || m.contains("Content Security Policy"))
        .filter(|m| !m.contains("Failed to load resource"))
        .collect();
    ensure!(
        problems.is_empty(),
        "browser console errors:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// The API with an admin session of the test's own (and its CSRF token, for writes): what
/// a browser test reads to check what the page stored.
pub struct AdminApi {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl AdminApi {
    pub async fn log_in(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder().cookie_store(true).build()?;
        let resp = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
            .send()
            .await?;
        ensure!(resp.status().is_success(), "API login: {}", resp.status());
        let login: Value = resp.json().await?;
        let csrf = login["csrf_token"]
            .as_str()
            .with_context(|| format!("a CSRF token in {login}"))?
            .to_string();
        Ok(AdminApi {
            http,
            base: base.to_string(),
            csrf,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Ok(resp.json().await?)
    }

    /// The array `key` of what `path` answers.
    pub async fn list(&self, path: &str, key: &str) -> Result<Vec<Value>> {
        let body = self.get(path).await?;
        body[key]
            .as_array()
            .cloned()
            .with_context(|| format!("{key} in {body}"))
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await?;
        ensure!(resp.status().is_success(), "POST {path}: {}", resp.status());
        Ok(resp.json().await?)
    }

    /// Any call, answered with its status and JSON body (Null when there is none), whatever
    /// the status: what a test reads to check a refusal, or what a change left behind.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = request.header("X-CSRF-Token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}

/// Fails the test, naming the install step, when Chromium or chromedriver is missing.
pub fn require_browser() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing; the browser test needs Chromium and chromedriver: {INSTALL_HINT}"
        );
    }
}
