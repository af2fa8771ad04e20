//! The DNS page in a real headless Chromium: an admin picks the cell's zone, adds an A record
//! through the form (after a refused one whose error shows next to its input), finds it with
//! the search box, edits it, imports a zone file with one bad line (the good one is kept, the
//! bad one listed with its line number), and deletes a record after confirming. Screenshots
//! land in target/screenshots/dns.png and dns-mobile.png.

#[path = "common/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
use harness::*;

const ZONE: &str = "home.example.";
/// Added through the form.
const HOST: &str = "files";
const HOST_IP: &str = "10.77.0.20";
/// Not an IPv4 address: the API's message must appear next to the data input.
const BAD_DATA: &str = "not-an-address";
/// A zone file with one good and one bad line.
const IMPORT: &str = "imported 300 IN A 10.77.0.31\nbroken 300 IN A 10.77.0.999\n";

#[tokio::test]
async fn dns_page_works_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) = start_browser_cell(&[]).await?;

    admin_app(&browser, &base).await?;
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
    // The dialog leaves the page asynchronously after the click.
    wait_gone(browser, "#dns-delete-dialog", "Cancel to close the dialog").await?;
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
