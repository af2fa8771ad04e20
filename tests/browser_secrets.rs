//! One-time secrets do not come back, in a real headless Chromium (and the vault page says
//! what the cell's CA may vouch for, refusing an outside name at its field): an API token created on
//! the vault page is gone after logout and Back (and still gone a while later); the
//! change-password dialog keeps no password once it succeeded; the invitation page drops its
//! token from the address bar, and takes a new one from a changed fragment; the portal's QR
//! code and config are gone after the peer logs out and goes Back. Screenshots land in
//! target/screenshots/ (secrets-*.png).

#[path = "common/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
use harness::*;

const API_KEY_NAME: &str = "nightly-backup";
const NEW_ADMIN_PASSWORD: &str = "a brand new harbour lantern 43";
const PEER: &str = "tablet";
const PEER_PASSWORD: &str = "tablet has a long password";
/// How long after Back the page is watched for a secret coming back.
const LINGER: Duration = Duration::from_secs(8);

/// Everything a person or a script could read on the page: its text, its markup and the
/// values of its inputs.
async fn page_contents(browser: &WebDriver) -> Result<String> {
    let found = browser
        .execute(
            "return document.documentElement.outerHTML + '\\n' +
                [...document.querySelectorAll('input, textarea')].map(e => e.value).join('\\n');",
            json!([]),
        )
        .await?;
    Ok(format!(
        "{}\n{}",
        browser.page_text().await,
        found.as_str().unwrap_or_default()
    ))
}

async fn value_of(browser: &WebDriver, css: &str) -> Result<String> {
    let value = wait_js(
        browser,
        &format!("a value in {css}"),
        "const el = document.querySelector(arguments[0]); return el ? el.value : '';",
        json!([css]),
    )
    .await?;
    Ok(value.as_str().unwrap_or_default().to_string())
}

async fn log_out(browser: &WebDriver, menu: bool) -> Result<()> {
    if menu {
        click(browser, "#user-menu summary").await?;
    }
    click(browser, "#logout").await?;
    browser
        .wait_for_url("/login", |u| u.ends_with("/login"))
        .await
        .map(drop)
}

/// Goes Back as the browser's button would; returns the URL it settles on.
async fn go_back(browser: &WebDriver) -> Result<String> {
    browser.execute("history.back();", json!([])).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser.url().await
}

/// Asserts `secret` is nowhere on the page now and after `LINGER`.
async fn stays_gone(browser: &WebDriver, secret: &str, what: &str, name: &str) -> Result<()> {
    ensure!(
        !page_contents(browser).await?.contains(secret),
        "{what} is on the page after logout and Back ({})",
        browser.url().await?
    );
    shot(browser, &format!("secrets-{name}-after-back")).await?;
    tokio::time::sleep(LINGER).await;
    ensure!(
        !page_contents(browser).await?.contains(secret),
        "{what} came back {LINGER:?} after logout and Back"
    );
    Ok(())
}

async fn token_gone_after_logout_and_back(browser: &WebDriver, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/#/vault")).await?;
    // The CA says what it may vouch for, and refuses a name outside it at the field.
    browser
        .wait_for_text("#vault-ca-scope", "vouches only for home.example")
        .await?;
    browser
        .wait_for_text("#vault-ca-scope", "10.77.0.0/24")
        .await?;
    browser.fill("#cert-names", "www.google.com").await?;
    click(browser, "#cert-issue-submit").await?;
    browser
        .wait_for_text("#cert-names-error", "outside the cell's domain")
        .await?;
    browser
        .execute(
            "document.querySelector('#ca').scrollIntoView({ block: 'start' });",
            json!([]),
        )
        .await?;
    shot(browser, "secrets-ca-scope").await?;
    browser.fill("#key-name", API_KEY_NAME).await?;
    click(browser, "#key-scope-read-only").await?;
    click(browser, "#key-create-submit").await?;
    let token = value_of(browser, "#key-token").await?;
    ensure!(token.starts_with("picd_"), "token: {token}");
    browser
        .execute(
            "document.querySelector('#key-token-panel').scrollIntoView({ block: 'center' });",
            json!([]),
        )
        .await?;
    shot(browser, "secrets-token-shown").await?;

    log_out(browser, true).await?;
    let back = go_back(browser).await?;
    // The admin page is loaded afresh (never from the back/forward cache), finds no session
    // and goes on to the login page.
    browser
        .wait_for_url("the login page after Back", |u| u.ends_with("/login"))
        .await
        .with_context(|| format!("Back went to {back}"))?;
    stays_gone(browser, &token, "the API token", "token").await
}

/// Changes the admin's password through the dialog; afterwards no field holds a password.
async fn password_dialog_forgets(browser: &WebDriver) -> Result<()> {
    click(browser, "#user-menu summary").await?;
    click(browser, "#change-password").await?;
    browser.fill("#current-password", ADMIN_PASSWORD).await?;
    browser.fill("#new-password", NEW_ADMIN_PASSWORD).await?;
    browser
        .fill("#confirm-password", NEW_ADMIN_PASSWORD)
        .await?;
    click(browser, "#password-submit").await?;
    browser.wait_for_text("#flash", "Password changed").await?;
    let left = browser
        .execute(
            "return ['#current-password', '#new-password', '#confirm-password']
                .map(css => document.querySelector(css).value).join('');",
            json!([]),
        )
        .await?;
    ensure!(left == json!(""), "the dialog kept what was typed: {left}");
    ensure!(
        !page_contents(browser).await?.contains(NEW_ADMIN_PASSWORD),
        "the new password is still on the page"
    );
    Ok(())
}

/// A peer and an invitation for it, made through the API with a session of its own.
async fn invitation(base: &str, password: &str) -> Result<String> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "username": ADMIN, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let csrf = login["csrf_token"]
        .as_str()
        .context("csrf_token")?
        .to_string();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let created = post("/api/peers", json!({ "name": PEER })).await?;
    ensure!(
        created.status().is_success(),
        "creating the peer: {}",
        created.status()
    );
    let invite: Value = post(&format!("/api/peers/{PEER}/invite"), json!({}))
        .await?
        .json()
        .await?;
    Ok(invite["token"]
        .as_str()
        .context("invitation token")?
        .to_string())
}

/// The invitation page reads its token and drops it from the address; a new fragment is a
/// new token (the first, bogus one would be refused); the portal it leads to loses its QR
/// code and config at logout, Back included.
async fn invitation_page_and_portal(browser: &WebDriver, base: &str, token: &str) -> Result<()> {
    let page = format!("{base}/portal/invite");
    browser.goto(&format!("{page}#not-the-real-token")).await?;
    browser
        .wait_for_url("the address without the token", |u| u == page)
        .await?;
    browser
        .execute("window.location.hash = arguments[0];", json!([token]))
        .await?;
    browser
        .wait_for_url("the address without the new token", |u| u == page)
        .await?;
    let history = browser.execute("return history.length;", json!([])).await?;
    shot(browser, "secrets-invite-address").await?;
    browser.fill("#invite-password", PEER_PASSWORD).await?;
    browser.fill("#invite-confirm", PEER_PASSWORD).await?;
    click(browser, "#invite-submit").await?;
    browser
        .wait_for_url("the portal", |u| u == format!("{base}/portal"))
        .await
        .with_context(|| format!("history length {history}"))?;
    browser.wait_for("#portal-qr").await?;
    let config = wait_js(
        browser,
        "the portal's config",
        "return fetch('/api/peer/config').then(r => r.text());",
        json!([]),
    )
    .await?;
    let private_key = config
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PrivateKey = "))
        .context("PrivateKey in the portal's config")?
        .to_string();
    log_out(browser, false).await?;
    go_back(browser).await?;
    browser
        .wait_for_url("the login page after Back", |u| u.ends_with("/login"))
        .await?;
    let qr_left = browser
        .execute(
            "return document.querySelector('img.qr, .onboard') !== null;",
            json!([]),
        )
        .await?;
    ensure!(
        qr_left == json!(false),
        "the QR code is on the page after logout and Back"
    );
    stays_gone(browser, &private_key, "the peer's private key", "portal").await
}

#[tokio::test]
async fn one_time_secrets_do_not_come_back() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) = start_browser_cell(&[]).await?;
    let in_app = |u: &str| u.starts_with(&format!("{base}/#"));

    log_in(&browser, &base, ADMIN, ADMIN_PASSWORD).await?;
    browser.wait_for_url("the admin app", in_app).await?;
    password_dialog_forgets(&browser).await?;
    token_gone_after_logout_and_back(&browser, &base).await?;

    let token = invitation(&base, NEW_ADMIN_PASSWORD).await?;
    invitation_page_and_portal(&browser, &base, &token).await?;

    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}
