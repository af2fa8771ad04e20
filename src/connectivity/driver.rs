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
    trackers: Mutex<HashMap<String, Tracker>>,
    error: Mutex<Option<String>>,
    pass: tokio::sync::Mutex<()>,
    /// The proxy exits' redsocks processes and DNS forwarders.
    proxies: super::proxy::supervisor::Supervisor,
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
            trackers: Mutex::default(),
            error: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
            proxies: super::proxy::supervisor::Supervisor::new(&settings.state_dir),
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
                    // Proxy exits have no interface (see `apply_proxies`).
                    ConnectionSettings::Proxy(_) => continue,
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
            plan.iter()
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
                .collect()
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
        }
        Ok(rows
            .into_iter()
            .map(|(row, users, health)| {
                let (state, since) =
                    health.unwrap_or_else(|| ("connecting".into(), row.created_at.clone()));
                json!({
                    "id": row.id, "name": row.name, "type": row.kind,
                    "interface": self.ifname(row.slot),
                    "mark": format!("{:#010x}", super::mark(row.slot)),
                    "table": super::table_id(row.slot),
                    "state": state, "since": since,
                    "handshake_age_seconds": ages.get(&row.id).copied().flatten(),
                    "pid": self.proxies.pid(&row.id),
                    "process": processes.remove(&row.id),
                    "peers": users,
                })
            })
            .collect())
    }

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
        let answered = match (&proxy, &target) {
            (Some(p), _) => {
                let (ok, tried) = super::proxy::driver::probe(p).await;
                target = tried;
                ok
            }
            (None, Some(target)) => probe(&ifname, target).await,
            (None, None) => false,
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

    async fn proxy_row(&self, db: &Db, id: &str) -> Option<super::proxy::driver::ProxyRow> {
        let vault = self.vault.clone();
        let read = db
            .call(move |conn| super::proxy::driver::read(conn, &vault))
            .await;
        read.ok()?.0.into_iter().find(|p| p.row.id == id)
    }

    /// One probe of every exit; records each change of health. Answers the connections whose
    /// health changed.
    pub(super) async fn probe_all(&self, db: &Db) -> Vec<String> {
        let targets = match db.call(|conn| Ok(store::list(conn)?)).await {
            Ok(rows) => rows,
            Err(_) => return Vec::new(),
        };
        let news = self.openvpn_news(db, &targets).await;
        let vault = self.vault.clone();
        let proxies = db
            .call(move |conn| super::proxy::driver::read(conn, &vault))
            .await
            .map(|read| read.0)
            .unwrap_or_default();
        let probes = targets.iter().map(|row| {
            let ifname = self.ifname(row.slot);
            let target = row.settings.dns().first().copied();
            let proxy = proxies.iter().find(|p| p.row.id == row.id);
            async move {
                if let Some(p) = proxy {
                    return super::proxy::driver::probe(p).await.0;
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
pub(super) async fn probe(ifname: &str, target: &str) -> bool {
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
    matches!(run.await, Ok(status) if status.success())
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
                let wireguard = Self::lock(&self.inner).built.len();
                let n = wireguard + self.openvpn.running().await;
                let proxies = self.proxies.count();
                let text = format!("{n} exit interfaces up, {proxies} proxy exits running");
                SubsystemStatus::ok(NAME, Some(text))
            }
        }
    }
}
