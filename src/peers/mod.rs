//! Peers: the people (and their devices) the owner lets into the cell. A peer is a WireGuard
//! key with an address in each of the cell's subnets, an optional portal login, and a
//! wg-quick config / QR code to onboard the device.

pub mod config;
mod input;
pub mod portal;
pub mod routes;
pub mod store;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    format: Option<String>,
}

/// The config of `name` as a wg-quick file download.
pub async fn config_response(app: &PeersApp, name: String) -> Result<Response, ApiError> {
    let vault = app.vault.clone();
    let filename = format!("attachment; filename=\"{name}.conf\"");
    let text = app
        .db
        .call(move |conn| {
            let peer = store::require(conn, &name)?;
            config::render(conn, &vault, &peer)
        })
        .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, filename),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        text,
    )
        .into_response())
}

/// The config of `name` as a QR code (PNG, or SVG with `?format=svg`).
pub async fn qr_response(
    app: &PeersApp,
    name: String,
    query: QrQuery,
) -> Result<Response, ApiError> {
    let svg = match query.format.as_deref() {
        None | Some("png") => false,
        Some("svg") => true,
        Some(_) => return Err(ApiError::invalid("format", "must be png or svg")),
    };
    let vault = app.vault.clone();
    let text = app
        .db
        .call(move |conn| {
            let peer = store::require(conn, &name)?;
            if peer.key_source != "generated" {
                return Err(ApiError::conflict(
                    "no_private_key",
                    "this peer brought its own key, so its config has no private key to put in a QR code",
                ));
            }
            config::render(conn, &vault, &peer)
        })
        .await?;
    let no_store = (header::CACHE_CONTROL, "no-store");
    if svg {
        Ok((
            [(header::CONTENT_TYPE, "image/svg+xml"), no_store],
            config::qr_svg(&text)?,
        )
            .into_response())
    } else {
        Ok((
            [(header::CONTENT_TYPE, "image/png"), no_store],
            config::qr_png(&text)?,
        )
            .into_response())
    }
}

/// The peers' and the portal's state: the core, the WireGuard and DNS drivers a peer's change
/// reaches, and the token throttle invitations share with API keys.
#[derive(Clone)]
pub struct PeersApp {
    pub core: crate::state::Core,
    pub wireguard: std::sync::Arc<crate::wireguard::driver::WireGuardDriver>,
    pub dns: std::sync::Arc<crate::dns::driver::DnsDriver>,
    pub token_throttle: std::sync::Arc<crate::auth::token_throttle::TokenThrottle>,
}
crate::reads_through_to_core!(PeersApp);
