//! The wg-quick configuration a peer's device imports, and the same text as a QR code (PNG or
//! SVG) for the WireGuard mobile apps.

use std::net::IpAddr;

use qrcode::{Color, EcLevel, QrCode};
use rusqlite::Connection;

use super::store::{self, PeerRecord};
use crate::error::ApiError;
use crate::vault::Vault;

/// Pixels per QR module in the PNG, and the quiet zone around it in modules.
const PNG_SCALE: usize = 8;
const QUIET_ZONE: usize = 4;

/// The wg-quick file for a peer. Peers that brought their own key get a file without a
/// private key: only their device has it.
pub fn render(conn: &Connection, vault: &Vault, peer: &PeerRecord) -> Result<String, ApiError> {
    let cell = crate::cell::read_cell_config(conn)?
        .ok_or_else(|| ApiError::not_found("cell config"))?
        .cell;
    let server_key = crate::wireguard::server_public_key(conn)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("WireGuard server key missing")))?;
    let (dns_v4, dns_v6) = crate::wireguard::cell_addresses(&cell);
    let private_key = match peer.key_source.as_str() {
        "generated" => vault.get(conn, &store::private_key_secret(&peer.name))?,
        _ => None,
    };
    let mut text = String::from("[Interface]\n");
    match &private_key {
        Some(key) => {
            text.push_str("PrivateKey = ");
            text.push_str(
                std::str::from_utf8(key)
                    .map_err(|_| ApiError::Internal(anyhow::anyhow!("peer key unreadable")))?,
            );
            text.push('\n');
        }
        None => text.push_str("# PrivateKey: the key you generated on your device\n"),
    }
    text.push_str(&format!(
        "Address = {}/32, {}/128\n",
        peer.address_v4, peer.address_v6
    ));
    text.push_str(&format!("DNS = {dns_v4}, {dns_v6}\n\n[Peer]\n"));
    text.push_str(&format!("PublicKey = {server_key}\n"));
    if peer.has_preshared_key {
        if let Some(psk) = vault.get(conn, &store::preshared_key_secret(&peer.name))? {
            text.push_str(&format!(
                "PresharedKey = {}\n",
                String::from_utf8_lossy(&psk)
            ));
        }
    }
    text.push_str(&format!("AllowedIPs = {}\n", peer.allowed_ips.join(", ")));
    let host = match cell.public_endpoint.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => cell.public_endpoint.clone(),
    };
    text.push_str(&format!("Endpoint = {host}:{}\n", cell.wireguard_port));
    if let Some(keepalive) = peer.persistent_keepalive.filter(|k| *k > 0) {
        text.push_str(&format!("PersistentKeepalive = {keepalive}\n"));
    }
    Ok(text)
}

fn qr(text: &str) -> Result<QrCode, ApiError> {
    // Medium error correction: robust to a phone camera, still small for a full config.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR encoding: {e}")))
}

pub fn qr_svg(text: &str) -> Result<String, ApiError> {
    Ok(qr(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build())
}

/// A black-on-white greyscale PNG of the QR code.
pub fn qr_png(text: &str) -> Result<Vec<u8>, ApiError> {
    let code = qr(text)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
            pixels[y * side + mx * PNG_SCALE..y * side + (mx + 1) * PNG_SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let png_error =
            |e: png::EncodingError| ApiError::Internal(anyhow::anyhow!("PNG encoding: {e}"));
        let mut writer = encoder.write_header().map_err(png_error)?;
        writer.write_image_data(&pixels).map_err(png_error)?;
    }
    Ok(out)
}
