//! The peers API as the WireGuard tests use it: creating and changing peers, their served
//! wg-quick config (parsed strictly), their live WireGuard data, and QR codes decoded with the
//! real `zbarimg`.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::require_tools;
use crate::common::client::{json_of, TestClient};

/// A wg-quick config as picd serves it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WgConfig {
    pub private_key: Option<String>,
    pub addresses: Vec<String>,
    pub dns: Vec<String>,
    pub public_key: String,
    pub preshared_key: Option<String>,
    pub allowed_ips: Vec<String>,
    pub endpoint: String,
    pub persistent_keepalive: Option<u16>,
}

/// Parses a served config strictly: one [Interface] and one [Peer], known keys only.
pub fn parse_wg_config(text: &str) -> WgConfig {
    let mut c = WgConfig::default();
    let mut section = "";
    let list = |v: &str| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .collect::<Vec<_>>()
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = match line {
                "[Interface]" if section.is_empty() => "interface",
                "[Peer]" if section == "interface" => "peer",
                _ => panic!("unexpected section {line} in:\n{text}"),
            };
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or_else(|| panic!("not a key = value line: {line}"));
        match (section, key) {
            ("interface", "PrivateKey") => c.private_key = Some(value.into()),
            ("interface", "Address") => c.addresses = list(value),
            ("interface", "DNS") => c.dns = list(value),
            ("peer", "PublicKey") => c.public_key = value.into(),
            ("peer", "PresharedKey") => c.preshared_key = Some(value.into()),
            ("peer", "AllowedIPs") => c.allowed_ips = list(value),
            ("peer", "Endpoint") => c.endpoint = value.into(),
            ("peer", "PersistentKeepalive") => {
                c.persistent_keepalive = Some(value.parse().expect("PersistentKeepalive"))
            }
            _ => panic!("unexpected key {key} in section {section:?} of:\n{text}"),
        }
    }
    assert!(
        !c.public_key.is_empty() && !c.endpoint.is_empty(),
        "incomplete config:\n{text}"
    );
    c
}

/// POST /api/peers; asserts 201 and returns the peer.
pub async fn create_peer(admin: &TestClient, body: Value) -> Value {
    let resp = admin
        .send_json(reqwest::Method::POST, "/api/peers", &body)
        .await;
    let (status, peer) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "creating {body}: {peer}");
    peer
}

/// The text of a wg-quick config download (admin or portal path); asserts 200.
pub async fn config_text(client: &TestClient, path: &str) -> String {
    let resp = client.get(path).await;
    let status = resp.status();
    let text = resp.text().await.expect("config body");
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    text
}

/// PUT /api/peers/<name> with `body`; asserts 200 and returns the peer.
pub async fn update_peer(admin: &TestClient, name: &str, body: Value) -> Value {
    let path = format!("/api/peers/{name}");
    let (status, peer) = json_of(admin.send_json(Method::PUT, &path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "PUT {path} {body}: {peer}");
    peer
}

/// A peer's live entry in GET /api/wireguard/status (Null when the interface lacks it).
pub async fn live_status(admin: &TestClient, public_key: &str) -> Value {
    let (status, body) = admin.get_json("/api/wireguard/status").await;
    assert_eq!(status, StatusCode::OK, "wireguard status: {body}");
    body["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["public_key"] == json!(public_key)))
        .cloned()
        .unwrap_or(Value::Null)
}

/// GETs a QR code PNG and decodes it with `zbarimg`; asserts 200 and the PNG type.
pub async fn decoded_qr(client: &TestClient, path: &str, dir: &std::path::Path) -> String {
    require_tools(&["zbarimg"]);
    let resp = client.get(path).await;
    let status = resp.status();
    let content_type = resp.headers().get("content-type").cloned();
    let png = resp.bytes().await.expect("QR body");
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&png)
    );
    assert_eq!(
        content_type.as_ref().map(|v| v.as_bytes()),
        Some(&b"image/png"[..]),
        "{path}"
    );
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{path}: not a PNG");
    let file = dir.join("qr.png");
    std::fs::write(&file, &png).expect("writing the PNG");
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .expect("running zbarimg");
    let text = String::from_utf8(out.stdout).expect("zbarimg printed UTF-8");
    assert!(
        out.status.success(),
        "zbarimg found no code in {path}: {text}"
    );
    // zbarimg ends each decoded symbol with a newline of its own.
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}
