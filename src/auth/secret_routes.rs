//! The routes whose answers carry a secret (a WireGuard private or preshared key, a service
//! password), in one list. Two rules follow from it, so a route added here is covered by
//! both: an API key needs the `admin` scope for them (a `read-only` key reads everything
//! else, never a secret: 403 `secret_requires_admin`), and every read that succeeds is
//! audited (who, which route, whose secret; never the secret) before the answer leaves.
//! A domain that adds a secret-returning route adds its path pattern here.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::audit::AuditCtx;
use crate::auth::AuthApp;
use crate::error::ApiError;

/// Path patterns (as in the router) of every route that returns a secret.
pub const SECRET_ROUTES: &[&str] = &[
    // A peer's wg-quick config and its QR code: PrivateKey and PresharedKey.
    "/api/peers/{name}/config",
    "/api/peers/{name}/qr",
    "/api/peers/{name}/service-credentials",
    // The peer portal's own copies (sessions of that peer only; keys never reach them).
    "/api/peer/config",
    "/api/peer/qr",
    "/api/peer/service-credentials",
    // A QR code of a service login: the password in it when asked for. Every read is
    // audited, with or without it, since the path alone cannot tell them apart.
    "/api/peer/service-credentials/{service}/qr",
    // An account's credentials as the admin reads them: the service password.
    "/api/services/catalog/{id}/accounts/{username}/credentials",
];

pub fn returns_secret(matched_path: &str) -> bool {
    SECRET_ROUTES.contains(&matched_path)
}

/// Put in a response's extensions by a handler whose path does not name whose secret it
/// returned (the portal's routes): the audit entry's target.
#[derive(Debug, Clone)]
pub struct SecretOwner(pub String);

/// The layer that audits secret reads. Inside the `authenticate` layer, so the actor is
/// known and refused reads never get here as successes (those are recorded as denied by the
/// audit layer). A read whose entry cannot be written is not answered: a secret never
/// leaves without its record.
pub async fn audit_secret_reads(State(app): State<AuthApp>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .filter(|m| returns_secret(m));
    let Some(route) = route else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let audit = match AuditCtx::from_request_parts(&mut parts, &app).await {
        Ok(audit) => audit,
        Err(e) => return e.into_response(),
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    if !response.status().is_success() {
        return response;
    }
    let owner = response.extensions().get::<SecretOwner>().cloned();
    let recorded = audit
        .transact(&app.db, move |_tx, entry| {
            if let Some(SecretOwner(name)) = owner {
                entry.target_id = name;
            }
            entry.detail = json!({ "secret_read": route });
            Ok(())
        })
        .await;
    match recorded {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = %e, "could not audit a secret read; the answer is withheld");
            ApiError::Internal(anyhow::anyhow!("auditing a secret read")).into_response()
        }
    }
}
