//! POST /api/auth/login: the attempt is counted (reserved) before the password is verified,
//! against the browser's device cookie when it holds one valid for the username and against
//! the username otherwise, and against the client address either way; the password is
//! verified on the bounded hash pool; a successful login gets a device cookie if it had none.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::throttle::Subject;
use super::{password, store};
use crate::audit::AuditCtx;
use crate::auth::AuthApp;
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, Json};

/// Longest username accepted at login (longer ones cannot exist).
const MAX_LOGIN_NAME: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

pub async fn login(
    State(app): State<AuthApp>,
    Extension(client): Extension<ClientInfo>,
    audit: AuditCtx,
    session: Session,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Response> {
    let username = body.username.trim().to_lowercase();
    let mut detail =
        json!({ "username": username.chars().take(MAX_LOGIN_NAME).collect::<String>() });
    if username.is_empty()
        || username.len() > MAX_LOGIN_NAME
        || body.password.len() > password::MAX_PASSWORD_BYTES
    {
        return Err(audit
            .refuse(&app.db, "user", "", detail, ApiError::InvalidCredentials)
            .await);
    }
    let found = find(&app, &username).await?;
    let credential = found.as_ref().map_or("", |(_, hash)| hash.as_str());
    let device = app
        .device_cookies
        .recognise(&app, &headers, &username, credential)
        .await?;
    detail["known_device"] = json!(device.is_some());
    let subject = match &device {
        Some(nonce) => Subject::Device(nonce),
        None => Subject::User(&username),
    };
    let reservation = match app.throttle.reserve(subject, client.addr) {
        Ok(reservation) => reservation,
        Err(retry_after) => {
            let err = ApiError::RateLimited { retry_after };
            return Err(audit.refuse(&app.db, "user", "", detail, err).await);
        }
    };
    let credential = credential.to_string();
    let verified = verify(found, body.password).await;
    let user = match verified {
        Ok(Some(user)) => user,
        Ok(None) => {
            // The reservation stays: this was a failure.
            drop(reservation);
            let err = ApiError::InvalidCredentials;
            return Err(audit.refuse(&app.db, "user", "", detail, err).await);
        }
        Err(err) => {
            // Never judged (busy, or picd failed): not the guesser's failure, nor the owner's.
            app.throttle.release(reservation);
            return Err(audit.refuse(&app.db, "user", "", detail, err).await);
        }
    };
    app.throttle.succeeded(reservation);
    let new_device = match device {
        Some(_) => None,
        None => Some(
            app.device_cookies
                .issue(&app, &user.username, &credential)
                .await?,
        ),
    };
    let csrf = super::start_session(&session, &user.id).await?;
    audit.set_actor(user.username.clone());
    let (user_id, role, known) = (user.id.clone(), user.role, new_device.is_none());
    audit
        .transact(&app.db, move |_tx, entry| {
            entry.target_type = "user".into();
            entry.target_id = user_id;
            entry.detail = json!({ "role": role, "known_device": known });
            Ok(())
        })
        .await?;
    let mut response = Json(json!({ "user": user, "csrf_token": csrf })).into_response();
    if let Some(cookie) = new_device {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The user called `username` and their stored password hash.
async fn find(app: &AuthApp, username: &str) -> ApiResult<Option<(store::User, String)>> {
    let name = username.to_string();
    app.db
        .call(move |conn| Ok(store::find_with_hash(conn, &name)?))
        .await
}

/// The user when `password` is theirs. An unknown username costs a verification too, so the
/// answer takes as long as for a wrong password.
async fn verify(
    found: Option<(store::User, String)>,
    password: String,
) -> ApiResult<Option<store::User>> {
    let (user, hash) = found.unzip();
    let verified = password::verify(password, hash).await?;
    Ok(user.filter(|_| verified))
}

/// Counts a change-password attempt like a login (the current password is a password
/// guess): `Ok(true)` when `current` is the user's password.
pub async fn verify_current_password(
    app: &AuthApp,
    client: &ClientInfo,
    headers: &HeaderMap,
    username: &str,
    current: String,
) -> ApiResult<bool> {
    let found = find(app, username).await?;
    let credential = found.as_ref().map_or("", |(_, hash)| hash.as_str());
    let device = app
        .device_cookies
        .recognise(app, headers, username, credential)
        .await?;
    let subject = match &device {
        Some(nonce) => Subject::Device(nonce),
        None => Subject::User(username),
    };
    let reservation = app
        .throttle
        .reserve(subject, client.addr)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    if current.len() > password::MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    match verify(found, current).await {
        Ok(Some(_)) => {
            app.throttle.succeeded(reservation);
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(err) => {
            app.throttle.release(reservation);
            Err(err)
        }
    }
}
