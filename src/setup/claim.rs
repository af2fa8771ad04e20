//! POST /api/setup/claim: the owner presents the setup code and the wizard is bound to their
//! session. A later claim with the right code by another session moves the binding there and
//! the earlier session loses the wizard: the code, not the first browser, is the credential
//! (the owner who lost a browser, or an attacker's session opened first, must not block setup).

use axum::extract::State;
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

use super::gate::CLAIM_KEY;
use super::store::{self, already_complete};
use super::token::{hash_hex, SetupToken};
use crate::audit::AuditCtx;
use crate::auth::{random_token, CSRF_KEY};
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, Json};
use crate::setup::SetupApp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    token: String,
}

fn invalid_token() -> ApiError {
    ApiError::forbidden(
        "invalid_setup_token",
        "wrong setup code (run `picd setup token` on the cell's machine)",
    )
}

pub async fn claim(
    State(app): State<SetupApp>,
    Extension(client): Extension<ClientInfo>,
    audit: AuditCtx,
    session: Session,
    Json(body): Json<ClaimRequest>,
) -> ApiResult<Json<Value>> {
    audit.set_actor(super::routes::SETUP_ACTOR);
    let refuse = |err: ApiError| audit.refuse(&app.db, "setup", "claim", json!({}), err);
    // Counted before anything is looked at, so a burst in flight cannot pass the limit.
    let reservation = match app.setup.claims.reserve(client.addr) {
        Ok(reservation) => reservation,
        Err(throttled) => {
            let err = ApiError::RateLimited {
                retry_after: throttled.retry_after,
            };
            if throttled.record {
                return Err(refuse(err).await);
            }
            // This window's first refusal is in the log already: a flood writes one entry.
            audit.waive();
            return Err(err);
        }
    };
    let state = app.db.call(|conn| Ok(store::claim_state(conn)?)).await?;
    if state.complete {
        reservation.succeeded();
        return Err(refuse(already_complete()).await);
    }
    let given = SetupToken::parse(&body.token);
    let right = match (&given, &state.token_hash) {
        (Some(given), Some(stored)) => given.matches(stored),
        _ => false,
    };
    if !right {
        // The reservation stays counted: this was a failure.
        drop(reservation);
        return Err(refuse(invalid_token()).await);
    }
    reservation.succeeded();

    let secret = random_token();
    let claim_hash = hash_hex(&secret);
    let replaced = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "setup".into();
            entry.target_id = "claim".into();
            // A completion that raced this claim wins.
            if store::is_complete(tx)? {
                return Err(already_complete());
            }
            let replaced = store::set_claim_hash(tx, &claim_hash)?;
            entry.detail = json!({ "replaced_earlier_claim": replaced });
            Ok(replaced)
        })
        .await?;
    // A new session id: one planted in the owner's browser beforehand gains nothing.
    let csrf = random_token();
    let session_error = |e| ApiError::Internal(anyhow::anyhow!("session store: {e}"));
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(CLAIM_KEY, &secret)
        .await
        .map_err(session_error)?;
    session
        .insert(CSRF_KEY, &csrf)
        .await
        .map_err(session_error)?;
    let current = app
        .db
        .call(|conn| Ok(store::load(conn)?.current_step))
        .await?;
    Ok(Json(json!({
        "claimed": true,
        "csrf_token": csrf,
        "current_step": current,
        "replaced_earlier_claim": replaced,
    })))
}
