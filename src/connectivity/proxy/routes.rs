//! POST and PUT of a `socks5` or `http` connection (the connectivity routes dispatch here on
//! the type). The password goes into the vault in the same transaction as the row and its
//! audit entry, and is never answered, logged or audited.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::input::{self, Password};
use crate::audit::AuditCtx;
use crate::connectivity::store::{self, ConnectionRow, ConnectionSettings};
use crate::connectivity::ConnectivityApp;
use crate::error::{ApiError, ApiResult, Json};
use crate::vault::Vault;

const TARGET: &str = "connection";

/// The vault entry of a connection's proxy password.
fn password_name(id: &str) -> String {
    format!("connectivity.{id}.password")
}

fn put_password(
    conn: &rusqlite::Connection,
    vault: &Vault,
    id: &str,
    password: &Password,
) -> Result<(), ApiError> {
    match password {
        Password::Keep => Ok(()),
        Password::Set(secret) => vault.put(conn, &password_name(id), secret.as_bytes()),
        Password::Remove => vault.delete(conn, &password_name(id)).map(|_| ()),
    }
}

/// The stored password (None without one).
pub fn password(
    conn: &rusqlite::Connection,
    vault: &Vault,
    id: &str,
) -> Result<Option<zeroize::Zeroizing<String>>, ApiError> {
    Ok(vault
        .get(conn, &password_name(id))?
        .map(|bytes| zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())))
}

/// Removes the password with its connection (store::delete calls this).
pub fn delete_password(
    conn: &rusqlite::Connection,
    vault: &Vault,
    id: &str,
) -> Result<(), ApiError> {
    vault.delete(conn, &password_name(id)).map(|_| ())
}

/// What the audit entry says: what the listing shows, never the password.
fn detail(row: &ConnectionRow, s: &super::ProxySettings) -> Value {
    json!({ "name": row.name, "type": row.kind, "slot": row.slot, "host": s.host,
            "port": s.port, "username": s.username, "has_password": s.has_password })
}

pub async fn create(app: ConnectivityApp, audit: AuditCtx, body: Value) -> ApiResult<Response> {
    let read = match input::read(&body, None) {
        Ok(read) => read,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let vault = app.vault.clone();
    let row = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            let name = read.name.unwrap_or_default();
            let settings = ConnectionSettings::Proxy(read.settings.clone());
            let row = store::new_row(tx, name, &read.kind, settings)?;
            entry.target_id = row.id.clone();
            entry.detail = detail(&row, &read.settings);
            store::insert_row(tx, &row)?;
            put_password(tx, &vault, &row.id, &read.password)?;
            Ok(row)
        })
        .await?;
    crate::connectivity::passes::apply_soon(&app);
    let body = crate::connectivity::routes::connection_json(&app, &row, &[]);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// PUT on an existing proxy connection (`current` as read before the transaction; the
/// transaction reads it again).
pub async fn update(
    app: ConnectivityApp,
    audit: AuditCtx,
    id: String,
    body: Value,
) -> ApiResult<Json<Value>> {
    let vault = app.vault.clone();
    let (row, users) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = id.clone();
            let mut row = store::get(tx, &id)?
                .ok_or_else(|| ApiError::not_found(format!("connection '{id}'")))?;
            let ConnectionSettings::Proxy(current) = &row.settings else {
                return Err(ApiError::invalid("type", "is not a proxy connection"));
            };
            let read = input::read(&body, Some((&row.kind, current)))?;
            row.name = read.name.unwrap_or(row.name);
            row.settings = ConnectionSettings::Proxy(read.settings.clone());
            row.updated_at = crate::time::now_rfc3339();
            entry.detail = detail(&row, &read.settings);
            store::update(tx, &vault, &row, None)?;
            put_password(tx, &vault, &row.id, &read.password)?;
            let users = store::users(tx, &row.id)?;
            Ok((row, users))
        })
        .await?;
    crate::connectivity::passes::apply_soon(&app);
    Ok(Json(crate::connectivity::routes::connection_json(
        &app, &row, &users,
    )))
}
