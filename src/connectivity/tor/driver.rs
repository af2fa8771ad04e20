//! The connectivity driver's part for `tor` connections: a pass hands the wanted ones to the
//! supervisor (their kernel part is a table with only `unreachable`: their TCP and DNS are
//! redirected to tor on the cell); the health loop asks each tor's control port.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::supervisor::TorExit;
use crate::connectivity::driver::ConnectivityDriver;
use crate::connectivity::kernel::KernelExit;
use crate::connectivity::store::{self, ConnectionRow};
use crate::db::Db;
use crate::error::ApiError;

/// Every tor connection, and the cell's WireGuard IPv4 address (None before setup).
fn read(conn: &rusqlite::Connection) -> Result<(Vec<ConnectionRow>, Option<Ipv4Addr>), ApiError> {
    let rows = store::list(conn)?
        .into_iter()
        .filter(|r| super::is_tor(&r.kind))
        .collect();
    Ok((rows, crate::connectivity::proxy::driver::cell_listen(conn)?))
}

impl ConnectivityDriver {
    /// Starts, restarts and stops the tor exits' processes; answers their kernel part.
    pub(in crate::connectivity) async fn apply_tor(
        &self,
        db: &Db,
        problems: &mut Vec<String>,
    ) -> Vec<KernelExit> {
        let (rows, listen) = match db.call(|conn| read(conn)).await {
            Ok(read) => read,
            Err(e) => {
                problems.push(format!("reading the tor connections: {e}"));
                return Vec::new();
            }
        };
        let wanted = rows
            .iter()
            .map(|r| TorExit {
                id: r.id.clone(),
                name: r.name.clone(),
                slot: r.slot,
            })
            .collect();
        problems.extend(self.tor.sync(wanted, listen).await);
        rows.iter()
            .map(|r| KernelExit {
                slot: r.slot,
                interface: self.ifname(r.slot),
                route: false,
                v6: false,
            })
            .collect()
    }

    /// For a `tor` row, whether its control port says bootstrapped and a circuit is built
    /// (None for other types).
    pub(in crate::connectivity) async fn tor_healthy(&self, row: &ConnectionRow) -> Option<bool> {
        if !super::is_tor(&row.kind) {
            return None;
        }
        let Some((socket, cookie)) = self.tor.control(&row.id) else {
            return Some(false);
        };
        let answer = super::control::ask(&socket, &cookie).await;
        Some(answer.is_some_and(|b| b.healthy()))
    }

    /// The process of a `tor` row, as /exits shows it.
    pub(in crate::connectivity) async fn tor_process(&self, row: &ConnectionRow) -> Option<Value> {
        if !super::is_tor(&row.kind) {
            return None;
        }
        let (pid, restarts, last_error) = self.tor.seen(&row.id);
        let bootstrap = match self.tor.control(&row.id) {
            Some((socket, cookie)) => super::control::ask(&socket, &cookie).await,
            None => None,
        };
        Some(json!({
            "pid": pid, "restarts": restarts, "last_error": last_error,
            "bootstrap_progress": bootstrap.as_ref().and_then(|b| b.progress),
            "circuit_established": bootstrap.map(|b| b.circuit_established),
        }))
    }

    /// Stops every `tor` child (picd is stopping; the kernel's rules stay, closed).
    pub async fn stop_tor(&self) {
        self.tor.stop_all().await;
    }
}
