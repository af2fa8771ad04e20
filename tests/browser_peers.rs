//! Peers, the peer portal and the vault in a real headless Chromium: an admin adds a peer
//! through the form (a field error first) and sees its QR code at once, edits, disables and
//! deletes peers, invites one to the portal; the invited peer sets a password, lands on the
//! portal, sees its QR code, rotates its keys and changes its password; signing in as a peer
//! leads to the portal. The admin issues and revokes a certificate, trusts another cell's key,
//! and creates and rotates an API key whose token is shown once and works. Screenshots land in
//! target/screenshots/.

#[path = "common/webdriver.rs"]
mod webdriver;

use anyhow::{ensure, Result};
use serde_json::json;
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
use harness::*;

/// The vault's pages: certificates, trust keys, API keys.
#[path = "browser_peers/vault.rs"]
mod vault;
use vault::*;

/// Not a DNS label: the form must show the API's message next to the name input.
const BAD_PEER_NAME: &str = "Alice_Phone";
const PEER: &str = "alice-phone";
/// The first host addresses after the cell's own.
const PEER_V4: &str = "10.77.0.2";
const PEER_V6: &str = "fd77:77::2";
/// A peer that brings its own key pair (so it has no QR code), and is deleted again.
const BYO_PEER: &str = "bob-laptop";
const BYO_PUBLIC_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const PEER_PASSWORD: &str = "copper kettle meadow 7";
/// What the peer changes its password to on the portal.
const PEER_NEW_PASSWORD: &str = "silver kettle harbour 8";
const NEW_KEEPALIVE: &str = "30";

/// Kills what the test started, also when it fails; unless the test passed, prints picd's log.
/// Scrolls the element to the top of the viewport (under the sticky header), for a screenshot.
async fn scroll_to(browser: &WebDriver, css: &str) -> Result<()> {
    browser
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({ block: 'start' });",
            json!([css]),
        )
        .await
        .map(drop)
}

/// A screenshot of the whole page at `width`: the window grows to the page's height for it,
/// then returns to the desktop size.
/// Waits until the <img> matching `css` has loaded a picture; returns its natural width.
async fn wait_image(browser: &WebDriver, css: &str) -> Result<u64> {
    let width = wait_js(
        browser,
        &format!("{css} to load"),
        "const img = document.querySelector(arguments[0]);
         return img && img.complete ? img.naturalWidth : 0;",
        json!([css]),
    )
    .await?;
    Ok(width.as_u64().unwrap_or(0))
}

/// The current value of an input or textarea, once it is non-empty.
async fn input_value(browser: &WebDriver, css: &str) -> Result<String> {
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

#[tokio::test]
async fn peers_portal_and_vault_work_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) = start_browser_cell(&[]).await?;

    admin_app(&browser, &base).await?;
    add_peers(&browser).await?;
    let invitation = peer_detail(&browser, &base).await?;
    delete_peer(&browser, &base).await?;
    portal(&browser, &base, &invitation).await?;
    peer_login_goes_to_portal(&browser, &base).await?;

    admin_app(&browser, &base).await?;
    vault_certificates(&browser, &base).await?;
    vault_trust_keys(&browser).await?;
    vault_api_keys(&browser, &base).await?;

    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// The add form: a refused name shown next to its input, then a peer whose QR code appears at
/// once, and a second one with its own public key (no QR code, split tunnel).
async fn add_peers(browser: &WebDriver) -> Result<()> {
    click(browser, ".nav a[data-route=peers]").await?;
    // With no peers yet, the form is open from the start.
    browser.wait_for("#peer-add-form").await?;
    browser.wait_for_text("#peers-list", "No peers yet").await?;

    browser.fill("#peer-name", BAD_PEER_NAME).await?;
    click(browser, "#peer-add-submit").await?;
    let message = browser
        .wait_for_text("#peer-name-error", "lowercase DNS label")
        .await?;
    ensure!(
        message.starts_with("Name must be"),
        "inline message: {message}"
    );
    let name = browser.find("#peer-name").await?;
    ensure!(
        browser.attribute(&name, "aria-invalid").await? == Some("true".into()),
        "the bad name is marked invalid"
    );
    browser
        .wait_for_text("#peer-add-alert", "correct the field")
        .await?;

    browser.fill("#peer-name", PEER).await?;
    click(browser, "#peer-add-submit").await?;
    browser.wait_for("#peer-added").await?;
    let width = wait_image(browser, "#peer-added-qr").await?;
    ensure!(width > 100, "the QR code has a real size: {width}px");
    let src = browser
        .attribute(&browser.find("#peer-added-qr").await?, "src")
        .await?
        .unwrap_or_default();
    ensure!(
        src == format!("/api/peers/{PEER}/qr"),
        "QR from the API: {src}"
    );
    let download = browser
        .attribute(&browser.find("#peer-added-download").await?, "href")
        .await?
        .unwrap_or_default();
    ensure!(
        download == format!("/api/peers/{PEER}/config"),
        "config download: {download}"
    );
    let panel = text_of(browser, "#peer-added").await?;
    for expected in [PEER_V4, PEER_V6, "private key", "Download config"] {
        ensure!(
            panel.contains(expected),
            "added panel lacks {expected}: {panel}"
        );
    }
    // The list behind it already shows the new peer.
    browser.wait_for_text("#peers-table tbody", PEER).await?;
    shot(browser, "peer-add-qr").await?;

    // A second peer: split tunnel and the device's own public key, so there is no QR code.
    click(browser, "#peer-add-another").await?;
    browser.fill("#peer-name", BYO_PEER).await?;
    click(browser, "#peer-tunnel-split").await?;
    browser.fill("#peer-public-key", BYO_PUBLIC_KEY).await?;
    click(browser, "#peer-add-submit").await?;
    let panel = browser
        .wait_for_text("#peer-added", "brought its own key pair")
        .await?;
    ensure!(
        browser.find_all("#peer-added-qr").await?.is_empty(),
        "no QR code without a private key: {panel}"
    );
    click(browser, "#peer-added-done").await?;

    // Adding reloads the list behind the panel; wait for the second peer to be in it.
    browser
        .wait_for_text("#peers-table tbody", BYO_PEER)
        .await?;
    let rows = browser.find_all("#peers-table tbody tr").await?;
    ensure!(rows.len() == 2, "two peers listed, saw {}", rows.len());
    let row = text_of(browser, &format!("#peers-table tr[data-peer={PEER}]")).await?;
    // WireGuard is off in this test: the state is unknown rather than offline.
    for expected in [
        PEER_V4,
        PEER_V6,
        "Unknown",
        "Full tunnel",
        "No live data",
        "Never",
    ] {
        ensure!(row.contains(expected), "peer row lacks {expected}: {row}");
    }
    let row = text_of(browser, &format!("#peers-table tr[data-peer={BYO_PEER}]")).await?;
    ensure!(row.contains("Split tunnel"), "second peer row: {row}");
    browser
        .wait_for_text("#peers-summary", "2 peers, 0 online")
        .await?;
    shot(browser, "peers").await?;
    browser.set_window_size(390, 844).await?;
    browser.wait_for("#peers-table").await?;
    shot(browser, "peers-mobile").await?;
    browser.set_window_size(1280, 900).await
}

/// The detail page: facts, QR code, disable and enable, an edit, and an invitation link,
/// which is returned.
async fn peer_detail(browser: &WebDriver, base: &str) -> Result<String> {
    click(browser, &format!("#peer-link-{PEER}")).await?;
    browser
        .wait_for_url("the peer's page", |u| {
            u.ends_with(&format!("#/peers/{PEER}"))
        })
        .await?;
    let details = browser.wait_for_text("#peer-details", PEER_V4).await?;
    for expected in [
        PEER_V6,
        "Made by the cell",
        "Full tunnel",
        "0.0.0.0/0",
        "25 s",
    ] {
        ensure!(
            details.contains(expected),
            "details lack {expected}: {details}"
        );
    }
    browser.wait_for_text("#peer-live", "No live data").await?;
    wait_image(browser, "#peer-qr").await?;
    browser
        .wait_for_text(".nav a[aria-current=page]", "Peers")
        .await?;

    click(browser, "#peer-toggle").await?;
    browser.wait_for_text("#peer-badges", "Disabled").await?;
    browser.wait_for_text("#flash", "is disabled").await?;
    browser.wait_for_text("#peer-toggle", "Enable").await?;
    click(browser, "#peer-toggle").await?;
    browser.wait_for_text("#peer-badges", "Unknown").await?;

    browser.fill("#peer-edit-keepalive", NEW_KEEPALIVE).await?;
    click(browser, "#peer-edit-submit").await?;
    browser
        .wait_for_text("#peer-details", &format!("{NEW_KEEPALIVE} s"))
        .await?;
    // The QR code is reloaded with the new keepalive in its config.
    wait_image(browser, "#peer-qr").await?;

    // Network access: internet off is saved, and is what the page shows when it comes back.
    scroll_to(browser, "#peer-policy-internet").await?;
    click(browser, "#peer-policy-internet").await?;
    click(browser, "#peer-fail-open").await?;
    click(browser, "#peer-policy-save").await?;
    browser.wait_for_text("#flash", "internet off").await?;
    browser.goto(&format!("{base}/#/peers")).await?;
    browser.wait_for(&format!("#peer-link-{PEER}")).await?;
    browser.goto(&format!("{base}/#/peers/{PEER}")).await?;
    browser.wait_for("#peer-policy-internet").await?;
    let shown = browser
        .execute(
            "return ['peer-policy-internet', 'peer-policy-peers', 'peer-fail-open']
               .map(id => document.getElementById(id).checked)
               .concat([document.getElementById('peer-exit').value]);",
            json!([]),
        )
        .await?;
    ensure!(
        shown == json!([false, true, true, ""]),
        "after a reload the page shows internet, peers, fail-open, exit = {shown}"
    );

    click(browser, "#peer-invite-submit").await?;
    let link = input_value(browser, "#peer-invite-link").await?;
    ensure!(
        link.starts_with(&format!("{base}/portal/invite#")) && link.len() > base.len() + 40,
        "invitation link: {link}"
    );
    browser
        .wait_for_text("#peer-portal", "Shown only once")
        .await?;
    full_page_shot(browser, "peer-detail", 1280).await?;
    full_page_shot(browser, "peer-detail-mobile", 390).await?;
    Ok(link)
}

/// Deleting asks first; Cancel keeps the peer, confirming removes it and returns to the list.
async fn delete_peer(browser: &WebDriver, base: &str) -> Result<()> {
    browser.goto(&format!("{base}/#/peers/{BYO_PEER}")).await?;
    browser
        .wait_for_text("#peer-details", "The device's own")
        .await?;
    click(browser, "#peer-delete").await?;
    browser
        .wait_for_text("#peer-delete-dialog", "cannot be undone")
        .await?;
    click(browser, "#peer-delete-dialog-cancel").await?;
    // The dialog leaves the page asynchronously after the click.
    wait_gone(browser, "#peer-delete-dialog", "Cancel to close the dialog").await?;
    click(browser, "#peer-delete").await?;
    click(browser, "#peer-delete-dialog-confirm").await?;
    browser
        .wait_for_url("the peers list", |u| u.ends_with("#/peers"))
        .await?;
    browser
        .wait_for_text("#flash", &format!("{BYO_PEER} was deleted"))
        .await?;
    browser.wait_for_text("#peers-table", PEER).await?;
    ensure!(
        browser.find_all("#peers-table tbody tr").await?.len() == 1,
        "one peer left"
    );
    Ok(())
}

/// The invited peer sets a password, lands on the portal, sees its QR code and rotates its
/// keys: the public key changes and a new QR code is shown.
async fn portal(browser: &WebDriver, base: &str, invitation: &str) -> Result<()> {
    // The admin signs out; the invitation is opened as a stranger would.
    browser.goto(&format!("{base}/#/status")).await?;
    log_out(browser, true).await?;
    browser.goto(invitation).await?;
    browser.fill("#invite-password", PEER_PASSWORD).await?;
    browser
        .fill("#invite-confirm", "something else entirely")
        .await?;
    click(browser, "#invite-submit").await?;
    browser
        .wait_for_text("#invite-confirm-error", "does not match")
        .await?;
    browser.fill("#invite-confirm", PEER_PASSWORD).await?;
    click(browser, "#invite-submit").await?;
    browser
        .wait_for_url("the portal", |u| u == format!("{base}/portal"))
        .await?;

    browser.wait_for_text("#portal-facts", PEER_V4).await?;
    browser.wait_for_text("#portal-user", PEER).await?;
    let width = wait_image(browser, "#portal-qr").await?;
    ensure!(
        width > 100,
        "the portal's QR code has a real size: {width}px"
    );
    let download = browser
        .attribute(&browser.find("#portal-download").await?, "href")
        .await?
        .unwrap_or_default();
    ensure!(
        download == "/api/peer/config",
        "portal download: {download}"
    );
    shot(browser, "portal").await?;

    // The invitation is used up: opening it again is refused.
    browser.goto(invitation).await?;
    browser.fill("#invite-password", PEER_PASSWORD).await?;
    browser.fill("#invite-confirm", PEER_PASSWORD).await?;
    click(browser, "#invite-submit").await?;
    browser
        .wait_for_text("#invite-alert", "already used or expired")
        .await?;

    browser.goto(&format!("{base}/portal")).await?;
    let old_key = text_of(browser, "#portal-public-key").await?;
    wait_image(browser, "#portal-qr").await?;
    click(browser, "#portal-rotate").await?;
    browser
        .wait_for_text("#portal-rotate-dialog", "stops working")
        .await?;
    click(browser, "#portal-rotate-dialog-confirm").await?;
    browser
        .wait_for_text("#portal-rotate-result", "New keys are ready")
        .await?;
    let new_key = text_of(browser, "#portal-public-key").await?;
    ensure!(
        new_key != old_key && new_key.len() == 44,
        "the public key changed: {old_key} -> {new_key}"
    );
    wait_js(
        browser,
        "the new QR code",
        "const img = document.getElementById('portal-qr');
         return img.src.startsWith('data:image/png') && img.complete && img.naturalWidth > 100;",
        json!([]),
    )
    .await?;
    full_page_shot(browser, "portal-rotated", 1280).await?;

    // The password: a wrong current one is named, the right one changes it.
    browser
        .fill("#portal-current-password", "not my password at all")
        .await?;
    browser
        .fill("#portal-new-password", PEER_NEW_PASSWORD)
        .await?;
    browser
        .fill("#portal-confirm-password", PEER_NEW_PASSWORD)
        .await?;
    click(browser, "#portal-password-submit").await?;
    browser
        .wait_for_text("#portal-current-password-error", "is not correct")
        .await?;
    browser
        .fill("#portal-current-password", PEER_PASSWORD)
        .await?;
    click(browser, "#portal-password-submit").await?;
    browser
        .wait_for_text("#portal-password-alert", "Password changed")
        .await?;

    browser.set_window_size(390, 844).await?;
    browser.goto(&format!("{base}/portal")).await?;
    wait_image(browser, "#portal-qr").await?;
    shot(browser, "portal-mobile").await?;
    browser.set_window_size(1280, 900).await?;
    log_out(browser, false).await
}

/// A peer signing in on the login page goes to the portal; the admin app sends it there too.
async fn peer_login_goes_to_portal(browser: &WebDriver, base: &str) -> Result<()> {
    log_in(browser, base, PEER, PEER_NEW_PASSWORD).await?;
    browser
        .wait_for_url("the portal", |u| u == format!("{base}/portal"))
        .await?;
    browser.wait_for("#portal-facts").await?;
    browser.goto(&format!("{base}/#/peers")).await?;
    browser
        .wait_for_url("the portal", |u| u == format!("{base}/portal"))
        .await?;
    browser.wait_for("#portal-facts").await?;
    log_out(browser, false).await
}
