//! The one rule for every subsystem driver (WireGuard, DNS, Caddy, nftables, Docker): desired
//! state lives in SQLite; a driver reads it and makes the system match, idempotently, and
//! says how its subsystem is. A driver that cannot act reports `unavailable` with the reason;
//! it never takes picd down.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::db::Db;

/// Longest a driver may take to report its state before it counts as unavailable.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest one reconcile may take.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverState {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubsystemStatus {
    pub name: &'static str,
    pub state: DriverState,
    pub reason: Option<String>,
}

impl SubsystemStatus {
    pub fn ok(name: &'static str, reason: Option<String>) -> Self {
        SubsystemStatus {
            name,
            state: DriverState::Ok,
            reason,
        }
    }

    pub fn unavailable(name: &'static str, reason: impl Into<String>) -> Self {
        SubsystemStatus {
            name,
            state: DriverState::Unavailable,
            reason: Some(reason.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0} is unavailable: {1}")]
    Unavailable(&'static str, String),
    #[error("{0} failed: {1}")]
    Failed(&'static str, String),
}

#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The subsystem's name in /api/status.
    fn name(&self) -> &'static str;

    /// Reads the desired state from the store and applies it. Applying twice changes nothing;
    /// picd calls this at start-up (so a restart re-applies everything) and after each change.
    async fn reconcile(&self, db: &Db) -> Result<(), DriverError>;

    /// How the subsystem is right now.
    async fn status(&self) -> SubsystemStatus;
}

/// All drivers of the cell, in the order /api/status lists them.
#[derive(Clone, Default)]
pub struct Drivers {
    list: Vec<Arc<dyn Driver>>,
}

impl Drivers {
    pub fn new(list: Vec<Arc<dyn Driver>>) -> Self {
        Drivers { list }
    }

    /// Every driver's status, asked concurrently; a driver that hangs or panics is reported
    /// unavailable instead of holding up or breaking the answer.
    pub async fn statuses(&self) -> Vec<SubsystemStatus> {
        let checks = self.list.iter().map(|driver| {
            let driver = Arc::clone(driver);
            async move {
                let name = driver.name();
                let task = tokio::spawn(async move { driver.status().await });
                match tokio::time::timeout(STATUS_TIMEOUT, task).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(_)) => SubsystemStatus::unavailable(name, "status check failed"),
                    Err(_) => SubsystemStatus::unavailable(name, "status check timed out"),
                }
            }
        });
        futures_util::future::join_all(checks).await
    }

    /// Reconciles every driver; failures are logged and show in /api/status.
    pub async fn reconcile_all(&self, db: &Db) {
        for driver in &self.list {
            let (driver, db) = (Arc::clone(driver), db.clone());
            let name = driver.name();
            let task = tokio::spawn(async move { driver.reconcile(&db).await });
            match tokio::time::timeout(RECONCILE_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(subsystem = name, error = %e, "reconcile did not apply")
                }
                Ok(Err(e)) => {
                    tracing::error!(subsystem = name, error = %e, "reconcile task failed")
                }
                Err(_) => tracing::error!(subsystem = name, "reconcile timed out"),
            }
        }
    }
}
