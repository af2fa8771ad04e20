//! `/api/services/catalog/{id}/accounts`: list, provision (a peer's or the owner's account,
//! live once the service accepts its login), deprovision (its data archived), and read an
//! account's credentials; `/api/services/settings` (the archive's retention). Admin only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::store::{self, Account};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::services::catalog::{self, Manifest};
use crate::services::store as installed;
use crate::services::ServicesApp;

const TARGET: &str = "service_account";

fn known(id: &str) -> Result<&'static Manifest, ApiError> {
    catalog::find(id).ok_or_else(|| ApiError::not_found("service"))
}

/// A username from a path: only what picd could have made (a DNS label) is looked up.
fn username_of(raw: &str) -> Result<&str, ApiError> {
    crate::cell::settings::dns_label(raw)
        .map(|()| raw)
        .map_err(|_| ApiError::not_found("account"))
}

/// Makes the service's account file and folders match its rows, now.
pub async fn sync(app: &ServicesApp, manifest: &'static Manifest) -> ApiResult<()> {
    let id = manifest.id;
    let (accounts, retention) = app
        .db
        .call(move |conn| Ok((store::of_service(conn, id)?, store::retention_days(conn)?)))
        .await?;
    let driver = app.services.driver.clone();
    // A gone account's sessions end before its folder is archived.
    if let Ok(docker) = driver.connect().await {
        let gone = super::disk::gone(&driver.service_dir(id), manifest, &accounts);
        let container = driver.container_name(id);
        super::sessions::end(&docker, &container, manifest, &gone).await;
    }
    let applied =
        tokio::task::spawn_blocking(move || driver.apply_accounts(manifest, &accounts, retention))
            .await
            .map_err(|e| anyhow::anyhow!("accounts pass: {e}"))??;
    if !applied.archived.is_empty() {
        tracing::info!(service = id, archived = ?applied.archived, "account data archived");
    }
    // Mail's maps name every mailbox: an account is an address only once it is in them.
    if id == crate::services::manifests::MAIL.id {
        crate::services::adapters::email::apply_maps(app).await?;
    }
    Ok(())
}

pub async fn list(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let manifest = known(&id)?;
    let accounts = app
        .db
        .call(move |conn| Ok(store::of_service(conn, manifest.id)?))
        .await?;
    Ok(Json(
        json!({ "service": manifest.id, "accounts": accounts }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The peer the account is for.
    peer: Option<String>,
    /// The owner's own account instead (named after the admin's username).
    #[serde(default)]
    owner: bool,
}

/// The account's username and peer, from the body and the signed-in admin.
fn who(body: &NewAccount, admin: &AdminUser) -> Result<(String, Option<String>), ApiError> {
    match (&body.peer, body.owner) {
        (Some(_), true) => Err(ApiError::invalid("owner", "give either peer or owner")),
        (None, false) => Err(ApiError::invalid(
            "peer",
            "is required (or \"owner\": true)",
        )),
        (Some(peer), false) => match crate::cell::settings::dns_label(peer) {
            Ok(()) => Ok((peer.clone(), Some(peer.clone()))),
            Err(m) => Err(ApiError::invalid("peer", m)),
        },
        (None, true) => {
            let name = admin.0.user.username.clone();
            match crate::cell::settings::dns_label(&name) {
                Ok(()) => Ok((name, None)),
                Err(_) => Err(ApiError::invalid(
                    "owner",
                    "the owner's username is not usable as an account name (a-z, 0-9, -)",
                )),
            }
        }
    }
}

pub async fn create(
    admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
    Json(body): Json<NewAccount>,
) -> ApiResult<Response> {
    let checked = known(&id).and_then(|m| who(&body, &admin).map(|w| (m, w)));
    let (manifest, (username, peer)) = match checked {
        Ok(found) => found,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &id, json!({}), err).await),
    };
    let password = super::new_password();
    let account = Account {
        service_id: manifest.id.into(),
        username: username.clone(),
        peer_name: peer.clone(),
        password_hash: super::hash(manifest, &password)?,
        created_at: crate::time::now_rfc3339(),
    };
    let (vault, secret) = (app.vault.clone(), password.clone());
    let (row, account) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = format!("{}/{}", account.service_id, account.username);
            entry.detail = json!({ "peer": account.peer_name });
            let row = installed::installed_one(tx, &account.service_id)?
                .ok_or_else(|| ApiError::not_found("installed service"))?;
            if let Some(peer) = &account.peer_name {
                crate::peers::store::require(tx, peer)?;
            }
            if store::get(tx, &account.service_id, &account.username)?.is_some() {
                return Err(ApiError::conflict(
                    "account_exists",
                    "this person has an account in the service",
                ));
            }
            store::insert(tx, &account)?;
            let name = super::secret_name(&account.service_id, &account.username);
            vault.put(tx, &name, secret.as_bytes())?;
            Ok((row, account))
        })
        .await?;
    sync(&app, manifest).await?;
    let live = match app.services.driver.connect().await {
        Ok(_) => {
            let probe = &manifest.account_probe;
            super::probe::wait_accepted(&row, probe, &username, &password).await
        }
        Err(e) => Err(e.to_string()),
    };
    let mut answer = serde_json::to_value(&account).unwrap_or_else(|_| json!({}));
    answer["live"] = json!(live.is_ok());
    match live {
        Ok(waited) => answer["waited_ms"] = json!(waited.as_millis() as u64),
        Err(reason) => answer["reason"] = json!(reason),
    }
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn delete(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let checked = known(&id).and_then(|m| username_of(&username).map(|_| m));
    let manifest = match checked {
        Ok(m) => m,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &id, json!({}), err).await),
    };
    let vault = app.vault.clone();
    let name = username.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = format!("{}/{name}", manifest.id);
            if !store::delete(tx, &vault, manifest.id, &name)? {
                return Err(ApiError::not_found("account"));
            }
            Ok(())
        })
        .await?;
    sync(&app, manifest).await?;
    Ok(Json(
        json!({ "service": manifest.id, "deleted": username, "archived": true }),
    ))
}

pub async fn credentials(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let manifest = known(&id)?;
    let username = username_of(&username)?.to_string();
    let vault = app.vault.clone();
    let filled = app
        .db
        .call(move |conn| {
            let account = store::get(conn, manifest.id, &username)?
                .ok_or_else(|| ApiError::not_found("account"))?;
            super::credentials::of_account(conn, &vault, manifest, &account)
        })
        .await?;
    Ok(Json(filled))
}

pub async fn settings(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let days = app.db.call(|conn| Ok(store::retention_days(conn)?)).await?;
    Ok(Json(json!({ "archive_retention_days": days })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    archive_retention_days: u32,
}

pub async fn put_settings(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(body): Json<Settings>,
) -> ApiResult<Json<Value>> {
    let days = body.archive_retention_days;
    if !(1..=3650).contains(&days) {
        let err = ApiError::invalid("archive_retention_days", "must be 1 to 3650 days");
        return Err(audit
            .refuse(&app.db, "service_settings", "", json!({}), err)
            .await);
    }
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "service_settings".into();
            entry.detail = json!({ "archive_retention_days": days });
            Ok(store::set_retention_days(tx, days)?)
        })
        .await?;
    Ok(Json(json!({ "archive_retention_days": days })))
}

pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::{delete as delete_route, get};
    axum::Router::new()
        .route(
            "/api/services/catalog/{id}/accounts",
            get(list).post(create),
        )
        .route(
            "/api/services/catalog/{id}/accounts/{username}",
            delete_route(delete),
        )
        .route(
            "/api/services/catalog/{id}/accounts/{username}/credentials",
            get(credentials),
        )
        .route("/api/services/settings", get(settings).put(put_settings))
}
