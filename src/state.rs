//! The state every handler shares: the store, the settings, the drivers and the throttle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::api_keys::KeyRateLimiter;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::db::Db;
use crate::dns::driver::DnsDriver;
use crate::driver::Drivers;
use crate::error::ApiError;
use crate::vault::Vault;
use crate::wireguard::driver::WireGuardDriver;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub drivers: Drivers,
    pub throttle: Arc<LoginThrottle>,
    pub key_limiter: Arc<KeyRateLimiter>,
    pub vault: Vault,
    pub wireguard: Arc<WireGuardDriver>,
    pub dns: Arc<DnsDriver>,
    pub started: Instant,
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
    ) -> Self {
        let throttle = LoginThrottle::new(
            settings.login_failures_per_user,
            settings.login_failures_per_address,
        );
        AppState {
            db,
            settings: Arc::new(settings),
            drivers,
            throttle: Arc::new(throttle),
            key_limiter: Arc::new(KeyRateLimiter::new()),
            vault,
            wireguard,
            dns,
            started: Instant::now(),
            setup_done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Rebuilds the DNS snapshot in the background after names changed.
    pub fn refresh_dns(&self) {
        let app = self.clone();
        tokio::spawn(async move {
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
