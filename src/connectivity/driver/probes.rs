//! The exits' health probes: one connection now (for the API), or every exit for the health
//! loop, recording each change of health.

use serde_json::{json, Value};

use super::{ConnectivityDriver, State, Tracker, PROBE_WAIT_SECONDS};
use crate::connectivity::store;
use crate::db::Db;
use crate::error::ApiError;

impl ConnectivityDriver {
    /// Probes one connection now (the health loop's probe, outside its schedule); None when
    /// there is no such connection. The recorded state is the loop's to change.
    pub async fn probe_now(&self, db: &Db, id: String) -> Result<Option<Value>, ApiError> {
        let Some(row) = db.call(move |conn| Ok(store::get(conn, &id)?)).await? else {
            return Ok(None);
        };
        let ifname = self.ifname(row.slot);
        let mut target = row.settings.dns().first().map(ToString::to_string);
        let started = std::time::Instant::now();
        let proxy = self.proxy_row(db, &row.id).await;
        let tor = self.tor_healthy(&row).await;
        if tor.is_some() {
            target = Some("control port".into());
        }
        let answered = match (tor, &proxy, &target) {
            (Some(healthy), _, _) => healthy,
            (None, Some(p), _) => {
                let (ok, tried) = crate::connectivity::proxy::driver::probe(p).await;
                target = tried;
                ok
            }
            (None, None, Some(target)) => probe(&ifname, target).await,
            (None, None, None) => false,
        };
        let took_ms = started.elapsed().as_millis() as u64;
        let exits = self.exits(db).await?;
        let shown = exits.into_iter().find(|e| e["id"] == row.id.as_str());
        Ok(Some(json!({
            "id": row.id, "probe_target": target, "answered": answered,
            "probe_ms": answered.then_some(took_ms),
            "state": shown.as_ref().map(|e| e["state"].clone()),
            "handshake_age_seconds": shown.map(|e| e["handshake_age_seconds"].clone()),
        })))
    }

    async fn proxy_row(
        &self,
        db: &Db,
        id: &str,
    ) -> Option<crate::connectivity::proxy::driver::ProxyRow> {
        let vault = self.vault.clone();
        let read = db
            .call(move |conn| crate::connectivity::proxy::driver::read(conn, &vault))
            .await;
        read.ok()?.0.into_iter().find(|p| p.row.id == id)
    }

    /// One probe of every exit; records each change of health. Answers the connections whose
    /// health changed.
    pub(in crate::connectivity) async fn probe_all(&self, db: &Db) -> Vec<String> {
        let targets = match db.call(|conn| Ok(store::list(conn)?)).await {
            Ok(rows) => rows,
            Err(_) => return Vec::new(),
        };
        let news = self.openvpn_news(db, &targets).await;
        let vault = self.vault.clone();
        let proxies = db
            .call(move |conn| crate::connectivity::proxy::driver::read(conn, &vault))
            .await
            .map(|read| read.0)
            .unwrap_or_default();
        let probes = targets.iter().map(|row| {
            let ifname = self.ifname(row.slot);
            let target = row.settings.dns().first().copied();
            let proxy = proxies.iter().find(|p| p.row.id == row.id);
            async move {
                if let Some(healthy) = self.tor_healthy(row).await {
                    return healthy;
                }
                if let Some(p) = proxy {
                    // The proxy answering is not enough: redsocks (which carries the peers'
                    // TCP to it) must run too, or a redsocks that ends at each start (say, asked
                    // to change user without the right to) would leave the exit "up".
                    let redsocks = self.proxies.pid(&row.id).is_some();
                    return crate::connectivity::proxy::driver::probe(p).await.0 && redsocks;
                }
                let answered = match target {
                    Some(target) => probe(&ifname, &target.to_string()).await,
                    // Without a DNS address to probe, the interface being there is all we know.
                    None => std::path::Path::new("/sys/class/net")
                        .join(&ifname)
                        .exists(),
                };
                answered && self.openvpn_connected(row).await
            }
        });
        let results = futures_util::future::join_all(probes).await;
        let mut changes = Vec::new();
        {
            let mut trackers = Self::lock(&self.trackers);
            trackers.retain(|id, _| targets.iter().any(|r| &r.id == id));
            for (row, ok) in targets.iter().zip(results) {
                let tracker = trackers
                    .entry(row.id.clone())
                    .or_insert_with(|| Tracker::new(State::Connecting));
                if let Some(state) = tracker.note(ok) {
                    changes.push((row.id.clone(), row.name.clone(), state));
                }
            }
        }
        if changes.is_empty() {
            return news;
        }
        for (_, name, state) in &changes {
            tracing::warn!(connection = %name, state = state.as_str(), "exit health changed");
        }
        let mut ids: Vec<String> = changes.iter().map(|c| c.0.clone()).collect();
        ids.extend(news);
        let written = db
            .write(move |tx| {
                let now = crate::time::now_rfc3339();
                for (id, _, state) in &changes {
                    store::set_health(tx, id, state.as_str(), &now)?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => ids,
            Err(_) => Vec::new(),
        }
    }
}

/// One ping through the exit's interface (bound to it, so it never tests the uplink).
pub(in crate::connectivity) async fn probe(ifname: &str, target: &str) -> bool {
    let run = tokio::process::Command::new("ping")
        .args([
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            PROBE_WAIT_SECONDS,
            "-I",
            ifname,
            target,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match run.await {
        Ok(status) => status.success(),
        Err(e) => {
            // Under the unit's privileges without CAP_NET_RAW the kernel refuses to run ping
            // at all (its file capability cannot be granted): say so, or the exit is just down.
            tracing::warn!(error = %e, "ping could not run: the exit's probe fails");
            false
        }
    }
}
