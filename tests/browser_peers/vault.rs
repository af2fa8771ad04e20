//! The vault's pages in the browser: issuing and revoking a certificate, trusting another
//! cell's key, creating and rotating an API key whose token is shown once and works.

use super::*;

const CERT_NAMES: &str = "files.home.example, *.home.example";
const CERT_IP: &str = "10.77.0.1";
const TRUSTED_CELL: &str = "parents-cell";
const API_KEY_NAME: &str = "backup-script";

/// The CA, a refused and then an issued certificate (its key shown once), and revocation.
pub(super) async fn vault_certificates(browser: &WebDriver, base: &str) -> Result<()> {
    click(browser, ".nav a[data-route=vault]").await?;
    let age = input_value(browser, "#vault-age-key").await?;
    ensure!(age.starts_with("age1"), "age public key: {age}");
    for (css, href) in [
        ("#vault-ca-download", "/api/vault/ca.crt"),
        ("#vault-crl-pem", "/api/vault/crl"),
        ("#vault-crl-der", "/api/vault/crl?format=der"),
    ] {
        let found = browser
            .attribute(&browser.find(css).await?, "href")
            .await?
            .unwrap_or_default();
        ensure!(found == href, "{css} links to {found}");
    }
    browser
        .wait_for_text("#certs-list", "No certificates")
        .await?;

    browser.fill("#cert-names", "not a name!").await?;
    click(browser, "#cert-issue-submit").await?;
    browser
        .wait_for_text("#cert-names-error", "is not a host name")
        .await?;

    browser.fill("#cert-names", CERT_NAMES).await?;
    browser.fill("#cert-ips", CERT_IP).await?;
    click(browser, "#cert-issue-submit").await?;
    let key = input_value(browser, "#cert-issued-key").await?;
    ensure!(key.contains("PRIVATE KEY-----"), "private key PEM: {key}");
    let cert = input_value(browser, "#cert-issued-cert").await?;
    ensure!(
        cert.starts_with("-----BEGIN CERTIFICATE-----"),
        "certificate PEM"
    );
    browser.wait_for("#cert-issued-key-copy").await?;
    let row = browser
        .wait_for_text("#certs-table tbody", "files.home.example")
        .await?;
    ensure!(
        row.contains(CERT_IP) && row.contains("Valid"),
        "cert row: {row}"
    );
    full_page_shot(browser, "vault", 1280).await?;
    full_page_shot(browser, "vault-mobile", 390).await?;

    // Shown once: after Done, and after a reload, the key is nowhere on the page.
    click(browser, "#cert-issued-done").await?;
    ensure!(
        browser.find_all("#cert-issued-key").await?.is_empty(),
        "Done removes the key"
    );
    browser.goto(&format!("{base}/#/status")).await?;
    browser.goto(&format!("{base}/#/vault")).await?;
    browser
        .wait_for_text("#certs-table tbody", "files.home.example")
        .await?;
    ensure!(
        !browser.page_text().await.contains("PRIVATE KEY"),
        "the private key does not come back"
    );

    click(browser, "#certs-table button[data-action=revoke]").await?;
    click(browser, "#cert-revoke-reason option[value=superseded]").await?;
    click(browser, "#cert-revoke-dialog-confirm").await?;
    let row = browser
        .wait_for_text("#certs-table tbody", "Revoked")
        .await?;
    ensure!(row.contains("Superseded"), "revocation reason shown: {row}");
    Ok(())
}

pub(super) async fn vault_trust_keys(browser: &WebDriver) -> Result<()> {
    browser.fill("#trust-name", TRUSTED_CELL).await?;
    click(browser, "#trust-kind option[value=wireguard]").await?;
    browser.fill("#trust-key", "not a key").await?;
    click(browser, "#trust-add-submit").await?;
    browser
        .wait_for_text("#trust-key-error", "is not a WireGuard public key")
        .await?;
    browser.fill("#trust-key", BYO_PUBLIC_KEY).await?;
    click(browser, "#trust-add-submit").await?;
    let row = browser
        .wait_for_text("#trust-table tbody", TRUSTED_CELL)
        .await?;
    ensure!(row.contains(BYO_PUBLIC_KEY), "trusted key row: {row}");
    click(browser, "#trust-table button[data-action=remove]").await?;
    click(browser, "#trust-remove-dialog-confirm").await?;
    browser
        .wait_for_text("#trust-list", "trusts no other cell")
        .await?;
    Ok(())
}

/// An API key: created with a token shown once that works at once; rotated, the old token is
/// refused and the new one works.
pub(super) async fn vault_api_keys(browser: &WebDriver, base: &str) -> Result<()> {
    browser.fill("#key-name", API_KEY_NAME).await?;
    click(browser, "#key-create-submit").await?;
    browser
        .wait_for_text("#key-scopes-error", "at least one scope")
        .await?;
    click(browser, "#key-scope-read-only").await?;
    click(browser, "#key-create-submit").await?;
    let token = input_value(browser, "#key-token").await?;
    ensure!(token.starts_with("picd_"), "token: {token}");
    let row = browser
        .wait_for_text("#keys-table tbody", API_KEY_NAME)
        .await?;
    ensure!(
        row.contains("read-only") && row.contains("60/min") && row.contains(&token[..13]),
        "key row: {row}"
    );
    ensure!(!row.contains(&token), "the list never shows the token");
    ensure!(get_peers(base, &token).await? == 200, "the new token works");
    scroll_to(browser, "#keys").await?;
    shot(browser, "vault-keys").await?;

    click(browser, "#keys-table button[data-action=rotate]").await?;
    click(browser, "#key-rotate-dialog-confirm").await?;
    let rotated = wait_js(
        browser,
        "the rotated token",
        "const el = document.getElementById('key-token');
         return el && el.value !== arguments[0] ? el.value : '';",
        json!([token]),
    )
    .await?;
    let rotated = rotated.as_str().unwrap_or_default().to_string();
    ensure!(rotated.starts_with("picd_"), "rotated token: {rotated}");
    ensure!(
        get_peers(base, &token).await? == 401,
        "the old token is refused"
    );
    ensure!(
        get_peers(base, &rotated).await? == 200,
        "the rotated token works"
    );

    click(browser, "#key-token-done").await?;
    ensure!(
        !browser.page_text().await.contains(&rotated),
        "the token is gone once dismissed"
    );
    click(browser, "#keys-table button[data-action=revoke]").await?;
    click(browser, "#key-revoke-dialog-confirm").await?;
    browser.wait_for_text("#keys-list", "No API keys").await?;
    ensure!(
        get_peers(base, &rotated).await? == 401,
        "a revoked token is refused"
    );
    Ok(())
}

/// GET /api/peers with an API key; the status code.
pub(super) async fn get_peers(base: &str, token: &str) -> Result<u16> {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/peers"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(response.status().as_u16())
}
