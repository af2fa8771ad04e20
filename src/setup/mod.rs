//! The setup wizard: admin account, cell identity, DNS, TLS, review. Until it completes only
//! /health, /api/setup/* and the wizard's page answer, and the wizard only to the session that
//! claimed it with the setup token (`token`, `claim`, `gate`). `picd setup --answers FILE` runs the
//! same steps with the same validation from a TOML file, and /api/config edits the result.

pub mod answers;
pub mod claim;
pub mod gate;
pub mod routes;
pub mod store;
pub mod throttle;
pub mod token;
pub mod validate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::db::Db;
use crate::error::ApiError;
use crate::state::Core;

/// Whether the wizard is done, and the throttle on its claims: what the wizard's routes, the
/// authentication layer, the status page and the first page read.
#[derive(Clone, Default)]
pub struct SetupState {
    /// Wrong setup codes per client address.
    pub claims: Arc<throttle::ClaimThrottle>,
    done: Arc<AtomicBool>,
}

impl SetupState {
    /// Whether the wizard has completed. Once true it stays true, so only the first requests
    /// (and those made while setup is pending, which `picd setup` may finish offline) read the
    /// database.
    pub async fn is_complete(&self, db: &Db) -> Result<bool, ApiError> {
        if self.done.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = db.call(|conn| Ok(store::is_complete(conn)?)).await?;
        if done {
            self.done.store(true, Ordering::Release);
        }
        Ok(done)
    }
}

/// The wizard's handlers' state.
#[derive(Clone)]
pub struct SetupApp {
    pub core: Core,
    pub setup: SetupState,
}
crate::reads_through_to_core!(SetupApp);
