//! The state every handler shares: the store, the settings, the drivers and the throttle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::api_keys::KeyRateLimiter;
use crate::auth::device::DeviceCookies;
use crate::auth::throttle::LoginThrottle;
use crate::auth::token_throttle::TokenThrottle;
use crate::caddy::driver::CaddyDriver;
use crate::config::Settings;
use crate::db::Db;
use crate::dns::driver::DnsDriver;
use crate::driver::Drivers;
use crate::error::ApiError;
use crate::setup::throttle::ClaimThrottle;
use crate::vault::Vault;
use crate::wireguard::driver::WireGuardDriver;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub drivers: Drivers,
    pub throttle: Arc<LoginThrottle>,
    pub key_limiter: Arc<KeyRateLimiter>,
    /// Wrong setup codes per client address.
    pub setup_claims: Arc<ClaimThrottle>,
    /// Bad API keys and invitation tokens per client address.
    pub token_throttle: Arc<TokenThrottle>,
    pub device_cookies: Arc<DeviceCookies>,
    pub vault: Vault,
    pub wireguard: Arc<WireGuardDriver>,
    pub dns: Arc<DnsDriver>,
    pub caddy: Arc<CaddyDriver>,
    pub routing: Arc<crate::routing::driver::RoutingDriver>,
    pub connectivity: Arc<crate::connectivity::driver::ConnectivityDriver>,
    pub services: crate::services::ServicesState,
    pub started: Instant,
    /// Whether changes are refused while storage is degraded (set by `serve` at start).
    pub storage: Arc<crate::health::write_guard::WriteGuard>,
    /// Wakes the reconciler; requests coalesce, so a burst of changes costs one pass.
    reconcile_wanted: Arc<tokio::sync::Notify>,
    dns_refresh_pending: Arc<AtomicBool>,
    setup_done: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(
        db: Db,
        vault: Vault,
        settings: Settings,
        drivers: Drivers,
        wireguard: Arc<WireGuardDriver>,
        dns: Arc<DnsDriver>,
        caddy: Arc<CaddyDriver>,
    ) -> Self {
        let throttle = LoginThrottle::new(
            settings.login_failures_per_user,
            settings.login_failures_per_address,
        );
        let routing = Arc::new(crate::routing::driver::RoutingDriver::new(&settings));
        let connectivity = Arc::new(crate::connectivity::driver::ConnectivityDriver::new(
            &settings,
            vault.clone(),
        ));
        let services = crate::services::ServicesState::new(
            Arc::new(crate::services::driver::DockerDriver::new(
                settings.docker_socket.clone(),
                &settings.state_dir,
            )),
            settings.services_image_cache(),
            settings.debian_mirror.clone(),
        );
        AppState {
            db,
            settings: Arc::new(settings),
            drivers,
            throttle: Arc::new(throttle),
            key_limiter: Arc::new(KeyRateLimiter::new()),
            setup_claims: Arc::new(ClaimThrottle::default()),
            token_throttle: Arc::new(TokenThrottle::default()),
            device_cookies: Arc::new(DeviceCookies::new()),
            vault,
            wireguard,
            dns,
            services,
            caddy,
            routing,
            connectivity,
            started: Instant::now(),
            storage: Arc::default(),
            reconcile_wanted: Arc::new(tokio::sync::Notify::new()),
            dns_refresh_pending: Arc::new(AtomicBool::new(false)),
            setup_done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The routing driver the reconciler runs (the same one /api/routing reads counters of).
    pub fn with_routing(mut self, routing: Arc<crate::routing::driver::RoutingDriver>) -> Self {
        self.routing = routing;
        self
    }

    /// The connectivity driver the reconciler runs (the same one /api/connectivity reads).
    pub fn with_connectivity(
        mut self,
        connectivity: Arc<crate::connectivity::driver::ConnectivityDriver>,
    ) -> Self {
        self.connectivity = connectivity;
        self
    }

    /// Asks for a full reconcile of every driver soon (after a change of the cell's settings).
    pub fn request_reconcile(&self) {
        self.reconcile_wanted.notify_one();
    }

    /// Resolves when a reconcile was requested.
    pub async fn reconcile_requested(&self) {
        self.reconcile_wanted.notified().await;
    }

    /// Rebuilds the DNS snapshot in the background after names or records changed. Requests
    /// coalesce: while one rebuild is waiting to start, more requests add nothing (the
    /// rebuild reads the store after the flag is cleared, so it sees every committed change).
    pub fn refresh_dns(&self) {
        if self.dns_refresh_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let app = self.clone();
        tokio::spawn(async move {
            app.dns_refresh_pending.store(false, Ordering::Release);
            if let Err(e) = crate::driver::Driver::reconcile(app.dns.as_ref(), &app.db).await {
                tracing::warn!(error = %e, "DNS refresh");
            }
        });
    }

    /// Whether the wizard has completed. Once true it stays true, so only the first requests
    /// (and those made while setup is pending, which `picd setup` may finish offline) read the
    /// database.
    pub async fn setup_complete(&self) -> Result<bool, ApiError> {
        if self.setup_done.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = self
            .db
            .call(|conn| Ok(crate::setup::store::is_complete(conn)?))
            .await?;
        if done {
            self.setup_done.store(true, Ordering::Release);
        }
        Ok(done)
    }
}
