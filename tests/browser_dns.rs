//! The DNS page in a real headless Chromium: an admin picks the cell's zone, adds an A record
//! through the form (after a refused one whose error shows next to its input), finds it with
//! the search box, edits it, imports a zone file with one bad line (the good one is kept, the
//! bad one listed with its line number), and deletes a record after confirming. Screenshots
//! land in target/screenshots/dns.png and dns-mobile.png.

#[path = "common/webdriver.rs"]
mod webdriver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use webdriver::{WebDriver, WAIT};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "run packaging/install-test-deps as root \
     (or: apt-get install -y chromium chromium-driver)";

const ADMIN: &str = "owner";
const ADMIN_PASSWORD: &str = "quiet harbour lantern 42";
const ANSWERS: &str = r#"[admin]
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
upstreams = ["9.9.9.9", "2620:fe::fe"]
split_horizon = true
"#;

const ZONE: &str = "home.example.";
/// Added through the form.
const HOST: &str = "files";
const HOST_IP: &str = "10.77.0.20";
/// Not an IPv4 address: the API's message must appear next to the data input.
const BAD_DATA: &str = "not-an-address";
/// A zone file with one good and one bad line.
const IMPORT: &str = "imported 300 IN A 10.77.0.31\nbroken 300 IN A 10.77.0.999\n";

/// Kills what the test started, also when it fails; unless the test passed, prints picd's log.
struct Processes {
    children: Vec<(&'static str, Child)>,
    picd_log: PathBuf,
    passed: bool,
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// The picd binary with no inherited `PICD_*` variable, and no WireGuard interface in the
/// machine's own namespace: the desired state is still recorded, which is what the UI shows.
fn picd_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_picd"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PICD_") {
            command.env_remove(key);
        }
    }
    command.env("PICD_WIREGUARD_MODE", "off");
    command.env("PICD_DNS_LISTEN", "");
    command.env("PICD_CADDY_ADMIN", "127.0.0.1:1");
    command
}

/// Polls `url` until it answers with success, or the child exits, or time runs out.
async fn wait_until_up(name: &str, url: &str, child: &mut Child) -> Result<()> {
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
async fn launch(state_dir: &Path, picd_log: &Path) -> Result<(Processes, String, String)> {
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

    let mut processes = Processes {
        children: Vec::new(),
        picd_log: picd_log.to_path_buf(),
        passed: false,
    };
    let picd_port = free_port();
    let picd = picd_command()
        .args(["serve", "--state-dir"])
        .arg(state_dir)
        .args(["--listen", &format!("127.0.0.1:{picd_port}")])
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

async fn open_browser(driver: &str, profile_dir: &Path) -> Result<WebDriver> {
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

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

async fn shot(browser: &WebDriver, name: &str) -> Result<()> {
    let path = screenshot_dir().join(format!("{name}.png"));
    browser.screenshot(&path).await?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// Clicks the element matching `css` once it is displayed. Lists refresh themselves, so an
/// element found a moment ago may have been replaced: then it is looked up again.
async fn click(browser: &WebDriver, css: &str) -> Result<()> {
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
async fn full_page_shot(browser: &WebDriver, name: &str, width: u32) -> Result<()> {
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
async fn wait_js(browser: &WebDriver, what: &str, script: &str, args: Value) -> Result<Value> {
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

async fn text_of(browser: &WebDriver, css: &str) -> Result<String> {
    let mut attempts = 3;
    loop {
        let element = browser.wait_for(css).await?;
        match browser.text(&element).await {
            Err(e) if attempts > 1 && e.to_string().contains("stale element") => attempts -= 1,
            other => return other,
        }
    }
}

async fn log_in(browser: &WebDriver, base: &str, user: &str, password: &str) -> Result<()> {
    browser.goto(&format!("{base}/login")).await?;
    browser.fill("#username", user).await?;
    browser.fill("#password", password).await?;
    click(browser, "#login-submit").await
}

#[tokio::test]
async fn dns_page_works_in_chromium() -> Result<()> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing; the browser test needs Chromium and chromedriver: {INSTALL_HINT}"
        );
    }
    let root = tempfile::tempdir()?;
    let state_dir = root.path().join("state");
    let profile_dir = tempfile::tempdir()?;
    let (mut processes, base, driver) = launch(&state_dir, &root.path().join("picd.log")).await?;
    // Declared after `processes`, so dropped first: the session ends before chromedriver dies.
    let browser = open_browser(&driver, profile_dir.path()).await?;

    log_in(&browser, &base, ADMIN, ADMIN_PASSWORD).await?;
    browser
        .wait_for_url("the admin app", |u| u.starts_with(&format!("{base}/#")))
        .await?;
    click(&browser, ".nav a[data-route=dns]").await?;
    browser
        .wait_for_url("the DNS page", |u| u.contains("#/dns"))
        .await?;
    browser.wait_for_text("#dns-zone-info", "Serial").await?;
    let zone = wait_js(
        &browser,
        "the zone picker",
        "return document.querySelector('#dns-zone').value;",
        json!([]),
    )
    .await?;
    ensure!(zone == ZONE, "the cell's zone is picked: {zone}");
    let export = browser
        .attribute(&browser.find("#dns-export").await?, "href")
        .await?
        .unwrap_or_default();
    ensure!(
        export.ends_with(&format!("/api/dns/zones/{ZONE}/export")),
        "export link: {export}"
    );

    add_records(&browser).await?;
    search_and_edit(&browser, &base).await?;
    import(&browser).await?;
    delete_record(&browser).await?;

    full_page_shot(&browser, "dns", 1280).await?;
    full_page_shot(&browser, "dns-mobile-full", 390).await?;
    browser.set_window_size(390, 844).await?;
    browser.execute("window.scrollTo(0, 0);", json!([])).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shot(&browser, "dns-mobile").await?;
    browser.set_window_size(1280, 900).await?;

    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// A refused record (bad data) shows the API's message next to the data input; a good one
/// lands in the table.
async fn add_records(browser: &WebDriver) -> Result<()> {
    browser.fill("#dns-name", HOST).await?;
    browser
        .execute(
            "const s = document.querySelector('#dns-type'); s.value = 'A'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await?;
    browser.fill("#dns-data", BAD_DATA).await?;
    click(browser, "#dns-add-submit").await?;
    let error = browser.wait_for_text("#dns-data-error", "A data").await?;
    println!("field error: {error}");
    ensure!(
        browser
            .attribute(&browser.find("#dns-data").await?, "aria-invalid")
            .await?
            .as_deref()
            == Some("true"),
        "the data input is marked invalid"
    );
    browser
        .wait_for_text("#dns-add-alert", "Please correct")
        .await?;

    // A TTL that is not a number is refused before any request.
    browser.fill("#dns-ttl", "soon").await?;
    click(browser, "#dns-add-submit").await?;
    browser
        .wait_for_text("#dns-ttl-error", "whole number")
        .await?;

    browser.fill("#dns-ttl", "600").await?;
    browser.fill("#dns-data", HOST_IP).await?;
    click(browser, "#dns-add-submit").await?;
    browser
        .wait_for_text("#flash", &format!("{HOST}.{ZONE} A was added"))
        .await?;
    let row = format!("#dns-records-table tr[data-name='{HOST}.{ZONE}']");
    let text = browser.wait_for_text(&row, HOST_IP).await?;
    ensure!(text.contains("600"), "the row shows the TTL: {text}");
    ensure!(text.contains("public"), "the row shows the view: {text}");
    ensure!(
        browser
            .find_all("#dns-data-error:not([hidden])")
            .await?
            .is_empty(),
        "the error is gone after a good record"
    );
    Ok(())
}

/// The search box finds the record by its address; Edit changes its TTL and view.
async fn search_and_edit(browser: &WebDriver, base: &str) -> Result<()> {
    browser.fill("#dns-search", HOST_IP).await?;
    click(browser, "#dns-search-submit").await?;
    browser
        .wait_for_url("the search in the hash", |u| u.contains("q=10.77.0.20"))
        .await?;
    browser
        .wait_for_text("#dns-summary", "1 record matches")
        .await?;
    let row = format!("#dns-records-table tr[data-name='{HOST}.{ZONE}']");
    browser.wait_for_text(&row, HOST_IP).await?;

    click(browser, &format!("{row} button[id^=dns-edit-]")).await?;
    browser.wait_for("#dns-edit-dialog").await?;
    browser.fill("#dns-edit-ttl", "900").await?;
    browser
        .execute(
            "document.querySelector('#dns-edit-view').value = 'internal';",
            json!([]),
        )
        .await?;
    click(browser, "#dns-edit-dialog-confirm").await?;
    browser.wait_for_text("#flash", "was saved").await?;
    let text = browser.wait_for_text(&row, "internal").await?;
    ensure!(text.contains("900"), "the new TTL is shown: {text}");

    click(browser, "#dns-search-clear").await?;
    browser
        .wait_for_url("the zone again", |u| !u.contains("q="))
        .await?;
    browser.wait_for_text("#dns-summary", "serial").await?;
    ensure!(browser.url().await?.starts_with(base), "still on picd");
    Ok(())
}

/// Two lines, one with an impossible address: one record is imported, the other is listed
/// with its line number.
async fn import(browser: &WebDriver) -> Result<()> {
    browser
        .execute(
            "document.querySelector('#dns-import-text').value = arguments[0];",
            json!([IMPORT]),
        )
        .await?;
    click(browser, "#dns-import-submit").await?;
    let summary = browser
        .wait_for_text("#dns-import-summary", "1 imported")
        .await?;
    ensure!(summary.contains("1 refused"), "import summary: {summary}");
    let errors = text_of(browser, "#dns-import-errors").await?;
    println!("import errors: {errors}");
    ensure!(errors.contains("Line 2"), "the bad line is named: {errors}");
    browser
        .wait_for_text(
            &format!("#dns-records-table tr[data-name='imported.{ZONE}']"),
            "10.77.0.31",
        )
        .await?;
    ensure!(
        browser
            .find_all(&format!("#dns-records-table tr[data-name='broken.{ZONE}']"))
            .await?
            .is_empty(),
        "the bad line was not imported"
    );
    Ok(())
}

/// Delete asks first; Cancel keeps the record, confirming removes it.
async fn delete_record(browser: &WebDriver) -> Result<()> {
    let row = format!("#dns-records-table tr[data-name='imported.{ZONE}']");
    click(browser, &format!("{row} button[id^=dns-delete-]")).await?;
    browser
        .wait_for_text("#dns-delete-dialog", "cannot be undone")
        .await?;
    click(browser, "#dns-delete-dialog-cancel").await?;
    ensure!(
        browser.find_all("#dns-delete-dialog").await?.is_empty(),
        "Cancel closes the dialog"
    );
    ensure!(
        !browser.find_all(&row).await?.is_empty(),
        "Cancel keeps the record"
    );
    click(browser, &format!("{row} button[id^=dns-delete-]")).await?;
    click(browser, "#dns-delete-dialog-confirm").await?;
    browser.wait_for_text("#flash", "was deleted").await?;
    wait_js(
        browser,
        "the deleted row to go",
        "return document.querySelector(arguments[0]) === null;",
        json!([row]),
    )
    .await?;
    browser
        .wait_for_text(
            &format!("#dns-records-table tr[data-name='{HOST}.{ZONE}']"),
            HOST_IP,
        )
        .await?;
    Ok(())
}

/// No script errors and no CSP refusals. Failed requests the test provoked on purpose (the
/// refused name, key, certificate and the used invitation) are logged by Chromium too and
/// are expected.
async fn check_console(browser: &WebDriver) -> Result<()> {
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
