//! The `authenticate` layer: the setup gate, who is asking, which role may use which path,
//! and the CSRF check. Centralised so that no route can forget a check.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::{store, CurrentUser, Role, CSRF_KEY, LOGIN_AT_KEY};
use crate::audit::AuditSlot;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn authenticate(
    State(app): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    match authorize(&app, &session, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authorize(app: &AppState, session: &Session, req: &mut Request) -> Result<(), ApiError> {
    let path = req.uri().path().to_string();
    // Pages, assets and /health are public; the pages themselves call the API.
    if !path.starts_with("/api/") || path.starts_with("/api/setup/") {
        return Ok(());
    }
    if !app.setup_complete().await? {
        return Err(ApiError::forbidden(
            "setup_required",
            "finish the setup wizard first",
        ));
    }
    let user = load_user(app, session).await?;
    if let Some(user) = &user {
        if let Some(slot) = req.extensions().get::<AuditSlot>() {
            slot.set_actor(user.user.username.clone());
        }
        req.extensions_mut().insert(user.clone());
    }
    if path == "/api/auth/login" {
        return Ok(());
    }
    let Some(user) = user else {
        return Err(ApiError::Unauthorized);
    };
    let role = user.user.role;
    let self_service = path.starts_with("/api/auth/")
        && !path.starts_with("/api/auth/admin/")
        && path != "/api/auth/users";
    if path.starts_with("/api/peer/") {
        if role != Role::Peer {
            return Err(ApiError::forbidden(
                "peer_only",
                "this is the peers' portal",
            ));
        }
    } else if !self_service && role != Role::Admin {
        return Err(ApiError::forbidden("admin_only", "this needs an admin"));
    }
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating && !path.starts_with("/api/auth/") {
        let given = req
            .headers()
            .get("x-csrf-token")
            .map(|v| v.as_bytes().to_vec());
        check_csrf(session, given).await?;
    }
    Ok(())
}

/// The session's user, or None. A session past its absolute lifetime, or whose user is gone,
/// is destroyed here.
async fn load_user(app: &AppState, session: &Session) -> Result<Option<CurrentUser>, ApiError> {
    let user_id: Option<String> = session
        .get(super::session_store::USER_ID_KEY)
        .await
        .map_err(session_error)?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let login_at: i64 = session
        .get(LOGIN_AT_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    let age = crate::time::now().unix_timestamp() - login_at;
    if age > app.settings.session_absolute_hours as i64 * 3600 {
        session.flush().await.map_err(session_error)?;
        return Err(ApiError::SessionExpired);
    }
    let user = app
        .db
        .call(move |conn| Ok(store::get(conn, &user_id)?))
        .await?;
    match user {
        Some(user) => Ok(Some(CurrentUser { user, login_at })),
        None => {
            session.flush().await.map_err(session_error)?;
            Ok(None)
        }
    }
}

async fn check_csrf(session: &Session, given: Option<Vec<u8>>) -> Result<(), ApiError> {
    let expected: Option<String> = session.get(CSRF_KEY).await.map_err(session_error)?;
    match (expected, given) {
        // Constant-time: the comparison must not reveal how much of a guess was right.
        (Some(expected), Some(given)) if bool::from(expected.as_bytes().ct_eq(&given)) => Ok(()),
        _ => Err(ApiError::forbidden(
            "csrf_invalid",
            "missing or wrong X-CSRF-Token header (GET /api/auth/csrf-token)",
        )),
    }
}

pub fn session_error(e: tower_sessions::session::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("session store: {e}"))
}
