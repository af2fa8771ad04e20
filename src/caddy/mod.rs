//! Caddy in front of picd: the driver that keeps Caddy's config in step with the cell (the
//! admin UI and API at the cell's domain, the extra sites services add), TLS from the cell's
//! own CA or from ACME, and /api/caddy.

mod admin;
pub mod config;
pub mod driver;
pub mod routes;
pub mod served;
pub mod store;
mod tls_files;

/// The Caddy routes' state: the core and the Caddy driver.
#[derive(Clone)]
pub struct CaddyApp {
    pub core: crate::state::Core,
    pub caddy: std::sync::Arc<driver::CaddyDriver>,
}
crate::reads_through_to_core!(CaddyApp);
