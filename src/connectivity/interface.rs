//! An exit's WireGuard interface, built with the same crate as the cell's own interface: the
//! kernel's WireGuard where the kernel has it, else userspace WireGuard inside picd. Built
//! with the provider's keys, addresses and one peer, and no routes: the exit's routes live
//! only in its own table (wg-quick's `Table = off`).

use std::net::{SocketAddr, ToSocketAddrs};

use defguard_wireguard_rs::net::IpAddrMask;
use defguard_wireguard_rs::peer::Peer;
use defguard_wireguard_rs::{
    InterfaceConfiguration, Kernel, Userspace, WGApi, WireguardInterfaceApi,
};
use sha2::{Digest, Sha256};

use super::wgquick::{Secrets, Settings};

pub enum ExitApi {
    Kernel(WGApi<Kernel>),
    Userspace(WGApi<Userspace>),
}

impl ExitApi {
    pub fn get(&self) -> &dyn WireguardInterfaceApi {
        match self {
            ExitApi::Kernel(api) => api,
            ExitApi::Userspace(api) => api,
        }
    }
}

/// A fingerprint of everything the interface is built from (keys included, so a new key means
/// a rebuild); only the hash is kept.
pub fn identity(ifname: &str, settings: &Settings, secrets: &Secrets) -> String {
    let mut hash = Sha256::new();
    hash.update(ifname.as_bytes());
    hash.update(
        serde_json::to_string(settings)
            .unwrap_or_default()
            .as_bytes(),
    );
    hash.update(secrets.private_key.as_bytes());
    if let Some(psk) = &secrets.preshared_key {
        hash.update(psk.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Whether the kernel has WireGuard (else userspace, which needs /dev/net/tun).
pub fn kernel_mode(setting: crate::config::WireGuardMode) -> Result<bool, String> {
    use crate::config::WireGuardMode;
    let kernel = std::path::Path::new("/sys/module/wireguard").exists();
    let tun = std::path::Path::new("/dev/net/tun").exists();
    match setting {
        WireGuardMode::Off => Err("WireGuard is turned off (wireguard_mode = off)".into()),
        WireGuardMode::Kernel if kernel => Ok(true),
        WireGuardMode::Auto if kernel => Ok(true),
        WireGuardMode::Auto | WireGuardMode::Userspace if tun => Ok(false),
        _ => Err("neither the kernel's WireGuard module nor /dev/net/tun is available".into()),
    }
}

/// The endpoint as an address: a host name is resolved here (through the cell's own, direct,
/// resolver path) and the address pinned until the next build.
fn resolve(endpoint: &str) -> Result<SocketAddr, String> {
    endpoint
        .to_socket_addrs()
        .map_err(|e| format!("resolving the endpoint: {e}"))?
        .next()
        .ok_or_else(|| "the endpoint has no address".into())
}

fn mask(net: &ipnet::IpNet) -> IpAddrMask {
    IpAddrMask::new(net.addr(), net.prefix_len())
}

/// Creates and configures the interface; Err says what failed.
pub fn build(
    ifname: &str,
    kernel: bool,
    settings: &Settings,
    secrets: &Secrets,
) -> Result<ExitApi, String> {
    let text = |e: defguard_wireguard_rs::error::WireguardInterfaceError| e.to_string();
    let public_key = crate::wireguard::parse_key(&settings.peer_public_key)
        .ok_or("the provider's public key is unreadable")?;
    let mut peer = Peer::new(public_key);
    peer.preshared_key = secrets
        .preshared_key
        .as_deref()
        .and_then(|k| crate::wireguard::parse_key(k));
    peer.endpoint = Some(resolve(&settings.endpoint)?);
    peer.persistent_keepalive_interval = settings.persistent_keepalive;
    peer.allowed_ips = settings.allowed_ips.iter().map(mask).collect();
    let mut api = match kernel {
        true => ExitApi::Kernel(WGApi::<Kernel>::new(ifname.to_string()).map_err(text)?),
        false => ExitApi::Userspace(WGApi::<Userspace>::new(ifname.to_string()).map_err(text)?),
    };
    // One left from an earlier picd (a kernel interface outlives the process) is rebuilt.
    if std::path::Path::new("/sys/class/net").join(ifname).exists() {
        let _ = api.get().remove_interface();
    }
    match &mut api {
        ExitApi::Kernel(a) => a.create_interface().map_err(text)?,
        ExitApi::Userspace(a) => a.create_interface().map_err(text)?,
    }
    let config = InterfaceConfiguration {
        name: ifname.to_string(),
        prvkey: secrets.private_key.to_string(),
        addresses: settings.addresses.iter().map(mask).collect(),
        port: 0,
        peers: vec![peer],
        mtu: settings.mtu,
        fwmark: None,
    };
    if let Err(e) = api.get().configure_interface(&config) {
        let _ = api.get().remove_interface();
        return Err(e.to_string());
    }
    Ok(api)
}

/// The provider's latest handshake, as seconds ago (None: never, or unreadable).
pub fn handshake_age(api: &ExitApi) -> Option<u64> {
    let host = api.get().read_interface_data().ok()?;
    let peer = host.peers.values().next()?;
    let at = peer.last_handshake?;
    let age = std::time::SystemTime::now().duration_since(at).ok()?;
    // An all-zero time means "no handshake yet".
    (at > std::time::UNIX_EPOCH).then_some(age.as_secs())
}
