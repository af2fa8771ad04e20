//! /api/keys: create, list, rotate and revoke API keys. A token appears in exactly one
//! response (create or rotate) and nowhere else.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_keys::{self, NewKey, Scope, DEFAULT_RATE_LIMIT, MAX_RATE_LIMIT};
use super::AdminUser;
use crate::audit::AuditCtx;
use crate::auth::AuthApp;
use crate::error::{ApiError, ApiResult, Json, Path};

pub async fn list(_admin: AdminUser, State(app): State<AuthApp>) -> ApiResult<Json<Value>> {
    let keys = app.db.call(|conn| Ok(api_keys::list(conn)?)).await?;
    Ok(Json(json!({ "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    scopes: Vec<String>,
    rate_limit_per_minute: Option<u32>,
    expires_at: Option<String>,
}

struct ValidKey {
    name: String,
    scopes: Vec<Scope>,
    rate_limit_per_minute: u32,
    expires_at: Option<String>,
}

fn validate(body: CreateKey) -> Result<ValidKey, ApiError> {
    let mut fields = Vec::new();
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        fields.push((
            "name".to_string(),
            "must be 1 to 64 printable characters".to_string(),
        ));
    }
    let mut scopes = Vec::new();
    for (i, s) in body.scopes.iter().enumerate() {
        match Scope::parse(s) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => fields.push((
                format!("scopes[{i}]"),
                "must be admin, read-only or dns".into(),
            )),
        }
    }
    if body.scopes.is_empty() {
        fields.push((
            "scopes".into(),
            "give at least one scope: admin, read-only or dns".into(),
        ));
    }
    let rate_limit_per_minute = body.rate_limit_per_minute.unwrap_or(DEFAULT_RATE_LIMIT);
    if !(1..=MAX_RATE_LIMIT).contains(&rate_limit_per_minute) {
        fields.push((
            "rate_limit_per_minute".into(),
            format!("must be from 1 to {MAX_RATE_LIMIT}"),
        ));
    }
    let expires_at = match body.expires_at.as_deref().map(crate::time::parse_rfc3339) {
        None => None,
        Some(Some(t)) if t > crate::time::now() => Some(crate::time::format_rfc3339(t)),
        Some(Some(_)) => {
            fields.push(("expires_at".into(), "must be in the future".into()));
            None
        }
        Some(None) => {
            fields.push(("expires_at".into(), "must be an RFC 3339 time".into()));
            None
        }
    };
    if fields.is_empty() {
        Ok(ValidKey {
            name,
            scopes,
            rate_limit_per_minute,
            expires_at,
        })
    } else {
        Err(ApiError::Invalid { fields })
    }
}

pub async fn create(
    _admin: AdminUser,
    State(app): State<AuthApp>,
    audit: AuditCtx,
    Json(body): Json<CreateKey>,
) -> ApiResult<Json<Value>> {
    let key = match validate(body) {
        Ok(k) => k,
        Err(err) => return Err(audit.refuse(&app.db, "api_key", "", json!({}), err).await),
    };
    let (created, token) = audit
        .transact(&app.db, move |tx, entry| {
            let (created, token) = api_keys::create(
                tx,
                &NewKey {
                    name: &key.name,
                    scopes: &key.scopes,
                    rate_limit_per_minute: key.rate_limit_per_minute,
                    expires_at: key.expires_at.as_deref(),
                },
            )?;
            entry.target_type = "api_key".into();
            entry.target_id = created.id.clone();
            entry.detail =
                json!({ "name": created.name, "prefix": created.prefix, "scopes": created.scopes });
            Ok((created, token))
        })
        .await?;
    Ok(Json(with_token(&created, token)))
}

fn with_token(key: &api_keys::ApiKey, token: String) -> Value {
    let mut body = json!(key);
    body["token"] = json!(token);
    body
}

pub async fn rotate(
    _admin: AdminUser,
    State(app): State<AuthApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (key, token) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "api_key".into();
            entry.target_id = id.clone();
            let (key, token) = api_keys::rotate(tx, &id)?;
            entry.detail = json!({ "name": key.name, "prefix": key.prefix });
            Ok((key, token))
        })
        .await?;
    Ok(Json(with_token(&key, token)))
}

pub async fn revoke(
    _admin: AdminUser,
    State(app): State<AuthApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "api_key".into();
            entry.target_id = id.clone();
            let key = api_keys::delete(tx, &id)?;
            entry.detail = json!({ "name": key.name, "prefix": key.prefix });
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "revoked": true })))
}
