//! The mailboxes' quotas: `GET/PUT /api/email/quota` (the default of every mailbox without an
//! override) and `PUT /api/email/mailboxes/{username}/quota` (an override, or `null` for the
//! default again). Dovecot enforces them at delivery. Admin only; every change audited.

use axum::extract::State;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::store;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::services::accounts::store as accounts;
use crate::services::manifests::MAIL;
use crate::services::store as installed;
use crate::services::ServicesApp;

const TARGET: &str = "mail_quota";
/// The limits migration 0020 allows: 1 KiB to 1 TiB.
const QUOTA_MIN: u64 = 1024;
const QUOTA_MAX: u64 = 1 << 40;

fn limit(field: &str, bytes: u64) -> Result<u64, ApiError> {
    if (QUOTA_MIN..=QUOTA_MAX).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(ApiError::invalid(field, "must be 1024 bytes to 1 TiB"))
    }
}

fn require_installed(conn: &rusqlite::Connection) -> Result<(), ApiError> {
    installed::installed_one(conn, MAIL.id)?
        .map(|_| ())
        .ok_or(ApiError::NotInstalled { service: MAIL.id })
}

pub async fn get_default(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
) -> ApiResult<Json<Value>> {
    let bytes = app
        .db
        .call(|conn| {
            require_installed(conn)?;
            Ok(store::default_quota(conn)?)
        })
        .await?;
    Ok(Json(json!({ "default_bytes": bytes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultQuota {
    default_bytes: u64,
}

pub async fn put_default(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(body): Json<DefaultQuota>,
) -> ApiResult<Json<Value>> {
    let bytes = match limit("default_bytes", body.default_bytes) {
        Ok(bytes) => bytes,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.detail = json!({ "default_bytes": bytes });
            require_installed(tx)?;
            Ok(store::set_default_quota(tx, bytes)?)
        })
        .await?;
    super::apply_maps(&app).await?;
    Ok(Json(json!({ "default_bytes": bytes })))
}

/// `null` is a value here (back to the default), a missing field is not.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::deserialize(d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxQuota {
    #[serde(deserialize_with = "nullable")]
    limit_bytes: Option<u64>,
}

pub async fn put_mailbox(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(username): Path<String>,
    Json(body): Json<MailboxQuota>,
) -> ApiResult<Json<Value>> {
    let checked = match crate::cell::settings::dns_label(&username) {
        Err(_) => Err(ApiError::not_found("mailbox")),
        Ok(()) => body
            .limit_bytes
            .map(|b| limit("limit_bytes", b))
            .transpose(),
    };
    let override_bytes = match checked {
        Ok(bytes) => bytes,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let user = username.clone();
    let effective = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = user.clone();
            entry.detail = json!({ "limit_bytes": override_bytes });
            require_installed(tx)?;
            if accounts::get(tx, MAIL.id, &user)?.is_none() {
                return Err(ApiError::not_found("mailbox"));
            }
            store::set_quota_override(tx, &user, override_bytes)?;
            Ok(match override_bytes {
                Some(bytes) => bytes,
                None => store::default_quota(tx)?,
            })
        })
        .await?;
    super::apply_maps(&app).await?;
    Ok(Json(json!({
        "username": username,
        "limit_bytes": effective,
        "default": override_bytes.is_none(),
    })))
}
