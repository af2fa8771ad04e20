//! While storage is degraded (src/health/storage.rs), picd refuses changes: a write on a
//! damaged database or on one behind its audit anchor would pile new state onto the loss and
//! make a restore from backups/ cost more. Reads keep working so that the owner can look and
//! export, and signing in and out stays possible (sessions are not the cell's data).
//!
//! The owner lifts the refusal by restoring a snapshot (the next start finds the storage
//! whole), or accepts the loss, either with POST /api/status/storage/acknowledge while picd
//! runs or with `picd audit reanchor` while it is stopped (the command the README already
//! names for accepting a loss; it acknowledges too, so a damaged page that the new anchor
//! does not mend is accepted by the same step). The acknowledgement is kept in the state dir
//! (`storage-acknowledged`) until a start finds the storage whole again, so a restart does
//! not refuse again what the owner already accepted; a later start that finds it whole
//! removes it, and the next loss is refused anew.
//!
//! Open while refusing: signing in and out (the owner must sign in to look and to
//! acknowledge; sessions are not the cell's data) and the acknowledgement itself. Everything
//! else that is not GET, HEAD or OPTIONS is refused, whatever its route, so a route added
//! later is covered without a line here: the setup wizard, invitations, the portal's key
//! rotation, the CLI-free routes of every domain.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::storage::StorageCheck;
use crate::error::ApiError;
use crate::health::HealthApp;

const ACKNOWLEDGED_FILE: &str = "storage-acknowledged";
/// Changes allowed while refusing: signing in and out, and the acknowledgement itself.
const ALLOWED_WHILE_DEGRADED: [&str; 3] = [
    "/api/auth/login",
    "/api/auth/logout",
    "/api/status/storage/acknowledge",
];

/// Whether changes are refused, shared by every request.
#[derive(Debug, Default)]
pub struct WriteGuard {
    refusing: AtomicBool,
    /// Where the acknowledgement is kept; None for a cell whose storage was whole.
    acknowledged_file: Option<PathBuf>,
}

impl WriteGuard {
    /// From the start-up check: refusing when degraded and not acknowledged before. A whole
    /// storage drops an old acknowledgement.
    pub fn at_start(check: &StorageCheck, state_dir: &Path) -> anyhow::Result<WriteGuard> {
        let file = state_dir.join(ACKNOWLEDGED_FILE);
        if !check.degraded() {
            match std::fs::remove_file(&file) {
                Ok(()) => tracing::info!("storage is whole again: the acknowledgement is dropped"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(WriteGuard::default());
        }
        let acknowledged = file.exists();
        if acknowledged {
            tracing::warn!("storage is degraded; changes are allowed: the owner acknowledged it");
        } else {
            tracing::error!(
                "storage is degraded: changes are refused (storage_degraded) until a snapshot \
                 is restored or the owner acknowledges the loss"
            );
        }
        Ok(WriteGuard {
            refusing: AtomicBool::new(!acknowledged),
            acknowledged_file: Some(file),
        })
    }

    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Whether the start-up check found the storage degraded (acknowledged or not).
    pub fn degraded(&self) -> bool {
        self.acknowledged_file.is_some()
    }

    /// The owner accepts the database as it is: changes are allowed from now on, and after
    /// restarts until the storage is found whole. Nothing to do on a whole storage.
    pub fn acknowledge(&self) -> std::io::Result<bool> {
        let Some(file) = &self.acknowledged_file else {
            return Ok(false);
        };
        write_acknowledgement(file, "POST /api/status/storage/acknowledge")?;
        self.refusing.store(false, Ordering::Relaxed);
        tracing::warn!("storage is degraded; the owner acknowledged it: changes are allowed");
        Ok(true)
    }
}

/// `picd audit reanchor` (picd stopped): the owner accepts the loss, so the next start allows
/// changes even when the database still fails its integrity check.
pub fn acknowledge_in(state_dir: &Path, by: &str) -> std::io::Result<()> {
    write_acknowledgement(&state_dir.join(ACKNOWLEDGED_FILE), by)
}

fn write_acknowledgement(file: &Path, by: &str) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?;
    writeln!(
        out,
        "the owner acknowledged the degraded storage ({by}); removed at the next start that \
         finds the storage whole"
    )?;
    out.sync_all()
}

fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The layer: a change while refusing gets 503 `storage_degraded`.
pub async fn refuse_changes_while_degraded(
    State(app): State<HealthApp>,
    req: Request,
    next: Next,
) -> Response {
    if app.storage.refusing()
        && is_change(req.method())
        && !ALLOWED_WHILE_DEGRADED.contains(&req.uri().path())
    {
        return ApiError::StorageDegraded.into_response();
    }
    next.run(req).await
}
