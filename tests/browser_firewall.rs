//! The Firewall page in a real headless Chromium, on a cell whose nftables is not applied (the
//! page says so, and everything is still recorded): the system rules are marked and have no
//! Delete button; a rule with a bad port is refused at its field (before a request for a port
//! past 65535, from the API's `fields` for a range that ends before it starts), a good one is
//! added through the form and stored as typed; an address is blocked for an hour and shows
//! the time it has left; a template that needs a port says so at its field and applies with
//! one; traffic seeded into the store shows in the summary and as bars of the chart; a rule
//! and an address are deleted after confirming. Screenshots land in target/screenshots/
//! (firewall.png, firewall-mobile*.png, firewall-field-error.png).

#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use webdriver::WebDriver;

#[path = "common/browser.rs"]
mod harness;
#[path = "common/ports.rs"]
mod ports;
use harness::*;

const RULE: &str = "Game server";
const RULE_PORTS: (u16, u16) = (27015, 27016);
const BLOCKED: &str = "203.0.113.42";
const BLOCK_SECONDS: i64 = 3600;
/// The template applied (it has no default port) and the port it gets.
const TEMPLATE: &str = "udp-flood";
const TEMPLATE_PORT: u16 = 27015;
/// Traffic seeded into the store: one row a minute, this many minutes back from 1.
const SEEDED_MINUTES: i64 = 20;
const SYSTEM_RULES: usize = 3;

/// Per-minute rows for all traffic (port 0) and for the template's port, as the routing
/// driver records them; returns the packets passed and dropped in all.
fn seed_traffic(db: &Path) -> Result<(u64, u64)> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let (mut passed, mut dropped) = (0, 0);
    for minute in 1..=SEEDED_MINUTES {
        let (seen, drop) = (100 + 10 * minute, 5 * (minute % 4));
        passed += (seen - drop) as u64;
        dropped += drop as u64;
        for (port, seen, drop) in [(0, seen, drop), (i64::from(TEMPLATE_PORT), 40, 3)] {
            conn.execute(
                "INSERT INTO routing_metrics (bucket, port, packets_seen, packets_dropped,
                     bytes_seen, bytes_dropped)
                 VALUES (strftime('%Y-%m-%dT%H:%M:00.000000Z', 'now', ?1), ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    format!("-{minute} minutes"),
                    port,
                    seen,
                    drop,
                    seen * 120,
                    drop * 120
                ],
            )?;
        }
    }
    Ok((passed, dropped))
}

async fn count(browser: &WebDriver, script: &str) -> Result<u64> {
    Ok(browser
        .execute(script, json!([]))
        .await?
        .as_u64()
        .unwrap_or(0))
}

async fn choose(browser: &WebDriver, css: &str, value: &str) -> Result<()> {
    browser
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];
             s.dispatchEvent(new Event('change'));",
            json!([css, value]),
        )
        .await
        .map(drop)
}

#[tokio::test]
async fn firewall_page_works_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) = start_browser_cell(&[]).await?;
    let traffic = seed_traffic(&processes.state_dir.join("picd.db"))?;
    let api = AdminApi::log_in(&base).await?;

    admin_app(&browser, &base).await?;
    click(&browser, ".nav a[data-route=firewall]").await?;
    browser
        .wait_for_url("the Firewall page", |u| u.contains("#/firewall"))
        .await?;
    let note = browser.wait_for_text("#fw-nftables", "nftables").await?;
    println!("nftables note: {note}");

    system_rules(&browser).await?;
    traffic_chart(&browser, traffic).await?;
    add_rule(&browser, &api).await?;
    block_address(&browser, &api).await?;
    apply_template(&browser, &api).await?;

    full_page_shot(&browser, "firewall", 1280).await?;
    full_page_shot(&browser, "firewall-mobile-full", 390).await?;
    browser.set_window_size(390, 844).await?;
    browser.execute("window.scrollTo(0, 0);", json!([])).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shot(&browser, "firewall-mobile").await?;
    browser.set_window_size(1280, 900).await?;

    delete_rule(&browser, &api).await?;
    delete_address(&browser, &api).await?;
    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}

/// The built-in rules are listed first, marked, and offer no Delete button.
async fn system_rules(browser: &WebDriver) -> Result<()> {
    let rows = "#fw-rules-table tr[data-system]";
    wait_js(
        browser,
        "the system rules",
        "return document.querySelectorAll(arguments[0]).length === arguments[1];",
        json!([rows, SYSTEM_RULES]),
    )
    .await?;
    for row in browser.find_all(rows).await? {
        let text = browser.text(&row).await?;
        ensure!(text.contains("system"), "a system rule is marked: {text}");
    }
    ensure!(
        browser
            .find_all(&format!("{rows} button"))
            .await?
            .is_empty(),
        "a system rule has a button"
    );
    Ok(())
}

/// The seeded minutes show in the hour's summary and as that many bars; one port shows its
/// own; the day has one slot an hour.
async fn traffic_chart(browser: &WebDriver, (passed, dropped): (u64, u64)) -> Result<()> {
    let figure = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    browser
        .wait_for_text("#traffic-passed", &figure(passed))
        .await?;
    browser
        .wait_for_text("#traffic-dropped", &figure(dropped))
        .await?;
    let drawn = "return [...document.querySelectorAll('#traffic-svg .chart-bar')]
                  .filter(g => g.querySelector('rect')).length;";
    let slots = "return document.querySelectorAll('#traffic-svg .chart-bar').length;";
    ensure!(
        count(browser, drawn).await? == SEEDED_MINUTES as u64,
        "bars drawn"
    );
    let minutes = count(browser, slots).await?;
    ensure!(
        (60..=61).contains(&minutes),
        "an hour of minutes: {minutes}"
    );
    browser
        .wait_for_text("#traffic-ports", &TEMPLATE_PORT.to_string())
        .await?;

    choose(browser, "#traffic-port", &TEMPLATE_PORT.to_string()).await?;
    browser
        .wait_for_text("#traffic-chart-title", &format!("port {TEMPLATE_PORT}"))
        .await?;
    ensure!(
        count(browser, drawn).await? == SEEDED_MINUTES as u64,
        "port bars"
    );
    let label = browser
        .attribute(&browser.find("#traffic-svg").await?, "aria-label")
        .await?
        .unwrap_or_default();
    ensure!(label.contains(" 740 passed"), "the chart's label: {label}");

    click(browser, "#traffic-window-24h").await?;
    browser
        .wait_for_text("#traffic-chart-title", "per hour")
        .await?;
    let hours = count(browser, slots).await?;
    ensure!((24..=25).contains(&hours), "a day of hours: {hours}");
    choose(browser, "#traffic-port", "").await?;
    click(browser, "#traffic-window-1h").await?;
    browser
        .wait_for_text("#traffic-chart-title", "per minute")
        .await?;
    Ok(())
}

/// A port past 65535 is refused at its input; a range that ends before it starts is refused
/// by the API at the second port's input; the good rule is stored as typed.
async fn add_rule(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    browser.fill("#fw-name", RULE).await?;
    choose(browser, "#fw-protocol", "udp").await?;
    browser.fill("#fw-port-start", "70000").await?;
    click(browser, "#fw-add-submit").await?;
    browser
        .wait_for_text("#fw-port-start-error", "65,535")
        .await?;
    let invalid = browser
        .attribute(&browser.find("#fw-port-start").await?, "aria-invalid")
        .await?;
    ensure!(invalid.as_deref() == Some("true"), "the port is marked");

    browser.fill("#fw-port-start", "9000").await?;
    browser.fill("#fw-port-end", "8000").await?;
    click(browser, "#fw-add-submit").await?;
    let error = browser
        .wait_for_text("#fw-port-end-error", "at least")
        .await?;
    println!("field error from the API: {error}");
    browser
        .wait_for_text("#fw-add-alert", "Please correct")
        .await?;
    shot(browser, "firewall-field-error").await?;

    browser
        .fill("#fw-port-start", &RULE_PORTS.0.to_string())
        .await?;
    browser
        .fill("#fw-port-end", &RULE_PORTS.1.to_string())
        .await?;
    choose(browser, "#fw-action", "limit").await?;
    browser.fill("#fw-limit-rate", "50").await?;
    choose(browser, "#fw-limit-unit", "minute").await?;
    click(browser, "#fw-state-new").await?;
    click(browser, "#fw-add-submit").await?;
    browser
        .wait_for_text("#flash", &format!("The rule {RULE} was added"))
        .await?;
    let row = "#fw-rules-table tr:not([data-system])";
    let text = browser.wait_for_text(row, RULE).await?;
    for shown in ["udp 27015–27016", "limit 50/minute", "state new", "Pending"] {
        ensure!(text.contains(shown), "the row shows {shown}: {text}");
    }
    ensure!(
        !browser
            .find_all(&format!("{row} button[id^=fw-delete-]"))
            .await?
            .is_empty(),
        "the rule can be deleted"
    );
    let rules = api.list("/api/routing/firewall", "rules").await?;
    let stored = rules
        .iter()
        .find(|r| r["name"] == RULE)
        .with_context(|| format!("{RULE} stored: {rules:?}"))?;
    let expected = json!({ "chain": "input", "protocol": "udp", "port_start": RULE_PORTS.0,
        "port_end": RULE_PORTS.1, "action": "limit", "limit_rate": 50,
        "limit_unit": "minute", "conntrack": "new", "is_system": false });
    for (key, value) in expected.as_object().context("object")? {
        ensure!(&stored[key] == value, "{key}: {stored}");
    }
    Ok(())
}

/// A bad address is refused at its input; a block for an hour shows its time left and is
/// stored with that expiry.
async fn block_address(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    browser.fill("#ip-address", "not-an-address").await?;
    click(browser, "#ip-add-submit").await?;
    browser.wait_for_text("#ip-address-error", "IPv4").await?;

    browser.fill("#ip-address", BLOCKED).await?;
    browser.fill("#ip-reason", "Port scan").await?;
    choose(browser, "#ip-expiry", &BLOCK_SECONDS.to_string()).await?;
    let asked = time::OffsetDateTime::now_utc();
    click(browser, "#ip-add-submit").await?;
    browser
        .wait_for_text("#flash", &format!("{BLOCKED} was added"))
        .await?;
    let row = format!("#ip-list-table tr[data-address='{BLOCKED}']");
    let text = browser.wait_for_text(&row, "in 59 min").await?;
    for shown in ["Blocked", "Port scan", "Pending"] {
        ensure!(text.contains(shown), "the entry shows {shown}: {text}");
    }
    let entries = api.list("/api/routing/ip-list", "entries").await?;
    let stored = entries
        .iter()
        .find(|e| e["ip_address"] == BLOCKED)
        .with_context(|| format!("{BLOCKED} stored: {entries:?}"))?;
    ensure!(stored["list_type"] == "blacklist", "{stored}");
    let expires = stored["expires_at"].as_str().context("expires_at")?;
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)?;
    let seconds = (expires - asked).whole_seconds();
    ensure!(
        (BLOCK_SECONDS - 60..=BLOCK_SECONDS + 60).contains(&seconds),
        "expires in {seconds} s"
    );

    // An allowed address does not expire: the choice is off for it.
    choose(browser, "#ip-list-type", "whitelist").await?;
    let disabled = browser.find("#ip-expiry[disabled]").await;
    ensure!(
        disabled.is_ok(),
        "the expiry is disabled for the allow list"
    );
    choose(browser, "#ip-list-type", "blacklist").await?;
    Ok(())
}

/// A template without a default port asks for one at its field, then makes its rule.
async fn apply_template(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let form = format!("#tpl-{TEMPLATE}");
    click(browser, &format!("{form}-apply")).await?;
    browser
        .wait_for_text(&format!("{form}-port-error"), "needs a port")
        .await?;
    browser
        .fill(&format!("{form}-port"), &TEMPLATE_PORT.to_string())
        .await?;
    click(browser, &format!("{form}-apply")).await?;
    let name = format!("UDP flood shield ({TEMPLATE_PORT})");
    browser
        .wait_for_text("#flash", &format!("{name} was added"))
        .await?;
    let text = browser.wait_for_text("#rl-table", &name).await?;
    ensure!(text.contains("500/s per source"), "the limit: {text}");
    let rules = api.list("/api/routing/rate-limits", "rules").await?;
    ensure!(
        rules
            .iter()
            .any(|r| r["name"] == name.as_str() && r["port_start"] == TEMPLATE_PORT),
        "the template's rule is stored: {rules:?}"
    );
    Ok(())
}

/// Delete asks first: Cancel keeps the rule, confirming removes it here and in the API.
async fn delete_rule(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let button = "#fw-rules-table tr:not([data-system]) button[id^=fw-delete-]";
    click(browser, button).await?;
    browser
        .wait_for_text("#fw-delete-dialog", "counters go with it")
        .await?;
    click(browser, "#fw-delete-dialog-cancel").await?;
    wait_gone(browser, "#fw-delete-dialog", "Cancel to close the dialog").await?;
    ensure!(
        !browser.find_all(button).await?.is_empty(),
        "Cancel keeps the rule"
    );
    click(browser, button).await?;
    click(browser, "#fw-delete-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", &format!("The rule {RULE} was deleted"))
        .await?;
    wait_gone(browser, button, "the deleted rule to go").await?;
    let rules = api.list("/api/routing/firewall", "rules").await?;
    ensure!(
        rules.len() == SYSTEM_RULES && !rules.iter().any(|r| r["name"] == RULE),
        "only the system rules are left: {rules:?}"
    );
    Ok(())
}

async fn delete_address(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let row = format!("#ip-list-table tr[data-address='{BLOCKED}']");
    click(browser, &format!("{row} button")).await?;
    browser
        .wait_for_text("#ip-delete-dialog", "reaches the cell again")
        .await?;
    click(browser, "#ip-delete-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", &format!("{BLOCKED} was removed"))
        .await?;
    // This cell applies no table (routing is off here), so the entry stays, shown as being
    // removed, with nothing left to click.
    browser.wait_for_text(&row, "Removing").await?;
    browser
        .wait_for_text("#ip-list-summary", "0 blocked")
        .await?;
    wait_gone(
        browser,
        &format!("{row} button"),
        "the removing entry's Delete",
    )
    .await?;
    let entries = api.list("/api/routing/ip-list", "entries").await?;
    ensure!(
        entries.len() == 1 && entries[0]["status"] == "pending_remove",
        "the entry is being removed: {entries:?}"
    );
    Ok(())
}
