//! When the exits' state is applied outside the reconciler's periodic pass: right after a
//! committed change, and when the health loop sees an exit go down or come back. Each time the
//! connectivity pass (interfaces, routes, rules) runs first, then routing's table, then the
//! conntrack entries of the peers that moved are flushed.

use std::time::Duration;

use super::store;
use crate::connectivity::ConnectivityApp;
use crate::driver::Driver;

const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// After a committed change: the exits' interfaces, routes and rules, then routing's table.
pub fn apply_soon(app: &ConnectivityApp) {
    apply_then_flush(app, Vec::new());
}

/// `apply_soon`, then the conntrack entries of peers that moved (from an exit to another or
/// to direct, or back): after the table changed, so their next packets start new flows on
/// the new way out instead of keeping the old one's NAT.
pub fn apply_then_flush(app: &ConnectivityApp, moved: Vec<String>) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = app.connectivity.reconcile(&app.db).await {
            tracing::debug!(error = %e, "connectivity pass after a change");
        }
        if let Err(e) = app.routing.reconcile(&app.db).await {
            tracing::debug!(error = %e, "routing rebuild after a connectivity change");
        }
        for address in &moved {
            flush_conntrack(address).await;
        }
    });
}

/// Deletes the flows a peer's address started (`conntrack -D -s`); none to delete is fine.
async fn flush_conntrack(address: &str) {
    let family = if address.contains(':') {
        "ipv6"
    } else {
        "ipv4"
    };
    let run = tokio::process::Command::new("conntrack")
        .args(["-D", "-f", family, "-s", address])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    if let Err(e) = run.await {
        tracing::warn!(error = %e, "conntrack could not run: a moved peer keeps its old flows");
    }
}

/// Probes every exit every few seconds; a change of health starts a pass at once.
pub async fn run_exit_health(app: ConnectivityApp) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // Nothing to probe where the driver cannot build interfaces.
        if !app.connectivity.enabled || !crate::health::probes::has_net_admin() {
            continue;
        }
        let changed = app.connectivity.probe_all(&app.db).await;
        if changed.is_empty() {
            continue;
        }
        // Fail-open peers of an exit that went down or came back move with it.
        let moved = app
            .db
            .call(move |conn| {
                let peers = store::peer_exits(conn)?;
                Ok(peers
                    .into_iter()
                    .filter(|p| {
                        p.fail_open && p.connection.as_ref().is_some_and(|c| changed.contains(c))
                    })
                    .flat_map(|p| [p.address_v4, p.address_v6])
                    .collect::<Vec<String>>())
            })
            .await
            .unwrap_or_default();
        apply_then_flush(&app, moved);
    }
}
