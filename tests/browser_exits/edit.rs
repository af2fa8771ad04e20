//! Editing a connection from #/exits, and the two types the first half does not add: a proxy's
//! port and name changed through the edit dialog (a bad port first, its error under its
//! field), with the list and the API agreeing and the password kept; a WireGuard file kept by
//! an empty file box; an OpenVPN file with a login, and an HTTP proxy, added through the form.

use super::*;

const RENAMED: &str = "office-proxy-2";
const NEW_PORT: &str = "1081";
const OVPN_NAME: &str = "provider-two";
const OVPN_USER: &str = "cell-user";
const OVPN_PASSWORD: &str = "ovpn-secret-4d2a";
/// A provider's .ovpn the allow-list accepts: a login, a remote, a pinned server key.
const OVPN: &str = "client\nremote vpn.example.net 1194 udp\nnobind\nauth-user-pass\n\
                    peer-fingerprint AB:CD:EF\n";
const HTTP_PROXY: &str = "web-proxy";
const HTTP_PORT: &str = "3128";

/// The id of the connection named `name`, as the API lists it.
pub(super) async fn id_of(api: &AdminApi, name: &str) -> Result<String> {
    let listed = api
        .list("/api/connectivity/connections", "connections")
        .await?;
    let found = listed.iter().find(|c| c["name"] == name);
    Ok(found
        .and_then(|c| c["id"].as_str())
        .with_context(|| format!("{name} is listed"))?
        .to_string())
}

async fn value_of(browser: &WebDriver, css: &str) -> Result<Value> {
    browser.property(&browser.find(css).await?, "value").await
}

/// The SOCKS5 proxy's edit dialog: filled from the list, never with its password; a port out
/// of range is refused under the port; a new name and port are saved and shown, and the API
/// keeps the login and its password.
pub(super) async fn proxy_is_edited(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let id = id_of(api, PROXY).await?;
    click(browser, &format!("#exit-edit-{id}")).await?;
    browser.wait_for("#exit-edit-dialog").await?;
    let shown = browser
        .execute(
            "return ['name', 'type', 'host', 'port', 'username', 'password']
               .map(f => document.getElementById('exit-edit-' + f).value)
               .concat([document.getElementById('exit-edit-type').disabled,
                        document.getElementById('exit-edit-config').offsetParent === null]);",
            json!([]),
        )
        .await?;
    ensure!(
        shown == json!([PROXY, "socks5", PROXY_HOST, PROXY_PORT, "cell", "", true, true]),
        "the edit form shows name, type, host, port, username, password, type fixed, no file: {shown}"
    );
    browser.fill("#exit-edit-port", "70000").await?;
    click(browser, "#exit-edit-dialog-confirm").await?;
    let error = browser
        .wait_for_text("#exit-edit-port-error", "65535")
        .await?;
    println!("edit port error: {error}");
    full_page_shot(browser, "exits-edit-error", 1280).await?;
    browser.set_window_size(390, 844).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shot(browser, "exits-edit-error-mobile").await?;
    browser.set_window_size(1280, 900).await?;

    browser.fill("#exit-edit-name", RENAMED).await?;
    browser.fill("#exit-edit-port", NEW_PORT).await?;
    click(browser, "#exit-edit-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", &format!("{RENAMED} was saved"))
        .await?;
    wait_gone(browser, "#exit-edit-dialog", "the closed edit dialog").await?;
    let target = format!("{PROXY_HOST}:{NEW_PORT}");
    let row = browser
        .wait_for_text(&format!("#exits-table tr[data-exit='{id}']"), &target)
        .await?;
    ensure!(row.contains(RENAMED), "the row shows the new name: {row}");
    let listed = api
        .list("/api/connectivity/connections", "connections")
        .await?;
    let stored = listed
        .iter()
        .find(|c| c["id"] == id.as_str())
        .context("the proxy is listed")?;
    let settings = &stored["settings"];
    ensure!(
        stored["name"] == RENAMED
            && settings["port"] == json!(1081)
            && settings["username"] == "cell"
            && settings["has_password"] == json!(true),
        "the API agrees and keeps the login and its password: {stored}"
    );
    ensure!(
        !browser.page_text().await.contains(PROXY_PASSWORD),
        "the page shows the proxy's password"
    );
    Ok(())
}

/// An .ovpn with auth-user-pass and its login, added through the form: listed with its
/// remote, its password neither left in the form nor answered.
pub(super) async fn openvpn_is_added(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    pick_type(browser, "openvpn").await?;
    browser.fill("#exit-name", OVPN_NAME).await?;
    fill_file(browser, OVPN).await?;
    browser.fill("#exit-username", OVPN_USER).await?;
    browser.fill("#exit-password", OVPN_PASSWORD).await?;
    click(browser, "#exit-add-submit").await?;
    browser.wait_for_text("#flash", "was added").await?;
    let row = browser
        .wait_for_text("#exits-table tr[data-type=openvpn]", OVPN_NAME)
        .await?;
    ensure!(
        row.contains("OpenVPN") && row.contains("vpn.example.net:1194/udp"),
        "the row shows its type and remote: {row}"
    );
    ensure!(
        value_of(browser, "#exit-password").await? == json!(""),
        "the password stays in the form"
    );
    let stored = api.get("/api/connectivity/connections").await?;
    ensure!(
        !stored.to_string().contains(OVPN_PASSWORD),
        "the API answers the login's password"
    );
    let ovpn = stored["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == OVPN_NAME)
        .context("the .ovpn is listed")?;
    ensure!(ovpn["settings"]["auth_user_pass"] == json!(true), "{ovpn}");
    Ok(())
}

/// An HTTP (CONNECT) proxy without a login, added through the form.
pub(super) async fn http_proxy_is_added(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    pick_type(browser, "http").await?;
    browser.fill("#exit-name", HTTP_PROXY).await?;
    browser.fill("#exit-host", PROXY_HOST).await?;
    browser.fill("#exit-port", HTTP_PORT).await?;
    browser.fill("#exit-dns", "192.0.2.53").await?;
    click(browser, "#exit-add-submit").await?;
    browser.wait_for_text("#flash", "was added").await?;
    let row = browser
        .wait_for_text("#exits-table tr[data-type=http]", HTTP_PROXY)
        .await?;
    let target = format!("{PROXY_HOST}:{HTTP_PORT}");
    ensure!(
        row.contains("HTTP proxy") && row.contains(&target),
        "the row shows its type and {target}: {row}"
    );
    let id = id_of(api, HTTP_PROXY).await?;
    let listed = api
        .list("/api/connectivity/connections", "connections")
        .await?;
    let stored = listed.iter().find(|c| c["id"] == id.as_str());
    let settings = &stored.context("the proxy is listed")?["settings"];
    ensure!(
        settings["dns"] == json!(["192.0.2.53"]) && settings["has_password"] == json!(false),
        "{settings}"
    );
    Ok(())
}

/// The WireGuard exit's edit dialog: the file box is empty (its keys are never sent back to
/// the page), and saving with it empty keeps the stored file.
pub(super) async fn wireguard_file_is_kept(browser: &WebDriver, api: &AdminApi) -> Result<()> {
    let id = id_of(api, NAME).await?;
    click(browser, &format!("#exit-edit-{id}")).await?;
    browser.wait_for("#exit-edit-dialog").await?;
    let shown = browser
        .execute(
            "return [document.getElementById('exit-edit-name').value,
                     document.getElementById('exit-edit-config').value,
                     document.getElementById('exit-edit-host').offsetParent === null];",
            json!([]),
        )
        .await?;
    ensure!(
        shown == json!([NAME, "", true]),
        "the WireGuard edit shows name, an empty file box, no proxy fields: {shown}"
    );
    ensure!(
        !browser.page_text().await.contains(PRIVATE_KEY),
        "the edit dialog shows the private key"
    );
    click(browser, "#exit-edit-dialog-confirm").await?;
    browser
        .wait_for_text("#flash", &format!("{NAME} was saved"))
        .await?;
    wait_gone(browser, "#exit-edit-dialog", "the closed edit dialog").await?;
    let listed = api
        .list("/api/connectivity/connections", "connections")
        .await?;
    let stored = listed
        .iter()
        .find(|c| c["id"] == id.as_str())
        .context("the WireGuard exit is listed")?;
    ensure!(
        stored["settings"]["endpoint"] == "198.51.100.2:51820",
        "the stored file is kept: {stored}"
    );
    Ok(())
}
