//! The DNS driver: rebuilds the server's snapshot from the store and swaps it in, binds the
//! listening sockets (retrying on every reconcile until it can), and sends NOTIFY to the
//! secondaries when a public zone's serial moved.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::limits::DnsLimits;
use super::server::{self, Shared};
use super::snapshot::{self, Snapshot};
use super::stats::DnsStats;
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};
use crate::vault::Vault;

const NAME: &str = "dns";

pub struct DnsDriver {
    shared: Arc<Shared>,
    /// Where the TSIG secrets of the secondaries' keys are read from.
    vault: Vault,
    listen: Vec<SocketAddr>,
    state: Mutex<State>,
    /// A background rebuild is asked for and has not started yet (`refresh`).
    refresh_pending: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    bound: Vec<SocketAddr>,
    bind_errors: Vec<String>,
    serials: HashMap<String, u32>,
    last_error: Option<String>,
}

impl DnsDriver {
    pub fn new(
        listen: Vec<SocketAddr>,
        limits: DnsLimits,
        wireguard_interface: &str,
        vault: Vault,
    ) -> Self {
        DnsDriver {
            vault,
            shared: Arc::new(Shared::new(limits, wireguard_interface)),
            listen,
            state: Mutex::new(State::default()),
            refresh_pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Rebuilds the snapshot in the background after names or records changed. Requests
    /// coalesce: while one rebuild is waiting to start, more requests add nothing (the
    /// rebuild reads the store after the flag is cleared, so it sees every committed change).
    pub fn refresh(self: &Arc<Self>, db: &crate::db::Db) {
        use std::sync::atomic::Ordering;
        if self.refresh_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let (driver, db) = (Arc::clone(self), db.clone());
        tokio::spawn(async move {
            driver.refresh_pending.store(false, Ordering::Release);
            if let Err(e) = crate::driver::Driver::reconcile(driver.as_ref(), &db).await {
                tracing::warn!(error = %e, "DNS refresh");
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's counters (`GET /api/dns/stats`).
    pub fn stats(&self) -> &DnsStats {
        &self.shared.stats
    }

    /// The bounds the server runs with.
    pub fn limits(&self) -> &DnsLimits {
        &self.shared.limits
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    fn bind_missing(&self) {
        let mut state = self.lock();
        state.bind_errors.clear();
        for addr in &self.listen {
            let already = state
                .bound
                .iter()
                .any(|b| b.ip() == addr.ip() && (addr.port() == 0 || b.port() == addr.port()));
            if already {
                continue;
            }
            match server::start(Arc::clone(&self.shared), *addr) {
                Ok(bound) => {
                    tracing::info!(%bound, "DNS server listening (UDP and TCP)");
                    state.bound.push(bound);
                }
                Err(e) => state
                    .bind_errors
                    .push(format!("cannot listen on {addr}: {e}")),
            }
        }
    }
}

#[async_trait]
impl Driver for DnsDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        let built = async {
            // A new domain needs its zone. Checking is part of the read that builds the
            // snapshot, so a reconcile writes (and reads twice) only when there is a zone to
            // create.
            let built = db
                .call(|conn| match super::store::cell_zone_missing(conn)? {
                    true => Ok(None),
                    false => snapshot::build(conn).map(Some),
                })
                .await?;
            if let Some(snapshot) = built {
                return Ok(snapshot);
            }
            db.write(|tx| super::store::ensure_cell_zone(tx).map(|_| ()))
                .await?;
            db.call(|conn| snapshot::build(conn)).await
        }
        .await;
        let vault = self.vault.clone();
        let built = match built {
            Ok(mut snapshot) => db
                .call(move |conn| super::tsig::TransferKeys::load(conn, &vault))
                .await
                .map(|keys| {
                    snapshot.transfer_keys = keys;
                    snapshot
                }),
            Err(e) => Err(e),
        };
        let snapshot = match built {
            Ok(s) => s,
            Err(e) => {
                self.lock().last_error = Some(e.to_string());
                return Err(DriverError::Failed(NAME, e.to_string()));
            }
        };
        let mut changed = Vec::new();
        {
            let mut state = self.lock();
            state.last_error = None;
            for zone in snapshot.world.zones() {
                let serial = match &zone.soa.data {
                    hickory_proto::rr::RData::SOA(soa) => soa.serial,
                    _ => 0,
                };
                let origin = zone.soa.name.to_string();
                if state
                    .serials
                    .insert(origin, serial)
                    .is_some_and(|old| old != serial)
                {
                    changed.push(zone.soa.name.clone());
                }
            }
        }
        let vault = self.vault.clone();
        let secondaries = db
            .call(move |conn| super::tsig::notify_targets(conn, &vault))
            .await
            .unwrap_or_default();
        self.shared.snapshot.store(Arc::new(snapshot));
        for zone in changed {
            tokio::spawn(super::transfer::notify(zone, secondaries.clone()));
        }
        tokio::task::block_in_place(|| self.bind_missing());
        let state = self.lock();
        match (state.bound.is_empty(), state.bind_errors.first()) {
            (true, Some(e)) => Err(DriverError::Unavailable(NAME, e.clone())),
            _ => Ok(()),
        }
    }

    async fn status(&self) -> SubsystemStatus {
        let state = self.lock();
        if self.listen.is_empty() {
            return SubsystemStatus::unavailable(NAME, "no dns_listen address is configured");
        }
        if let Some(error) = &state.last_error {
            return SubsystemStatus {
                name: NAME,
                state: DriverState::Degraded,
                reason: Some(error.clone()),
            };
        }
        let zones = self.shared.snapshot.load().world.zones().len();
        let bound: Vec<String> = state.bound.iter().map(ToString::to_string).collect();
        match (bound.is_empty(), state.bind_errors.is_empty()) {
            (true, true) => SubsystemStatus::unavailable(NAME, "not started yet"),
            (true, false) => SubsystemStatus::unavailable(NAME, state.bind_errors.join("; ")),
            (false, true) => SubsystemStatus::ok(
                NAME,
                Some(format!("serving {zones} zone(s) on {}", bound.join(", "))),
            ),
            (false, false) => SubsystemStatus {
                name: NAME,
                state: DriverState::Degraded,
                reason: Some(format!(
                    "serving on {}; {}",
                    bound.join(", "),
                    state.bind_errors.join("; ")
                )),
            },
        }
    }
}
