//! The session cookie's name follows how the browser reached the cell. Behind Caddy over
//! https it is `__Host-picd_session`: a browser keeps a `__Host-` cookie only when it is
//! Secure, has `Path=/` and no `Domain`, so a sibling subdomain (a service at
//! `files.home.example`) can neither plant nor overwrite it. Over plain http (`--dev`, direct
//! TCP) that prefix cannot be used and the cookie is `picd_session`.
//!
//! tower-sessions fixes the cookie's name per layer, so there are two session layers over the
//! same store and the same routes, and each request is handed to the one of its scheme: the
//! https side never reads a `picd_session` cookie (one planted by a subdomain authenticates
//! nothing there), and plain http never reads a `__Host-` one.

use std::task::{Context, Poll};

use axum::http::Request;
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session_store::SqliteSessionStore;
use crate::client::ClientInfo;
use crate::config::CookieSecure;
use crate::state::Core;

/// The session cookie over plain http.
pub const SESSION_COOKIE: &str = "picd_session";
/// The session cookie over https, as Caddy reports it on `listen_socket`.
pub const SECURE_SESSION_COOKIE: &str = "__Host-picd_session";

/// Both session layers; `layer` wraps the routes in each.
#[derive(Clone)]
pub struct SessionsByScheme<L> {
    plain: L,
    secure: L,
    /// `cookie_secure = "never"`: a `__Host-` cookie without Secure would be dropped by the
    /// browser, so https requests get the plain layer too.
    https_allowed: bool,
}

pub fn layer(app: &Core) -> SessionsByScheme<SessionManagerLayer<SqliteSessionStore>> {
    let idle = time::Duration::minutes(i64::from(app.settings.session_idle_minutes));
    let sessions = |name: &'static str, secure: bool| {
        SessionManagerLayer::new(SqliteSessionStore::new(app.db.clone()))
            .with_name(name)
            .with_http_only(true)
            .with_same_site(SameSite::Strict)
            .with_secure(secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(idle))
    };
    SessionsByScheme {
        plain: sessions(SESSION_COOKIE, false),
        secure: sessions(SECURE_SESSION_COOKIE, true),
        https_allowed: app.settings.cookie_secure != CookieSecure::Never,
    }
}

impl<L, S> Layer<S> for SessionsByScheme<L>
where
    L: Layer<S>,
    S: Clone,
{
    type Service = BySchemeService<L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        BySchemeService {
            plain: self.plain.layer(inner.clone()),
            secure: self.secure.layer(inner),
            https_allowed: self.https_allowed,
        }
    }
}

#[derive(Clone)]
pub struct BySchemeService<T> {
    plain: T,
    secure: T,
    https_allowed: bool,
}

impl<T, B> Service<Request<B>> for BySchemeService<T>
where
    T: Service<Request<B>> + Clone,
{
    type Response = T::Response;
    type Error = T::Error;
    type Future = Oneshot<T, Request<B>>;

    /// Which side serves a request is only known in `call`; that side's clone is made ready
    /// there (`oneshot`), so there is nothing to wait for here.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // ClientInfo.https is true only for a request Caddy forwarded over https on the socket.
        let https = req
            .extensions()
            .get::<ClientInfo>()
            .is_some_and(|c| c.https);
        let side = if https && self.https_allowed {
            self.secure.clone()
        } else {
            self.plain.clone()
        };
        side.oneshot(req)
    }
}
