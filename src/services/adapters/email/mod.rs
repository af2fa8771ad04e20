//! `/api/email/*`: the mail service's mailboxes (one per account) with what each holds and
//! its quota, the aliases that deliver into them, and the default quota. Everything but
//! `status` answers 404 `not_installed` while mail is not installed. The aliases and quotas
//! are desired state in SQLite (`store`); `maps` makes the service's config folder match.

mod aliases;
pub mod mailboxes;
pub mod maps;
mod quota;
pub mod store;

use crate::error::ApiError;
use crate::services::manifests::MAIL;
use crate::services::ServicesApp;

/// Makes the mail service's maps match SQLite and reloads Postfix when they changed.
pub async fn apply_maps(app: &ServicesApp) -> Result<(), ApiError> {
    let driver = &app.services.driver;
    let docker = driver.connect().await.ok();
    let container = driver.container_name(MAIL.id);
    let dir = driver.service_dir(MAIL.id);
    maps::apply(&app.db, &dir, docker.as_ref(), &container).await
}

pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::{delete, get, put};
    axum::Router::new()
        .route("/api/email/status", get(mailboxes::status))
        .route("/api/email/mailboxes", get(mailboxes::mailboxes))
        .route(
            "/api/email/mailboxes/{username}/quota",
            put(quota::put_mailbox),
        )
        .route(
            "/api/email/quota",
            get(quota::get_default).put(quota::put_default),
        )
        .route(
            "/api/email/aliases",
            get(aliases::list).post(aliases::create),
        )
        .route("/api/email/aliases/{alias}", delete(aliases::remove))
}
