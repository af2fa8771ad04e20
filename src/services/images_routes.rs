//! `POST /api/store/build-images`: the same build as `picd services build-images`, from the
//! store page, its progress streamed as server-sent events (per service `rootfs`, cached or
//! built, or `pull` for a service pulled by digest, then `image` with its Id; then `done`, or
//! `failed` with the error). One build at a
//! time: a second one while the first runs gets 409 `build_in_progress`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json};
use crate::services::ServicesApp;

const TARGET: &str = "service_images";

/// Nothing to say yet; an empty object, so a body that says more is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildBody {}

pub async fn build(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(_body): Json<BuildBody>,
) -> ApiResult<Response> {
    let Ok(guard) = app.services.building.clone().try_lock_owned() else {
        let err = ApiError::conflict("build_in_progress", "an image build is running");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    };
    let ready = async {
        let docker = app.services.driver.connect().await.map_err(|e| match e {
            crate::driver::DriverError::Unavailable(subsystem, reason)
            | crate::driver::DriverError::Failed(subsystem, reason) => {
                ApiError::Unavailable { subsystem, reason }
            }
        })?;
        let mirror = match app.services.debian_mirror.as_str() {
            "" => super::images::machine_mirror().map_err(|e| ApiError::Unavailable {
                subsystem: "docker",
                reason: e.to_string(),
            })?,
            given => given.to_string(),
        };
        Ok::<_, ApiError>((docker, mirror))
    };
    let (docker, mirror) = match ready.await {
        Ok(ready) => ready,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let plan = super::images::Plan {
        cache: app.services.image_cache.clone(),
        mirror,
        pulled: (*app.services.pulled).clone(),
    };
    let detail = json!({
        "mirror": mirror_host(&plan.mirror),
        "pulled": plan.pulled.iter().map(|(id, p)| (id.clone(), p.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>(),
    });
    audit
        .transact(&app.db, move |_tx, entry| {
            entry.target_type = TARGET.into();
            entry.detail = detail;
            Ok(())
        })
        .await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let report_to = sender.clone();
    let report: super::images::Report = Arc::new(move |event| {
        // A client that went away does not stop the build.
        let _ = report_to.send(event);
    });
    let db = app.db.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let built = super::images::build_all(&db, &docker, &plan, report).await;
        let last = match built {
            Ok(()) => json!({ "step": "done", "state": "ok" }),
            Err(e) => {
                tracing::warn!(error = %e, "image build failed");
                json!({ "step": "failed", "state": "failed", "error": e.to_string() })
            }
        };
        let _ = sender.send(last);
        app.request_reconcile();
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        let sse = axum::response::sse::Event::default()
            .event("progress")
            .data(event.to_string());
        Some((Ok::<_, std::convert::Infallible>(sse), receiver))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The mirror's host, for the audit entry (a URL may carry credentials; its host does not).
fn mirror_host(mirror: &str) -> &str {
    let rest = mirror.split_once("://").map_or(mirror, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_audited_mirror_is_its_host_only() {
        assert_eq!(
            super::mirror_host("http://deb.debian.org/debian"),
            "deb.debian.org"
        );
        assert_eq!(
            super::mirror_host("https://u:secret@m.example:8080/d"),
            "m.example:8080"
        );
    }
}
