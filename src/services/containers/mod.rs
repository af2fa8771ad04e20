//! `/api/containers/*`: this cell's service containers as the engine has them: the list,
//! one container inspected (`inspect`), the tail of its logs (`logs`), a stop that the
//! reconciler honours and a start (`control`), and the images and data folders picd keeps
//! for its services (`stored`). Another cell's containers on the same engine, and containers
//! picd did not create, are never listed, shown or touched: they answer as if they did not
//! exist.

mod control;
mod inspect;
mod logs;
mod stored;

use axum::extract::State;
use bollard::models::ContainerSummary;
use bollard::Docker;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::driver::DriverError;
use crate::error::{ApiError, ApiResult, Json};
use crate::services::ServicesApp;

/// The longest container reference accepted: a name or an Id (64 hex digits).
const REFERENCE_MAX: usize = 128;

/// The engine's refusal as the API says it: the subsystem is unavailable, with its reason.
fn unavailable(e: DriverError) -> ApiError {
    match e {
        DriverError::Unavailable(subsystem, reason) | DriverError::Failed(subsystem, reason) => {
            ApiError::Unavailable { subsystem, reason }
        }
    }
}

/// A container as the API names it: its Id (whole, or a prefix of 12 digits or more) or its
/// name. Anything else cannot name a container and answers 404 like an unknown one.
struct ContainerRef(String);

impl ContainerRef {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut bytes = raw.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if first_ok && rest_ok && raw.len() <= REFERENCE_MAX {
            Ok(ContainerRef(raw.to_string()))
        } else {
            Err(ApiError::not_found("container"))
        }
    }

    fn names(&self, container: &ContainerSummary) -> bool {
        let id = container.id.as_deref().unwrap_or_default();
        let wanted = self.0.as_str();
        let prefix = wanted.len() >= 12
            && wanted.bytes().all(|b| b.is_ascii_hexdigit())
            && id.starts_with(wanted);
        let named = container
            .names
            .iter()
            .flatten()
            .any(|n| n.trim_start_matches('/') == wanted);
        id == wanted || prefix || named
    }
}

/// The cell's own container the reference names. Only the cell's containers are searched, so
/// one picd did not create (or another cell's) is a 404, never revealed nor touched.
async fn resolve(app: &ServicesApp, raw: &str) -> ApiResult<(Docker, ContainerSummary)> {
    let reference = ContainerRef::parse(raw)?;
    let driver = &app.services.driver;
    let docker = driver.connect().await.map_err(unavailable)?;
    let listed = driver
        .managed_containers(&docker)
        .await
        .map_err(unavailable)?;
    let found = listed
        .into_iter()
        .find(|c| reference.names(c))
        .ok_or_else(|| ApiError::not_found("container"))?;
    Ok((docker, found))
}

fn name_of(container: &ContainerSummary) -> Option<&str> {
    let first = container.names.iter().flatten().next();
    first.map(|n| n.trim_start_matches('/'))
}

pub async fn list(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let driver = &app.services.driver;
    let docker = driver.connect().await.map_err(unavailable)?;
    let listed = driver
        .managed_containers(&docker)
        .await
        .map_err(unavailable)?;
    let containers: Vec<Value> = listed
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": name_of(c),
                "service": super::ownership::service_of(c),
                "image": c.image_id,
                "state": c.state,
                "status": c.status,
            })
        })
        .collect();
    Ok(Json(json!({ "containers": containers })))
}

/// The routes of `/api/containers/*`, for the store's router.
pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/containers", get(list))
        .route("/api/containers/images", get(stored::images))
        .route("/api/containers/volumes", get(stored::volumes))
        .route("/api/containers/{id}", get(inspect::inspect))
        .route("/api/containers/{id}/logs", get(logs::logs))
        .route("/api/containers/{id}/start", post(control::start))
        .route("/api/containers/{id}/stop", post(control::stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, name: &str) -> ContainerSummary {
        ContainerSummary {
            id: Some(id.into()),
            names: Some(vec![format!("/{name}")]),
            ..Default::default()
        }
    }

    #[test]
    fn a_reference_is_an_id_a_long_prefix_or_a_name() {
        let id = "0123456789abcdef".repeat(4);
        let c = summary(&id, "picd-abc-files");
        let names = |raw: &str| ContainerRef::parse(raw).map(|r| r.names(&c));
        assert!(names(&id).unwrap());
        assert!(names(&id[..12]).unwrap());
        assert!(!names(&id[..11]).unwrap(), "a short prefix is ambiguous");
        assert!(names("picd-abc-files").unwrap());
        assert!(!names("picd-abc").unwrap());
        for bad in [
            "",
            "../x",
            "-x",
            "a/b",
            "a b",
            &"x".repeat(REFERENCE_MAX + 1),
        ] {
            assert!(ContainerRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
