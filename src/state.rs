//! What every domain shares: the store, the settings, the vault, the list of drivers and the
//! bell that asks for a reconcile. It knows no domain: each domain keeps its own part (its
//! driver, its throttles) in a state of its own (`peers::PeersApp`, `dns::DnsApp`, ...) that
//! holds a `Core` and reads through to it; `app.rs` composes them, and axum hands each handler
//! its domain's state (`FromRef`).

use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::db::Db;
use crate::driver::Drivers;
use crate::vault::Vault;

#[derive(Clone)]
pub struct Core {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub vault: Vault,
    /// Every subsystem's driver, as /api/status lists them and the reconciler runs them.
    pub drivers: Drivers,
    pub started: Instant,
    /// Wakes the reconciler; requests coalesce, so a burst of changes costs one pass.
    reconcile_wanted: Arc<tokio::sync::Notify>,
}

impl Core {
    pub fn new(db: Db, vault: Vault, settings: Arc<Settings>, drivers: Drivers) -> Self {
        Core {
            db,
            settings,
            vault,
            drivers,
            started: Instant::now(),
            reconcile_wanted: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Asks for a full reconcile of every driver soon (after a change of the cell's settings).
    pub fn request_reconcile(&self) {
        self.reconcile_wanted.notify_one();
    }

    /// Resolves when a reconcile was requested.
    pub async fn reconcile_requested(&self) {
        self.reconcile_wanted.notified().await;
    }
}

/// A domain's state reads through to the core it holds (`app.db`, `app.settings`, ...).
#[macro_export]
macro_rules! reads_through_to_core {
    ($state:ty) => {
        impl std::ops::Deref for $state {
            type Target = $crate::state::Core;
            fn deref(&self) -> &$crate::state::Core {
                &self.core
            }
        }
    };
}
