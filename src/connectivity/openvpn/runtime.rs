//! The connectivity driver's part for `openvpn` connections: a pass hands the wanted
//! connections to the supervisor (which starts, restarts and stops the processes) and gives
//! each exit its route while its tun device is there and its health is not down; the health
//! loop asks the management socket whether the tunnel is CONNECTED (besides the probe through
//! the exit), records the DNS the server pushed, and asks for a pass when a tunnel is new
//! (a restarted process has a new tun device, without the exit's route).

use serde_json::{json, Value};

use super::process::Wanted;
use crate::connectivity::driver::{ConnectivityDriver, WantedOpenVpn};
use crate::connectivity::health::State;
use crate::connectivity::kernel::KernelExit;
use crate::connectivity::store::{ConnectionRow, TYPE_OPENVPN};
use crate::db::Db;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnectivityDriver {
    /// Brings the processes in line; answers each exit as the kernel should hold it.
    pub(in crate::connectivity) async fn sync_openvpn(
        &self,
        wanted: Vec<WantedOpenVpn>,
        problems: &mut Vec<String>,
    ) -> Vec<KernelExit> {
        let exits: Vec<KernelExit> = wanted
            .iter()
            .map(|w| {
                let interface = self.ifname(w.row.slot);
                let present = std::path::Path::new("/sys/class/net")
                    .join(&interface)
                    .exists();
                KernelExit {
                    slot: w.row.slot,
                    route: present && w.state != State::Down,
                    interface,
                    v6: false,
                }
            })
            .collect();
        let ids: Vec<(String, String)> = wanted
            .iter()
            .map(|w| (w.row.id.clone(), w.row.name.clone()))
            .collect();
        let plan = wanted
            .into_iter()
            .map(|w| Wanted {
                id: w.row.id,
                ifname: self.ifname(w.row.slot),
                secrets: w.secrets,
            })
            .collect();
        self.openvpn.sync(plan).await;
        for (id, name) in ids {
            let Some(seen) = self.openvpn.seen(&id).await else {
                continue;
            };
            if let (None, Some(e)) = (seen.pid, seen.last_error) {
                problems.push(format!("{name}: {e}"));
            }
        }
        exits
    }

    /// For an `openvpn` row, whether its management socket says CONNECTED (true for others).
    pub(in crate::connectivity) async fn openvpn_connected(&self, row: &ConnectionRow) -> bool {
        if row.kind != TYPE_OPENVPN {
            return true;
        }
        let Some(socket) = self.openvpn.socket(&row.id).await else {
            return false;
        };
        super::management::state(&socket).await.as_deref() == Some("CONNECTED")
    }

    /// Records DNS the servers pushed; answers the connections that need a pass (new DNS, or
    /// a tunnel completed since the last look).
    pub(in crate::connectivity) async fn openvpn_news(
        &self,
        db: &Db,
        rows: &[ConnectionRow],
    ) -> Vec<String> {
        let mut news = Vec::new();
        let mut dns_changes = Vec::new();
        for row in rows.iter().filter(|r| r.kind == TYPE_OPENVPN) {
            let Some(seen) = self.openvpn.seen(&row.id).await else {
                continue;
            };
            let last = lock(&self.openvpn_completed).insert(row.id.clone(), seen.completed);
            let pushed = &seen.pushed_dns;
            let new_dns = !pushed.is_empty() && pushed.as_slice() != row.settings.dns();
            if new_dns {
                dns_changes.push((row.id.clone(), pushed.clone()));
            }
            if new_dns || last.is_some_and(|l| l != seen.completed) {
                tracing::info!(connection = %row.name, "openvpn tunnel up (new DNS or a new tunnel)");
                news.push(row.id.clone());
            }
        }
        lock(&self.openvpn_completed).retain(|id, _| rows.iter().any(|r| &r.id == id));
        if !dns_changes.is_empty() {
            let written = db
                .write(move |tx| {
                    for (id, dns) in &dns_changes {
                        super::store::set_dns(tx, id, dns)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "recording an exit's pushed DNS");
            }
        }
        news
    }

    /// The process of an `openvpn` row, as /exits shows it.
    pub(in crate::connectivity) async fn openvpn_process(
        &self,
        row: &ConnectionRow,
    ) -> Option<Value> {
        if row.kind != TYPE_OPENVPN {
            return None;
        }
        let seen = self.openvpn.seen(&row.id).await.unwrap_or_default();
        let socket = self.openvpn.socket(&row.id).await;
        let tunnel = match socket {
            Some(socket) => super::management::state(&socket).await,
            None => None,
        };
        Some(json!({
            "pid": seen.pid, "restarts": seen.restarts, "tunnel": tunnel,
            "last_error": seen.last_error,
        }))
    }

    /// Stops every `openvpn` child (picd is stopping).
    pub async fn stop_exits(&self) {
        self.openvpn.stop_all().await;
    }
}
