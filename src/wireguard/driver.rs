//! The WireGuard driver: makes the interface match the desired peers. The interface is the
//! kernel's where the kernel has WireGuard, else picd's own userspace one (it lives as long as
//! picd). Peers are added, changed and removed one by one, so a change to one peer never
//! disturbs the others' sessions and never rebuilds the interface.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use defguard_wireguard_rs::host::Host;

use super::device::{decide_mode, set_peer, Device, Health, Inner, Mode};
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};
use crate::vault::Vault;

pub(super) const NAME: &str = "wireguard";
const DEVICE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const DEVICE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// Consecutive failed probes before the device counts as stopped.
const DEVICE_PROBE_FAILURES: u32 = 2;

pub struct WireGuardDriver {
    ifname: String,
    mode: Result<Mode, String>,
    vault: Vault,
    db: Db,
    device: Device,
}

impl WireGuardDriver {
    pub fn new(settings: &crate::config::Settings, db: Db, vault: Vault) -> Self {
        WireGuardDriver {
            ifname: settings.wireguard_interface.clone(),
            mode: decide_mode(settings.wireguard_mode),
            vault,
            db,
            device: Device {
                ifname: settings.wireguard_interface.clone(),
                inner: Arc::new(Mutex::new(Inner {
                    api: None,
                    built_as: None,
                })),
                health: Arc::default(),
            },
        }
    }

    fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
        super::device::lock(inner)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.device.health()
    }

    /// The fast path after one peer changed: remove its old key (if it had another one) and
    /// apply its desired entry, without reading the whole interface.
    pub async fn apply_peer(&self, name: &str, old_key: Option<String>) {
        let Ok(mode) = self.mode else {
            return;
        };
        let (db, vault, device, name) = (
            self.db.clone(),
            self.vault.clone(),
            self.device.clone(),
            name.to_string(),
        );
        let desired = db
            .call(move |conn| crate::peers::store::desired_peer(conn, &vault, &name))
            .await;
        let applied = tokio::task::spawn_blocking(move || {
            let guard = Self::lock(&device.inner);
            let Some(api) = guard.api.as_ref() else {
                return Err("interface not built yet".to_string());
            };
            let api = api.get();
            let desired = desired.map_err(|e| e.to_string())?;
            let new_key = desired.as_ref().map(|p| p.public_key.to_string());
            if let Some(old) = old_key
                .filter(|old| Some(old) != new_key.as_ref())
                .and_then(|k| super::parse_key(&k))
            {
                api.remove_peer(&old).map_err(|e| e.to_string())?;
            }
            let result = match desired {
                Some(peer) => api
                    .read_interface_data()
                    .map_err(|e| e.to_string())
                    .and_then(|host| {
                        set_peer(api, mode, host.peers.get(&peer.public_key), &peer)
                            .map_err(|e| e.to_string())
                    }),
                None => Ok(()),
            };
            device.health().last_error = result.as_ref().err().cloned();
            result
        })
        .await;
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "applying a peer change; the next reconcile retries")
            }
            Err(e) => tracing::error!(error = %e, "peer change task failed"),
        }
    }

    /// Removes a deleted peer's key from the interface at once.
    pub async fn remove_key(&self, public_key: &str) {
        let Some(key) = super::parse_key(public_key) else {
            return;
        };
        let inner = Arc::clone(&self.device.inner);
        let _ = tokio::task::spawn_blocking(move || {
            let guard = Self::lock(&inner);
            if let Some(api) = guard.api.as_ref() {
                if let Err(e) = api.get().remove_peer(&key) {
                    tracing::warn!(error = %e, "removing a peer; the next reconcile retries");
                }
            }
        })
        .await;
    }

    /// The interface's live data: per peer the latest handshake, traffic and endpoint.
    pub async fn interface_data(&self) -> Result<Host, String> {
        let device = self.device.clone();
        tokio::task::spawn_blocking(move || {
            let guard = Self::lock(&device.inner);
            match guard.api.as_ref() {
                Some(api) => api.get().read_interface_data().map_err(|e| e.to_string()),
                None => Err(device
                    .health()
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "interface not built".into())),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }

    pub async fn status_summary(&self) -> SubsystemStatus {
        self.status().await
    }

    pub fn interface_name(&self) -> &str {
        &self.ifname
    }

    /// Whether picd's own userspace device still answers on its control socket. Checked
    /// without the driver's lock, with short timeouts, so a dead device cannot stall it.
    fn userspace_device_alive(&self) -> bool {
        use std::io::{Read, Write};
        let path = format!("/var/run/wireguard/{}.sock", self.ifname);
        let probe = || -> std::io::Result<bool> {
            let mut socket = std::os::unix::net::UnixStream::connect(&path)?;
            socket.set_read_timeout(Some(DEVICE_PROBE_TIMEOUT))?;
            socket.set_write_timeout(Some(DEVICE_PROBE_TIMEOUT))?;
            socket.write_all(b"get=1\n\n")?;
            let mut first = [0u8; 16];
            Ok(socket.read(&mut first)? > 0)
        };
        probe().unwrap_or(false)
    }

    /// Watches picd's userspace WireGuard device. The embedded implementation takes SIGTERM and
    /// SIGINT for itself (it blocks them and reads them from a signalfd), so a termination
    /// signal may stop the device instead of reaching picd. The device stops only on such a
    /// signal, so a device that stopped is picd's cue to stop too: returning ends picd, as the
    /// signal would have.
    pub async fn run_device_watchdog(self: Arc<Self>) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(DEVICE_PROBE_INTERVAL);
        let mut failures = 0;
        loop {
            interval.tick().await;
            // Never waits for the device's lock: a pass holds it across reads of the device,
            // which time out once the device has stopped.
            let built = self.health().built;
            let up = self.mode == Ok(Mode::Userspace) && built;
            if !up {
                failures = 0;
                continue;
            }
            let this = Arc::clone(&self);
            let alive = tokio::task::spawn_blocking(move || this.userspace_device_alive())
                .await
                .unwrap_or(false);
            failures = if alive { 0 } else { failures + 1 };
            if failures >= DEVICE_PROBE_FAILURES {
                tracing::info!(interface = %self.ifname, "the userspace WireGuard device stopped on a termination signal");
                return Ok(());
            }
        }
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Ok(Mode::Kernel) => "kernel",
            Ok(Mode::Userspace) => "userspace",
            Err(_) => "unavailable",
        }
    }
}

#[async_trait]
impl Driver for WireGuardDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        let mode = self
            .mode
            .clone()
            .map_err(|reason| DriverError::Unavailable(NAME, reason))?;
        let vault = self.vault.clone();
        let desired = db
            .call(move |conn| super::desired(conn, &vault))
            .await
            .map_err(|e| DriverError::Failed(NAME, e.to_string()))?;
        let Some(desired) = desired else {
            return Ok(());
        };
        // The interface calls block (netlink, the userspace socket), for seconds once a
        // device has stopped: a blocking thread makes them, holding no runtime thread.
        let device = self.device.clone();
        let result = tokio::task::spawn_blocking(move || {
            let result = device.apply(mode, &desired);
            // The device's lock is let go before health's is taken (never both at once).
            let built = WireGuardDriver::lock(&device.inner).api.is_some();
            let mut health = device.health();
            health.built = built;
            health.last_error = result.as_ref().err().map(ToString::to_string);
            result
        })
        .await
        .map_err(|e| DriverError::Failed(NAME, format!("the interface task failed: {e}")))?;
        result
    }

    async fn status(&self) -> SubsystemStatus {
        let reason = match &self.mode {
            Err(reason) => return SubsystemStatus::unavailable(NAME, reason.clone()),
            Ok(_) => {
                let health = self.health();
                match (health.built, &health.last_error) {
                    (_, Some(error)) => {
                        return SubsystemStatus {
                            name: NAME,
                            state: DriverState::Degraded,
                            reason: Some(error.clone()),
                        }
                    }
                    (false, None) => {
                        return SubsystemStatus::unavailable(
                            NAME,
                            "the interface is not up yet (setup pending?)",
                        )
                    }
                    (true, None) => {
                        format!("{} interface {} is up", self.mode_name(), self.ifname)
                    }
                }
            }
        };
        SubsystemStatus::ok(NAME, Some(reason))
    }
}
