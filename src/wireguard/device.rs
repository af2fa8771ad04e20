//! picd's handle on the WireGuard interface: building it, bringing its peers in line with
//! the desired ones, and the health that status and the watchdog read without touching it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use defguard_wireguard_rs::host::Host;
use defguard_wireguard_rs::key::Key;
use defguard_wireguard_rs::peer::Peer;
use defguard_wireguard_rs::{
    InterfaceConfiguration, Kernel, Userspace, WGApi, WireguardInterfaceApi,
};

use super::{Desired, DesiredPeer};
use crate::config::WireGuardMode;
use crate::driver::DriverError;

use super::driver::NAME;

pub(super) enum Api {
    Kernel(WGApi<Kernel>),
    Userspace(WGApi<Userspace>),
}

impl Api {
    pub(super) fn get(&self) -> &dyn WireguardInterfaceApi {
        match self {
            Api::Kernel(api) => api,
            Api::Userspace(api) => api,
        }
    }
}

/// How this machine can run WireGuard, decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Kernel,
    Userspace,
}

/// The interface's handle. Its lock is held across calls into the device, which can take
/// seconds once a device has stopped: only blocking threads take it.
pub(super) struct Inner {
    pub(super) api: Option<Api>,
    /// Key, port and addresses the interface was built with.
    pub(super) built_as: Option<(String, u16, Vec<String>)>,
}

/// What status and the watchdog read: behind its own lock, never held across a device call,
/// so a stalled device cannot stall the tasks that report on it.
#[derive(Default)]
pub(super) struct Health {
    pub(super) built: bool,
    pub(super) last_error: Option<String>,
}

/// The interface and its health, cloned into the blocking threads that drive it.
#[derive(Clone)]
pub(super) struct Device {
    pub(super) ifname: String,
    pub(super) inner: Arc<Mutex<Inner>>,
    pub(super) health: Arc<Mutex<Health>>,
}

pub(super) fn decide_mode(setting: WireGuardMode) -> Result<Mode, String> {
    if setting == WireGuardMode::Off {
        return Err("WireGuard is turned off in the settings (wireguard_mode = off)".into());
    }
    if !crate::health::probes::has_net_admin() {
        return Err("picd lacks CAP_NET_ADMIN, so it cannot manage a WireGuard interface".into());
    }
    let kernel = Path::new("/sys/module/wireguard").exists();
    let tun = Path::new("/dev/net/tun").exists();
    match setting {
        WireGuardMode::Kernel if kernel => Ok(Mode::Kernel),
        WireGuardMode::Kernel => {
            Err("wireguard_mode = kernel but the kernel has no WireGuard module".into())
        }
        WireGuardMode::Userspace if tun => Ok(Mode::Userspace),
        WireGuardMode::Auto if kernel => Ok(Mode::Kernel),
        WireGuardMode::Auto | WireGuardMode::Userspace if tun => Ok(Mode::Userspace),
        _ => Err("neither the kernel's WireGuard module nor /dev/net/tun is available".into()),
    }
}

fn to_peer(desired: &DesiredPeer) -> Peer {
    let mut peer = Peer::new(desired.public_key.clone());
    peer.preshared_key = desired.preshared_key.clone();
    peer.allowed_ips = desired.allowed_ips.clone();
    peer
}

/// Whether the interface's peer already matches what is desired.
fn matches(current: &Peer, desired: &DesiredPeer) -> bool {
    let mut a: Vec<String> = current
        .allowed_ips
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    let mut b: Vec<String> = desired
        .allowed_ips
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    a.sort();
    b.sort();
    a == b && current.preshared_key == desired.preshared_key
}

/// Adds `desired` to the interface, or brings the entry there (`current`) in line with it.
/// The userspace device cannot change a peer in place (boringtun asserts on it, which would
/// take the interface's configuration thread down), so a changed peer is removed and added
/// again there; the kernel changes it in place and keeps its session.
pub(super) fn set_peer(
    api: &dyn WireguardInterfaceApi,
    mode: Mode,
    current: Option<&Peer>,
    desired: &DesiredPeer,
) -> Result<(), defguard_wireguard_rs::error::WireguardInterfaceError> {
    match current {
        Some(current) if matches(current, desired) => return Ok(()),
        Some(_) if mode == Mode::Userspace => api.remove_peer(&desired.public_key)?,
        _ => {}
    }
    api.configure_peer(&to_peer(desired))
}

pub(super) fn wg_error(e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(NAME, e.to_string())
}

impl Device {
    pub(super) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Builds the interface (or rebuilds it when the cell's key, port or addresses changed).
    fn build(&self, inner: &mut Inner, mode: Mode, desired: &Desired) -> Result<(), DriverError> {
        if let Some(api) = inner.api.take() {
            // Only reached when the cell's own key, port or subnets changed.
            if let Err(e) = api.get().remove_interface() {
                tracing::debug!(error = %e, "removing the old interface (DNS clean-up errors are harmless)");
            }
        }
        let mut api = match mode {
            Mode::Kernel => {
                Api::Kernel(WGApi::<Kernel>::new(self.ifname.clone()).map_err(wg_error)?)
            }
            Mode::Userspace => {
                Api::Userspace(WGApi::<Userspace>::new(self.ifname.clone()).map_err(wg_error)?)
            }
        };
        match &mut api {
            Api::Kernel(a) => a.create_interface().map_err(wg_error)?,
            Api::Userspace(a) => a.create_interface().map_err(wg_error)?,
        }
        let config = InterfaceConfiguration {
            name: self.ifname.clone(),
            prvkey: desired.private_key.to_string(),
            addresses: desired.addresses.clone(),
            port: desired.port,
            peers: desired.peers.iter().map(to_peer).collect(),
            mtu: None,
            fwmark: None,
        };
        api.get().configure_interface(&config).map_err(wg_error)?;
        inner.api = Some(api);
        inner.built_as = Some(desired.interface_identity());
        tracing::info!(interface = %self.ifname, peers = desired.peers.len(), "WireGuard interface up");
        Ok(())
    }

    /// Applies the desired state; runs on a blocking thread.
    pub(super) fn apply(&self, mode: Mode, desired: &Desired) -> Result<(), DriverError> {
        let mut inner = lock(&self.inner);
        if inner.api.is_none() || inner.built_as.as_ref() != Some(&desired.interface_identity()) {
            return self.build(&mut inner, mode, desired);
        }
        let api = inner.api.as_ref().expect("checked above").get();
        let host: Host = api.read_interface_data().map_err(wg_error)?;
        let wanted: HashMap<&Key, &DesiredPeer> =
            desired.peers.iter().map(|p| (&p.public_key, p)).collect();
        for key in host.peers.keys() {
            if !wanted.contains_key(key) {
                api.remove_peer(key).map_err(wg_error)?;
            }
        }
        for peer in &desired.peers {
            set_peer(api, mode, host.peers.get(&peer.public_key), peer).map_err(wg_error)?;
        }
        Ok(())
    }
}

/// The interface's lock, taken on blocking threads only (see `Inner`).
pub(super) fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}
