//! The reference's "Auth endpoints": login, logout, me, csrf-token, change-password, the
//! admin's password reset and the list of users.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

use super::guard::session_error;
use super::login::verify_current_password;
use super::session_store::delete_user_sessions;
use super::{password, random_token, store, AdminUser, AnyUser, CSRF_KEY};
use crate::audit::AuditCtx;
use crate::auth::AuthApp;
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, Json};

pub use super::login::login;

pub async fn logout(
    State(app): State<AuthApp>,
    AnyUser(me): AnyUser,
    audit: AuditCtx,
    session: Session,
) -> ApiResult<Json<Value>> {
    session.flush().await.map_err(session_error)?;
    audit
        .transact(&app.db, move |_tx, entry| {
            entry.target_type = "user".into();
            entry.target_id = me.user.id;
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "logged_out": true })))
}

pub async fn me(AnyUser(me): AnyUser, State(app): State<AuthApp>) -> Json<Value> {
    if let Some(key) = me.api_key {
        return Json(json!({ "api_key": key }));
    }
    let expires = me.login_at + app.settings.session_absolute_hours as i64 * 3600;
    let expires = time::OffsetDateTime::from_unix_timestamp(expires)
        .map(crate::time::format_rfc3339)
        .ok();
    Json(
        json!({ "user": me.user, "session": { "absolute_expiry": expires,
        "idle_minutes": app.settings.session_idle_minutes } }),
    )
}

pub async fn csrf_token(_me: AnyUser, session: Session) -> ApiResult<Json<Value>> {
    let token: Option<String> = session.get(CSRF_KEY).await.map_err(session_error)?;
    let token = match token {
        Some(t) => t,
        None => {
            let t = random_token();
            session.insert(CSRF_KEY, &t).await.map_err(session_error)?;
            t
        }
    };
    Ok(Json(json!({ "csrf_token": token })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(app): State<AuthApp>,
    AnyUser(me): AnyUser,
    Extension(client): Extension<ClientInfo>,
    audit: AuditCtx,
    session: Session,
    headers: HeaderMap,
    Json(body): Json<ChangePassword>,
) -> ApiResult<Json<Value>> {
    let username = me.user.username.clone();
    let target = me.user.id.clone();
    let current =
        verify_current_password(&app, &client, &headers, &username, body.current_password).await;
    match current {
        Ok(true) => {}
        Ok(false) => {
            let err = ApiError::invalid("current_password", "is not the current password");
            return Err(audit.refuse(&app.db, "user", &target, json!({}), err).await);
        }
        Err(err) => return Err(audit.refuse(&app.db, "user", &target, json!({}), err).await),
    }
    if let Err(err) = password::check_policy("new_password", &body.new_password, &username) {
        return Err(audit.refuse(&app.db, "user", &target, json!({}), err).await);
    }
    let hash = password::hash(body.new_password).await?;
    let keep = session.id();
    let ended = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "user".into();
            entry.target_id = target.clone();
            store::set_password(tx, &target, &hash)?;
            // Other sessions may belong to whoever learnt the old password.
            let ended = delete_user_sessions(tx, &target, keep.as_ref())?;
            entry.detail = json!({ "other_sessions_ended": ended });
            Ok(ended)
        })
        .await?;
    Ok(Json(
        json!({ "changed": true, "other_sessions_ended": ended }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    username: String,
    new_password: String,
}

pub async fn admin_reset_password(
    State(app): State<AuthApp>,
    AdminUser(admin): AdminUser,
    audit: AuditCtx,
    Json(body): Json<ResetPassword>,
) -> ApiResult<Json<Value>> {
    let username = body.username.trim().to_lowercase();
    // A reset needs no current password; one's own goes through change-password, which does,
    // so that a session left open (or stolen) cannot take the account for good.
    if username == admin.user.username {
        let err = ApiError::forbidden(
            "use_change_password",
            "change your own password with POST /api/auth/change-password (current password required)",
        );
        return Err(audit
            .refuse(
                &app.db,
                "user",
                &admin.user.id,
                json!({ "username": username }),
                err,
            )
            .await);
    }
    if let Err(err) = password::check_policy("new_password", &body.new_password, &username) {
        return Err(audit
            .refuse(&app.db, "user", "", json!({ "username": username }), err)
            .await);
    }
    let hash = password::hash(body.new_password).await?;
    let ended = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "user".into();
            entry.detail = json!({ "username": username });
            reset_password(tx, &username, &hash, entry)
        })
        .await?;
    Ok(Json(json!({ "reset": true, "sessions_ended": ended })))
}

/// Sets a user's password hash and ends all their sessions (shared with the CLI).
pub fn reset_password(
    tx: &rusqlite::Transaction<'_>,
    username: &str,
    hash: &str,
    entry: &mut crate::audit::Entry,
) -> ApiResult<usize> {
    let (user, _) =
        store::find_with_hash(tx, username)?.ok_or_else(|| ApiError::not_found("user"))?;
    entry.target_id = user.id.clone();
    store::set_password(tx, &user.id, hash)?;
    let ended = delete_user_sessions(tx, &user.id, None)?;
    Ok(ended)
}

pub async fn users(_admin: AdminUser, State(app): State<AuthApp>) -> ApiResult<Json<Value>> {
    let users = app.db.call(|conn| Ok(store::list(conn)?)).await?;
    Ok(Json(json!({ "users": users })))
}
