//! The mail part's aliases: refused under their field, added, deleted after a question;
//! the API and the service's alias map read back after each.

use std::path::Path;

use anyhow::{ensure, Result};

use super::{maps, select, ALIASES, AMY, BOB};
use crate::harness::*;
use crate::webdriver::WebDriver;

const ALIAS: &str = "info";
/// The line of the Postfix map that delivers the alias into Amy's mailbox.
const MAP_LINE: &str = "info@home.example amy@home.example";

/// Types an alias and its target, submits, and waits for the alias field's error.
async fn refused_alias(browser: &WebDriver, alias: &str, target: &str, says: &str) -> Result<()> {
    browser.fill("#mail-alias-name", alias).await?;
    select(browser, "#mail-alias-target", target).await?;
    click(browser, "#mail-alias-submit").await?;
    browser
        .wait_for_text("#mail-alias-name-error", says)
        .await
        .map(drop)
}

/// Refused under the alias field: capitals, a mailbox's name, one taken; then added.
pub async fn add_alias(browser: &WebDriver, api: &AdminApi, config: &Path) -> Result<()> {
    browser
        .wait_for_text("#mail-aliases-card", "No aliases yet")
        .await?;
    refused_alias(browser, "Info", AMY, "Alias must be a local part").await?;
    refused_alias(browser, BOB, AMY, "mailbox has this name").await?;
    ensure!(api.list(ALIASES, "aliases").await?.is_empty());
    browser.fill("#mail-alias-name", ALIAS).await?;
    select(browser, "#mail-alias-target", AMY).await?;
    click(browser, "#mail-alias-submit").await?;
    browser
        .wait_for_text("#flash", "Mail to info@home.example now reaches amy")
        .await?;
    let row = format!("#mail-aliases-table tr[data-alias={ALIAS}]");
    let text = browser.wait_for_text(&row, "info@home.example").await?;
    ensure!(text.contains(AMY), "{text}");
    let aliases = api.list(ALIASES, "aliases").await?;
    ensure!(aliases.len() == 1, "{aliases:?}");
    ensure!(aliases[0]["target"] == AMY, "{aliases:?}");
    ensure!(aliases[0]["address"] == "info@home.example", "{aliases:?}");
    let map = maps(config, "aliases");
    ensure!(map.contains(MAP_LINE), "the map Postfix reads: {map:?}");
    refused_alias(browser, ALIAS, BOB, "alias exists").await?;
    ensure!(api.list(ALIASES, "aliases").await?.len() == 1);
    Ok(())
}

/// The question names the address; after it the alias is gone from the page and the API.
pub async fn delete_alias(browser: &WebDriver, api: &AdminApi, config: &Path) -> Result<()> {
    click(browser, &format!("#mail-alias-delete-{ALIAS}")).await?;
    let question = browser
        .wait_for_text("#mail-alias-dialog", "info@home.example")
        .await?;
    ensure!(question.contains("refused from now on"), "{question}");
    click(browser, "#mail-alias-dialog-cancel").await?;
    wait_gone(browser, "#mail-alias-dialog", "the question to close").await?;
    ensure!(api.list(ALIASES, "aliases").await?.len() == 1, "kept");
    click(browser, &format!("#mail-alias-delete-{ALIAS}")).await?;
    click(browser, "#mail-alias-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", "The alias info was deleted")
        .await?;
    browser
        .wait_for_text("#mail-aliases-card", "No aliases yet")
        .await?;
    ensure!(api.list(ALIASES, "aliases").await?.is_empty());
    let map = maps(config, "aliases");
    ensure!(!map.contains(MAP_LINE), "the map Postfix reads: {map:?}");
    Ok(())
}
