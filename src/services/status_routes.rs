//! The installed services as they run: `GET /api/services/active` (all of them),
//! `GET /api/services/catalog/{id}/status` (one) and `POST /api/services/catalog/{id}/restart`.

use axum::extract::State;
use bollard::models::ContainerSummary;
use bollard::Docker;
use serde_json::{json, Value};

use super::catalog;
use super::routes::known;
use super::store::{self, Installed};
use super::{install, ownership};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::driver::DriverError;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::services::ServicesApp;

const TARGET: &str = "service";

/// The engine and this cell's containers, when the engine answers.
async fn engine_view(app: &ServicesApp) -> (Option<Docker>, Option<Vec<ContainerSummary>>) {
    let driver = app.services.driver.clone();
    let docker = driver.connect().await.ok();
    let containers = match &docker {
        Some(docker) => driver.managed_containers(docker).await.ok(),
        None => None,
    };
    (docker, containers)
}

/// One installed service: its container, health (asked now), resource use and ports.
async fn service_json(
    row: &Installed,
    docker: Option<&Docker>,
    containers: Option<&[ContainerSummary]>,
) -> Value {
    let container = containers.and_then(|list| {
        list.iter()
            .find(|c| ownership::service_of(c) == Some(row.service_id.as_str()))
    });
    let stopped = row.desired == store::Desired::Stopped;
    let health = match (container, catalog::find(&row.service_id)) {
        // Stopped on purpose: not a failing service.
        _ if stopped => "stopped",
        (Some(_), Some(manifest)) => match install::check_health(manifest, row).await {
            Ok(()) => "healthy",
            Err(_) => "unhealthy",
        },
        _ => "unknown",
    };
    let resources = match (docker, container.and_then(|c| c.id.as_deref())) {
        (Some(docker), Some(id)) => super::usage::of_container(docker, id).await,
        _ => None,
    };
    let http_port = catalog::find(&row.service_id)
        .and_then(|m| m.routed_endpoint())
        .and_then(|e| row.port(e.name));
    json!({
        "id": row.service_id,
        "resources": resources,
        "http_port": http_port,
        "ports": row.ports,
        "installed_at": row.installed_at,
        "desired_state": row.desired.as_str(),
        "container": container.map(|c| json!({
            "id": c.id,
            "state": c.state,
            "status": c.status,
        })),
        "health": health,
    })
}

pub async fn active(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let installed = app.db.call(|conn| Ok(store::installed(conn)?)).await?;
    let (docker, containers) = engine_view(&app).await;
    let mut services = Vec::new();
    for row in &installed {
        services.push(service_json(row, docker.as_ref(), containers.as_deref()).await);
    }
    Ok(Json(
        json!({ "services": services, "engine": containers.is_some() }),
    ))
}

/// One catalog service: `installed: false` when it is not, else as in `active`.
pub async fn status(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let manifest = known(&id)?;
    let row = app
        .db
        .call(move |conn| Ok(store::installed_one(conn, manifest.id)?))
        .await?;
    let Some(row) = row else {
        return Ok(Json(json!({ "id": manifest.id, "installed": false })));
    };
    let (docker, containers) = engine_view(&app).await;
    let mut body = service_json(&row, docker.as_ref(), containers.as_deref()).await;
    body["installed"] = json!(true);
    body["engine"] = json!(containers.is_some());
    Ok(Json(body))
}

fn engine_error(e: DriverError) -> ApiError {
    match e {
        DriverError::Unavailable(subsystem, reason) | DriverError::Failed(subsystem, reason) => {
            ApiError::Unavailable { subsystem, reason }
        }
    }
}

/// Restarts the service's container (the engine's stop, with its grace, then start) and
/// waits until the service answers its health check again; audited with the outcome.
pub async fn restart(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let restarted = restart_service(&app, &id).await;
    let target = known(&id).map(|m| m.id).unwrap_or("");
    match restarted {
        Err(err) => Err(audit.refuse(&app.db, TARGET, target, json!({}), err).await),
        Ok(health) => {
            let detail = health.clone();
            let mut answer = json!({ "id": target, "restarted": true });
            answer["health"] = health["health"].clone();
            answer["reason"] = health.get("reason").cloned().unwrap_or(Value::Null);
            audit
                .transact(&app.db, move |_tx, entry| {
                    entry.target_type = TARGET.into();
                    entry.target_id = target.into();
                    entry.detail = detail;
                    Ok(())
                })
                .await?;
            Ok(Json(answer))
        }
    }
}

/// The restart itself; the service's health afterwards (`healthy`, or `unhealthy` and why).
async fn restart_service(app: &ServicesApp, id: &str) -> Result<Value, ApiError> {
    let manifest = known(id)?;
    let row = app
        .db
        .call(move |conn| Ok(store::installed_one(conn, manifest.id)?))
        .await?
        .ok_or(ApiError::NotInstalled {
            service: manifest.id,
        })?;
    if row.desired == store::Desired::Stopped {
        return Err(ApiError::conflict(
            "service_stopped",
            "the service was stopped on purpose; start it instead",
        ));
    }
    let driver = app.services.driver.clone();
    let docker = driver.connect().await.map_err(engine_error)?;
    if !driver
        .restart_service(&docker, manifest.id)
        .await
        .map_err(engine_error)?
    {
        return Err(ApiError::conflict(
            "no_container",
            "the service has no container yet (is its image built?)",
        ));
    }
    Ok(match install::wait_healthy(manifest, &row).await {
        Ok(_) => json!({ "health": "healthy" }),
        Err(reason) => json!({ "health": "unhealthy", "reason": reason }),
    })
}
