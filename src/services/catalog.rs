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

/// An HTTP endpoint published through Caddy at `<subdomain>.<cell domain>`.
#[derive(Debug, Serialize)]
pub struct HttpEndpoint {
    pub subdomain: &'static str,
    /// Status the health probe expects from `GET /` without credentials.
    pub health_status: u16,
}

/// A directory of the service's data, kept across removes unless purged.
#[derive(Debug, Serialize)]
pub struct Volume {
    pub name: &'static str,
    pub mount: &'static str,
}

/// A config file picd writes from a template (`{{http_port}}` is replaced by the port picd
/// allocated) into the service's config folder, which is mounted read-only as a whole at the
/// manifest's `config_mount`: a folder, never single files, so a file picd replaces by rename
/// is the one the server reads (a single-file bind mount keeps the old inode).
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
    pub capabilities: &'static [&'static str],
    /// Writable scratch directories (tmpfs) on the read-only root.
    pub tmpfs: &'static [&'static str],
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountMechanism {
    /// One `user:hash` line per account (sha512-crypt: the passwords are random, so a slow
    /// hash would only slow every request) in a file of the config folder that the server
    /// re-reads on every request.
    Htpasswd {
        /// The file's name in the config folder.
        file: &'static str,
        /// The hash scheme the server reads.
        hash: HashScheme,
        /// Where each account has a folder of its own, named after it: a path under the
        /// service's volumes folder, starting with a volume's name.
        folder_in: &'static str,
    },
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashScheme {
    /// `$6$` sha512-crypt (nginx through libcrypt, Dovecot's SHA512-CRYPT).
    Sha512Crypt,
    /// `$apr1$` (Radicale 3.1.8's "md5").
    Apr1,
}

/// How picd knows the service accepts a new account: a request with its credentials.
#[derive(Debug, Serialize)]
pub struct AccountProbe {
    pub method: &'static str,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    /// The status an accepted login gets.
    pub expect: u16,
}

/// What a person needs to set up a client, shown with their credentials.
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
    pub http: HttpEndpoint,
    pub volumes: &'static [Volume],
    pub config: &'static [ConfigFile],
    /// Where the config folder is mounted (read-only) in the container.
    pub config_mount: &'static str,
    pub env: &'static [(&'static str, &'static str)],
    pub resources: Resources,
    pub security: Security,
    pub accounts: AccountMechanism,
    pub account_probe: AccountProbe,
    pub client: ClientHints,
    pub backup_paths: &'static [&'static str],
}

/// WebDAV with nginx and the dav-ext module: each account sees only its own folder
/// (`root /srv/dav/$remote_user`), accounts are htpasswd lines re-read per request.
pub const FILES: Manifest = Manifest {
    id: "files",
    name: "Files",
    description: "WebDAV file storage: a private folder for every person of the cell",
    version: "1.22.1-deb12+picd1",
    image: ImageSource::DebianPackages {
        suite: "bookworm",
        packages: &["nginx", "libnginx-mod-http-dav-ext"],
    },
    entrypoint: &["/usr/sbin/nginx", "-c", "/etc/picd-files/nginx.conf"],
    http: HttpEndpoint {
        subdomain: "files",
        health_status: 401,
    },
    volumes: &[Volume {
        name: "data",
        mount: "/srv/dav",
    }],
    config: &[
        ConfigFile {
            name: "nginx.conf",
            template: include_str!("files/nginx.conf"),
        },
        ConfigFile {
            name: "users",
            template: "",
        },
    ],
    config_mount: "/etc/picd-files",
    env: &[],
    resources: Resources {
        memory_bytes: 64 * 1024 * 1024,
        pids: 64,
    },
    // www-data (33): nginx runs unprivileged as a whole, so it needs no capability at all
    // (its port is above 1024 and it never switches user).
    security: Security {
        user: "33:33",
        capabilities: &[],
        tmpfs: &["/tmp", "/var/lib/nginx", "/var/log/nginx", "/run"],
    },
    accounts: AccountMechanism::Htpasswd {
        file: "users",
        hash: HashScheme::Sha512Crypt,
        folder_in: "data",
    },
    account_probe: AccountProbe {
        method: "PROPFIND",
        path: "/",
        headers: &[("Depth", "0")],
        expect: 207,
    },
    client: ClientHints {
        protocol: "WebDAV",
        setup: "Connect a file manager to the URL with this username and password: on \
                Android and iOS an app such as a WebDAV client or the Files app's \"Connect \
                to Server\", on Linux davs://<host>/, on Windows \"Map network drive\".",
    },
    backup_paths: &["/srv/dav"],
};

/// CalDAV and CardDAV with Radicale: calendars and address books, each account with rights
/// over its own collections only (`owner_only`), accounts as htpasswd lines re-read per request.
pub const CALENDAR: Manifest = Manifest {
    id: "calendar",
    name: "Calendar and contacts",
    description: "CalDAV and CardDAV: calendars and address books for every person of the cell",
    version: "3.1.8-deb12+picd1",
    image: ImageSource::DebianPackages {
        suite: "bookworm",
        packages: &["python3-radicale"],
    },
    entrypoint: &[
        "/usr/bin/python3",
        "-m",
        "radicale",
        "--config",
        "/etc/picd-calendar/config",
    ],
    http: HttpEndpoint {
        subdomain: "calendar",
        // Radicale sends `/` to its web interface (off here) before it asks for a login.
        health_status: 302,
    },
    volumes: &[Volume {
        name: "data",
        mount: "/srv/radicale",
    }],
    config: &[
        ConfigFile {
            name: "config",
            template: include_str!("calendar/radicale.conf"),
        },
        ConfigFile {
            name: "users",
            template: "",
        },
    ],
    config_mount: "/etc/picd-calendar",
    env: &[("HOME", "/tmp")],
    resources: Resources {
        memory_bytes: 128 * 1024 * 1024,
        pids: 64,
    },
    security: Security {
        user: "33:33",
        capabilities: &[],
        tmpfs: &["/tmp"],
    },
    accounts: AccountMechanism::Htpasswd {
        file: "users",
        hash: HashScheme::Apr1,
        folder_in: "data/collection-root",
    },
    account_probe: AccountProbe {
        method: "PROPFIND",
        path: "/",
        headers: &[("Depth", "0")],
        expect: 207,
    },
    client: ClientHints {
        protocol: "CalDAV and CardDAV",
        setup: "Add a CalDAV account (calendars) and a CardDAV account (contacts) with the \
                URL, username and password: on iOS in Settings > Calendar > Accounts, on \
                Android with DAVx5, on the desktop in Thunderbird or Evolution.",
    },
    backup_paths: &["/srv/radicale"],
};

/// Every service of the store, in the order the store page lists them.
pub const CATALOG: &[&Manifest] = &[&FILES, &CALENDAR];

pub fn find(id: &str) -> Option<&'static Manifest> {
    CATALOG.iter().copied().find(|m| m.id == id)
}
