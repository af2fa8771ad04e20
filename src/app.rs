//! The router (every route on one screen) and the server.

use std::future::IntoFuture;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt;
use tokio::net::{TcpListener, UnixListener};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::compose::AppState;
use crate::error::ApiError;
use crate::{
    audit, auth, caddy, cell, client, connectivity, dns, health, logs, peers, routing, services,
    setup, vault, web, wireguard,
};

pub fn router(app: AppState) -> Router {
    let routes: Router<AppState> = Router::new()
        .route("/health", get(health::routes::health))
        // Auth
        .route("/api/auth/login", post(auth::routes::login))
        .route("/api/auth/logout", post(auth::routes::logout))
        .route("/api/auth/me", get(auth::routes::me))
        .route("/api/auth/csrf-token", get(auth::routes::csrf_token))
        .route(
            "/api/auth/change-password",
            post(auth::routes::change_password),
        )
        .route(
            "/api/auth/admin/reset-password",
            post(auth::routes::admin_reset_password),
        )
        .route("/api/auth/users", get(auth::routes::users))
        // Setup wizard
        .route("/api/setup/status", get(setup::routes::status))
        .route("/api/setup/claim", post(setup::claim::claim))
        .route(
            "/api/setup/step",
            get(setup::routes::get_step).post(setup::routes::post_step),
        )
        .route("/api/setup/complete", post(setup::routes::complete))
        // Core
        .route("/api/status", get(health::routes::status))
        .route(
            "/api/status/storage/acknowledge",
            post(health::routes::acknowledge_storage),
        )
        .route("/api/config", get(cell::routes::get).put(cell::routes::put))
        .route("/api/health/history", get(health::routes::history))
        // Audit
        .route("/api/audit", get(audit::routes::list))
        .route("/api/audit/export", get(audit::routes::export))
        .route("/api/audit/verify", get(audit::routes::verify))
        // WireGuard and peers
        .route("/api/wireguard/status", get(wireguard::routes::status))
        .route(
            "/api/peers",
            get(peers::routes::list).post(peers::routes::create),
        )
        .route(
            "/api/peers/{name}",
            get(peers::routes::get)
                .put(peers::routes::update)
                .delete(peers::routes::delete),
        )
        .route("/api/peers/{name}/config", get(peers::routes::config))
        .route("/api/peers/{name}/qr", get(peers::routes::qr))
        .route("/api/peers/{name}/invite", post(peers::portal::invite))
        .route(
            "/api/peers/{name}/service-credentials",
            get(peers::routes::service_credentials),
        )
        .route("/api/invite/accept", post(peers::portal::accept_invite))
        // Peer portal
        .route("/api/peer/me", get(peers::portal::me))
        .route("/api/peer/config", get(peers::portal::config))
        .route("/api/peer/qr", get(peers::portal::qr))
        .route("/api/peer/ca.crt", get(vault::routes::peer_ca_certificate))
        .route("/api/peer/rotate-keys", post(peers::portal::rotate_keys))
        .route(
            "/api/peer/service-credentials",
            get(peers::portal::service_credentials),
        )
        .route(
            "/api/peer/service-credentials/{service}/qr",
            get(peers::portal::service_credentials_qr),
        )
        // Logs
        .route("/api/logs", get(logs::routes::recent))
        .route("/api/logs/search", get(logs::routes::search))
        .route(
            "/api/logs/verbosity",
            get(logs::routes::verbosity).put(logs::routes::set_verbosity),
        )
        // DNS
        .route(
            "/api/dns/zones",
            get(dns::routes::zones).post(dns::routes::create_zone),
        )
        .route(
            "/api/dns/zones/{zone}",
            axum::routing::delete(dns::routes::delete_zone),
        )
        .route(
            "/api/dns/zones/{zone}/records",
            get(dns::routes::records).post(dns::routes::add_record),
        )
        .route(
            "/api/dns/zones/{zone}/records/{id}",
            axum::routing::put(dns::routes::update_record).delete(dns::routes::delete_record),
        )
        .route("/api/dns/zones/{zone}/bulk", post(dns::routes::bulk))
        .route("/api/dns/zones/{zone}/import", post(dns::tools::import))
        .route("/api/dns/zones/{zone}/export", get(dns::tools::export))
        .route("/api/dns/search", get(dns::routes::search))
        .route("/api/dns/stats", get(dns::stats::stats))
        .route("/api/dns/reload", post(dns::tools::reload))
        .route("/api/dns/ddns/refresh", post(dns::tools::ddns_refresh))
        .route(
            "/api/dns/acme/present",
            post(dns::acme_routes::acme_present),
        )
        .route(
            "/api/dns/acme/cleanup",
            post(dns::acme_routes::acme_cleanup),
        )
        .route(
            "/api/dns/acme/cleanup-stale",
            post(dns::acme_routes::acme_cleanup_stale),
        )
        .route(
            "/api/dns/secondaries",
            get(dns::secondary_routes::secondaries).post(dns::secondary_routes::add_secondary),
        )
        .route(
            "/api/dns/secondaries/{address}",
            axum::routing::delete(dns::secondary_routes::delete_secondary),
        )
        .route(
            "/api/dns/secondaries/{address}/tsig-key",
            axum::routing::put(dns::tsig_routes::bind_secondary),
        )
        .route(
            "/api/dns/tsig-keys",
            get(dns::tsig_routes::list).post(dns::tsig_routes::create),
        )
        .route(
            "/api/dns/tsig-keys/{name}",
            axum::routing::delete(dns::tsig_routes::delete),
        )
        // Caddy and TLS
        .route("/api/caddy/cert-status", get(caddy::routes::cert_status))
        .route("/api/caddy/cert-renew", post(caddy::routes::cert_renew))
        .route(
            "/api/caddy/routes",
            get(caddy::routes::routes).post(caddy::routes::add_route),
        )
        .route(
            "/api/caddy/routes/{host}",
            axum::routing::delete(caddy::routes::delete_route),
        )
        // Vault and API keys
        .route(
            "/api/vault/age-public-key",
            get(vault::routes::age_public_key),
        )
        .route("/api/vault/ca.crt", get(vault::routes::ca_certificate))
        .route("/api/vault/cas", get(vault::routes::list_cas))
        .route(
            "/api/vault/certs",
            get(vault::routes::list_certs).post(vault::routes::issue_cert),
        )
        .route(
            "/api/vault/certs/{id}/revoke",
            post(vault::routes::revoke_cert),
        )
        .route("/api/vault/crl", get(vault::routes::crl))
        .route(
            "/api/vault/trust-keys",
            get(vault::routes::list_trust_keys).post(vault::routes::add_trust_key),
        )
        .route(
            "/api/vault/trust-keys/{id}",
            axum::routing::delete(vault::routes::delete_trust_key),
        )
        .route(
            "/api/keys",
            get(auth::key_routes::list).post(auth::key_routes::create),
        )
        .route(
            "/api/keys/{id}",
            axum::routing::delete(auth::key_routes::revoke),
        )
        .route("/api/keys/{id}/rotate", post(auth::key_routes::rotate))
        // Routing and firewall
        .merge(routing::routes::router())
        // Connectivity exits
        .merge(connectivity::routes::router())
        // Service store
        .merge(services::routes::router())
        // Pages
        .route("/", get(web::index))
        .route("/setup", get(web::setup))
        .route("/login", get(web::login))
        .route("/portal", get(web::portal))
        .route("/portal/invite", get(web::invite))
        .route("/assets/{*path}", get(web::assets))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });

    // Layers run bottom-up for a request: the last added is the outermost.
    let routes = routes
        .layer(from_fn_with_state(
            app.auth.clone(),
            auth::secret_routes::audit_secret_reads,
        ))
        .layer(from_fn_with_state(
            app.health.clone(),
            health::write_guard::refuse_changes_while_degraded,
        ))
        .layer(from_fn_with_state(app.auth.clone(), auth::authenticate))
        // Two session layers, one per cookie name, chosen by the request's scheme.
        .layer(crate::session_layer::layer(&app.core))
        .layer(from_fn_with_state(
            app.core.clone(),
            audit::record_unaudited,
        ))
        .layer(from_fn_with_state(app.core.clone(), secure_cookies))
        .layer(from_fn_with_state(
            app.core.clone(),
            client::identify_client,
        ))
        .layer(DefaultBodyLimit::max(app.settings.body_limit_bytes));
    answer_guards(routes)
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(app)
}

/// The panic catcher, and outside it the security headers: a panic's 500 carries them too
/// (CSP, no-store, ...), like every other answer.
fn answer_guards<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!(
                "handler panicked"
            )))
        }))
        .layer(from_fn(security_headers))
}

/// Marks the session cookie Secure when the browser reached picd over https (as the trusted
/// proxy reports), or always/never as configured.
async fn secure_cookies(
    axum::extract::State(app): axum::extract::State<crate::state::Core>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::config::CookieSecure;
    let https = req
        .extensions()
        .get::<client::ClientInfo>()
        .is_some_and(|c| c.https);
    let secure = match app.settings.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => https,
    };
    let mut response = next.run(req).await;
    if secure {
        let cookies: Vec<HeaderValue> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        response.headers_mut().remove(header::SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let value = if text.to_ascii_lowercase().contains("; secure") {
                text.to_string()
            } else {
                format!("{text}; Secure")
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    response
}

async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    web::cache_headers(&path, headers);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ] {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Serves on `tcp`, and on `socket` when there is one, until `shutdown` resolves; then both
/// stop taking connections and finish what they have. Tests bind port 0 and pass the
/// listener in.
pub async fn serve(
    tcp: TcpListener,
    socket: Option<UnixListener>,
    app: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(app);
    // `Transport` says which listener a connection came through: forwarded headers count only
    // on the socket (src/client.rs).
    let shutdown = shutdown.shared();
    let over_tcp = axum::serve(
        tcp,
        router
            .clone()
            .into_make_service_with_connect_info::<client::Transport>(),
    )
    .with_graceful_shutdown(shutdown.clone())
    .into_future();
    let Some(socket) = socket else {
        return over_tcp.await;
    };
    let over_socket = axum::serve(
        socket,
        router.into_make_service_with_connect_info::<client::Transport>(),
    )
    .with_graceful_shutdown(shutdown)
    .into_future();
    tokio::try_join!(over_tcp, over_socket).map(|_| ())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panics_500_carries_the_security_headers() {
        async fn boom() -> &'static str {
            panic!("a handler that panics")
        }
        let routes: Router = Router::new().route("/api/boom", get(boom));
        let request = Request::get("/api/boom").body(Body::empty()).unwrap();
        let response = answer_guards(routes).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("object-src 'none'"), "{csp}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
    }
}
