//! Authentication and authorisation: users and roles, argon2id passwords, SQLite-backed
//! sessions, CSRF tokens, login throttling (with device cookies) and the throttle on token
//! guessing. The `authenticate` layer decides who is asking and whether the role may use the
//! path; handlers state what they need with the `AdminUser`, `PeerUser` and `AnyUser`
//! extractors.

pub mod api_keys;
pub mod device;
mod guard;
pub mod key_routes;
mod login;
pub mod password;
pub mod routes;
pub mod secret_routes;
pub mod session_store;
pub mod store;
pub mod throttle;
pub mod token_throttle;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub use guard::authenticate;
pub use store::{Role, User};

use crate::error::ApiError;

/// Session keys.
pub const LOGIN_AT_KEY: &str = "login_at";
pub const CSRF_KEY: &str = "csrf";

/// The signed-in user of this request, put in the request's extensions by `authenticate`.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    /// Unix time of the login, for the absolute session lifetime (0 for API keys).
    pub login_at: i64,
    /// Set when the request was authenticated by an API key instead of a session.
    pub api_key: Option<api_keys::ApiKey>,
}

fn current(parts: &Parts) -> Result<CurrentUser, ApiError> {
    parts
        .extensions
        .get::<CurrentUser>()
        .cloned()
        .ok_or(ApiError::Unauthorized)
}

/// Any signed-in user, admin or peer.
pub struct AnyUser(pub CurrentUser);

/// A signed-in admin (or an API key whose scopes the guard has checked).
pub struct AdminUser(#[allow(dead_code)] pub CurrentUser);

impl AdminUser {
    /// For a handler that calls another handler after its own admin check passed.
    pub fn trusted() -> Self {
        AdminUser(CurrentUser {
            user: User {
                id: String::new(),
                username: String::new(),
                role: Role::Admin,
                created_at: String::new(),
                password_changed_at: String::new(),
            },
            login_at: 0,
            api_key: None,
        })
    }
}

/// A signed-in peer.
pub struct PeerUser(pub CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for AnyUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        current(parts).map(AnyUser)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let user = current(parts)?;
        if user.user.role != Role::Admin {
            return Err(ApiError::forbidden("admin_only", "this needs an admin"));
        }
        Ok(AdminUser(user))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let user = current(parts)?;
        if user.user.role != Role::Peer {
            return Err(ApiError::forbidden(
                "peer_only",
                "this is the peers' portal",
            ));
        }
        Ok(PeerUser(user))
    }
}

/// Starts a signed-in session for `user_id` with a new session id (an id planted before login
/// is worthless afterwards) and a new CSRF token, which is returned.
pub async fn start_session(
    session: &tower_sessions::Session,
    user_id: &str,
) -> Result<String, ApiError> {
    session.cycle_id().await.map_err(guard::session_error)?;
    session
        .insert(session_store::USER_ID_KEY, user_id)
        .await
        .map_err(guard::session_error)?;
    session
        .insert(LOGIN_AT_KEY, crate::time::now().unix_timestamp())
        .await
        .map_err(guard::session_error)?;
    let csrf = random_token();
    session
        .insert(CSRF_KEY, &csrf)
        .await
        .map_err(guard::session_error)?;
    Ok(csrf)
}

/// A fresh random token (256 bits, URL-safe base64) for CSRF.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The authentication layer's and the auth routes' state: the throttles on logins, keys and
/// tokens, the device cookies, and whether the wizard is done.
#[derive(Clone)]
pub struct AuthApp {
    pub core: crate::state::Core,
    pub throttle: std::sync::Arc<throttle::LoginThrottle>,
    pub key_limiter: std::sync::Arc<api_keys::KeyRateLimiter>,
    /// Bad API keys and invitation tokens per client address (peers' invitations share it).
    pub token_throttle: std::sync::Arc<token_throttle::TokenThrottle>,
    pub device_cookies: std::sync::Arc<device::DeviceCookies>,
    pub setup: crate::setup::SetupState,
}
crate::reads_through_to_core!(AuthApp);

impl AuthApp {
    pub fn new(core: crate::state::Core, setup: crate::setup::SetupState) -> Self {
        let throttle = throttle::LoginThrottle::new(
            core.settings.login_failures_per_user,
            core.settings.login_failures_per_address,
        );
        AuthApp {
            core,
            throttle: std::sync::Arc::new(throttle),
            key_limiter: std::sync::Arc::new(api_keys::KeyRateLimiter::new()),
            token_throttle: std::sync::Arc::default(),
            device_cookies: std::sync::Arc::new(device::DeviceCookies::new()),
            setup,
        }
    }
}
