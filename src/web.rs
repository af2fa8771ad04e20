//! The admin UI and the wizard: plain HTML, CSS and ES modules from `web/`, embedded in the
//! binary at build time (no build step, nothing to install beside picd).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::{ApiError, Path};
use crate::state::AppState;

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            // Pages are small and change with the binary: revalidate rather than cache stale.
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_string()),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                file.data,
            )
                .into_response()
        }
        None => ApiError::not_found("page").into_response(),
    }
}

/// The admin app; before setup, the wizard instead.
pub async fn index(State(app): State<AppState>) -> Response {
    match app.setup_complete().await {
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
