//! The connectivity driver's part for `openvpn` connections: a pass hands the wanted
//! connections to the supervisor (which starts, restarts and stops the processes) and gives
//! each exit its route while its tun device is there and its health is not down; the health
//! loop asks the management socket whether the tunnel is CONNECTED (besides the probe through
//! the exit), records the DNS the server pushed, and asks for a pass when a tunnel is new
//! (a restarted process has a new tun device, without the exit's route). The tun device's IPv6
//! address is learned from the management socket's `state` line, as its IPv4 one: while the
//! tunnel has one, the exit's table gets a real IPv6 default too; without one (or with the exit
//! down) only the `unreachable` default stays, and the peers' IPv6 is refused at once.

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
        let ids: Vec<(String, String, u8, State)> = wanted
            .iter()
            .map(|w| (w.row.id.clone(), w.row.name.clone(), w.row.slot, w.state))
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
        let mut exits = Vec::new();
        for (id, name, slot, state) in ids {
            let seen = self.openvpn.seen(&id).await.unwrap_or_default();
            let interface = self.ifname(slot);
            let present = std::path::Path::new("/sys/class/net")
                .join(&interface)
                .exists();
            exits.push(kernel_exit(slot, interface, present, state, &seen));
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
        super::management::state(&socket)
            .await
            .is_some_and(|t| t.connected())
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
            let new_v6 = self.learn_tunnel_v6(&row.id).await;
            let pushed = &seen.pushed_dns;
            let new_dns = !pushed.is_empty() && pushed.as_slice() != row.settings.dns();
            if new_dns {
                dns_changes.push((row.id.clone(), pushed.clone()));
            }
            if new_dns || new_v6 || last.is_some_and(|l| l != seen.completed) {
                tracing::info!(connection = %row.name, "openvpn tunnel up (new DNS, IPv6 or tunnel)");
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

    /// Asks the management socket for the tunnel's IPv6 address and records it; answers whether
    /// it changed. Only a CONNECTED tunnel's answer counts: while it reconnects, the tun device
    /// (kept, `persist-tun`) keeps its address, and the health loop says when it is down.
    async fn learn_tunnel_v6(&self, id: &str) -> bool {
        let Some(socket) = self.openvpn.socket(id).await else {
            return false;
        };
        match super::management::state(&socket).await {
            Some(tunnel) if tunnel.connected() => {
                self.openvpn.learn_tunnel_v6(id, tunnel.local_v6).await
            }
            _ => false,
        }
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
            "pid": seen.pid, "restarts": seen.restarts,
            "tunnel": tunnel.map(|t| t.state), "tunnel_ipv6": seen.tunnel_v6,
            "last_error": seen.last_error,
        }))
    }

    /// Stops every `openvpn` child (picd is stopping).
    pub async fn stop_exits(&self) {
        self.openvpn.stop_all().await;
    }
}

/// An exit as the kernel should hold it: the real defaults only while its tun device is there
/// and it is not down, and the IPv6 one only while the tunnel has an IPv6 address (else its
/// peers' IPv6 meets the `unreachable` default: refused at once, never sent by the uplink).
fn kernel_exit(
    slot: u8,
    interface: String,
    present: bool,
    state: State,
    seen: &super::process::Seen,
) -> KernelExit {
    let route = present && state != State::Down;
    KernelExit {
        slot,
        route,
        v6: route && seen.tunnel_v6.is_some(),
        interface,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectivity::openvpn::process::Seen;

    #[test]
    fn an_exit_carries_ipv6_only_while_up_with_an_ipv6_tunnel() {
        let with_v6 = Seen {
            tunnel_v6: Some("fd65::1000".parse().unwrap()),
            ..Seen::default()
        };
        let v4_only = Seen::default();
        let exit = |present, state, seen: &Seen| {
            let e = kernel_exit(1, "picd0e1".into(), present, state, seen);
            (e.route, e.v6)
        };
        assert_eq!(exit(true, State::Up, &with_v6), (true, true));
        assert_eq!(exit(true, State::Connecting, &with_v6), (true, true));
        assert_eq!(exit(true, State::Up, &v4_only), (true, false));
        assert_eq!(exit(true, State::Down, &with_v6), (false, false));
        assert_eq!(exit(false, State::Up, &with_v6), (false, false));
    }
}
