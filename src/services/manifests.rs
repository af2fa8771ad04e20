//! The manifests of the catalog's services (files, calendar, mail), each with the config
//! templates of its folder; what their fields mean is in `catalog`.

use super::catalog::*;

/// The one HTTP endpoint of the WebDAV services, `{{http_port}}` in their templates.
const HTTP_ONLY: &[Endpoint] = &[Endpoint {
    name: "http",
    protocol: Protocol::Http,
}];

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
    subdomain: "files",
    endpoints: HTTP_ONLY,
    health: HealthCheck::HttpStatus {
        endpoint: "http",
        status: 401,
    },
    volumes: &[Volume {
        name: "data",
        mount: "/srv/dav",
        service_writes_root: true,
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
    accounts: AccountMechanism::PasswdFile {
        file: "users",
        line: LineFormat::Htpasswd,
        hash: HashScheme::Sha512Crypt,
        folder_in: "data",
    },
    on_account_gone: &[],
    account_probe: AccountProbe::Http {
        endpoint: "http",
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
    subdomain: "calendar",
    endpoints: HTTP_ONLY,
    // Radicale sends `/` to its web interface (off here) before it asks for a login.
    health: HealthCheck::HttpStatus {
        endpoint: "http",
        status: 302,
    },
    volumes: &[Volume {
        name: "data",
        mount: "/srv/radicale",
        service_writes_root: true,
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
    accounts: AccountMechanism::PasswdFile {
        file: "users",
        line: LineFormat::Htpasswd,
        hash: HashScheme::Apr1,
        folder_in: "data/collection-root",
    },
    on_account_gone: &[],
    account_probe: AccountProbe::Http {
        endpoint: "http",
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

/// IMAP with Dovecot, mail delivered over LMTP: each account's maildir at `/srv/mail/<user>`,
/// accounts as passwd-file lines Dovecot sees within about a second.
pub const MAIL: Manifest = Manifest {
    id: "mail",
    name: "Mail",
    description: "IMAP mailboxes for every person of the cell, mail delivered over LMTP",
    version: "2.3.19.1-deb12+picd1",
    image: ImageSource::DebianPackages {
        suite: "bookworm",
        packages: &["dovecot-imapd", "dovecot-lmtpd"],
    },
    entrypoint: &[
        "/usr/sbin/dovecot",
        "-F",
        "-c",
        "/etc/picd-mail/dovecot.conf",
    ],
    // No HTTP endpoint, so no Caddy route: the name is published for the peers' clients.
    subdomain: "mail",
    endpoints: &[
        Endpoint {
            name: "imap",
            protocol: Protocol::Imap,
        },
        Endpoint {
            name: "lmtp",
            protocol: Protocol::Lmtp,
        },
    ],
    health: HealthCheck::Greeting {
        endpoint: "imap",
        starts_with: "* OK",
    },
    volumes: &[Volume {
        name: "data",
        mount: "/srv/mail",
        service_writes_root: false,
    }],
    config: &[
        ConfigFile {
            name: "dovecot.conf",
            template: include_str!("mail/dovecot.conf"),
        },
        ConfigFile {
            name: "users",
            template: "",
        },
    ],
    config_mount: "/etc/picd-mail",
    env: &[],
    resources: Resources {
        memory_bytes: 128 * 1024 * 1024,
        pids: 128,
    },
    // mail (8:8, fixed by Debian's base-passwd): Dovecot runs rootless as a whole (its
    // internal, login and mail users are all this one, chroots off), so it needs no
    // capability: its ports are above 1024 and it never switches user.
    security: Security {
        user: "8:8",
        capabilities: &[],
        tmpfs: &["/tmp"],
    },
    accounts: AccountMechanism::PasswdFile {
        file: "users",
        line: LineFormat::DovecotPasswd,
        hash: HashScheme::Sha512Crypt,
        folder_in: "data",
    },
    on_account_gone: &[
        "/usr/bin/doveadm",
        "-c",
        "/etc/picd-mail/dovecot.conf",
        "kick",
        "{user}",
    ],
    account_probe: AccountProbe::ImapLogin { endpoint: "imap" },
    client: ClientHints {
        protocol: "IMAP",
        setup: "Add an IMAP account in a mail app (Thunderbird, K-9 Mail, iOS Mail) with \
                server <host>, port <imap_port>, this username and password.",
    },
    backup_paths: &["/srv/mail"],
};
