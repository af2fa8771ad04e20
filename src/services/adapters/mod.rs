//! The per-service APIs: `/api/files/*`, `/api/calendar/*` and `/api/email/*`, read from the services' data
//! folders (which picd owns). Each has a `status` route that always answers; the others
//! answer 404 `not_installed` while the service is not installed.

pub mod calendar;
pub mod email;
pub mod files;
mod walk;

use serde_json::{json, Value};

use super::catalog::Manifest;
use super::{accounts, store};
use crate::error::ApiError;
use crate::services::ServicesApp;

/// The service's row, or 404 `not_installed`.
async fn require_installed(app: &ServicesApp, manifest: &'static Manifest) -> Result<(), ApiError> {
    let id = manifest.id;
    let row = app
        .db
        .call(move |conn| Ok(store::installed_one(conn, id)?))
        .await?;
    row.map(|_| ()).ok_or(ApiError::NotInstalled {
        service: manifest.id,
    })
}

/// `GET /api/<kind>/status`: installed or not, and how many accounts.
async fn status(app: &ServicesApp, manifest: &'static Manifest) -> Result<Value, ApiError> {
    let id = manifest.id;
    let (row, accounts) = app
        .db
        .call(move |conn| {
            Ok((
                store::installed_one(conn, id)?,
                accounts::store::of_service(conn, id)?.len(),
            ))
        })
        .await?;
    Ok(json!({
        "service": id,
        "installed": row.is_some(),
        "installed_at": row.map(|r| r.installed_at),
        "accounts": accounts,
    }))
}

/// The accounts of an installed service with the folder each keeps its data in.
async fn accounts_with_folders(
    app: &ServicesApp,
    manifest: &'static Manifest,
) -> Result<Vec<(accounts::store::Account, std::path::PathBuf)>, ApiError> {
    require_installed(app, manifest).await?;
    let id = manifest.id;
    let list = app
        .db
        .call(move |conn| Ok(accounts::store::of_service(conn, id)?))
        .await?;
    let root = accounts::disk::accounts_root(&app.services.driver.service_dir(id), manifest);
    Ok(list
        .into_iter()
        .map(|a| {
            let folder = root.join(&a.username);
            (a, folder)
        })
        .collect())
}

/// Runs a filesystem read off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a folder read: {e}")))?
        .map_err(ApiError::Io)
}
