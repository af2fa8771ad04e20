//! The service catalog, compiled into picd: trusting the catalog is trusting the package.
//! Each manifest says what the service is, how its image is built from Debian packages, where
//! it listens, what it may do, and how accounts are provisioned.

use serde::Serialize;

/// How a service's image comes to the engine.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// Built here from Debian packages on a Debian base (no registry needed).
    DebianPackages {
        suite: &'static str,
        packages: &'static [&'static str],
    },
}

/// What an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Served to the world through Caddy at `<subdomain>.<cell domain>`.
    Http,
    /// IMAP without TLS: picd's own health check and login probe, on loopback only.
    Imap,
    /// A mail client's IMAP over implicit TLS (RFC 8314).
    Imaps,
    /// A mail client's SMTP submission (RFC 6409), STARTTLS before any login.
    Submission,
    /// Delivery into the mailboxes by a mail transfer agent on this machine; no client's.
    Lmtp,
}

impl Protocol {
    /// Whether a person's client connects to this endpoint's own port (HTTP goes through
    /// Caddy's, plain IMAP is picd's probe, LMTP is for the mail transfer agent).
    pub fn for_clients(self) -> bool {
        matches!(self, Protocol::Imaps | Protocol::Submission)
    }

    /// How a client's connection is encrypted (shown with the credentials).
    pub fn tls(self) -> Option<&'static str> {
        match self {
            Protocol::Imaps => Some("implicit"),
            Protocol::Submission => Some("starttls"),
            Protocol::Http | Protocol::Imap | Protocol::Lmtp => None,
        }
    }

    /// The URL scheme a client's settings name the endpoint by.
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Submission => "smtp",
            Protocol::Lmtp => "lmtp",
        }
    }
}

/// Who may reach an endpoint. Loopback is only this machine (Caddy, picd, the service
/// itself); peers is loopback and the cell's WireGuard addresses, the firewall dropping the
/// port on every other interface; world listens everywhere and the firewall leaves it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exposure {
    Loopback,
    Peers,
    // No catalog service faces the world yet; listening and the firewall already handle it.
    #[allow(dead_code)]
    World,
}

/// A TCP endpoint of the service: picd allocates it a port at install (kept in
/// `service_ports`), checked against every other service's, and writes it into the config
/// templates as `{{<name>_port}}`, and the addresses it listens on as `{{<name>_addresses}}`.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    /// Never renamed: port rows and templates are keyed by it.
    pub name: &'static str,
    pub protocol: Protocol,
    pub exposure: Exposure,
    /// The port clients expect (993, 587), taken when nothing else holds it; otherwise, and
    /// for endpoints without one, a port of picd's range.
    pub standard_port: Option<u16>,
}

impl Endpoint {
    /// An endpoint on loopback only, on a port of picd's range.
    pub const fn loopback(name: &'static str, protocol: Protocol) -> Endpoint {
        Endpoint {
            name,
            protocol,
            exposure: Exposure::Loopback,
            standard_port: None,
        }
    }
}

/// How picd knows the service is up.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HealthCheck {
    /// `GET /` without credentials on the endpoint answers this status.
    HttpStatus { endpoint: &'static str, status: u16 },
    /// The first thing the endpoint sends starts with this (a line-based protocol's greeting).
    Greeting {
        endpoint: &'static str,
        starts_with: &'static str,
    },
}

/// A directory of the service's data, kept across removes unless purged.
#[derive(Debug, Serialize)]
pub struct Volume {
    pub name: &'static str,
    pub mount: &'static str,
    /// Whether the service may create entries at the volume's top. Dovecot may not: picd makes
    /// each account's folder, so a session of a gone account cannot make it anew once archived.
    pub service_writes_root: bool,
}

/// A config file picd writes from a template (`{{<endpoint>_port}}` is replaced by the port
/// picd allocated to the endpoint) into the service's config folder, which is mounted
/// read-only as a whole at the manifest's `config_mount`: a folder, never single files, so a
/// file picd replaces by rename is the one the server reads (a single-file bind mount keeps
/// the old inode).
#[derive(Debug, Serialize)]
pub struct ConfigFile {
    pub name: &'static str,
    #[serde(skip)]
    pub template: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Resources {
    pub memory_bytes: i64,
    pub pids: i64,
}

/// What the container may do. Every service runs with a read-only root, no-new-privileges and
/// every capability dropped except those listed.
#[derive(Debug, Serialize)]
pub struct Security {
    pub user: &'static str,
    /// Who owns the data folders picd makes (the service's user, or the unprivileged user a
    /// root-started server switches to).
    pub data_owner: &'static str,
    pub capabilities: &'static [&'static str],
    /// Writable scratch directories (tmpfs) on the read-only root.
    pub tmpfs: &'static [&'static str],
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountMechanism {
    /// One line per account (sha512-crypt or apr1: the passwords are random, so a slow hash
    /// would only slow every request) in a file of the config folder that the server re-reads
    /// (nginx and Radicale on every request, Dovecot within about a second).
    PasswdFile {
        /// The file's name in the config folder.
        file: &'static str,
        /// How a line says the account's name and hash.
        line: LineFormat,
        /// The hash scheme the server reads.
        hash: HashScheme,
        /// Where each account has a folder of its own, named after it: a path under the
        /// service's volumes folder, starting with a volume's name.
        folder_in: &'static str,
    },
}

/// The line of one account in the account file.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// `user:hash` (nginx's auth_basic_user_file, Radicale's htpasswd).
    Htpasswd,
    /// `user:{SCHEME}hash` (Dovecot's passwd-file: the scheme is named in the line, so the
    /// file stays readable whatever the passdb's default scheme).
    DovecotPasswd,
}

impl LineFormat {
    pub fn line(self, username: &str, scheme: HashScheme, hash: &str) -> String {
        match self {
            LineFormat::Htpasswd => format!("{username}:{hash}\n"),
            LineFormat::DovecotPasswd => {
                format!("{username}:{{{}}}{hash}\n", scheme.dovecot_name())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashScheme {
    /// `$6$` sha512-crypt (nginx through libcrypt, Dovecot's SHA512-CRYPT).
    Sha512Crypt,
    /// `$apr1$` (Radicale 3.1.8's "md5").
    Apr1,
}

impl HashScheme {
    /// The scheme's name in a Dovecot passwd-file line. Dovecot has no apr1: the catalog's
    /// tests keep `Apr1` out of Dovecot's lines.
    pub fn dovecot_name(self) -> &'static str {
        match self {
            HashScheme::Sha512Crypt => "SHA512-CRYPT",
            HashScheme::Apr1 => "APR1-UNSUPPORTED",
        }
    }
}

/// How picd knows the service accepts a new account: a login with its credentials.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountProbe {
    /// An HTTP request with basic credentials.
    Http {
        endpoint: &'static str,
        method: &'static str,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
        /// The status an accepted login gets.
        expect: u16,
    },
    /// The greeting, then `a LOGIN user password`: accepted when the server says `a OK`.
    ImapLogin { endpoint: &'static str },
}

/// What a person needs to set up a client, shown with their credentials. In `setup`,
/// `<host>` becomes the service's host name and `<NAME_port>` the endpoint's port.
#[derive(Debug, Serialize)]
pub struct ClientHints {
    pub protocol: &'static str,
    pub setup: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    /// Never renamed: rows, labels, volumes and routes are keyed by it.
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Upstream version and picd's packaging revision.
    pub version: &'static str,
    pub image: ImageSource,
    pub entrypoint: &'static [&'static str],
    /// `<subdomain>.<cell domain>`: published in the cell's DNS for the peers, and Caddy's
    /// host for the service's HTTP endpoint if it has one.
    pub subdomain: &'static str,
    /// Each gets a loopback port; the first `Http` one is what Caddy routes the host to.
    pub endpoints: &'static [Endpoint],
    /// Every check must pass for the service to be healthy (a container of two servers
    /// checks each).
    pub health: &'static [HealthCheck],
    pub volumes: &'static [Volume],
    pub config: &'static [ConfigFile],
    /// Where the config folder is mounted (read-only) in the container.
    pub config_mount: &'static str,
    pub env: &'static [(&'static str, &'static str)],
    pub resources: Resources,
    pub security: Security,
    pub accounts: AccountMechanism,
    /// Run in the container (as its user) for each account that is gone, `{user}` replaced,
    /// before its folder is archived: ends the sessions it still holds. Empty where every
    /// request is checked on its own (HTTP basic auth); an IMAP client's connection would
    /// otherwise stay open for hours.
    pub on_account_gone: &'static [&'static str],
    /// Run in the running container (as its user), each to its end, when picd rewrote one of
    /// its config templates while the container's spec stayed the same (a picd upgrade that
    /// changed a template): the servers re-read their config without a restart.
    pub on_config_changed: &'static [&'static [&'static str]],
    pub account_probe: AccountProbe,
    pub client: ClientHints,
    pub backup_paths: &'static [&'static str],
}

impl Manifest {
    /// Whether the service may write at the top of the volume holding `folder`, a path under
    /// the volumes folder that starts with a volume's name.
    pub fn writes_root_of(&self, folder: &str) -> bool {
        let volume = self.volumes.iter().find(|v| v.name == folder);
        volume.is_none_or(|v| v.service_writes_root)
    }

    /// The endpoint Caddy serves at the service's host, if the service speaks HTTP.
    pub fn routed_endpoint(&self) -> Option<&'static Endpoint> {
        let endpoints: &'static [Endpoint] = self.endpoints;
        endpoints.iter().find(|e| e.protocol == Protocol::Http)
    }

    /// Whether a client endpoint speaks TLS itself, so the service needs a certificate for
    /// its host from the cell's CA.
    pub fn needs_certificate(&self) -> bool {
        self.endpoints.iter().any(|e| e.protocol.tls().is_some())
    }
}

pub use super::manifests::{CALENDAR, FILES, MAIL};

/// Every service of the store, in the order the store page lists them.
pub const CATALOG: &[&Manifest] = &[&FILES, &CALENDAR, &MAIL];

pub fn find(id: &str) -> Option<&'static Manifest> {
    CATALOG.iter().copied().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manifest_names_only_its_own_endpoints_and_hashes_its_server_reads() {
        for manifest in CATALOG {
            let names: Vec<&str> = manifest.endpoints.iter().map(|e| e.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{}: {names:?}", manifest.id);
            assert!(
                !manifest.health.is_empty(),
                "{}: no health check",
                manifest.id
            );
            let mut used: Vec<&str> = manifest
                .health
                .iter()
                .map(|check| match check {
                    HealthCheck::HttpStatus { endpoint, .. } => *endpoint,
                    HealthCheck::Greeting { endpoint, .. } => *endpoint,
                })
                .collect();
            used.push(match manifest.account_probe {
                AccountProbe::Http { endpoint, .. } => endpoint,
                AccountProbe::ImapLogin { endpoint } => endpoint,
            });
            for used in used {
                assert!(names.contains(&used), "{}: {used}", manifest.id);
            }
            let AccountMechanism::PasswdFile { line, hash, .. } = manifest.accounts;
            if let LineFormat::DovecotPasswd = line {
                assert!(matches!(hash, HashScheme::Sha512Crypt), "{}", manifest.id);
            }
        }
    }

    #[test]
    fn a_dovecot_line_names_its_scheme_and_an_htpasswd_line_does_not() {
        let scheme = HashScheme::Sha512Crypt;
        assert_eq!(
            LineFormat::DovecotPasswd.line("alice", scheme, "$6$s$h"),
            "alice:{SHA512-CRYPT}$6$s$h\n"
        );
        assert_eq!(
            LineFormat::Htpasswd.line("alice", scheme, "$6$s$h"),
            "alice:$6$s$h\n"
        );
    }
}
