//! The Services page and the portal's "Your services" in a real headless Chromium, on a cell
//! whose Docker engine does not answer (no engine is needed: installs and accounts are
//! recorded all the same). The store shows files unbuilt with the command that builds it;
//! Install shows its progress steps as they stream (the image step waiting, then done but
//! not applied); the service shows installed with an unknown health; an account is added for
//! a peer and its credentials open in a dialog, the password hidden until Show. The peer signs
//! in to the portal and sees the same credentials, the password hidden then shown, and a QR
//! code that holds the password only once asked for. Remove with purge needs its box ticked,
//! then the service and its accounts are gone. Screenshots in target/screenshots/
//! (services*.png, services-credentials.png, portal-services*.png).

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

const PEER: &str = "amy";
const PEER_PASSWORD: &str = "amy keeps a long passphrase";
/// A socket path where no engine listens.
const NO_ENGINE: &str = "/nonexistent/picd-test/docker.sock";
const SERVICE: &str = "files";
const CREDENTIALS: &str = "/api/services/catalog/files/accounts/amy/credentials";
const RETENTION_DAYS: u32 = 14;

/// The files service as the store lists it.
async fn files(api: &AdminApi) -> Result<Value> {
    let store = api.get("/api/store").await?;
    store["services"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["id"] == SERVICE))
        .cloned()
        .with_context(|| format!("{SERVICE} in {store}"))
}

async fn value_of(browser: &WebDriver, css: &str) -> Result<String> {
    let element = browser.wait_for(css).await?;
    Ok(browser
        .property(&element, "value")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn type_of(browser: &WebDriver, css: &str) -> Result<String> {
    let element = browser.find(css).await?;
    Ok(browser
        .property(&element, "type")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Waits until the image has loaded; returns its natural width.
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

async fn shots(browser: &WebDriver, name: &str) -> Result<()> {
    full_page_shot(browser, name, 1280).await?;
    full_page_shot(browser, &format!("{name}-mobile"), 390).await
}

#[tokio::test]
async fn services_page_and_portal_credentials_work_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) =
        start_browser_cell(&[("PICD_DOCKER_SOCKET", NO_ENGINE)]).await?;
    let api = AdminApi::log_in(&base).await?;
    let body = json!({ "name": PEER, "portal_password": PEER_PASSWORD });
    api.post("/api/peers", body).await?;

    admin_app(&browser, &base).await?;
    click(&browser, ".nav a[data-route=services]").await?;
    browser
        .wait_for_url("the Services page", |u| u.contains("#/services"))
        .await?;
    browser
        .wait_for_text("#svc-engine", "Docker engine is not answering")
        .await?;

    install(&browser, &api).await?;
    add_account(&browser, &api).await?;
    let password = credentials_dialog(&browser, &api).await?;
    retention(&browser, &api).await?;
    shots(&browser, "services").await?;

    click(&browser, "#user-menu summary").await?;
    click(&browser, "#logout").await?;
    browser
        .wait_for_url("/login", |u| u.ends_with("/login"))
        .await?;
    portal(&browser, &base, &password).await?;
    click(&browser, "#logout").await?;
    browser
        .wait_for_url("/login", |u| u.ends_with("/login"))
        .await?;

    admin_app(&browser, &base).await?;
    browser.goto(&format!("{base}/#/services")).await?;
    restart_without_an_engine(&browser).await?;
    remove_with_purge(&browser, &api).await?;
    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// The card says no image is built and how to build one; Install streams its steps into a
/// list; the card then shows the service installed, health unknown and no container.
async fn install(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let card = format!("#svc-card-{SERVICE}");
    let text = browser.wait_for_text(&card, "Not built").await?;
    ensure!(text.contains("Not installed"), "{text}");
    let hint = text_of(browser, &format!("#svc-build-hint-{SERVICE}")).await?;
    ensure!(hint.contains("picd services build-images"), "{hint}");
    // Build images from the page: with no engine the build is refused, and the page says why.
    click(browser, "#svc-build").await?;
    let refused = browser
        .wait_for_text("#svc-build-alert", "docker is unavailable")
        .await?;
    println!("build refused: {refused}");

    click(browser, &format!("#svc-install-{SERVICE}")).await?;
    let progress = format!("#svc-progress-{SERVICE}");
    let image = format!("{progress} li[data-step=image][data-state=waiting]");
    browser.wait_for(&image).await?;
    let done = browser
        .wait_for_text(&format!("{progress} li[data-step=done]"), "Recorded")
        .await?;
    println!("install done: {done}");
    let steps = browser
        .execute(
            "return [...document.querySelectorAll(arguments[0] + ' li')]
               .map(li => li.dataset.step + ' ' + li.dataset.state);",
            json!([progress]),
        )
        .await?;
    ensure!(
        steps == json!(["image waiting", "done ok"]),
        "the steps as they arrived: {steps}"
    );
    let reason = text_of(browser, &image).await?;
    ensure!(reason.contains("Image"), "the step is named: {reason}");
    browser
        .wait_for(&format!("{card}[data-installed=true]"))
        .await?;
    browser
        .wait_for_text("#flash", "Files was installed")
        .await?;
    let text = text_of(browser, &card).await?;
    for shown in ["Installed", "Unknown", "Docker engine is not answering"] {
        ensure!(text.contains(shown), "the card shows {shown}: {text}");
    }
    ensure!(
        browser.find(&format!("{card} {progress}")).await.is_ok(),
        "the progress stays in the card after it redrew"
    );
    shot(browser, "services-installed").await?;
    let stored = files(api).await?;
    ensure!(stored["installed"] == true, "{stored}");
    Ok(())
}

/// An account for the peer is added from the list of peers; it shows in the table.
async fn add_account(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let select = format!("#svc-add-{SERVICE}-who");
    browser
        .wait_for(&format!("{select} option[value={PEER}]"))
        .await?;
    browser
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];",
            json!([select, PEER]),
        )
        .await?;
    click(browser, &format!("#svc-add-{SERVICE}-submit")).await?;
    let flash = browser
        .wait_for_text("#flash", &format!("An account for {PEER} was added"))
        .await?;
    ensure!(flash.contains("once it runs"), "not live yet: {flash}");
    let row = format!("#svc-accounts-{SERVICE}-table tr[data-account={PEER}]");
    let text = browser.wait_for_text(&row, PEER).await?;
    ensure!(text.contains(&format!("Peer {PEER}")), "{text}");
    let accounts = api
        .get(&format!("/api/services/catalog/{SERVICE}/accounts"))
        .await?;
    ensure!(accounts["accounts"][0]["peer_name"] == PEER, "{accounts}");
    Ok(())
}

/// The dialog shows the URL, the username and the password hidden until Show.
async fn credentials_dialog(browser: &WebDriver, api: &AdminApi) -> Result<String> {
    let expected = api.get(CREDENTIALS).await?;
    let password = expected["password"].as_str().context("a password")?;
    click(browser, &format!("#svc-creds-{SERVICE}-{PEER}")).await?;
    browser.wait_for("#svc-creds-dialog[open]").await?;
    ensure!(value_of(browser, "#svc-creds-username").await? == PEER);
    let url = value_of(browser, "#svc-creds-url").await?;
    ensure!(url == "https://files.home.example/", "{url}");
    ensure!(value_of(browser, "#svc-creds-password").await? == password);
    ensure!(
        type_of(browser, "#svc-creds-password").await? == "password",
        "hidden at first"
    );
    click(browser, "#svc-creds-password-show").await?;
    ensure!(type_of(browser, "#svc-creds-password").await? == "text");
    browser.find("#svc-creds-password-copy").await?;
    let hint = text_of(browser, "#svc-creds-setup").await?;
    ensure!(hint.contains("files.home.example"), "{hint}");
    shot(browser, "services-credentials").await?;
    click(browser, "#svc-creds-close").await?;
    wait_gone(browser, "#svc-creds-dialog", "the dialog to close").await?;
    Ok(password.to_string())
}

/// The archive's retention is saved; the delete question quotes it.
async fn retention(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    browser
        .fill("#svc-retention", &RETENTION_DAYS.to_string())
        .await?;
    click(browser, "#svc-retention-submit").await?;
    browser
        .wait_for_text("#flash", &format!("kept for {RETENTION_DAYS} days"))
        .await?;
    let settings = api.get("/api/services/settings").await?;
    ensure!(
        settings["archive_retention_days"] == RETENTION_DAYS,
        "{settings}"
    );
    click(browser, &format!("#svc-delete-{SERVICE}-{PEER}")).await?;
    let question = browser
        .wait_for_text("#svc-delete-dialog", "archived, not destroyed")
        .await?;
    ensure!(
        question.contains(&format!("{RETENTION_DAYS} days")),
        "{question}"
    );
    click(browser, "#svc-delete-dialog-cancel").await?;
    wait_gone(browser, "#svc-delete-dialog", "the question to close").await
}

/// The peer's portal lists the account: the password hidden, then shown; the QR code without
/// the password, and with it once asked for.
async fn portal(browser: &WebDriver, base: &str, password: &str) -> Result<()> {
    log_in(browser, base, PEER, PEER_PASSWORD).await?;
    browser
        .wait_for_url("the portal", |u| u == format!("{base}/portal"))
        .await?;
    let prefix = format!("#portal-svc-{SERVICE}");
    browser.wait_for_text("#portal-services", "Files").await?;
    ensure!(value_of(browser, &format!("{prefix}-username")).await? == PEER);
    let field = format!("{prefix}-password");
    ensure!(type_of(browser, &field).await? == "password", "hidden");
    let qr = format!("{prefix}-qr");
    let width = wait_image(browser, &qr).await?;
    ensure!(width > 100, "the QR code has a real size: {width}px");
    let src = browser
        .attribute(&browser.find(&qr).await?, "src")
        .await?
        .unwrap_or_default();
    ensure!(!src.contains("password"), "no password by default: {src}");
    shots(browser, "portal-services").await?;

    click(browser, &format!("{field}-show")).await?;
    ensure!(type_of(browser, &field).await? == "text", "shown");
    ensure!(value_of(browser, &field).await? == password);
    click(browser, &format!("{qr}-password")).await?;
    browser
        .wait_for_text(&format!("{qr}-caption"), "holds your password")
        .await?;
    wait_js(
        browser,
        "the QR code with the password",
        "const img = document.querySelector(arguments[0]);
         return img.src.endsWith('?password=true') && img.complete && img.naturalWidth > 100;",
        json!([qr]),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shot(browser, "portal-services-password").await
}

/// Restart is offered for an installed service; with no engine to do it, the card's alert
/// says why it was not restarted.
async fn restart_without_an_engine(browser: &WebDriver) -> Result<()> {
    click(browser, &format!("#svc-restart-{SERVICE}")).await?;
    let said = browser
        .wait_for_text("#svc-store-alert", "was not restarted")
        .await?;
    ensure!(
        said.contains("docker"),
        "the alert names the engine: {said}"
    );
    Ok(())
}

/// Remove asks keep or purge; a purge needs its box ticked, then the service and its
/// accounts are gone.
async fn remove_with_purge(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    click(browser, &format!("#svc-remove-{SERVICE}")).await?;
    browser.wait_for("#svc-remove-dialog[open]").await?;
    click(browser, "#svc-remove-data-purge").await?;
    let sure = browser
        .wait_for_text("#svc-remove-dialog", "destroyed")
        .await?;
    ensure!(sure.contains("cannot be recovered"), "{sure}");
    click(browser, "#svc-remove-dialog-confirm").await?;
    browser
        .wait_for_text("#svc-remove-sure-error", "Tick this box")
        .await?;
    ensure!(files(api).await?["installed"] == true, "nothing was sent");
    shot(browser, "services-remove").await?;
    click(browser, "#svc-remove-sure").await?;
    click(browser, "#svc-remove-dialog-confirm").await?;
    browser.wait_for_text("#flash", "its data purged").await?;
    browser
        .wait_for(&format!("#svc-card-{SERVICE}[data-installed=false]"))
        .await?;
    ensure!(files(api).await?["installed"] == false);
    let accounts = api
        .get(&format!("/api/services/catalog/{SERVICE}/accounts"))
        .await?;
    ensure!(accounts["accounts"] == json!([]), "{accounts}");
    Ok(())
}
