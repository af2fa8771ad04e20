//! Filled connection info for a service account: URL (or, for mail, the IMAP host and port),
//! username, password and how to set up a client. The peers domain shows a peer all of
//! theirs through `of_peer`.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::store::{self, Account};
use crate::error::ApiError;
use crate::services::catalog::{self, Manifest};
use crate::services::{exposure, store as installed};
use crate::vault::Vault;

pub fn of_account(
    conn: &Connection,
    vault: &Vault,
    manifest: &Manifest,
    account: &Account,
) -> Result<Value, ApiError> {
    let secret = super::secret_name(&account.service_id, &account.username);
    let password = vault
        .get(conn, &secret)?
        .ok_or_else(|| ApiError::not_found("account password"))?;
    let host = exposure::host(conn, manifest)?;
    let ports = installed::installed_one(conn, manifest.id)?
        .map(|row| row.ports)
        .unwrap_or_default();
    let shown_host = host.as_deref().unwrap_or("<cell domain>");
    let domain = shown_host
        .strip_prefix(&format!("{}.", manifest.subdomain))
        .unwrap_or(shown_host);
    let mut setup = manifest
        .client
        .setup
        .replace("<host>", shown_host)
        .replace("<username>", &account.username)
        .replace("<domain>", domain);
    for (endpoint, port) in &ports {
        setup = setup.replace(&format!("<{endpoint}_port>"), &port.to_string());
    }
    // What a client connects to itself: an HTTP service's URL through Caddy, otherwise the
    // host, port and TLS mode of each client endpoint (IMAP over TLS, submission).
    let client_endpoints: Vec<Value> = manifest
        .endpoints
        .iter()
        .filter(|e| e.protocol.for_clients())
        .filter_map(|e| ports.get(e.name).map(|port| (e, *port)))
        .map(|(e, port)| {
            json!({
                "name": e.name, "protocol": e.protocol, "host": host, "port": port,
                "tls": e.protocol.tls(), "exposure": e.exposure,
                "url": host.as_ref().map(|h| format!("{}://{h}:{port}/", e.protocol.scheme())),
            })
        })
        .collect();
    let url = match (manifest.routed_endpoint(), &host, client_endpoints.first()) {
        (Some(_), Some(h), _) => Some(format!("https://{h}/")),
        (None, Some(_), Some(first)) => first["url"].as_str().map(str::to_string),
        _ => None,
    };
    // A mail account's own address.
    let sends_mail = manifest
        .endpoints
        .iter()
        .any(|e| e.protocol == catalog::Protocol::Submission);
    let address = (sends_mail && host.is_some()).then(|| format!("{}@{domain}", account.username));
    Ok(json!({
        "service": manifest.id,
        "name": manifest.name,
        "username": account.username,
        "password": String::from_utf8_lossy(&password),
        "url": url,
        "address": address,
        "endpoints": client_endpoints,
        "protocol": manifest.client.protocol,
        "setup": setup,
        "created_at": account.created_at,
    }))
}

/// Every account a peer has in an installed service, filled.
pub fn of_peer(conn: &Connection, vault: &Vault, peer: &str) -> Result<Vec<Value>, ApiError> {
    let mut filled = Vec::new();
    for account in store::of_peer(conn, peer)? {
        let Some(manifest) = catalog::find(&account.service_id) else {
            continue;
        };
        if installed::installed_one(conn, manifest.id)?.is_some() {
            filled.push(of_account(conn, vault, manifest, &account)?);
        }
    }
    Ok(filled)
}

/// The peer's account in one installed service, filled; None when it has none there.
pub fn of_peer_in(
    conn: &Connection,
    vault: &Vault,
    peer: &str,
    service: &str,
) -> Result<Option<Value>, ApiError> {
    let Some(manifest) = catalog::find(service) else {
        return Ok(None);
    };
    if installed::installed_one(conn, manifest.id)?.is_none() {
        return Ok(None);
    }
    // Found by the peer it belongs to, never by a username the request could name.
    let account = store::of_peer(conn, peer)?
        .into_iter()
        .find(|a| a.service_id == manifest.id);
    account
        .map(|a| of_account(conn, vault, manifest, &a))
        .transpose()
}

/// The service's URL with the username (and, when asked for, the password) as its userinfo:
/// `https://alice@files.home.example/`. Phone apps that take a QR code (DAVx5, WebDAV file
/// managers) read this form; so does the camera, which offers to open it.
pub fn login_uri(url: &str, username: &str, password: Option<&str>) -> Option<String> {
    // HTTPS through Caddy, or a mail account's IMAP URL (RFC 5092: `imaps://alice@host:port/`).
    let (scheme, rest) = ["https", "imaps", "imap"]
        .into_iter()
        .find_map(|scheme| Some((scheme, url.strip_prefix(scheme)?.strip_prefix("://")?)))?;
    let mut userinfo = userinfo_escape(username);
    if let Some(password) = password {
        userinfo.push(':');
        userinfo.push_str(&userinfo_escape(password));
    }
    Some(format!("{scheme}://{userinfo}@{rest}"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn userinfo_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::login_uri;

    #[test]
    fn the_login_uri_carries_the_username_and_only_an_asked_for_password() {
        let url = "https://files.home.example/";
        assert_eq!(
            login_uri(url, "amy", None).as_deref(),
            Some("https://amy@files.home.example/")
        );
        assert_eq!(
            login_uri(url, "amy", Some("a:b@c")).as_deref(),
            Some("https://amy:a%3Ab%40c@files.home.example/")
        );
        assert_eq!(login_uri("http://x/", "amy", None), None);
        assert_eq!(
            login_uri("imap://mail.home.example:20143/", "amy", None).as_deref(),
            Some("imap://amy@mail.home.example:20143/")
        );
        assert_eq!(
            login_uri("imaps://mail.home.example:993/", "amy", None).as_deref(),
            Some("imaps://amy@mail.home.example:993/")
        );
    }
}
