//! Health: the public /health check, /api/status with every subsystem's state, the
//! recorded history of both, and the probes that find out what this machine can drive.

pub mod probes;
pub mod routes;
pub mod storage;
pub mod write_guard;

use std::time::Duration;

use serde_json::json;

use crate::driver::{DriverState, SubsystemStatus};

/// History rows kept: a day at the default interval.
const HISTORY_ROWS: i64 = 2880;

pub fn overall(statuses: &[SubsystemStatus]) -> &'static str {
    if statuses.iter().all(|s| s.state == DriverState::Ok) {
        "ok"
    } else {
        "degraded"
    }
}

/// Records every subsystem's status periodically, for /api/health/history.
pub async fn run_health_checks(app: HealthApp) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(Duration::from_secs(
        app.settings.health_interval_seconds.max(1),
    ));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let statuses = app.drivers.statuses().await;
        let overall = overall(&statuses);
        let subsystems = json!(statuses).to_string();
        let written = app
            .db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO health_history (time, overall, subsystems) VALUES (?1, ?2, ?3)",
                    rusqlite::params![crate::time::now_rfc3339(), overall, subsystems],
                )?;
                tx.execute(
                    "DELETE FROM health_history WHERE id <= (SELECT MAX(id) FROM health_history) - ?1",
                    [HISTORY_ROWS],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record a health check");
        }
    }
}

/// The status routes' and health loop's state: the core, whether setup is done, and the
/// storage's write guard.
#[derive(Clone)]
pub struct HealthApp {
    pub core: crate::state::Core,
    pub setup: crate::setup::SetupState,
    pub storage: std::sync::Arc<write_guard::WriteGuard>,
}
crate::reads_through_to_core!(HealthApp);
