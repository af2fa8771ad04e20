//! The Exits page in a real headless Chromium, on a cell that cannot build interfaces (the
//! browser tests' picd has routing off): no exits at first; a provider's file with a PostUp
//! hook is refused at the file's field naming its line; the same file without it is added,
//! listed with its state, and its keys never reach the page or the API's answers; an .ovpn
//! with `up /bin/sh` is refused at the file naming its line; a proxy without a host gets its
//! field errors; a SOCKS5 proxy is added through the form and listed with its type and
//! host:port, its password never shown; it is edited (edit.rs), an OpenVPN file and an HTTP
//! proxy are added, a peer on the WireGuard exit shows its traffic (traffic.rs); all are
//! deleted after confirming. Screenshots land in target/screenshots/ (exits.png,
//! exits-mobile.png, exits-field-error.png, exits-ovpn-refused.png, exits-proxy-errors.png,
//! exits-proxy-errors-mobile.png, exits-edit-error.png, exits-edit-error-mobile.png,
//! peer-exit-traffic.png, peer-exit-traffic-mobile.png).

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

#[path = "browser_exits/edit.rs"]
mod edit;
#[path = "browser_exits/traffic.rs"]
mod traffic;

const TOR_EXIT: &str = "onion";
const NAME: &str = "provider-one";
/// WireGuard's own example keys: well formed, never used for anything real.
const PRIVATE_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PROVIDER_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PROXY: &str = "office-proxy";
/// A loopback address: the browser tests' picd applies no exit, and nothing may leave anyway.
const PROXY_HOST: &str = "127.0.0.1";
const PROXY_PORT: &str = "1080";
const PROXY_PASSWORD: &str = "proxy-secret-9c1e";
/// A provider's .ovpn whose 4th line would run a shell as root.
const OVPN_WITH_UP: &str = "client\nremote vpn.example.net 1194 udp\nnobind\nup /bin/sh\n";

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

/// Picks a type in the add form the way a user does: the select changes, the fields follow.
async fn pick_type(browser: &WebDriver, kind: &str) -> Result<()> {
    browser
        .execute(
            "const s = document.getElementById('exit-type'); s.value = arguments[0];
             s.dispatchEvent(new Event('change'));",
            json!([kind]),
        )
        .await?;
    wait_js(
        browser,
        "the form shows the type's fields",
        "return document.getElementById('exit-add-form').dataset.type === arguments[0];",
        json!([kind]),
    )
    .await
    .map(drop)
}

/// The .ovpn refusal (a 422) lands under the file, naming the line.
async fn openvpn_up_is_refused(browser: &WebDriver) -> Result<()> {
    pick_type(browser, "openvpn").await?;
    browser.fill("#exit-name", "provider-two").await?;
    fill_file(browser, OVPN_WITH_UP).await?;
    click(browser, "#exit-add-submit").await?;
    let error = browser
        .wait_for_text("#exit-config-error", "up is refused")
        .await?;
    ensure!(
        error.to_lowercase().contains("line 4"),
        "the error names the line: {error}"
    );
    full_page_shot(browser, "exits-ovpn-refused", 1280).await
}

/// A proxy without a host: the API's field errors each land by their field.
async fn proxy_field_errors(browser: &WebDriver) -> Result<()> {
    pick_type(browser, "socks5").await?;
    let file_shown = browser.find("#exit-config").await?;
    ensure!(
        !browser.is_displayed(&file_shown).await?,
        "a proxy's form shows the file box"
    );
    browser.fill("#exit-name", PROXY).await?;
    browser.fill("#exit-port", "70000").await?;
    click(browser, "#exit-add-submit").await?;
    let host = browser
        .wait_for_text("#exit-host-error", "is required")
        .await?;
    let port = text_of(browser, "#exit-port-error").await?;
    ensure!(port.contains("65535"), "the port's error: {port}");
    println!("proxy errors: {host} / {port}");
    full_page_shot(browser, "exits-proxy-errors", 1280).await?;
    browser.set_window_size(390, 844).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    full_page_shot(browser, "exits-proxy-errors-mobile", 390).await?;
    browser.set_window_size(1280, 900).await
}

/// A SOCKS5 proxy added through the form: listed with its type and host:port, and its
/// password neither left in the form, on the page nor in the API's answer.
async fn socks5_is_added(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    pick_type(browser, "socks5").await?;
    browser.fill("#exit-name", PROXY).await?;
    browser.fill("#exit-host", PROXY_HOST).await?;
    browser.fill("#exit-port", PROXY_PORT).await?;
    browser.fill("#exit-username", "cell").await?;
    browser.fill("#exit-password", PROXY_PASSWORD).await?;
    let kind = browser.find("#exit-password").await?;
    ensure!(
        browser.attribute(&kind, "type").await?.as_deref() == Some("password"),
        "the proxy's password is typed in the clear"
    );
    click(browser, "#exit-add-submit").await?;
    browser.wait_for_text("#flash", "was added").await?;
    let row = browser
        .wait_for_text("#exits-table tr[data-type=socks5]", PROXY)
        .await?;
    ensure!(row.contains("SOCKS5"), "the row shows its type: {row}");
    let target = format!("{PROXY_HOST}:{PROXY_PORT}");
    ensure!(row.contains(&target), "the row shows {target}: {row}");
    // A redirect to redsocks: no device and no handshake of its own to show.
    ensure!(
        row.contains("none: a redirect") && row.contains("health by a probe"),
        "the proxy's row shows an interface or a handshake it does not have: {row}"
    );
    let left = browser.property(&kind, "value").await?;
    ensure!(left == json!(""), "the password stays in the form: {left}");
    ensure!(
        !browser.page_text().await.contains(PROXY_PASSWORD),
        "the page shows the proxy's password"
    );
    let stored = api.get("/api/connectivity/connections").await?;
    ensure!(
        !stored.to_string().contains(PROXY_PASSWORD),
        "the API answers the proxy's password"
    );
    Ok(())
}

async fn delete_exit(browser: &WebDriver, id: &str) -> Result<()> {
    click(browser, &format!("#exit-delete-{id}")).await?;
    click(browser, "#exit-delete-dialog button.btn-danger").await?;
    browser.wait_for_text("#flash", "was deleted").await?;
    wait_gone(
        browser,
        &format!("#exit-delete-{id}"),
        "the deleted exit's row",
    )
    .await
}

/// A provider's WireGuard file: refused with a PostUp hook (naming the line), then added and
/// listed with its type and endpoint, its key neither on the page nor in the API's answer.
async fn wireguard_file_is_refused_then_added(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    // A file that would run a command is refused at its field, naming the line.
    browser.fill("#exit-name", NAME).await?;
    fill_file(browser, &provider_file("PostUp = curl x | sh")).await?;
    click(browser, "#exit-add-submit").await?;
    let error = browser
        .wait_for_text("#exit-config-error", "PostUp is refused")
        .await?;
    ensure!(
        error.to_lowercase().contains("line 5"),
        "the error names the line: {error}"
    );
    full_page_shot(browser, "exits-field-error", 1280).await?;

    fill_file(browser, &provider_file("")).await?;
    click(browser, "#exit-add-submit").await?;
    browser.wait_for_text("#flash", "was added").await?;
    let row = browser.wait_for_text("#exits-table", NAME).await?;
    ensure!(row.contains("WireGuard"), "{row}");
    ensure!(
        row.contains("198.51.100.2:51820"),
        "the row shows the endpoint: {row}"
    );
    let page = browser.page_text().await;
    ensure!(
        !page.contains(PRIVATE_KEY),
        "the page shows the private key"
    );
    let stored = api.get("/api/connectivity/connections").await?;
    ensure!(stored["connections"][0]["name"] == NAME, "{stored}");
    ensure!(
        !stored.to_string().contains(PRIVATE_KEY),
        "the API answers the key"
    );
    Ok(())
}

/// A Tor exit added through the form: only a name to give (no file, proxy or login fields),
/// listed with its type and where it goes.
async fn tor_is_added(browser: &WebDriver) -> Result<()> {
    pick_type(browser, "tor").await?;
    for hidden in ["#exit-config", "#exit-host", "#exit-username"] {
        let element = browser.find(hidden).await?;
        ensure!(
            !browser.is_displayed(&element).await?,
            "tor's form shows {hidden}"
        );
    }
    browser.fill("#exit-name", TOR_EXIT).await?;
    click(browser, "#exit-add-submit").await?;
    let row = browser
        .wait_for_text("#exits-table tr[data-type=tor]", TOR_EXIT)
        .await?;
    ensure!(
        row.contains("Tor network"),
        "the row says where it goes: {row}"
    );
    Ok(())
}

#[tokio::test]
async fn exits_page_works_in_chromium() -> Result<()> {
    require_browser();
    // The browser is bound after the guard, so it drops first.
    let (mut processes, base, browser) = start_browser_cell(&[]).await?;
    admin_app(&browser, &base).await?;
    click(&browser, ".nav a[data-route=exits]").await?;
    browser.wait_for_text("#exits-list", "no exits").await?;
    let note = browser
        .wait_for_text("#exits-driver", "not applied")
        .await?;
    println!("driver note: {note}");

    let api = AdminApi::log_in(&base).await?;
    wireguard_file_is_refused_then_added(&browser, &api).await?;
    openvpn_up_is_refused(&browser).await?;
    proxy_field_errors(&browser).await?;
    socks5_is_added(&browser, &api).await?;
    tor_is_added(&browser).await?;
    edit::proxy_is_edited(&browser, &api).await?;
    edit::wireguard_file_is_kept(&browser, &api).await?;
    edit::openvpn_is_added(&browser, &api).await?;
    edit::http_proxy_is_added(&browser, &api).await?;

    full_page_shot(&browser, "exits", 1280).await?;
    browser.set_window_size(390, 844).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflowing = browser
        .execute(
            "return [...document.querySelectorAll('#exits-table .row-actions .btn')]
               .filter(b => b.getBoundingClientRect().right >
                            b.closest('tr').getBoundingClientRect().right).length;",
            json!([]),
        )
        .await?;
    ensure!(
        overflowing == json!(0),
        "{overflowing} row buttons run past their card on a phone"
    );
    full_page_shot(&browser, "exits-mobile", 390).await?;
    browser.set_window_size(1280, 900).await?;

    let wireguard = edit::id_of(&api, NAME).await?;
    let state_dir = processes.state_dir.clone();
    traffic::peer_traffic_is_shown(&browser, &api, &base, &state_dir, &wireguard).await?;
    browser.goto(&format!("{base}/#/exits")).await?;
    browser.wait_for("#exits-table").await?;

    let stored = api.get("/api/connectivity/connections").await?;
    let ids: Vec<String> = stored["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect();
    ensure!(
        ids.len() == 5,
        "a WireGuard exit, an .ovpn, two proxies and tor: {stored}"
    );
    for id in &ids {
        delete_exit(&browser, id).await?;
    }
    browser.wait_for_text("#exits-list", "no exits").await?;
    let left = api.get("/api/connectivity/connections").await?;
    ensure!(left["connections"] == json!([]), "{left}");
    check_console(&browser).await?;
    browser.quit().await?;
    processes.passed = true;
    Ok(())
}
