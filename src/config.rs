//! picd's own settings, in layers, each key taken from the highest that sets it: the
//! command-line flags, a `PICD_<KEY>` environment variable, the owner's file
//! (`/etc/picd/picd.toml`), the package's defaults file (`--defaults`, the Debian package's
//! `/usr/share/picd/package.toml`), and the defaults built in. (The cell's settings, set by
//! the wizard, live in the database and are served by /api/config.)
//!
//! The package's defaults are not in the owner's file because that one is a conffile: an
//! owner who edited it keeps their copy on upgrade, without whatever keys the package added
//! since. The package's own file is replaced on every upgrade, so those keys always arrive,
//! and an owner's edit of the same key still wins.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

pub mod image_reference;
pub use image_reference::PinnedImage;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/picd/picd.toml";
/// `--dev` keeps state here, relative to the working directory.
pub const DEV_STATE_DIR: &str = "picd-state";
/// The longest path a unix socket can be bound at (sun_path holds 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieSecure {
    /// Secure when the request came over https (as Caddy reports it on `listen_socket`).
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address of the HTTP API and UI. picd is meant to be reached through Caddy only.
    pub listen: SocketAddr,
    /// A unix socket picd also serves HTTP on, for Caddy (empty: none). Only connections on
    /// it may speak for a client through X-Forwarded-For / X-Forwarded-Proto.
    pub listen_socket: PathBuf,
    /// Where the database and the vault live.
    pub state_dir: PathBuf,
    /// tracing filter, e.g. `info` or `picd=debug,info`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// A session ends after this long without a request.
    pub session_idle_minutes: u32,
    /// A session ends this long after login, however active.
    pub session_absolute_hours: u32,
    pub cookie_secure: CookieSecure,
    /// Proxies in front of Caddy: on `listen_socket`, X-Forwarded-For entries with these
    /// addresses are skipped when looking for the client (on TCP the headers never count).
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed logins for one username within a minute before 429.
    pub login_failures_per_user: usize,
    /// Failed logins from one client address within a minute before 429.
    pub login_failures_per_address: usize,
    /// Caddy's admin API: `unix//PATH` (a socket), or host:port on loopback.
    pub caddy_admin: String,
    /// Where picd writes the certificate and key files Caddy loads in internal TLS mode
    /// (empty: `caddy-tls` in the state directory). Caddy must be able to read it.
    pub caddy_tls_dir: PathBuf,
    /// The Docker engine's socket.
    pub docker_socket: PathBuf,
    /// Where built service root filesystems are cached by recipe hash (empty:
    /// `image-cache` in the state directory).
    pub services_image_cache: PathBuf,
    /// The Debian mirror service images are built from (empty: the first of apt's sources).
    pub debian_mirror: String,
    /// The program picd runs for each tor exit (and asks to `--verify-config` its torrc).
    pub tor_command: String,
    /// Seconds between health checks recorded for /api/health/history.
    pub health_interval_seconds: u64,
    /// The WireGuard interface picd manages.
    pub wireguard_interface: String,
    /// `auto` (kernel WireGuard when the kernel has it, else picd's own userspace
    /// implementation), `kernel`, `userspace`, or `off`.
    pub wireguard_mode: WireGuardMode,
    /// `apply`: picd owns the nftables table `inet picd` and keeps it as the routing API
    /// says; `off`: desired state is recorded only (a host whose firewall is someone else's).
    pub routing_mode: RoutingMode,
    /// Addresses the DNS server listens on (UDP and TCP); an empty list turns it off.
    pub dns_listen: Vec<SocketAddr>,
    /// Where Caddy serves the cell over https (and http, for redirects and ACME).
    pub caddy_https_listen: String,
    pub caddy_http_listen: String,
    /// Seconds between full reconciles of every driver (also retires expired peers).
    pub reconcile_interval_seconds: u64,
    /// Response-rate limiting of the world's UDP answers: per /24 (IPv4) or /56 (IPv6) and
    /// kind of answer, at most this many a second (0 turns it off) ...
    pub dns_rrl_responses_per_second: u32,
    /// ... with this many seconds of debt remembered (a flood keeps being limited after it
    /// pauses), and every this-many-th limited answer sent truncated (0: all dropped).
    pub dns_rrl_window_seconds: u32,
    pub dns_rrl_slip: u32,
    /// Forwarded questions waiting for an upstream at once; past it, SERVFAIL.
    pub dns_forward_max_in_flight: u32,
    /// TCP connections at once, in all and from one address.
    pub dns_tcp_max_clients: u32,
    pub dns_tcp_max_clients_per_address: u32,
    /// The longest a DNS TCP connection lives, however active: a client asking every few
    /// seconds would otherwise keep its slot forever.
    pub dns_tcp_lifetime_seconds: u32,
    /// Hours between consistent snapshots of the database in `backups/` (0: none).
    pub snapshot_interval_hours: u64,
    /// Caps on DNS data, each refused with `limit_exceeded` naming it: records in one zone,
    /// records in one import, operations in one bulk request, bytes of an import body.
    pub dns_max_records_per_zone: usize,
    pub dns_max_import_records: usize,
    pub dns_max_bulk_operations: usize,
    pub dns_max_import_bytes: usize,
    /// Catalog services whose image is pulled from a registry instead of built here: service
    /// id to a reference pinned by `@sha256:` digest (`PICD_SERVICE_IMAGES`:
    /// `files=REF,mail=REF`). Last: a table must follow the plain keys in TOML.
    pub service_images: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireGuardMode {
    Auto,
    Kernel,
    Userspace,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutingMode {
    Apply,
    Off,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            listen_socket: PathBuf::new(),
            state_dir: PathBuf::from("/var/lib/picd"),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: 64 * 1024,
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            cookie_secure: CookieSecure::Auto,
            trusted_proxies: Vec::new(),
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            caddy_admin: "127.0.0.1:2019".into(),
            caddy_tls_dir: PathBuf::new(),
            docker_socket: PathBuf::from("/var/run/docker.sock"),
            services_image_cache: PathBuf::new(),
            debian_mirror: String::new(),
            tor_command: "tor".into(),
            health_interval_seconds: 30,
            wireguard_interface: "picd0".into(),
            wireguard_mode: WireGuardMode::Auto,
            routing_mode: RoutingMode::Apply,
            reconcile_interval_seconds: 60,
            snapshot_interval_hours: 24,
            dns_listen: vec!["[::]:53".parse().expect("literal")],
            caddy_https_listen: ":443".into(),
            caddy_http_listen: ":80".into(),
            dns_rrl_responses_per_second: 20,
            dns_rrl_window_seconds: 15,
            dns_rrl_slip: 2,
            dns_forward_max_in_flight: 512,
            dns_tcp_max_clients: 256,
            dns_tcp_max_clients_per_address: 16,
            dns_tcp_lifetime_seconds: 120,
            dns_max_records_per_zone: 250_000,
            dns_max_import_records: 100_000,
            dns_max_bulk_operations: 100,
            dns_max_import_bytes: 16 * 1024 * 1024,
            service_images: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// The built-in defaults, then the package's defaults file (`defaults`, required when
    /// given), then the owner's file (required when `path` is given, else read only if
    /// present at /etc/picd/picd.toml), then the environment.
    pub fn load(defaults: Option<&Path>, path: Option<&Path>) -> anyhow::Result<Settings> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut table = toml::Table::try_from(Settings::default())?;
        if let Some(defaults) = defaults {
            let text = std::fs::read_to_string(defaults)
                .with_context(|| format!("reading {}", defaults.display()))?;
            overlay(&mut table, &text, defaults)?;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => overlay(&mut table, &text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        apply_env(&mut table, |k| std::env::var(k).ok())?;
        let settings: Settings = table.try_into().context("invalid settings")?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.body_limit_bytes < 1024 {
            bail!("body_limit_bytes must be at least 1024");
        }
        if [
            self.dns_max_records_per_zone,
            self.dns_max_import_records,
            self.dns_max_bulk_operations,
            self.dns_max_import_bytes,
        ]
        .contains(&0)
        {
            bail!("the dns_max_* caps must be at least 1");
        }
        if self.tor_command.trim().is_empty() {
            bail!("tor_command must name a program");
        }
        if self.session_idle_minutes == 0 || self.session_absolute_hours == 0 {
            bail!("session lifetimes must be positive");
        }
        let ifname = &self.wireguard_interface;
        let ifname_ok = (1..=15).contains(&ifname.len())
            && ifname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ifname_ok {
            bail!("wireguard_interface must be 1 to 15 of letters, digits, '_', '-', '.'");
        }
        if self.dns_forward_max_in_flight == 0
            || self.dns_tcp_max_clients == 0
            || self.dns_tcp_max_clients_per_address == 0
        {
            bail!("dns_forward_max_in_flight and the dns_tcp_max_clients bounds must be positive");
        }
        if self.dns_tcp_lifetime_seconds == 0 || self.dns_tcp_lifetime_seconds > 3600 {
            bail!("dns_tcp_lifetime_seconds must be 1 to 3600");
        }
        if self.dns_rrl_window_seconds == 0 || self.dns_rrl_window_seconds > 3600 {
            bail!("dns_rrl_window_seconds must be 1 to 3600");
        }
        if self.login_failures_per_user == 0 || self.login_failures_per_address == 0 {
            bail!("login failure bounds must be positive");
        }
        self.pinned_images()?;
        if let Some(socket) = self.listen_socket() {
            // Caddy dials it from its own working directory, and the kernel takes at most
            // 107 bytes for a socket's path.
            if !socket.is_absolute() || socket.as_os_str().len() > MAX_SOCKET_PATH {
                bail!("listen_socket must be an absolute path of at most {MAX_SOCKET_PATH} bytes");
            }
        }
        Ok(())
    }

    /// The unix socket to serve on, if any.
    pub fn listen_socket(&self) -> Option<&Path> {
        (!self.listen_socket.as_os_str().is_empty()).then_some(self.listen_socket.as_path())
    }

    /// Where the certificate and key files for Caddy go.
    pub fn caddy_tls_dir(&self) -> PathBuf {
        if self.caddy_tls_dir.as_os_str().is_empty() {
            self.state_dir.join("caddy-tls")
        } else {
            self.caddy_tls_dir.clone()
        }
    }

    /// Where built service root filesystems are cached.
    pub fn services_image_cache(&self) -> PathBuf {
        if self.services_image_cache.as_os_str().is_empty() {
            self.state_dir.join("image-cache")
        } else {
            self.services_image_cache.clone()
        }
    }

    /// The `service_images` references, parsed: a reference that is not pinned by digest, or
    /// not in the registries' grammar, is an error naming the setting and the service.
    pub fn pinned_images(&self) -> anyhow::Result<BTreeMap<String, PinnedImage>> {
        self.service_images
            .iter()
            .map(|(service, reference)| match PinnedImage::parse(reference) {
                Ok(pinned) => Ok((service.clone(), pinned)),
                Err(e) => bail!("service_images.{service}: {e}"),
            })
            .collect()
    }

    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("picd.db")
    }
}

/// Every key the file `origin` sets replaces the one in `table`; a key picd does not know is
/// refused, naming the file (a typo would otherwise be a setting silently not applied).
fn overlay(table: &mut toml::Table, text: &str, origin: &Path) -> anyhow::Result<()> {
    let file: toml::Table =
        toml::from_str(text).with_context(|| format!("reading {}", origin.display()))?;
    for (key, value) in file {
        if !table.contains_key(&key) {
            bail!("{}: unknown key `{key}`", origin.display());
        }
        table.insert(key, value);
    }
    Ok(())
}

/// `PICD_<KEY>` overrides `<key>`; the value is read as the key's type (lists are
/// comma-separated, tables comma-separated `name=value` pairs).
fn apply_env(table: &mut toml::Table, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    for (key, value) in table.iter_mut() {
        let name = format!("PICD_{}", key.to_uppercase());
        let Some(raw) = var(&name) else { continue };
        *value = match value {
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .with_context(|| format!("{name} must be a whole number"))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(
                raw.trim()
                    .parse()
                    .with_context(|| format!("{name} must be true or false"))?,
            ),
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            toml::Value::Table(_) => toml::Value::Table(env_table(&name, &raw)?),
            _ => toml::Value::String(raw),
        };
    }
    Ok(())
}

/// `name=value,name=value` as a table of strings.
fn env_table(name: &str, raw: &str) -> anyhow::Result<toml::Table> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((
                key.trim().to_string(),
                toml::Value::String(value.trim().to_string()),
            )),
            _ => bail!("{name} must be comma-separated NAME=VALUE pairs"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
