//! GET /api/wireguard/status: the interface and, per peer, its latest handshake, traffic and
//! endpoint.

use std::time::UNIX_EPOCH;

use axum::extract::State;
use defguard_wireguard_rs::peer::Peer;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::error::{ApiResult, Json};
use crate::wireguard::WireGuardApp;

/// A peer's live data as the API shows it.
pub fn peer_stats(peer: &Peer) -> Value {
    let handshake = peer
        .last_handshake
        .filter(|t| *t > UNIX_EPOCH)
        .and_then(|t| {
            time::OffsetDateTime::from_unix_timestamp(
                t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64
            )
            .ok()
        })
        .map(crate::time::format_rfc3339);
    json!({
        "latest_handshake": handshake,
        "rx_bytes": peer.rx_bytes,
        "tx_bytes": peer.tx_bytes,
        "endpoint": peer.endpoint.map(|e| e.to_string()),
    })
}

pub async fn status(_admin: AdminUser, State(app): State<WireGuardApp>) -> ApiResult<Json<Value>> {
    let public_key = app
        .db
        .call(|conn| crate::wireguard::server_public_key(conn))
        .await?;
    let names: std::collections::HashMap<String, String> = app
        .db
        .call(|conn| {
            Ok(crate::peers::store::list(conn)?
                .into_iter()
                .map(|p| (p.public_key, p.name))
                .collect())
        })
        .await?;
    let driver = app.wireguard.status_summary().await;
    let (port, peers, error) = match app.wireguard.interface_data().await {
        Ok(host) => {
            let peers: Vec<Value> = host
                .peers
                .values()
                .map(|p| {
                    let mut v = peer_stats(p);
                    v["public_key"] = json!(p.public_key.to_string());
                    v["name"] = json!(names.get(&p.public_key.to_string()));
                    v
                })
                .collect();
            (Some(host.listen_port), peers, None)
        }
        Err(e) => (None, Vec::new(), Some(e)),
    };
    Ok(Json(json!({
        "interface": app.wireguard.interface_name(),
        "mode": app.wireguard.mode_name(),
        "state": driver.state,
        "reason": driver.reason.or(error),
        "listen_port": port,
        "public_key": public_key,
        "peers": peers,
    })))
}
