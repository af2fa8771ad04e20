//! The peers' self-service portal (/api/peer/*): a signed-in peer sees and downloads its own
//! config and QR code, rotates its own keys and lists its service credentials. Every handler
//! finds the peer from the session's user, never from the request, so a peer cannot name
//! another peer. Also the one-time invitation links that create a peer's portal login.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use defguard_wireguard_rs::key::Key;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use super::store::{self, PeerRecord};
use super::QrQuery;
use crate::audit::AuditCtx;
use crate::auth::secret_routes::SecretOwner;
use crate::auth::token_throttle::{AuditNote, TokenKind};
use crate::auth::{password, random_token, store as users, AdminUser, PeerUser, Role};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::peers::PeersApp;

const DEFAULT_INVITE_HOURS: u32 = 72;
const MAX_INVITE_HOURS: u32 = 720;

async fn own_peer(app: &PeersApp, user: &PeerUser) -> ApiResult<PeerRecord> {
    let user_id = user.0.user.id.clone();
    app.db
        .call(move |conn| {
            store::by_user(conn, &user_id)?.ok_or_else(|| ApiError::not_found("your peer"))
        })
        .await
}

pub async fn me(user: PeerUser, State(app): State<PeersApp>) -> ApiResult<Json<Value>> {
    let peer = own_peer(&app, &user).await?;
    Ok(Json(json!(peer)))
}

/// Names the peer in a secret-returning answer, for the audit entry of the read.
fn owned_by(mut response: Response, peer: String) -> Response {
    response.extensions_mut().insert(SecretOwner(peer));
    response
}

pub async fn config(user: PeerUser, State(app): State<PeersApp>) -> ApiResult<Response> {
    let peer = own_peer(&app, &user).await?;
    let response = super::config_response(&app, peer.name.clone()).await?;
    Ok(owned_by(response, peer.name))
}

pub async fn qr(
    user: PeerUser,
    State(app): State<PeersApp>,
    Query(query): Query<QrQuery>,
) -> ApiResult<Response> {
    let peer = own_peer(&app, &user).await?;
    let response = super::qr_response(&app, peer.name.clone(), query).await?;
    Ok(owned_by(response, peer.name))
}

pub async fn service_credentials(
    user: PeerUser,
    State(app): State<PeersApp>,
) -> ApiResult<Response> {
    let peer = own_peer(&app, &user).await?;
    let (vault, name) = (app.vault.clone(), peer.name.clone());
    let credentials = app
        .db
        .call(move |conn| crate::services::accounts::credentials::of_peer(conn, &vault, &name))
        .await?;
    let response = Json(json!({ "peer": peer.name, "credentials": credentials })).into_response();
    Ok(owned_by(response, peer.name))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialQrQuery {
    /// The password in the code too. Off unless the person asked for it: a code on a screen
    /// is read by any camera that sees it.
    #[serde(default)]
    password: bool,
}

/// A PNG QR code of the peer's login URI for one service (the URL with the username, and the
/// password only when asked for), for a phone app to take.
pub async fn service_credentials_qr(
    user: PeerUser,
    State(app): State<PeersApp>,
    Path(service): Path<String>,
    Query(query): Query<CredentialQrQuery>,
) -> ApiResult<Response> {
    let peer = own_peer(&app, &user).await?;
    let (vault, name) = (app.vault.clone(), peer.name.clone());
    let filled = app
        .db
        .call(move |conn| {
            crate::services::accounts::credentials::of_peer_in(conn, &vault, &name, &service)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("service account"))?;
    let field = |key: &str| filled[key].as_str().unwrap_or_default().to_string();
    let password = field("password");
    let uri = crate::services::accounts::credentials::login_uri(
        &field("url"),
        &field("username"),
        query.password.then_some(password.as_str()),
    )
    .ok_or_else(|| {
        ApiError::conflict(
            "no_service_url",
            "the service has no address yet: the cell needs a domain",
        )
    })?;
    let png = super::config::qr_png(&uri)?;
    let no_store = (header::CACHE_CONTROL, "no-store");
    let response = ([(header::CONTENT_TYPE, "image/png"), no_store], png).into_response();
    Ok(owned_by(response, peer.name))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// For peers that bring their own key: the new public key.
    public_key: Option<String>,
}

/// New keys for the signed-in peer. The old key is taken off the interface at once.
pub async fn rotate_keys(
    user: PeerUser,
    State(app): State<PeersApp>,
    audit: AuditCtx,
    Json(body): Json<RotateRequest>,
) -> ApiResult<Json<Value>> {
    let peer = own_peer(&app, &user).await?;
    let new_client_key = match (&body.public_key, peer.key_source.as_str()) {
        (Some(k), _) => match crate::wireguard::parse_key(k) {
            Some(_) => Some(k.trim().to_string()),
            None => {
                let err = ApiError::invalid(
                    "public_key",
                    "must be a WireGuard public key (32 bytes, base64)",
                );
                return Err(audit
                    .refuse(&app.db, "peer", &peer.name, json!({}), err)
                    .await);
            }
        },
        (None, "client") => {
            let err = ApiError::invalid(
                "public_key",
                "your device holds its own key: send the new public key",
            );
            return Err(audit
                .refuse(&app.db, "peer", &peer.name, json!({}), err)
                .await);
        }
        (None, _) => None,
    };
    let vault = app.vault.clone();
    let old_key = peer.public_key.clone();
    let name = peer.name.clone();
    let updated = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            let mut peer = store::require(tx, &name)?;
            match new_client_key {
                Some(key) => {
                    vault.delete(tx, &store::private_key_secret(&name))?;
                    peer.public_key = key;
                    peer.key_source = "client".into();
                }
                None => {
                    let private = Key::generate();
                    vault.put(
                        tx,
                        &store::private_key_secret(&name),
                        private.to_string().as_bytes(),
                    )?;
                    peer.public_key = private.public_key().to_string();
                    peer.key_source = "generated".into();
                }
            }
            if peer.has_preshared_key {
                vault.put(
                    tx,
                    &store::preshared_key_secret(&name),
                    Key::generate().to_string().as_bytes(),
                )?;
            }
            store::update(tx, &peer)?;
            entry.detail = json!({ "old_public_key": old_key, "public_key": peer.public_key });
            Ok(peer)
        })
        .await?;
    app.wireguard
        .apply_peer(&updated.name, Some(peer.public_key))
        .await;
    Ok(Json(json!(updated)))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    valid_hours: Option<u32>,
}

/// A one-time link with which the peer sets its portal password. The token is shown once.
pub async fn invite(
    _admin: AdminUser,
    State(app): State<PeersApp>,
    audit: AuditCtx,
    Path(name): Path<String>,
    Json(body): Json<InviteRequest>,
) -> ApiResult<Response> {
    let hours = body.valid_hours.unwrap_or(DEFAULT_INVITE_HOURS);
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        let err = ApiError::invalid(
            "valid_hours",
            format!("must be from 1 to {MAX_INVITE_HOURS}"),
        );
        return Err(audit.refuse(&app.db, "peer", &name, json!({}), err).await);
    }
    let token = random_token();
    let hash = token_hash(&token);
    let expires_at =
        crate::time::format_rfc3339(crate::time::now() + time::Duration::hours(i64::from(hours)));
    let expires = expires_at.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            let peer = store::require(tx, &name)?;
            if peer.has_portal_login {
                return Err(ApiError::conflict("has_login", "this peer already has a portal login"));
            }
            tx.execute(
                "INSERT INTO invitations (token_hash, peer_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![hash, name, crate::time::now_rfc3339(), expires],
            )?;
            entry.detail = json!({ "expires_at": expires });
            Ok(())
        })
        .await?;
    let body = json!({ "token": token, "url": format!("/portal/invite#{token}"), "expires_at": expires_at });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    token: String,
    password: String,
}

/// Redeems an invitation: creates the peer's portal login and signs it in. Public: the token
/// is the credential (256 random bits, single use, expiring).
pub async fn accept_invite(
    State(app): State<PeersApp>,
    Extension(client): Extension<ClientInfo>,
    audit: AuditCtx,
    session: Session,
    Json(body): Json<AcceptRequest>,
) -> ApiResult<Json<Value>> {
    // Guessing is throttled per address and audited once per window (token_throttle).
    let attempt = match app.token_throttle.begin(TokenKind::Invitation, client.addr) {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            audit.covered_by_earlier_entry();
            return Err(ApiError::RateLimited { retry_after });
        }
    };
    let hash = token_hash(body.token.trim());
    let lookup = hash.clone();
    let peer_name: Option<String> = app
        .db
        .call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT peer_name FROM invitations WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                    rusqlite::params![lookup, crate::time::now_rfc3339()],
                    |r| r.get(0),
                )
                .ok())
        })
        .await?;
    let Some(name) = peer_name else {
        let err = ApiError::forbidden(
            "invalid_invitation",
            "this invitation is unknown, used or expired",
        );
        return Err(match app.token_throttle.bad(attempt) {
            AuditNote::First {
                previous_failures,
                previous_refused,
            } => {
                let detail = json!({ "previous_window":
                    { "bad_tokens": previous_failures, "refused": previous_refused } });
                audit.refuse(&app.db, "invitation", "", detail, err).await
            }
            AuditNote::Covered => {
                audit.covered_by_earlier_entry();
                err
            }
        });
    };
    app.token_throttle.good(attempt);
    if let Err(err) = password::check_policy("password", &body.password, &name) {
        return Err(audit.refuse(&app.db, "peer", &name, json!({}), err).await);
    }
    let password_hash = password::hash(body.password).await?;
    audit.set_actor(name.clone());
    let user = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "peer".into();
            entry.target_id = name.clone();
            // Marking it used in the same transaction makes the token single-use even when two
            // requests race.
            let claimed = tx.execute(
                "UPDATE invitations SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
                rusqlite::params![hash, crate::time::now_rfc3339()],
            )?;
            if claimed == 0 {
                return Err(ApiError::forbidden(
                    "invalid_invitation",
                    "this invitation was just used",
                ));
            }
            let user = users::create(tx, &name, Role::Peer, &password_hash)?;
            store::set_user(tx, &name, &user.id)?;
            Ok(user)
        })
        .await?;
    let csrf = crate::auth::start_session(&session, &user.id).await?;
    Ok(Json(json!({ "user": user, "csrf_token": csrf })))
}
