//! /api/peers: list, add, read, update and delete peers; their config, QR code, invitation
//! links and service credentials. Admin only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use defguard_wireguard_rs::key::Key;
use serde_json::{json, Map, Value};

use super::input::{self, Field};
use super::store::{self, PeerRecord};
use super::QrQuery;
use crate::audit::AuditCtx;
use crate::auth::{password, store as users, AdminUser, Role};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::peers::PeersApp;
use crate::validation::{object, Problems};

const CREATE_FIELDS: &[&str] = &[
    "name",
    "public_key",
    "preshared_key",
    "tunnel",
    "allowed_ips",
    "persistent_keepalive",
    "enabled",
    "expires_at",
    "portal_password",
];
const UPDATE_FIELDS: &[&str] = &[
    "public_key",
    "preshared_key",
    "tunnel",
    "allowed_ips",
    "persistent_keepalive",
    "enabled",
    "expires_at",
];

/// Live WireGuard data per public key, to show beside each peer.
async fn live(app: &PeersApp) -> Map<String, Value> {
    let mut map = Map::new();
    if let Ok(host) = app.wireguard.interface_data().await {
        for (key, peer) in host.peers {
            map.insert(
                key.to_string(),
                super::super::wireguard::routes::peer_stats(&peer),
            );
        }
    }
    map
}

fn with_live(peer: &PeerRecord, live: &Map<String, Value>) -> Value {
    let mut value = json!(peer);
    value["wireguard"] = live.get(&peer.public_key).cloned().unwrap_or(Value::Null);
    value
}

pub async fn list(_admin: AdminUser, State(app): State<PeersApp>) -> ApiResult<Json<Value>> {
    let peers = app.db.call(|conn| Ok(store::list(conn)?)).await?;
    let live = live(&app).await;
    Ok(Json(
        json!({ "peers": peers.iter().map(|p| with_live(p, &live)).collect::<Vec<_>>() }),
    ))
}

pub async fn get(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let peer = app.db.call(move |conn| store::require(conn, &name)).await?;
    Ok(Json(with_live(&peer, &live(&app).await)))
}

/// Stores a new key pair (or the client's public key) and, if asked, a fresh preshared key.
fn store_keys(
    tx: &rusqlite::Connection,
    app_vault: &crate::vault::Vault,
    name: &str,
    client_key: Option<&str>,
    preshared: bool,
) -> ApiResult<(String, &'static str)> {
    let (public_key, source) = match client_key {
        Some(key) => {
            app_vault.delete(tx, &store::private_key_secret(name))?;
            (key.to_string(), "client")
        }
        None => {
            let private = Key::generate();
            app_vault.put(
                tx,
                &store::private_key_secret(name),
                private.to_string().as_bytes(),
            )?;
            (private.public_key().to_string(), "generated")
        }
    };
    if preshared {
        app_vault.put(
            tx,
            &store::preshared_key_secret(name),
            Key::generate().to_string().as_bytes(),
        )?;
    } else {
        app_vault.delete(tx, &store::preshared_key_secret(name))?;
    }
    Ok((public_key, source))
}

pub async fn create(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    audit: AuditCtx,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let mut p = Problems::default();
    let parsed = object(&body, CREATE_FIELDS, &mut p, "").map(|map| {
        let name = input::peer_name(&mut p, map.get("name"));
        let public_key = input::public_key(&mut p, map);
        let preshared = input::boolean(&mut p, map, "preshared_key").unwrap_or(true);
        let tunnel = input::tunnel(&mut p, map).unwrap_or_else(|| "full".into());
        let allowed = input::allowed_ips(&mut p, map);
        let keepalive = input::keepalive(&mut p, map);
        let enabled = input::boolean(&mut p, map, "enabled").unwrap_or(true);
        let expires_at = input::expires_at(&mut p, map);
        let portal_password = input::password(
            &mut p,
            map,
            "portal_password",
            name.as_deref().unwrap_or(""),
        );
        (
            name,
            public_key,
            preshared,
            tunnel,
            allowed,
            keepalive,
            enabled,
            expires_at,
            portal_password,
        )
    });
    let target = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(63)
        .collect::<String>();
    let (
        Some((
            Some(name),
            public_key,
            preshared,
            tunnel,
            allowed,
            keepalive,
            enabled,
            expires_at,
            portal_password,
        )),
        true,
    ) = (parsed, p.is_empty())
    else {
        return Err(audit
            .refuse(&app.db, "peer", &target, json!({}), p.into_error(""))
            .await);
    };
    let portal_hash = match portal_password {
        Some(pw) => Some(password::hash(pw).await?),
        None => None,
    };
    let vault = app.vault.clone();
    let peer = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            let cell = crate::cell::read_cell_config(tx)?
                .ok_or_else(|| ApiError::not_found("cell config"))?
                .cell;
            if store::get(tx, &name)?.is_some() {
                return Err(ApiError::conflict("peer_exists", format!("a peer named '{name}' exists")));
            }
            let (v4, v6) = store::allocate_peer_addresses(tx, cell.subnet_v4, cell.subnet_v6)?;
            let client_key = match &public_key {
                Field::Set(k) => Some(k.as_str()),
                _ => None,
            };
            let (public_key, key_source) = store_keys(tx, &vault, &name, client_key, preshared)?;
            let now = crate::time::now_rfc3339();
            let mut peer = PeerRecord {
                name: name.clone(),
                public_key,
                key_source: key_source.into(),
                has_preshared_key: preshared,
                address_v4: v4.to_string(),
                address_v6: v6.to_string(),
                allowed_ips: input::client_allowed_ips(&tunnel, allowed, &cell),
                tunnel,
                persistent_keepalive: match keepalive {
                    Field::Set(k) => Some(k),
                    Field::Null => None,
                    Field::Missing => Some(input::DEFAULT_KEEPALIVE),
                },
                enabled,
                expires_at: match expires_at {
                    Field::Set(t) => Some(t),
                    _ => None,
                },
                has_portal_login: false,
                created_at: now.clone(),
                updated_at: now,
            };
            store::insert(tx, &peer)?;
            crate::dns::store::bump_cell_serial(tx)?;
            if let Some(hash) = &portal_hash {
                let user = users::create(tx, &name, Role::Peer, hash)?;
                store::set_user(tx, &name, &user.id)?;
                peer.has_portal_login = true;
            }
            entry.detail = json!({
                "address_v4": peer.address_v4, "address_v6": peer.address_v6, "public_key": peer.public_key,
                "key_source": peer.key_source, "tunnel": peer.tunnel, "portal_login": peer.has_portal_login,
            });
            Ok(peer)
        })
        .await?;
    app.wireguard.apply_peer(&peer.name, None).await;
    app.dns.refresh(&app.db);
    Ok((StatusCode::CREATED, Json(json!(peer))).into_response())
}

pub async fn update(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    audit: AuditCtx,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let mut p = Problems::default();
    let Some(map) = object(&body, UPDATE_FIELDS, &mut p, "").cloned() else {
        return Err(audit
            .refuse(&app.db, "peer", &name, json!({}), p.into_error(""))
            .await);
    };
    let public_key = input::public_key(&mut p, &map);
    let preshared = input::boolean(&mut p, &map, "preshared_key");
    let tunnel = input::tunnel(&mut p, &map);
    let allowed = input::allowed_ips(&mut p, &map);
    let keepalive = input::keepalive(&mut p, &map);
    let enabled = input::boolean(&mut p, &map, "enabled");
    let expires_at = input::expires_at(&mut p, &map);
    if !p.is_empty() {
        return Err(audit
            .refuse(&app.db, "peer", &name, json!({}), p.into_error(""))
            .await);
    }
    let vault = app.vault.clone();
    let (peer, old_key) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            let mut peer = store::require(tx, &name)?;
            let old_key = peer.public_key.clone();
            let cell = crate::cell::read_cell_config(tx)?
                .ok_or_else(|| ApiError::not_found("cell config"))?
                .cell;
            if let Field::Set(key) = &public_key {
                if *key != peer.public_key {
                    let (k, source) = store_keys(tx, &vault, &name, Some(key), peer.has_preshared_key)?;
                    peer.public_key = k;
                    peer.key_source = source.into();
                }
            }
            if let Some(psk) = preshared.filter(|psk| *psk != peer.has_preshared_key) {
                if psk {
                    vault.put(tx, &store::preshared_key_secret(&name), Key::generate().to_string().as_bytes())?;
                } else {
                    vault.delete(tx, &store::preshared_key_secret(&name))?;
                }
                peer.has_preshared_key = psk;
            }
            if tunnel.is_some() || allowed.is_some() {
                peer.tunnel = tunnel.unwrap_or(peer.tunnel);
                peer.allowed_ips = input::client_allowed_ips(&peer.tunnel, allowed, &cell);
            }
            match keepalive {
                Field::Set(k) => peer.persistent_keepalive = Some(k),
                Field::Null => peer.persistent_keepalive = None,
                Field::Missing => {}
            }
            if let Some(enabled) = enabled {
                peer.enabled = enabled;
            }
            match expires_at {
                Field::Set(t) => peer.expires_at = Some(t),
                Field::Null => peer.expires_at = None,
                Field::Missing => {}
            }
            store::update(tx, &peer)?;
            let changed: Vec<&String> = map.keys().collect();
            entry.detail = json!({ "changed": changed, "enabled": peer.enabled, "public_key": peer.public_key });
            Ok((store::require(tx, &name)?, old_key))
        })
        .await?;
    app.wireguard.apply_peer(&peer.name, Some(old_key)).await;
    let live = live(&app).await;
    Ok(Json(with_live(&peer, &live)))
}

/// Deletes a peer and everything that hangs off it (portal login and its sessions, keys,
/// invitations) in one transaction, then takes it off the interface.
pub async fn delete(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    audit: AuditCtx,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let vault = app.vault.clone();
    let peer = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            let peer = store::require(tx, &name)?;
            let user_id = store::user_id(tx, &name)?;
            // Its service accounts go with it; the reconcile archives their data.
            let accounts = crate::services::accounts::store::forget_peer(tx, &vault, &name)?;
            store::delete(tx, &name)?;
            crate::dns::store::bump_cell_serial(tx)?;
            if let Some(user_id) = user_id {
                tx.execute("DELETE FROM users WHERE id = ?1", [user_id])?;
            }
            vault.delete(tx, &store::private_key_secret(&name))?;
            vault.delete(tx, &store::preshared_key_secret(&name))?;
            entry.detail = json!({
                "address_v4": peer.address_v4, "address_v6": peer.address_v6,
                "public_key": peer.public_key, "portal_login_removed": peer.has_portal_login,
                "service_accounts_removed": accounts.len(),
            });
            Ok(peer)
        })
        .await?;
    app.wireguard.remove_key(&peer.public_key).await;
    app.dns.refresh(&app.db);
    // The services' account files lose the peer's lines at once.
    app.request_reconcile();
    Ok(Json(json!({ "deleted": peer.name })))
}

pub async fn config(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    super::config_response(&app, name).await
}

pub async fn qr(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    Path(name): Path<String>,
    Query(query): Query<QrQuery>,
) -> ApiResult<Response> {
    super::qr_response(&app, name, query).await
}

pub async fn service_credentials(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let vault = app.vault.clone();
    let (peer, credentials) = app
        .db
        .call(move |conn| {
            let peer = store::require(conn, &name)?;
            let filled = crate::services::accounts::credentials::of_peer(conn, &vault, &peer.name)?;
            Ok((peer, filled))
        })
        .await?;
    Ok(Json(
        json!({ "peer": peer.name, "credentials": credentials }),
    ))
}
