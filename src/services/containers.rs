//! `GET /api/containers`: this cell's service containers as the engine has them (another
//! cell's on the same engine, and containers picd did not create, are not listed).

use axum::extract::State;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::driver::DriverError;
use crate::error::{ApiError, ApiResult, Json};
use crate::services::ServicesApp;

pub async fn list(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let driver = &app.services.driver;
    let unavailable = |e: DriverError| match e {
        DriverError::Unavailable(subsystem, reason) | DriverError::Failed(subsystem, reason) => {
            ApiError::Unavailable { subsystem, reason }
        }
    };
    let docker = driver.connect().await.map_err(unavailable)?;
    let listed = driver
        .managed_containers(&docker)
        .await
        .map_err(unavailable)?;
    let containers: Vec<Value> = listed
        .iter()
        .map(|c| {
            let label = |name: &str| c.labels.as_ref().and_then(|l| l.get(name)).cloned();
            json!({
                "id": c.id,
                "name": c.names.iter().flatten().next().map(|n| n.trim_start_matches('/')),
                "service": label(super::driver::LABEL_SERVICE),
                "image": c.image_id,
                "state": c.state,
                "status": c.status,
            })
        })
        .collect();
    Ok(Json(json!({ "containers": containers })))
}
