//! Who may drive the wizard: only the session that claimed it with the setup token. The
//! authenticate layer calls `authorize` for every `/api/setup/*` request; the handlers state
//! the requirement again with the `SetupOwner` extractor, so a route cannot forget it.

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::Method;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::store::{self, already_complete};
use super::token::hash_hex;
use crate::auth::CSRF_KEY;
use crate::error::ApiError;
use crate::setup::SetupApp;
use axum::extract::FromRef;

/// The session key holding the claim's secret; the database keeps only its hash.
pub const CLAIM_KEY: &str = "setup_claim";

/// Open to anyone: whether setup is pending says nothing of the draft, and the claim is where
/// the token is presented.
const OPEN_ROUTES: [&str; 2] = ["/api/setup/status", "/api/setup/claim"];

/// The request comes from the session that holds the wizard's claim.
#[derive(Debug, Clone)]
pub struct SetupOwner {
    /// The claim as the database held it when the gate checked; a handler that changes the
    /// draft checks, in its transaction, that it is still the current one.
    pub claim_hash: String,
}

pub fn token_required() -> ApiError {
    ApiError::SetupTokenRequired
}

pub async fn authorize(
    app: &SetupApp,
    session: &Session,
    req: &mut Request,
) -> Result<(), ApiError> {
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    // An unknown path under /api/setup/ gets its 404; the open routes answer on their own.
    if matched.is_none_or(|m| OPEN_ROUTES.contains(&m)) {
        return Ok(());
    }
    // Once setup is complete the wizard's handlers refuse everything themselves (409).
    if app.setup.is_complete(&app.db).await? {
        return Ok(());
    }
    let owner = session_claim(app, session)
        .await?
        .ok_or_else(token_required)?;
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating {
        // The claim is a cookie, which a cross-site form would send along: the claim's CSRF
        // token proves the request comes from the wizard's own page.
        let expected: Option<String> = session.get(CSRF_KEY).await.map_err(session_error)?;
        let given = req.headers().get("x-csrf-token").map(|v| v.as_bytes());
        let valid = match (&expected, given) {
            (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given)),
            _ => false,
        };
        if !valid {
            return Err(ApiError::forbidden(
                "csrf_invalid",
                "missing or wrong X-CSRF-Token header (the claim's csrf_token)",
            ));
        }
    }
    req.extensions_mut().insert(owner);
    Ok(())
}

/// The session's claim, when it is the wizard's current one.
pub async fn session_claim(
    app: &SetupApp,
    session: &Session,
) -> Result<Option<SetupOwner>, ApiError> {
    if session.id().is_none() {
        return Ok(None);
    }
    let Some(secret) = session
        .get::<String>(CLAIM_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let current = app
        .db
        .call(|conn| Ok(store::claim_state(conn)?.claim_hash))
        .await?;
    let claim_hash = hash_hex(&secret);
    // Constant-time, though only hashes are compared: no timing says how close a guess was.
    let holds = current.is_some_and(|c| bool::from(c.as_bytes().ct_eq(claim_hash.as_bytes())));
    Ok(holds.then_some(SetupOwner { claim_hash }))
}

/// Checks, inside a handler's transaction, that the request's claim is still the current one
/// (a newer claim by another session may have taken the wizard meanwhile).
pub fn still_claimed(conn: &rusqlite::Connection, owner: &SetupOwner) -> Result<(), ApiError> {
    let current = store::claim_state(conn)?.claim_hash;
    if current.is_some_and(|c| bool::from(c.as_bytes().ct_eq(owner.claim_hash.as_bytes()))) {
        Ok(())
    } else {
        Err(token_required())
    }
}

fn session_error(e: tower_sessions::session::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session store: {e}"))
}

impl<S> FromRequestParts<S> for SetupOwner
where
    S: Send + Sync,
    SetupApp: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = SetupApp::from_ref(state);
        if let Some(owner) = parts.extensions.get::<SetupOwner>() {
            return Ok(owner.clone());
        }
        if app.setup.is_complete(&app.db).await? {
            return Err(already_complete());
        }
        Err(token_required())
    }
}
