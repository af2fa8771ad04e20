//! The Services page's mail part in a real headless Chromium, on a cell whose Docker engine
//! does not answer: the mail API reads and writes SQLite and the service's folders, so it
//! answers all the same once mail is installed (recorded, not applied). Nothing of mail shows
//! before the install; then the mailboxes of two peers' accounts with their use (a message
//! file in a maildir, where Dovecot's delivery puts one) against their quota, as text and a
//! bar; a mailbox's own quota set (a number refused in the page, one out of range refused by
//! the API under its field), and another's cleared back to the default; the default quota
//! changed; aliases refused under their field (bad local part, a mailbox's name, taken, a
//! mailbox gone), added and deleted after a question. After each action the API is read
//! back, and the maps picd writes for Postfix and Dovecot where a change reaches them.
//! Removing mail leaves no trace of the part. Screenshots in target/screenshots/
//! (services-mail*.png).

#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::Path;

use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
use harness::*;

#[path = "browser_mail/aliases.rs"]
mod aliases;
use aliases::{add_alias, delete_alias};

const AMY: &str = "amy";
const BOB: &str = "bob";
/// A socket path where no engine listens.
const NO_ENGINE: &str = "/nonexistent/picd-test/docker.sock";
const MAILBOXES: &str = "/api/email/mailboxes";
const ALIASES: &str = "/api/email/aliases";
/// What sits in Amy's maildir: 58 KiB, nearly all of the 64 KiB she is given.
const AMY_MESSAGE_BYTES: u64 = 58 * 1024;
const AMY_LIMIT_KIB: u64 = 64;
const BOB_LIMIT_MIB: u64 = 5;
const DEFAULT_BYTES: u64 = 1 << 30;
const NEW_DEFAULT_GIB: u64 = 2;

async fn mailbox(api: &AdminApi, username: &str) -> Result<Value> {
    let boxes = api.list(MAILBOXES, "mailboxes").await?;
    boxes
        .into_iter()
        .find(|m| m["username"] == username)
        .with_context(|| format!("the mailbox {username}"))
}

/// One of the maps picd writes into the mail service's config folder ("" before the first).
fn maps(config: &Path, name: &str) -> String {
    std::fs::read_to_string(config.join(name)).unwrap_or_default()
}

/// Children of the page's mail part: none while mail is not installed.
async fn mail_part_children(browser: &WebDriver) -> Result<u64> {
    let count = browser
        .execute(
            "const part = document.querySelector('#svc-mail');
             return part ? part.children.length : -1;",
            json!([]),
        )
        .await?;
    count.as_u64().context("#svc-mail is on the page")
}

async fn select(browser: &WebDriver, css: &str, value: &str) -> Result<()> {
    browser
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];
             s.dispatchEvent(new Event('change', { bubbles: true }));",
            json!([css, value]),
        )
        .await
        .map(drop)
}

#[tokio::test]
async fn mail_mailboxes_quotas_and_aliases_work_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) =
        start_browser_cell(&[("PICD_DOCKER_SOCKET", NO_ENGINE)]).await?;
    let api = AdminApi::log_in(&base).await?;
    for peer in [AMY, BOB] {
        let body = json!({ "name": peer, "portal_password": "a long passphrase of theirs" });
        api.post("/api/peers", body).await?;
    }
    admin_app(&browser, &base).await?;
    browser.goto(&format!("{base}/#/services")).await?;
    browser
        .wait_for_text("#svc-card-mail", "Not installed")
        .await?;
    ensure!(
        mail_part_children(&browser).await? == 0,
        "mail not installed"
    );
    let (status, body) = api.send(Method::GET, MAILBOXES, None).await?;
    ensure!(status == 404 && body["code"] == "not_installed", "{body}");

    install_mail(&browser).await?;
    for peer in [AMY, BOB] {
        add_account(&browser, peer).await?;
    }
    let mail_dir = processes.state_dir.join("services/mail");
    let config = mail_dir.join("config");
    let home = mail_dir.join("volumes/data");
    deliver(&home.join(AMY), AMY_MESSAGE_BYTES)?;
    browser.execute("location.reload();", json!([])).await?;
    mailboxes_shown(&browser, &api).await?;
    own_quota(&browser, &api, &config).await?;
    quota_back_to_default(&browser, &api).await?;
    default_quota(&browser, &api).await?;
    add_alias(&browser, &api, &config).await?;
    phone_fits(&browser).await?;
    full_page_shot(&browser, "services-mail", 1280).await?;
    full_page_shot(&browser, "services-mail-mobile", 390).await?;
    delete_alias(&browser, &api, &config).await?;
    mailbox_gone(&browser, &api).await?;
    audited(&api).await?;
    remove_mail(&browser).await?;
    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// Install from the store card; the mail part appears with no mailbox yet.
async fn install_mail(browser: &WebDriver) -> Result<()> {
    click(browser, "#svc-install-mail").await?;
    browser
        .wait_for("#svc-card-mail[data-installed=true]")
        .await?;
    browser
        .wait_for_text("#mail-mailboxes-card", "No mailboxes yet")
        .await?;
    browser
        .wait_for_text("#mail-aliases-card", "add an account in Mail first")
        .await?;
    Ok(())
}

async fn add_account(browser: &WebDriver, peer: &str) -> Result<()> {
    let who = "#svc-add-mail-who";
    browser
        .wait_for(&format!("{who} option[value={peer}]"))
        .await?;
    select(browser, who, peer).await?;
    click(browser, "#svc-add-mail-submit").await?;
    browser
        .wait_for(&format!("#mail-mailboxes-table tr[data-mailbox={peer}]"))
        .await?;
    Ok(())
}

/// A message in the maildir's `new`, as Dovecot's LMTP delivery leaves one.
fn deliver(home: &std::path::Path, bytes: u64) -> Result<()> {
    let new = home.join("Maildir/new");
    std::fs::create_dir_all(&new)?;
    let head = "Subject: the picnic\r\n\r\n";
    let message = format!("{head}{}", "x".repeat(bytes as usize - head.len()));
    std::fs::write(new.join("1765000000.M1P1.mail"), message)?;
    Ok(())
}

/// Each mailbox's row: whose it is, its messages, its use as text and bar, its quota.
async fn mailboxes_shown(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let row = format!("#mail-mailboxes-table tr[data-mailbox={AMY}]");
    let text = browser.wait_for_text(&row, "58.0 KiB of 1.0 GiB").await?;
    ensure!(
        text.contains("Peer amy") && text.contains("(1 new)"),
        "{text}"
    );
    ensure!(text.contains("Default"), "{text}");
    let stored = mailbox(api, AMY).await?;
    ensure!(
        stored["quota"]["used_bytes"] == AMY_MESSAGE_BYTES,
        "{stored}"
    );
    ensure!(stored["quota"]["limit_bytes"] == DEFAULT_BYTES, "{stored}");
    let bar = meter(browser, AMY).await?;
    ensure!(
        bar == [AMY_MESSAGE_BYTES as f64, DEFAULT_BYTES as f64],
        "{bar:?}"
    );
    let bob = format!("#mail-mailboxes-table tr[data-mailbox={BOB}]");
    let text = text_of(browser, &bob).await?;
    ensure!(text.contains("0 B of 1.0 GiB (0%)"), "{text}");
    Ok(())
}

/// The bar's value and max.
async fn meter(browser: &WebDriver, username: &str) -> Result<Vec<f64>> {
    let bar = browser
        .execute(
            "const m = document.querySelector(
               `#mail-mailboxes-table tr[data-mailbox=${arguments[0]}] meter`);
             return [m.value, m.max];",
            json!([username]),
        )
        .await?;
    let figures = bar.as_array().context("value and max")?;
    Ok(figures.iter().filter_map(Value::as_f64).collect())
}

async fn open_quota(browser: &WebDriver, username: &str, which: &str) -> Result<()> {
    click(browser, &format!("#mail-quota-{username}")).await?;
    browser.wait_for("#mail-quota-dialog[open]").await?;
    click(browser, &format!("#mail-quota-which-{which}")).await
}

/// Amy's own quota: words are refused in the page, half a KiB by the API, under the field;
/// 64 KiB is saved, and her bar is nearly full.
async fn own_quota(browser: &WebDriver, api: &AdminApi, config: &Path) -> Result<()> {
    open_quota(browser, AMY, "own").await?;
    browser.fill("#mail-quota-limit", "lots").await?;
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser
        .wait_for_text("#mail-quota-limit-error", "must be a number")
        .await?;
    browser.fill("#mail-quota-limit", "0.5").await?;
    select(browser, "#mail-quota-limit-unit", "KiB").await?;
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser
        .wait_for_text("#mail-quota-limit-error", "must be 1024 bytes to 1 TiB")
        .await?;
    shot(browser, "services-mail-quota").await?;
    ensure!(mailbox(api, AMY).await?["quota"]["default"] == true);
    browser
        .fill("#mail-quota-limit", &AMY_LIMIT_KIB.to_string())
        .await?;
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", "The quota of amy is its own limit, 64.0 KiB")
        .await?;
    let row = format!("#mail-mailboxes-table tr[data-mailbox={AMY}]");
    let text = browser.wait_for_text(&row, "Own limit").await?;
    ensure!(text.contains("58.0 KiB of 64.0 KiB (91%)"), "{text}");
    browser
        .wait_for(&format!("{row} .usage-nearly-full"))
        .await?;
    let quota = &mailbox(api, AMY).await?["quota"];
    ensure!(quota["limit_bytes"] == AMY_LIMIT_KIB * 1024, "{quota}");
    ensure!(quota["default"] == false, "{quota}");
    let map = maps(config, "quota");
    let line = format!(
        "{AMY}:::::::userdb_quota_rule=*:bytes={}",
        AMY_LIMIT_KIB * 1024
    );
    ensure!(map.contains(&line), "the map Dovecot reads: {map:?}");
    Ok(())
}

/// Bob is given 5 MiB of his own, then the default again.
async fn quota_back_to_default(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    open_quota(browser, BOB, "own").await?;
    browser
        .fill("#mail-quota-limit", &BOB_LIMIT_MIB.to_string())
        .await?;
    select(browser, "#mail-quota-limit-unit", "MiB").await?;
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser.wait_for_text("#flash", "5.0 MiB").await?;
    let quota = &mailbox(api, BOB).await?["quota"];
    ensure!(quota["limit_bytes"] == BOB_LIMIT_MIB << 20, "{quota}");

    open_quota(browser, BOB, "default").await?;
    let limit = browser.find("#mail-quota-limit").await?;
    ensure!(!browser.is_displayed(&limit).await?, "no limit to type");
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", "The quota of bob is the default, 1.0 GiB")
        .await?;
    let quota = &mailbox(api, BOB).await?["quota"];
    ensure!(quota["default"] == true, "{quota}");
    ensure!(quota["limit_bytes"] == DEFAULT_BYTES, "{quota}");
    let row = format!("#mail-mailboxes-table tr[data-mailbox={BOB}]");
    browser.wait_for_text(&row, "Default").await?;
    Ok(())
}

/// A default of 0, and one past what JSON carries exactly, are refused under the field; 2 GiB
/// is saved and is Bob's, not Amy's.
async fn default_quota(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    for refused in ["0", "99999999999999"] {
        browser.fill("#mail-default", refused).await?;
        click(browser, "#mail-default-submit").await?;
        browser
            .wait_for_text("#mail-default-error", "must be 1024 bytes to 1 TiB")
            .await?;
    }
    let quota = api.get("/api/email/quota").await?;
    ensure!(quota["default_bytes"] == DEFAULT_BYTES, "{quota}");
    browser
        .fill("#mail-default", &NEW_DEFAULT_GIB.to_string())
        .await?;
    select(browser, "#mail-default-unit", "GiB").await?;
    click(browser, "#mail-default-submit").await?;
    browser
        .wait_for_text("#flash", "The default mail quota is now 2.0 GiB")
        .await?;
    let quota = api.get("/api/email/quota").await?;
    ensure!(quota["default_bytes"] == NEW_DEFAULT_GIB << 30, "{quota}");
    let bob = format!("#mail-mailboxes-table tr[data-mailbox={BOB}]");
    browser.wait_for_text(&bob, "0 B of 2.0 GiB").await?;
    let amy = mailbox(api, AMY).await?;
    ensure!(amy["quota"]["limit_bytes"] == AMY_LIMIT_KIB * 1024, "{amy}");
    Ok(())
}

/// At a phone's width nothing of the mail part is wider than the screen.
async fn phone_fits(browser: &WebDriver) -> Result<()> {
    browser.set_window_size(390, 900).await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let wide = browser
        .execute(
            "const width = document.documentElement.clientWidth;
             return [...document.querySelectorAll('#svc-mail *')]
               .filter(e => e.getBoundingClientRect().right > width + 1)
               .map(e => e.tagName + '#' + e.id + '.' + e.className);",
            json!([]),
        )
        .await?;
    ensure!(wide == json!([]), "cut off at 390 px: {wide}");
    browser.set_window_size(1280, 900).await
}

/// Bob's account goes while the page still offers his mailbox: the alias is refused under
/// the target (404), and his quota in the dialog. (The focus stays in the form from before
/// the account goes, so the page's own refresh does not redraw it meanwhile.)
async fn mailbox_gone(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    browser.fill("#mail-alias-name", "sales").await?;
    let path = format!("/api/services/catalog/mail/accounts/{BOB}");
    let (status, body) = api.send(Method::DELETE, &path, None).await?;
    ensure!(status == 200, "{status} {body}");
    select(browser, "#mail-alias-target", BOB).await?;
    click(browser, "#mail-alias-submit").await?;
    browser
        .wait_for_text("#mail-alias-target-error", "Mailbox not found")
        .await?;
    open_quota(browser, BOB, "default").await?;
    click(browser, "#mail-quota-dialog-confirm").await?;
    browser
        .wait_for_text("#mail-quota-dialog-alert", "mailbox not found")
        .await?;
    click(browser, "#mail-quota-dialog-cancel").await?;
    ensure!(api.list(ALIASES, "aliases").await?.is_empty());
    Ok(())
}

const ALIAS_RESULTS: &[&str] = &[
    "failure", "failure", "success", "failure", "success", "failure",
];
const QUOTA_RESULTS: &[&str] = &[
    "failure", "success", "success", "success", "failure", "failure", "success", "failure",
];

/// One audit entry per change the page asked for, refused ones included: for the aliases a
/// bad local part, a mailbox's name, an add, a taken one, a delete, a mailbox gone; for the
/// quotas words (refused in the page: no entry), half a KiB, Amy's, Bob's twice, defaults of
/// 0 and of too much, the default, and Bob's once his mailbox was gone.
async fn audited(api: &AdminApi) -> Result<()> {
    for (target, expected) in [("mail_alias", ALIAS_RESULTS), ("mail_quota", QUOTA_RESULTS)] {
        let path = format!("/api/audit?target_type={target}&limit=100");
        let mut entries = api.list(&path, "entries").await?;
        entries.sort_by_key(|e| e["id"].as_i64());
        let results: Vec<&str> = entries
            .iter()
            .filter_map(|e| e["result"].as_str())
            .collect();
        let seen: Vec<String> = entries
            .iter()
            .map(|e| format!("{} {} {}", e["action"], e["target_id"], e["result"]))
            .collect();
        ensure!(results == expected, "{target}: {seen:#?}");
    }
    Ok(())
}

/// Mail removed (data kept): the page shows nothing of it any more.
async fn remove_mail(browser: &WebDriver) -> Result<()> {
    click(browser, "#svc-remove-mail").await?;
    browser.wait_for("#svc-remove-dialog[open]").await?;
    click(browser, "#svc-remove-dialog-confirm").await?;
    browser
        .wait_for("#svc-card-mail[data-installed=false]")
        .await?;
    wait_js(
        browser,
        "the mail part to empty",
        "return document.querySelector('#svc-mail').children.length === 0;",
        json!([]),
    )
    .await?;
    Ok(())
}
