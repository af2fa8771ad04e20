//! The one rule for every subsystem driver (WireGuard, DNS, Caddy, nftables, Docker): desired
//! state lives in SQLite; a driver reads it and makes the system match, idempotently, and
//! says how its subsystem is. A driver that cannot act reports `unavailable` with the reason;
//! it never takes picd down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// What went wrong in a driver's reconcile: what failed, and the error.
type Failure = (&'static str, String);

/// All drivers of the cell, in the order /api/status lists them.
#[derive(Clone, Default)]
pub struct Drivers {
    /// Shared: every request's state holds the list, and a clone costs one count.
    list: Arc<Vec<Arc<dyn Driver>>>,
    /// Each driver's failure in the last pass (None: it applied), to log only changes.
    last_failure: Arc<Mutex<HashMap<&'static str, Option<Failure>>>>,
}

impl Drivers {
    pub fn new(list: Vec<Arc<dyn Driver>>) -> Self {
        Drivers {
            list: Arc::new(list),
            last_failure: Arc::default(),
        }
    }

    /// Adds a driver at the end of the list.
    pub fn with(mut self, driver: Arc<dyn Driver>) -> Self {
        Arc::make_mut(&mut self.list).push(driver);
        self
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

    /// Reconciles every driver; failures show in /api/status. A failure is logged when it
    /// starts or changes, not again on every pass while it lasts (a cell without Caddy would
    /// otherwise log the same line after each change and each periodic pass).
    pub async fn reconcile_all(&self, db: &Db) {
        for driver in self.list.iter() {
            let (driver, db) = (Arc::clone(driver), db.clone());
            let name = driver.name();
            let task = tokio::spawn(async move { driver.reconcile(&db).await });
            let failure = match tokio::time::timeout(RECONCILE_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(("reconcile did not apply", e.to_string())),
                Ok(Err(e)) => Some(("reconcile task failed", e.to_string())),
                Err(_) => Some(("reconcile timed out", String::new())),
            };
            self.note_failure(name, failure);
        }
    }

    /// Remembers how `name`'s pass ended; true when that is news worth a log line (a
    /// failure that started or changed, or the first success after one).
    fn note_failure(&self, name: &'static str, failure: Option<Failure>) -> bool {
        let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        let previous = last.insert(name, failure.clone());
        if previous.as_ref() == Some(&failure) {
            return false;
        }
        match failure {
            None if matches!(previous, Some(Some(_))) => {
                tracing::info!(subsystem = name, "reconcile applies again");
                true
            }
            None => false,
            Some((what, error)) => {
                tracing::warn!(subsystem = name, error = %error, "{what}");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_logged_once_and_its_end_once() {
        let drivers = Drivers::default();
        let down = || {
            Some((
                "reconcile did not apply",
                "caddy is unavailable".to_string(),
            ))
        };
        assert!(
            !drivers.note_failure("caddy", None),
            "a first success is no news"
        );
        assert!(
            drivers.note_failure("caddy", down()),
            "a failure that starts is logged"
        );
        assert!(
            !drivers.note_failure("caddy", down()),
            "the same failure again is not"
        );
        let other = Some(("reconcile timed out", String::new()));
        assert!(
            drivers.note_failure("caddy", other),
            "a failure that changes is logged"
        );
        assert!(
            drivers.note_failure("dns", down()),
            "each driver is followed on its own"
        );
        assert!(
            drivers.note_failure("caddy", None),
            "the end of a failure is logged"
        );
        assert!(!drivers.note_failure("caddy", None));
    }
}
