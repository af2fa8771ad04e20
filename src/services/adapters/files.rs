//! `/api/files/*`: the files service's accounts with the space each uses, and a listing of an
//! account's folder (names, sizes, times; never contents).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use super::walk;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::services::catalog::FILES;
use crate::services::ServicesApp;

pub async fn status(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    Ok(Json(super::status(&app, &FILES).await?))
}

pub async fn users(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let accounts = super::accounts_with_folders(&app, &FILES).await?;
    let users = super::blocking(move || {
        accounts
            .into_iter()
            .map(|(account, folder)| {
                let usage = walk::usage(&folder)?;
                Ok(json!({
                    "username": account.username,
                    "peer": account.peer_name,
                    "created_at": account.created_at,
                    "usage": usage,
                }))
            })
            .collect::<std::io::Result<Vec<Value>>>()
    })
    .await?;
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingQuery {
    #[serde(default)]
    path: String,
}

pub async fn listing(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path(username): Path<String>,
    Query(query): Query<ListingQuery>,
) -> ApiResult<Json<Value>> {
    let rel = walk::relative(&query.path).map_err(|m| ApiError::invalid("path", m))?;
    let accounts = super::accounts_with_folders(&app, &FILES).await?;
    let (_, folder) = accounts
        .into_iter()
        .find(|(a, _)| a.username == username)
        .ok_or_else(|| ApiError::not_found("account"))?;
    let shown = rel.display().to_string();
    let listed = super::blocking(move || walk::listing(&folder, &rel))
        .await?
        .ok_or_else(|| ApiError::not_found("folder"))?;
    let (entries, truncated) = listed;
    Ok(Json(json!({
        "username": username,
        "path": format!("/{shown}"),
        "entries": entries,
        "truncated": truncated,
    })))
}

pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::get;
    axum::Router::new()
        .route("/api/files/status", get(status))
        .route("/api/files/users", get(users))
        .route("/api/files/users/{username}/files", get(listing))
}
