//! The admin UI and the wizard: plain HTML, CSS and ES modules from `web/`, embedded in the
//! binary at build time (no build step, nothing to install beside picd).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::{ApiError, Path};
use crate::setup::SetupApp;

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Pages are never stored (no disk cache, no back/forward cache in most browsers): what an
/// admin page showed must not come back after logout. Scripts and styles hold no data, and
/// change with the binary: revalidated rather than cached stale.
const PAGE_CACHE: &str = "no-store";
const ASSET_CACHE: &str = "no-cache";

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            let cache = if mime.essence_str() == "text/html" {
                PAGE_CACHE
            } else {
                ASSET_CACHE
            };
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                ],
                file.data,
            )
                .into_response()
        }
        None => ApiError::not_found("page").into_response(),
    }
}

/// The caching headers of API answers, set on every response (errors and a panic's 500
/// included) by the security-headers layer: `/api/*` answers carry sessions' data and
/// secrets, so none is ever stored; logging out also tells the browser to drop its HTTP
/// cache (`Clear-Site-Data`), in case an older page or answer was kept.
pub fn cache_headers(path: &str, headers: &mut HeaderMap) {
    if path.starts_with("/api/") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if path == LOGOUT_PATH {
        headers.insert(
            HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cache\""),
        );
    }
}

const LOGOUT_PATH: &str = "/api/auth/logout";

/// The admin app; before setup, the wizard instead.
pub async fn index(State(app): State<SetupApp>) -> Response {
    match app.setup.is_complete(&app.db).await {
        Ok(false) => Redirect::to("/setup").into_response(),
        Ok(true) => asset("index.html"),
        Err(e) => e.into_response(),
    }
}

pub async fn setup() -> Response {
    asset("setup.html")
}

pub async fn login() -> Response {
    asset("login.html")
}

/// The peers' self-service portal.
pub async fn portal() -> Response {
    asset("portal.html")
}

/// Where an invited peer sets its password; the token stays in the URL's fragment.
pub async fn invite() -> Response {
    asset("invite.html")
}

pub async fn assets(Path(path): Path<String>) -> Response {
    if path.contains("..") {
        return (
            StatusCode::NOT_FOUND,
            ApiError::not_found("asset").into_response(),
        )
            .into_response();
    }
    asset(&format!("assets/{path}"))
}
