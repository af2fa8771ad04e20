//! The `authenticate` layer: the setup gate, who is asking (a session or an API key), which
//! role or scope may use which path, the CSRF check and the per-key rate limit. Centralised
//! so that no route can forget a check.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::api_keys::{self, RateLimitState};
use super::session_store;
use super::token_throttle::{AuditNote, TokenKind};
use super::{CurrentUser, Role, User, CSRF_KEY, LOGIN_AT_KEY};
use crate::audit::AuditSlot;
use crate::auth::AuthApp;
use crate::client::ClientInfo;
use crate::error::ApiError;

pub async fn authenticate(
    State(app): State<AuthApp>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let mut limit = None;
    let outcome = authorize(&app, &session, &mut req, &mut limit).await;
    let mut response = match outcome {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    if let Some(state) = limit {
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", u64::from(state.limit)),
            ("x-ratelimit-remaining", u64::from(state.remaining)),
            ("x-ratelimit-reset", state.reset_secs),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    response
}

async fn authorize(
    app: &AuthApp,
    session: &Session,
    req: &mut Request,
    limit: &mut Option<RateLimitState>,
) -> Result<(), ApiError> {
    let path = req.uri().path().to_string();
    // Pages, assets and /health are public; the pages themselves call the API.
    if !path.starts_with("/api/") {
        return Ok(());
    }
    // The wizard answers only the session that claimed it with the setup token.
    if path.starts_with("/api/setup/") {
        let wizard = crate::setup::SetupApp {
            core: app.core.clone(),
            setup: app.setup.clone(),
        };
        return crate::setup::gate::authorize(&wizard, session, req).await;
    }
    // Redeeming an invitation signs a peer in for the first time: the token is the credential.
    if path == "/api/invite/accept" {
        return app
            .setup
            .is_complete(&app.db)
            .await?
            .then_some(())
            .ok_or_else(|| ApiError::forbidden("setup_required", "finish the setup wizard first"));
    }
    if !app.setup.is_complete(&app.db).await? {
        return Err(ApiError::forbidden(
            "setup_required",
            "finish the setup wizard first",
        ));
    }
    if let Some(token) = api_key_token(req.headers()) {
        return authorize_key(app, req, &path, &token, limit).await;
    }
    let loaded = match load_user(app, session).await {
        // At login an expired session is no session (load_user has ended it): the user is
        // signing in again, which is what the expiry asked for.
        Err(ApiError::SessionExpired) if path == "/api/auth/login" => None,
        loaded => loaded?,
    };
    let (user, csrf) = loaded.unzip();
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
    // Every state-changing session request carries the token, /api/auth/* included (logout,
    // change-password, resets): a cross-site form must not reach them. Login has no session
    // yet (returned above), nor do the wizard and the invitation (public routes).
    if mutating {
        let given = req
            .headers()
            .get("x-csrf-token")
            .map(|v| v.as_bytes().to_vec());
        check_csrf(csrf.flatten(), given)?;
    }
    Ok(())
}

/// The token of `Authorization: Bearer <token>` or `X-API-Key: <token>`.
fn api_key_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let header = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(header).map(|t| t.trim().to_string())
}

/// API-key requests: no cookie is involved, so no CSRF check; the key's scopes decide, and
/// a key never reaches the session endpoints or the peers' portal.
async fn authorize_key(
    app: &AuthApp,
    req: &mut Request,
    path: &str,
    token: &str,
    limit: &mut Option<RateLimitState>,
) -> Result<(), ApiError> {
    let slot = req.extensions().get::<AuditSlot>().cloned();
    let Some(key) = find_key(app, client_addr(req), slot.as_ref(), token).await? else {
        return Err(ApiError::Unauthorized);
    };
    if let Some(slot) = req.extensions().get::<AuditSlot>() {
        slot.set_actor(format!("key:{}", key.name));
    }
    match app.key_limiter.hit(&key.id, key.rate_limit_per_minute) {
        Ok(state) => *limit = Some(state),
        Err(state) => {
            *limit = Some(state);
            return Err(ApiError::RateLimited {
                retry_after: state.reset_secs,
            });
        }
    }
    let session_only =
        path.starts_with("/api/auth/") && !(path == "/api/auth/me" && req.method() == Method::GET);
    if path.starts_with("/api/peer/") || session_only {
        return Err(ApiError::forbidden(
            "api_key_not_allowed",
            "API keys cannot use this route",
        ));
    }
    if !key.allows(req.method(), path) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            "the API key's scopes do not allow this",
        ));
    }
    let matched = req.extensions().get::<axum::extract::MatchedPath>();
    if matched.is_some_and(|m| super::secret_routes::returns_secret(m.as_str()))
        && !key.may_read_secrets()
    {
        return Err(ApiError::forbidden(
            "secret_requires_admin",
            "this route returns secrets (private keys, passwords): it needs an API key with the admin scope",
        ));
    }
    let user = User {
        id: key.id.clone(),
        username: format!("key:{}", key.name),
        role: Role::Admin,
        created_at: key.created_at.clone(),
        password_changed_at: key.created_at.clone(),
    };
    req.extensions_mut().insert(CurrentUser {
        user,
        login_at: 0,
        api_key: Some(key),
    });
    Ok(())
}

/// The live key of `token`, or None after counting the bad token against the client address
/// (429 once the address has presented too many; see `token_throttle`).
async fn find_key(
    app: &AuthApp,
    addr: std::net::IpAddr,
    slot: Option<&AuditSlot>,
    token: &str,
) -> Result<Option<api_keys::ApiKey>, ApiError> {
    let attempt = match app.token_throttle.begin(TokenKind::ApiKey, addr) {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            if let Some(slot) = slot {
                slot.covered_by_earlier_entry();
            }
            return Err(ApiError::RateLimited { retry_after });
        }
    };
    let key = if token.starts_with(api_keys::TOKEN_PREFIX) && token.len() <= 128 {
        let token = token.to_string();
        app.db
            .call(move |conn| Ok(api_keys::find_by_token(conn, &token)?))
            .await?
    } else {
        None
    };
    let key = key.filter(|k| !k.is_expired());
    let Some(key) = key else {
        let note = app.token_throttle.bad(attempt);
        if let Some(slot) = slot {
            match note {
                AuditNote::First {
                    previous_failures,
                    previous_refused,
                } => slot.require_entry(serde_json::json!({
                    "credential": TokenKind::ApiKey.as_str(),
                    "previous_window": { "bad_tokens": previous_failures, "refused": previous_refused },
                })),
                AuditNote::Covered => slot.covered_by_earlier_entry(),
            }
        }
        return Ok(None);
    };
    app.token_throttle.good(attempt);
    if api_keys::needs_last_used_touch(&key) {
        let id = key.id.clone();
        app.db
            .write(move |tx| Ok(api_keys::touch_last_used(tx, &id)?))
            .await?;
    }
    Ok(Some(key))
}

fn client_addr(req: &Request) -> std::net::IpAddr {
    req.extensions()
        .get::<ClientInfo>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.addr)
}

/// The session's user and its CSRF token, or None. A session past its absolute lifetime, or
/// whose user is gone, is destroyed here. The session and its user come from the store in one
/// trip; tower-sessions itself only loads the session when something changes it.
async fn load_user(
    app: &AuthApp,
    session: &Session,
) -> Result<Option<(CurrentUser, Option<String>)>, ApiError> {
    let Some(id) = session.id() else {
        return Ok(None);
    };
    let found = app
        .db
        .call(move |conn| Ok(session_store::load_signed_in(conn, &id)?))
        .await?;
    let Some(found) = found else {
        // Unknown or expired: tower-sessions, finding the same, drops the cookie.
        session
            .get::<String>(session_store::USER_ID_KEY)
            .await
            .map_err(session_error)?;
        return Ok(None);
    };
    if !found.names_user {
        return Ok(None);
    }
    let login_at: i64 = found.get(LOGIN_AT_KEY).unwrap_or(0);
    let age = crate::time::now().unix_timestamp() - login_at;
    if age > i64::from(app.settings.session_absolute_hours) * 3600 {
        session.flush().await.map_err(session_error)?;
        return Err(ApiError::SessionExpired);
    }
    let Some(user) = found.user.clone() else {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    };
    keep_alive(session, found.get(SEEN_AT_KEY).unwrap_or(0)).await?;
    let current = CurrentUser {
        user,
        login_at,
        api_key: None,
    };
    Ok(Some((current, found.get(CSRF_KEY))))
}

/// The idle timeout slides with activity: a session is saved (and its expiry moved) when it
/// was last marked active a minute or more ago, not on every request, so activity costs at
/// most one write a minute.
async fn keep_alive(session: &Session, seen: i64) -> Result<(), ApiError> {
    let now = crate::time::now().unix_timestamp();
    if now - seen >= SEEN_AT_GRANULARITY_SECS {
        session
            .insert(SEEN_AT_KEY, now)
            .await
            .map_err(session_error)?;
    }
    Ok(())
}

const SEEN_AT_KEY: &str = "seen_at";
const SEEN_AT_GRANULARITY_SECS: i64 = 60;

fn check_csrf(expected: Option<String>, given: Option<Vec<u8>>) -> Result<(), ApiError> {
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
