//! The web UI in a real headless Chromium, driven through chromedriver: the setup wizard
//! (claimed with the setup code from the state directory, after a wrong one; a field error
//! shown and fixed), the status page, the audit log, settings, log out and
//! log in again, at desktop and phone width. Screenshots land in target/screenshots/.

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::Path;

use anyhow::{ensure, Context, Result};
use harness::*;
use webdriver::WebDriver;

const CELL_NAME: &str = "home";
const CELL_DOMAIN: &str = "home.example";
const ENDPOINT: &str = "vpn.home.example";
/// Host bits set: the wizard must refuse it next to the IPv4 subnet input.
const BAD_SUBNET_V4: &str = "10.77.0.1/24";
const SUBNET_V4: &str = "10.77.0.0/24";
/// The cell's upstreams in this test: loopback stand-ins (nothing listens on port 9), so no
/// question the test cell forwards ever leaves the machine.
const UPSTREAMS: [&str; 2] = ["127.0.0.1:9", "127.0.0.2:9"];
const EXTRA_UPSTREAM: &str = "127.0.0.3:9";
/// The status page has loaded its subsystems.
const SUBSYSTEMS_SHOWN: &str = "#subsystems li[data-subsystem=wireguard] .badge";
/// Well-formed, and not the cell's setup code.
const WRONG_CODE: &str = "0000-0000-0000-0000-0000-0000-0000";

async fn attribute(browser: &WebDriver, css: &str, name: &str) -> Result<Option<String>> {
    let element = browser.find(css).await?;
    browser.attribute(&element, name).await
}

#[tokio::test]
async fn wizard_status_and_audit_work_in_chromium() -> Result<()> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing; the browser test needs Chromium and chromedriver: {INSTALL_HINT}"
        );
    }
    let state_dir = tempfile::tempdir()?;
    let profile_dir = tempfile::tempdir()?;
    let logs = tempfile::tempdir()?;
    let (mut processes, base, driver) =
        launch_unset(state_dir.path(), &logs.path().join("picd.log"), &[]).await?;
    // Declared after `processes`, so dropped first: the session ends before chromedriver dies.
    let browser = open_browser(&driver, profile_dir.path()).await?;

    claim_the_wizard(&browser, &base, state_dir.path()).await?;
    walk_the_wizard(&browser, &base).await?;
    check_status(&browser).await?;
    check_audit(&browser).await?;
    check_settings(&browser).await?;
    log_out_and_in(&browser, &base).await?;

    browser.set_window_size(390, 844).await?;
    browser.goto(&format!("{base}/#/status")).await?;
    browser.wait_for(SUBSYSTEMS_SHOWN).await?;
    shot(&browser, "status-mobile").await?;
    browser.goto(&format!("{base}/#/audit")).await?;
    browser.wait_for("#audit-entries tbody tr").await?;
    shot(&browser, "audit-mobile").await?;

    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// The wizard's first screen asks for the setup code and says where it is; a wrong code is
/// refused on the field, the one in the state directory opens the wizard.
async fn claim_the_wizard(browser: &WebDriver, base: &str, state_dir: &Path) -> Result<()> {
    // Before setup, / sends the browser to the wizard.
    browser.goto(&format!("{base}/")).await?;
    browser
        .wait_for_url("/setup", |u| u.ends_with("/setup"))
        .await?;
    let help = browser
        .wait_for_text(".claim-where", "picd setup token")
        .await?;
    ensure!(
        help.contains("/var/lib/picd/setup-token"),
        "the file is named: {help}"
    );
    ensure!(help.contains("log"), "the log is named: {help}");
    shot(browser, "wizard-claim").await?;
    browser.set_window_size(390, 844).await?;
    shot(browser, "wizard-claim-mobile").await?;
    browser.set_window_size(1280, 900).await?;

    browser.fill("#setup-code", WRONG_CODE).await?;
    click(browser, "#claim-submit").await?;
    browser.wait_for_text("#setup-code-error", "wrong").await?;
    ensure!(
        attribute(browser, "#setup-code", "aria-invalid").await? == Some("true".into()),
        "the wrong code is marked invalid"
    );
    shot(browser, "wizard-claim-error").await?;
    let code = std::fs::read_to_string(state_dir.join("setup-token"))
        .context("reading the setup code picd wrote")?;
    browser.fill("#setup-code", code.trim()).await?;
    click(browser, "#claim-submit").await?;
    browser.wait_for("#admin-form").await?;
    // A reload keeps the claim: the page gets the claim's CSRF token back from the status,
    // which the admin step below then needs.
    browser.goto(&format!("{base}/setup")).await?;
    browser.wait_for("#admin-form").await?;
    Ok(())
}

async fn walk_the_wizard(browser: &WebDriver, base: &str) -> Result<()> {
    browser.fill("#admin-username", ADMIN).await?;
    browser.fill("#admin-password", ADMIN_PASSWORD).await?;
    browser.fill("#admin-confirm", ADMIN_PASSWORD).await?;
    shot(browser, "wizard-admin").await?;
    click(browser, "#admin-submit").await?;

    browser.fill("#cell-name", CELL_NAME).await?;
    browser.fill("#cell-domain", CELL_DOMAIN).await?;
    browser.fill("#cell-public_endpoint", ENDPOINT).await?;
    browser.fill("#cell-wireguard_port", "51820").await?;
    browser.fill("#cell-subnet_v4", BAD_SUBNET_V4).await?;
    click(browser, "#cell-submit").await?;
    let message = browser
        .wait_for_text("#cell-subnet_v4-error", "Host bits are set")
        .await?;
    ensure!(
        message.contains(SUBNET_V4),
        "the error names the network: {message}"
    );
    ensure!(
        attribute(browser, "#cell-subnet_v4", "aria-invalid").await? == Some("true".into()),
        "the bad input is marked invalid"
    );
    browser
        .wait_for_text("#cell-alert", "correct the field")
        .await?;
    shot(browser, "wizard-cell-error").await?;

    browser.fill("#cell-subnet_v4", SUBNET_V4).await?;
    click(browser, "#cell-submit").await?;

    // The DNS step comes prefilled with two public resolvers: replace them with the test's
    // stand-ins, add one more, and keep split horizon on.
    browser.wait_for("#dns-form").await?;
    ensure!(
        browser.find_all("#dns-upstreams input").await?.len() == 2,
        "two default upstreams"
    );
    for (row, upstream) in UPSTREAMS.iter().enumerate() {
        let css = format!("#dns-upstreams li:nth-child({}) input", row + 1);
        browser.fill(&css, upstream).await?;
    }
    // Nothing but the stand-ins is left for the test cell to forward to.
    for input in browser.find_all("#dns-upstreams input").await? {
        let value = browser.property(&input, "value").await?;
        let value = value.as_str().unwrap_or_default().to_string();
        ensure!(
            UPSTREAMS.contains(&value.as_str()),
            "the test cell would forward to {value}, not a loopback stand-in"
        );
    }
    click(browser, "#dns-add-upstream").await?;
    browser
        .fill("#dns-upstreams li:last-child input", EXTRA_UPSTREAM)
        .await?;
    shot(browser, "wizard-dns").await?;
    click(browser, "#dns-submit").await?;

    // TLS: the cell's own CA is proposed. Let's Encrypt is refused for a private domain, on
    // the field, with the ACME fields shown; back to the cell's CA.
    browser.wait_for("#tls-form").await?;
    ensure!(
        browser.find_all("#tls-mode-internal:checked").await?.len() == 1,
        "the cell's own CA is proposed"
    );
    click(browser, "#tls-mode-acme").await?;
    browser.wait_for("#tls-acme_email").await?;
    click(browser, "#tls-submit").await?;
    let message = browser
        .wait_for_text("#tls-mode-error", "Let's Encrypt")
        .await?;
    ensure!(
        message.contains(CELL_DOMAIN),
        "the error names the domain: {message}"
    );
    shot(browser, "wizard-tls-error").await?;
    click(browser, "#tls-mode-internal").await?;
    click(browser, "#tls-submit").await?;

    // Review shows everything; Back returns to TLS and DNS with the values kept, then on.
    let summary = browser.wait_for_text(".summary", CELL_DOMAIN).await?;
    for expected in [ADMIN, ENDPOINT, SUBNET_V4, EXTRA_UPSTREAM, "own CA"]
        .into_iter()
        .chain(UPSTREAMS)
    {
        ensure!(
            summary.contains(expected),
            "review lacks {expected}: {summary}"
        );
    }
    shot(browser, "wizard-review").await?;
    click(browser, "#review-back").await?;
    browser.wait_for("#tls-form").await?;
    click(browser, "#tls-back").await?;
    browser.wait_for("#dns-form").await?;
    ensure!(
        browser.find_all("#dns-upstreams input").await?.len() == 3,
        "going back keeps the DNS answers"
    );
    click(browser, "#dns-submit").await?;
    click(browser, "#complete-setup").await?;
    browser
        .wait_for_url("the admin app", |u| {
            u.starts_with(&format!("{base}/")) && !u.contains("setup")
        })
        .await?;
    Ok(())
}

async fn check_status(browser: &WebDriver) -> Result<()> {
    browser.wait_for(SUBSYSTEMS_SHOWN).await?;
    for name in [
        "wireguard",
        "dns",
        "caddy",
        "nftables",
        "docker",
        "connectivity",
        "storage",
    ] {
        let reason = browser
            .wait_for(&format!(
                "#subsystems li[data-subsystem={name}] .subsystem-reason"
            ))
            .await?;
        ensure!(
            !browser.text(&reason).await?.is_empty(),
            "{name} has a reason"
        );
    }
    ensure!(
        browser.find_all("#subsystems .badge").await?.len() == 7,
        "one badge per subsystem"
    );
    browser.wait_for_text("#cell-name", CELL_NAME).await?;
    browser.wait_for_text("#user-name", ADMIN).await?;
    browser.wait_for_text(".stat-grid", "0.1.0").await?;
    shot(browser, "status").await
}

async fn check_audit(browser: &WebDriver) -> Result<()> {
    click(browser, ".nav a[data-route=audit]").await?;
    browser.wait_for("#audit-entries tbody tr").await?;
    let table = browser
        .wait_for_text("#audit-entries", "setup.complete")
        .await?;
    ensure!(
        table.contains("setup.step"),
        "wizard steps are logged: {table}"
    );
    // Four accepted steps, two refused, the DNS step again and the completion, at least.
    let rows = browser.find_all("#audit-entries tbody tr").await?.len();
    ensure!(rows >= 8, "expected at least 8 entries, saw {rows}");
    click(browser, "#verify-chain").await?;
    browser.wait_for_text("#verify-result", "intact").await?;
    shot(browser, "audit").await?;

    // Filtering by result leaves only the refused cell and TLS steps, and the CSV link follows.
    click(browser, "#audit-result option[value=failure]").await?;
    click(browser, "#audit-filters button[type=submit]").await?;
    browser
        .wait_for_text("#audit-summary", "of 2 entries")
        .await?;
    let row = browser
        .wait_for_text("#audit-entries tbody", "Failure")
        .await?;
    ensure!(row.contains("setup.step"), "the refused step: {row}");
    let csv = attribute(browser, "#download-csv", "href")
        .await?
        .unwrap_or_default();
    ensure!(
        csv.contains("format=csv") && csv.contains("result=failure"),
        "CSV link carries the filters: {csv}"
    );
    Ok(())
}

async fn check_settings(browser: &WebDriver) -> Result<()> {
    // Saving goes through PUT with the CSRF token; an unchanged form must round-trip.
    click(browser, ".nav a[data-route=settings]").await?;
    browser.wait_for("#settings-save").await?;
    let domain = browser.find("#settings-cell-domain").await?;
    let domain = browser.property(&domain, "value").await?;
    ensure!(domain == CELL_DOMAIN, "settings show the domain: {domain}");
    click(browser, "#settings-save").await?;
    browser.wait_for_text("#settings-alert", "saved").await?;
    shot(browser, "settings").await
}

async fn log_out_and_in(browser: &WebDriver, base: &str) -> Result<()> {
    click(browser, "#user-menu summary").await?;
    click(browser, "#logout").await?;
    browser
        .wait_for_url("/login", |u| u.ends_with("/login"))
        .await?;
    // The logout really ended the session (it needs the CSRF token, which the UI sends): the
    // admin app sends the browser back to the login page.
    browser.goto(&format!("{base}/")).await?;
    browser
        .wait_for_url("/login again, signed out", |u| u.ends_with("/login"))
        .await?;
    browser.fill("#username", ADMIN).await?;
    browser.fill("#password", "not the password").await?;
    click(browser, "#login-submit").await?;
    browser
        .wait_for_text("#login-alert", "Wrong username or password")
        .await?;
    shot(browser, "login-error").await?;
    browser.fill("#password", ADMIN_PASSWORD).await?;
    click(browser, "#login-submit").await?;
    browser
        .wait_for_url("the admin app", |u| u.starts_with(&format!("{base}/#")))
        .await?;
    browser.wait_for(SUBSYSTEMS_SHOWN).await?;
    Ok(())
}
