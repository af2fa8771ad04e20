//! The connectivity driver: one WireGuard interface per connection, and per exit its routing
//! table and rules (see `kernel`); routing applies the exits' part of the nftables table. A
//! pass reads the desired state, builds what is missing (an interface someone deleted is
//! built again), removes what is no longer wanted, and re-adds deleted rules and routes. The
//! health loop probes each exit and, when one goes down or comes back, records it and asks for
//! a pass: the exit's real default leaves its table (so its peers get "unreachable" at once),
//! and routing moves the fail-open peers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::health::{State, Tracker};
use super::interface::{self, ExitApi};
use super::kernel::{self, KernelExit};
use super::store::{self, ConnectionRow, ConnectionSettings};
use super::wgquick::Secrets;
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};
use crate::error::ApiError;
use crate::vault::Vault;

mod probes;

const NAME: &str = "connectivity";
const PROBE_WAIT_SECONDS: &str = "1";

struct Built {
    api: ExitApi,
    identity: String,
    ifname: String,
}

#[derive(Default)]
struct Inner {
    built: HashMap<String, Built>,
}

pub struct ConnectivityDriver {
    pub(super) enabled: bool,
    pub(super) openvpn: super::openvpn::process::Supervisor,
    /// Per OpenVPN connection, the tunnels its process has completed, as last seen.
    pub(super) openvpn_completed: Mutex<HashMap<String, u64>>,
    kernel: Result<bool, String>,
    wireguard_interface: String,
    vault: Vault,
    inner: Arc<Mutex<Inner>>,
    /// How many exit interfaces are built, for the status: async code never takes `inner`,
    /// which blocking tasks hold across slow reads of an interface.
    interfaces_up: Arc<std::sync::atomic::AtomicUsize>,
    trackers: Mutex<HashMap<String, Tracker>>,
    error: Mutex<Option<String>>,
    pass: tokio::sync::Mutex<()>,
    /// The proxy exits' redsocks processes and DNS forwarders.
    proxies: super::proxy::supervisor::Supervisor,
    /// The tor exits' processes.
    pub(super) tor: super::tor::supervisor::Supervisor,
}

/// A connection as a pass needs it.
struct Wanted {
    row: ConnectionRow,
    wireguard: super::wgquick::Settings,
    secrets: Secrets,
    state: State,
}

/// An `openvpn` connection as a pass needs it.
pub(super) struct WantedOpenVpn {
    pub(super) row: ConnectionRow,
    pub(super) secrets: super::openvpn::Secrets,
    pub(super) state: State,
}

type AllWanted = (Vec<Wanted>, Vec<WantedOpenVpn>, Option<super::Subnets>);

impl ConnectivityDriver {
    pub fn new(settings: &crate::config::Settings, vault: Vault) -> Self {
        ConnectivityDriver {
            enabled: settings.routing_mode == crate::config::RoutingMode::Apply,
            openvpn: super::openvpn::process::Supervisor::new(super::openvpn::process::run_dir(
                &settings.state_dir,
            )),
            openvpn_completed: Mutex::default(),
            kernel: interface::kernel_mode(settings.wireguard_mode),
            wireguard_interface: settings.wireguard_interface.clone(),
            vault,
            inner: Arc::default(),
            interfaces_up: Arc::default(),
            trackers: Mutex::default(),
            error: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
            proxies: super::proxy::supervisor::Supervisor::new(&settings.state_dir),
            tor: super::tor::supervisor::Supervisor::new(
                &settings.state_dir,
                &settings.tor_command,
            ),
        }
    }

    pub(super) fn ifname(&self, slot: u8) -> String {
        super::interface_name(&self.wireguard_interface, slot)
    }

    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wanted(&self, db: &Db) -> Result<AllWanted, ApiError> {
        let vault = self.vault.clone();
        db.call(move |conn| {
            let health = store::health(conn)?;
            let (mut wanted, mut openvpn) = (Vec::new(), Vec::new());
            for row in store::list(conn)? {
                let state = health
                    .get(&row.id)
                    .map_or(State::Connecting, |(s, _)| State::parse(s));
                let wireguard = match &row.settings {
                    ConnectionSettings::WireGuard(settings) => settings.clone(),
                    // Proxy and tor exits have no interface (`apply_proxies`, `apply_tor`).
                    ConnectionSettings::Proxy(_) | ConnectionSettings::Tor(_) => continue,
                    ConnectionSettings::OpenVpn(_) => {
                        let secrets = super::openvpn::store::secrets(conn, &vault, &row.id)?;
                        openvpn.push(WantedOpenVpn {
                            row,
                            secrets,
                            state,
                        });
                        continue;
                    }
                };
                let secrets = store::secrets(conn, &vault, &row.id)?;
                wanted.push(Wanted {
                    row,
                    wireguard,
                    secrets,
                    state,
                });
            }
            let config = crate::cell::store::read_cell_config(conn)?;
            let subnets = config.map(|c| (c.cell.subnet_v4, c.cell.subnet_v6));
            Ok((wanted, openvpn, subnets))
        })
        .await
    }

    /// Builds missing or changed interfaces and removes unwanted ones; answers, per wanted
    /// connection, whether its interface is there.
    async fn sync_interfaces(&self, wanted: &[Wanted], kernel: bool) -> Vec<Result<(), String>> {
        let plan: Vec<(String, String, super::wgquick::Settings, Secrets)> = wanted
            .iter()
            .map(|w| {
                let ifname = self.ifname(w.row.slot);
                let secrets = Secrets {
                    private_key: w.secrets.private_key.clone(),
                    preshared_key: w.secrets.preshared_key.clone(),
                };
                (w.row.id.clone(), ifname, w.wireguard.clone(), secrets)
            })
            .collect();
        let inner = Arc::clone(&self.inner);
        let up = Arc::clone(&self.interfaces_up);
        let task = tokio::task::spawn_blocking(move || {
            let mut inner = Self::lock(&inner);
            let ids: Vec<&String> = plan.iter().map(|p| &p.0).collect();
            let gone: Vec<String> = inner
                .built
                .keys()
                .filter(|id| !ids.contains(id))
                .cloned()
                .collect();
            for id in gone {
                if let Some(built) = inner.built.remove(&id) {
                    let _ = built.api.get().remove_interface();
                    tracing::info!(interface = %built.ifname, "exit interface removed");
                }
            }
            let results: Vec<Result<(), String>> = plan
                .iter()
                .map(|(id, ifname, settings, secrets)| {
                    let identity = interface::identity(ifname, settings, secrets);
                    let present = std::path::Path::new("/sys/class/net").join(ifname).exists();
                    if let Some(built) = inner.built.get(id) {
                        if built.identity == identity && present {
                            return Ok(());
                        }
                    }
                    if let Some(old) = inner.built.remove(id) {
                        let _ = old.api.get().remove_interface();
                    }
                    let api = interface::build(ifname, kernel, settings, secrets)?;
                    tracing::info!(interface = %ifname, "exit interface up");
                    let ifname = ifname.clone();
                    inner.built.insert(
                        id.clone(),
                        Built {
                            api,
                            identity,
                            ifname,
                        },
                    );
                    Ok(())
                })
                .collect();
            up.store(inner.built.len(), std::sync::atomic::Ordering::Relaxed);
            results
        });
        task.await
            .unwrap_or_else(|e| vec![Err(format!("interface task failed: {e}")); wanted.len()])
    }

    async fn apply(&self, db: &Db, kernel: bool) -> Result<(), String> {
        let (wanted, openvpn, subnets) = self
            .wanted(db)
            .await
            .map_err(|e| format!("reading the connections: {e}"))?;
        let built = self.sync_interfaces(&wanted, kernel).await;
        let mut problems: Vec<String> = Vec::new();
        let openvpn_exits = self.sync_openvpn(openvpn, &mut problems).await;
        let mut exits: Vec<KernelExit> = wanted
            .iter()
            .zip(&built)
            .map(|(w, built)| {
                if let Err(e) = built {
                    problems.push(format!("{}: {e}", w.row.name));
                }
                KernelExit {
                    slot: w.row.slot,
                    interface: self.ifname(w.row.slot),
                    route: built.is_ok() && w.state != State::Down,
                    v6: w.row.settings.has_ipv6(),
                }
            })
            .collect();
        exits.extend(openvpn_exits);
        exits.extend(self.apply_proxies(db, &mut problems).await);
        exits.extend(self.apply_tor(db, &mut problems).await);
        if let Err(e) = kernel::apply(&exits, subnets).await {
            problems.push(e);
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join("; ")),
        }
    }

    /// Starts, restarts and stops the proxy exits' processes; answers their kernel part: a
    /// table with only `unreachable` (their TCP and DNS are redirected to the cell).
    async fn apply_proxies(&self, db: &Db, problems: &mut Vec<String>) -> Vec<KernelExit> {
        let vault = self.vault.clone();
        let (rows, listen) = match db
            .call(move |conn| super::proxy::driver::read(conn, &vault))
            .await
        {
            Ok(read) => read,
            Err(e) => {
                problems.push(format!("reading the proxy connections: {e}"));
                return Vec::new();
            }
        };
        let exits = super::proxy::driver::exits(&rows, problems).await;
        problems.extend(self.proxies.sync(exits, listen).await);
        rows.iter()
            .map(|p| KernelExit {
                slot: p.row.slot,
                interface: self.ifname(p.row.slot),
                route: false,
                v6: false,
            })
            .collect()
    }

    /// Stops the proxy exits' processes (at shutdown; the kernel's rules stay, closed).
    pub async fn stop_proxies(&self) {
        self.proxies.stop_all().await;
    }

    /// Each exit with where it lives, its health and its provider's latest handshake.
    pub async fn exits(&self, db: &Db) -> Result<Vec<Value>, ApiError> {
        let rows = db
            .call(|conn| {
                let health = store::health(conn)?;
                let rows = store::list(conn)?;
                rows.into_iter()
                    .map(|r| {
                        let users = store::users(conn, &r.id)?;
                        let health = health.get(&r.id).cloned();
                        Ok((r, users, health))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .await?;
        let inner = Arc::clone(&self.inner);
        let ids: Vec<String> = rows.iter().map(|r| r.0.id.clone()).collect();
        let ages: HashMap<String, Option<u64>> = tokio::task::spawn_blocking(move || {
            let inner = Self::lock(&inner);
            ids.into_iter()
                .map(|id| {
                    let age = inner
                        .built
                        .get(&id)
                        .and_then(|b| interface::handshake_age(&b.api));
                    (id, age)
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        let mut processes = HashMap::new();
        for (row, _, _) in &rows {
            if let Some(process) = self.openvpn_process(row).await {
                processes.insert(row.id.clone(), process);
            }
            if let Some(process) = self.tor_process(row).await {
                processes.insert(row.id.clone(), process);
            }
        }
        Ok(rows
            .into_iter()
            .map(|(row, users, health)| {
                let (state, since) =
                    health.unwrap_or_else(|| ("connecting".into(), row.created_at.clone()));
                json!({
                    "id": row.id, "name": row.name, "type": row.kind,
                    "interface": super::device_name(&row.kind, &self.wireguard_interface, row.slot),
                    "mark": format!("{:#010x}", super::mark(row.slot)),
                    "table": super::table_id(row.slot),
                    "state": state, "since": since,
                    "handshake_age_seconds": ages.get(&row.id).copied().flatten(),
                    "pid": self.proxies.pid(&row.id).or_else(|| self.tor.seen(&row.id).0),
                    "process": processes.remove(&row.id),
                    "peers": users,
                })
            })
            .collect())
    }
}

#[async_trait]
impl Driver for ConnectivityDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        if !self.enabled {
            return Ok(());
        }
        let kernel = match (&self.kernel, crate::health::probes::has_net_admin()) {
            (Ok(kernel), true) => *kernel,
            (Err(e), _) => return Err(DriverError::Unavailable(NAME, e.clone())),
            (_, false) => {
                let reason = "picd lacks CAP_NET_ADMIN; the desired state is recorded, not applied";
                return Err(DriverError::Unavailable(NAME, reason.into()));
            }
        };
        let _pass = self.pass.lock().await;
        let result = self.apply(db, kernel).await;
        *Self::lock(&self.error) = result.as_ref().err().cloned();
        result.map_err(|e| DriverError::Failed(NAME, e))
    }

    async fn status(&self) -> SubsystemStatus {
        if !self.enabled {
            return SubsystemStatus::unavailable(NAME, "routing_mode is off: nothing is applied");
        }
        if let Err(e) = &self.kernel {
            return SubsystemStatus::unavailable(NAME, e.clone());
        }
        let error = Self::lock(&self.error).clone();
        match error {
            Some(e) => SubsystemStatus {
                name: NAME,
                state: DriverState::Degraded,
                reason: Some(e),
            },
            None => {
                let wireguard = self
                    .interfaces_up
                    .load(std::sync::atomic::Ordering::Relaxed);
                let n = wireguard + self.openvpn.running().await;
                let proxies = self.proxies.count();
                let tor = self.tor.count();
                let text = format!(
                    "{n} exit interfaces up, {proxies} proxy exits running, {tor} tor exits running"
                );
                SubsystemStatus::ok(NAME, Some(text))
            }
        }
    }
}
