//! `POST /api/containers/{id}/start` and `.../stop`: the service's desired state ("running" or
//! "stopped") is written with its audit entry in one transaction, then the driver makes the
//! engine match it. A stopped service stays stopped: the reconciler honours the row, across its
//! passes and restarts of picd, until a start.

use axum::extract::State;
use serde_json::{json, Value};

use super::{resolve, unavailable};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::services::ownership::service_of;
use crate::services::store::{self, Desired};
use crate::services::{catalog, listen, ServicesApp};

const TARGET: &str = "container";

pub async fn start(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(reference): Path<String>,
) -> ApiResult<Json<Value>> {
    set(app, audit, &reference, Desired::Running).await
}

pub async fn stop(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(reference): Path<String>,
) -> ApiResult<Json<Value>> {
    set(app, audit, &reference, Desired::Stopped).await
}

async fn set(
    app: ServicesApp,
    audit: AuditCtx,
    reference: &str,
    desired: Desired,
) -> ApiResult<Json<Value>> {
    let found = resolve(&app, reference).await.and_then(|(docker, found)| {
        let service = service_of(&found).map(str::to_string);
        let service = service.ok_or_else(|| ApiError::not_found("container"))?;
        Ok((docker, found.id.unwrap_or_default(), service))
    });
    // The reference is not echoed into the log: an unknown one may be anything.
    let (docker, id, service) = match found {
        Ok(found) => found,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    // Not while an install or a remove runs: they drive the same container.
    let _busy = app.services.busy.lock().await;
    let audited = (id.clone(), service.clone());
    let (row, image, place) = audit
        .transact(&app.db, move |tx, entry| {
            let (id, service) = audited;
            entry.target_type = TARGET.into();
            entry.target_id = service.clone();
            entry.detail = json!({ "container": id, "desired_state": desired.as_str() });
            // A container of a service no longer installed is on its way out (the reconciler
            // removes it): nothing to start or stop.
            if !store::set_desired(tx, &service, desired)? {
                return Err(ApiError::not_found("installed service"));
            }
            let row = store::installed_one(tx, &service)?
                .ok_or_else(|| ApiError::not_found("installed service"))?;
            let image = store::image(tx, &service)?;
            let place = match catalog::find(&service) {
                Some(manifest) => listen::cell_place(tx, manifest)?,
                None => None,
            };
            Ok((row, image, place))
        })
        .await?;
    let driver = &app.services.driver;
    driver
        .apply_one(&docker, &row, image.as_ref(), place.as_ref())
        .await
        .map_err(unavailable)?;
    // A start may have replaced the container (its spec changed while it was stopped).
    let now = driver
        .managed_containers(&docker)
        .await
        .map_err(unavailable)?;
    let now = now.iter().find(|c| service_of(c) == Some(service.as_str()));
    Ok(Json(json!({
        "service": service,
        "desired_state": desired.as_str(),
        "id": now.and_then(|c| c.id.clone()),
        "state": now.and_then(|c| c.state),
    })))
}
