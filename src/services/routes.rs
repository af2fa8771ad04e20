//! `/api/store` (the catalog with installed state, install with live progress, remove) and
//! `/api/services/active`.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::catalog::{self, Manifest, CATALOG};
use super::store::{self, Installed};
use super::{exposure, install};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json};
use crate::services::ServicesApp;

const TARGET: &str = "service";
/// Loopback ports picd hands to services.
const PORTS: std::ops::Range<u16> = 20000..30000;

pub async fn list(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let (installed, images) = app
        .db
        .call(|conn| {
            let installed = store::installed(conn)?;
            let mut images = Vec::new();
            for manifest in CATALOG {
                images.push(store::image(conn, manifest.id)?);
            }
            Ok((installed, images))
        })
        .await?;
    let services: Vec<Value> = CATALOG
        .iter()
        .zip(images)
        .map(|(manifest, image)| {
            let row = installed.iter().find(|r| r.service_id == manifest.id);
            json!({
                "id": manifest.id,
                "name": manifest.name,
                "description": manifest.description,
                "version": manifest.version,
                // The owner's pinned reference replaces the build recipe (`service_images`).
                "image": match app.services.pulled.get(manifest.id) {
                    Some(pinned) => json!({ "kind": "pulled", "reference": pinned.to_string() }),
                    None => json!(manifest.image),
                },
                "image_id": image.map(|i| i.image_id),
                "subdomain": manifest.subdomain,
                "endpoints": manifest.endpoints,
                "resources": manifest.resources,
                "security": manifest.security,
                "installed": row.is_some(),
                "installed_at": row.map(|r| r.installed_at.clone()),
            })
        })
        .collect();
    Ok(Json(json!({ "services": services })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveBody {
    id: String,
    #[serde(default)]
    purge: bool,
}

pub(super) fn known(id: &str) -> Result<&'static Manifest, ApiError> {
    // The id is only ever compared with the catalog's, never used as a path or a name.
    catalog::find(id).ok_or_else(|| ApiError::not_found("service"))
}

/// A port for each of the service's endpoints, none held by another service (nor by another
/// endpoint of this one) and none something on this machine listens on: the endpoint's
/// standard port when it is free in that sense, else one of picd's range.
fn allocate_ports(manifest: &Manifest, taken: &[u16]) -> Result<BTreeMap<String, u16>, ApiError> {
    let mut taken = taken.to_vec();
    let mut ports = BTreeMap::new();
    for endpoint in manifest.endpoints {
        let standard = endpoint
            .standard_port
            .filter(|p| !taken.contains(p) && free_everywhere(*p));
        let port = match standard {
            Some(port) => port,
            None => allocate_port(&taken)?,
        };
        taken.push(port);
        ports.insert(endpoint.name.to_string(), port);
    }
    Ok(ports)
}

/// Whether nothing listens on the port on any address of this machine: a bind to the
/// wildcard fails when anything holds the port on a single address too.
fn free_everywhere(port: u16) -> bool {
    // One at a time: a dual-stack `::` would collide with a `0.0.0.0` still held.
    let v4 = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok();
    v4 && std::net::TcpListener::bind(("::", port)).is_ok()
}

/// A loopback port no installed service has and nothing on this machine listens on.
fn allocate_port(taken: &[u16]) -> Result<u16, ApiError> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..64 {
        let port = rng.gen_range(PORTS);
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(ApiError::conflict(
        "no_free_port",
        "no free loopback port for the service",
    ))
}

pub async fn install(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(body): Json<InstallBody>,
) -> ApiResult<Response> {
    let manifest = match known(&body.id) {
        Ok(m) => m,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let guard = app.services.busy.clone().lock_owned().await;
    let (row, host) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = manifest.id.into();
            if store::installed_one(tx, manifest.id)?.is_some() {
                return Err(ApiError::conflict(
                    "already_installed",
                    "the service is installed",
                ));
            }
            let row = Installed {
                service_id: manifest.id.into(),
                ports: allocate_ports(manifest, &store::ports_in_use(tx)?)?,
                installed_at: crate::time::now_rfc3339(),
                desired: store::Desired::Running,
            };
            let host = exposure::host(tx, manifest)?;
            // Its certificate names the cell's host: a service that speaks TLS itself waits
            // for the wizard.
            if manifest.needs_certificate() && host.is_none() {
                return Err(ApiError::conflict(
                    "setup_required",
                    "the cell's domain is not set yet: finish the setup wizard first",
                ));
            }
            store::insert_installed(tx, &row)?;
            if let Some(host) = &host {
                if let Some(routed) = manifest.routed_endpoint() {
                    let port = row.port(routed.name).unwrap_or_default();
                    exposure::publish_route(tx, host, port)?;
                }
                exposure::publish_name(tx, manifest)?;
            }
            entry.detail = json!({ "ports": row.ports, "host": host });
            Ok((row, host))
        })
        .await?;
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let _guard = guard;
        install::run(app, manifest, row, host, sender).await;
    });
    Ok(Sse::new(events(receiver))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn events(
    receiver: tokio::sync::mpsc::Receiver<Value>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        let sse = Event::default().event("progress").data(event.to_string());
        Some((Ok(sse), receiver))
    })
}

pub async fn remove(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(body): Json<RemoveBody>,
) -> ApiResult<Json<Value>> {
    let manifest = match known(&body.id) {
        Ok(m) => m,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let purge = body.purge;
    let vault = app.vault.clone();
    let _guard = app.services.busy.lock().await;
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = manifest.id.into();
            // A purge destroys the service's data: the audit entry says so on its own.
            entry.detail = json!({ "purge": purge });
            if !store::delete_installed(tx, manifest.id)? {
                return Err(ApiError::not_found("installed service"));
            }
            // Kept on a plain remove, so a reinstall gives everyone their account back.
            if purge {
                let forgotten = super::accounts::store::forget_service(tx, &vault, manifest.id)?;
                entry.detail["accounts_removed"] = json!(forgotten);
                super::tls::forget(tx, &vault, manifest.id)?;
            }
            if let Some(host) = exposure::host(tx, manifest)? {
                exposure::withdraw_route(tx, &host)?;
                exposure::withdraw_name(tx, manifest)?;
            }
            Ok(())
        })
        .await?;
    // The container goes first, so nothing writes into a folder being purged.
    if let Err(e) = crate::driver::Driver::reconcile(app.services.driver.as_ref(), &app.db).await {
        tracing::warn!(service = manifest.id, error = %e, "reconcile after remove");
    }
    app.request_reconcile();
    let mut purged = false;
    if purge {
        // The data, and the archived data of removed accounts.
        let dir = app.services.driver.service_dir(manifest.id);
        for folder in [
            dir.join("volumes"),
            super::accounts::disk::archive_dir(&dir),
        ] {
            match std::fs::remove_dir_all(&folder) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ApiError::Io(e)),
            }
        }
        purged = true;
    }
    Ok(Json(
        json!({ "id": manifest.id, "removed": true, "purged": purged }),
    ))
}

/// The domain's routes, for any router whose state holds this domain's.
pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/store", get(list))
        .route("/api/store/install", post(install))
        .route("/api/store/remove", post(remove))
        .route("/api/store/build-images", post(super::images_routes::build))
        .route("/api/services/active", get(super::status_routes::active))
        .route(
            "/api/services/catalog/{id}/status",
            get(super::status_routes::status),
        )
        .route(
            "/api/services/catalog/{id}/restart",
            post(super::status_routes::restart),
        )
        .merge(super::containers::router())
        .merge(super::accounts::routes::router())
        .merge(super::adapters::files::router())
        .merge(super::adapters::calendar::router())
        .merge(super::adapters::email::router())
}
