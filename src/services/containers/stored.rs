//! `GET /api/containers/images` (the images picd built for its services, as recorded and as
//! the engine has them) and `GET /api/containers/volumes` (the services' data folders on this
//! machine, kept across removes unless purged).

use std::path::Path as FsPath;

use axum::extract::State;
use serde_json::{json, Value};

use super::unavailable;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json};
use crate::services::catalog::CATALOG;
use crate::services::{images, store, ServicesApp};

/// The most files and folders counted for one volume's size; past it the size is not given.
const SIZE_WALK_MAX: usize = 100_000;

pub async fn images(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let driver = &app.services.driver;
    let docker = driver.connect().await.map_err(unavailable)?;
    let (recorded, installed) = app
        .db
        .call(|conn| {
            let mut recorded = Vec::new();
            for manifest in CATALOG {
                recorded.extend(store::image(conn, manifest.id)?);
            }
            let installed: Vec<String> = store::installed(conn)?
                .into_iter()
                .map(|row| row.service_id)
                .collect();
            Ok((recorded, installed))
        })
        .await?;
    let mut listed = Vec::new();
    for image in recorded {
        let found = images::tagged(&docker, &image, driver.cell_id()).await;
        let (tag, engine) = match found {
            Ok((tag, engine)) => (Some(tag), Some(engine)),
            Err(_) => (None, None),
        };
        let engine_id = engine.as_ref().and_then(|e| e.id.clone());
        listed.push(json!({
            "service": image.service_id,
            "installed": installed.contains(&image.service_id),
            "id": image.image_id,
            "tag": tag,
            "engine_id": engine_id,
            // What the driver checks before it creates a container from the image.
            "matches": engine_id.as_deref() == Some(image.image_id.as_str()),
            "size_bytes": engine.as_ref().and_then(|e| e.size),
            "created": engine.as_ref().and_then(|e| e.created.clone()),
            "built_at": image.built_at,
            "recipe_hash": image.recipe_hash,
        }));
    }
    Ok(Json(json!({ "images": listed })))
}

pub async fn volumes(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let installed: Vec<String> = app
        .db
        .call(|conn| {
            let rows = store::installed(conn)?;
            Ok(rows.into_iter().map(|row| row.service_id).collect())
        })
        .await?;
    let driver = app.services.driver.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let mut listed = Vec::new();
        for manifest in CATALOG {
            for volume in manifest.volumes {
                let path = driver
                    .service_dir(manifest.id)
                    .join("volumes")
                    .join(volume.name);
                if !path.is_dir() {
                    continue;
                }
                listed.push(json!({
                    "service": manifest.id,
                    "installed": installed.iter().any(|id| id == manifest.id),
                    "name": volume.name,
                    "mount": volume.mount,
                    "path": path.display().to_string(),
                    "size_bytes": size_on_disk(&path),
                }));
            }
        }
        listed
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("volume sizes: {e}")))?;
    Ok(Json(json!({ "volumes": listed })))
}

/// The bytes the folder's files take on disk (links are not followed), or None when it holds
/// more than SIZE_WALK_MAX entries: a size is only worth a bounded walk.
fn size_on_disk(root: &FsPath) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut pending = vec![root.to_path_buf()];
    let (mut bytes, mut seen) = (0u64, 0usize);
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            seen += 1;
            if seen > SIZE_WALK_MAX {
                return None;
            }
            let meta = entry.metadata().ok()?;
            bytes += meta.blocks() * 512;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Some(bytes)
}
