//! The manifests of the catalog's services (files, calendar, mail), each with the config
//! templates of its folder; what their fields mean is in `catalog`.

use super::catalog::*;

/// The one HTTP endpoint of the WebDAV services, `{{http_port}}` in their templates.
const HTTP_ONLY: &[Endpoint] = &[Endpoint::loopback("http", Protocol::Http)];

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
    health: &[HealthCheck::HttpStatus {
        endpoint: "http",
        status: 401,
    }],
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
        data_owner: "33:33",
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
    on_config_changed: &[],
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
    health: &[HealthCheck::HttpStatus {
        endpoint: "http",
        status: 302,
    }],
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
        data_owner: "33:33",
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
    on_config_changed: &[],
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

/// Mail with Dovecot (IMAP, and LMTP delivery into each account's maildir at
/// `/srv/mail/<user>`) and Postfix (submission for the peers, SASL through Dovecot's auth,
/// mail for the cell's own addresses handed to Dovecot over LMTP, nothing sent elsewhere).
/// Accounts are passwd-file lines Dovecot sees within about a second; Postfix asks Dovecot.
pub const MAIL: Manifest = Manifest {
    id: "mail",
    name: "Mail",
    description: "Mailboxes (IMAP) and sending (SMTP submission) between the people of the \
                  cell, over TLS",
    version: "2.3.19.1-3.7-deb12+picd2",
    image: ImageSource::DebianPackages {
        suite: "bookworm",
        packages: &["dovecot-imapd", "dovecot-lmtpd", "postfix"],
    },
    // Two servers in one container: the script runs both and ends (so the engine restarts
    // the container) when either ends.
    entrypoint: &["/bin/bash", "/etc/picd-mail/start.sh"],
    // No HTTP endpoint, so no Caddy route: the name is published for the peers' clients.
    subdomain: "mail",
    endpoints: &[
        Endpoint::loopback("imap", Protocol::Imap),
        Endpoint {
            name: "imaps",
            protocol: Protocol::Imaps,
            exposure: Exposure::Peers,
            standard_port: Some(993),
        },
        Endpoint {
            name: "submission",
            protocol: Protocol::Submission,
            exposure: Exposure::Peers,
            standard_port: Some(587),
        },
        Endpoint::loopback("lmtp", Protocol::Lmtp),
    ],
    // Both servers: Dovecot's IMAP greeting and Postfix's submission greeting (on its
    // loopback address), so a container whose Postfix died or never started is unhealthy.
    health: &[
        HealthCheck::Greeting {
            endpoint: "imap",
            starts_with: "* OK",
        },
        HealthCheck::Greeting {
            endpoint: "submission",
            starts_with: "220 ",
        },
    ],
    // The maildirs, and Postfix's queue: a message accepted but not yet delivered (Dovecot
    // busy or restarting) outlives a restart of the container. The queue folder stays root's;
    // Postfix makes its queues in it at start, owned as it wants them (postfix, and
    // postfix:postdrop for maildrop and public).
    volumes: &[
        Volume {
            name: "data",
            mount: "/srv/mail",
            service_writes_root: false,
        },
        Volume {
            name: "queue",
            mount: "/var/spool/postfix",
            service_writes_root: false,
        },
    ],
    config: &[
        ConfigFile {
            name: "start.sh",
            template: include_str!("mail/start.sh"),
        },
        ConfigFile {
            name: "dovecot.conf",
            template: include_str!("mail/dovecot.conf"),
        },
        ConfigFile {
            name: "main.cf",
            template: include_str!("mail/main.cf"),
        },
        ConfigFile {
            name: "master.cf",
            template: include_str!("mail/master.cf"),
        },
        ConfigFile {
            name: "outside",
            template: include_str!("mail/outside"),
        },
        ConfigFile {
            name: "senders",
            template: include_str!("mail/senders"),
        },
        // Filled by picd from the accounts, aliases and quotas (see adapters::email::maps).
        ConfigFile {
            name: "mailboxes",
            template: "",
        },
        ConfigFile {
            name: "aliases",
            template: "",
        },
        ConfigFile {
            name: "quota",
            template: "",
        },
        ConfigFile {
            name: "users",
            template: "",
        },
    ],
    config_mount: "/etc/picd-mail",
    env: &[],
    resources: Resources {
        memory_bytes: 192 * 1024 * 1024,
        pids: 192,
    },
    // Started as root, because Postfix's master must be (and only root binds 993 and 587);
    // with only the capabilities the two masters use to bind, set up their queue and spool
    // folders and switch to their unprivileged users: Dovecot's processes run as mail (8:8),
    // which owns the maildirs, Postfix's as postfix. No chroot (CAP_SYS_CHROOT is not given),
    // no other capability, read-only root, no-new-privileges.
    security: Security {
        user: "0:0",
        data_owner: "8:8",
        capabilities: &[
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "SETUID",
            "SETGID",
            "KILL",
            "NET_BIND_SERVICE",
        ],
        tmpfs: &["/tmp", "/var/lib/postfix"],
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
    // Both servers re-read their config (and Postfix its maps) on a reload.
    on_config_changed: &[
        &["/usr/sbin/postfix", "-c", "/etc/picd-mail", "reload"],
        &[
            "/usr/bin/doveadm",
            "-c",
            "/etc/picd-mail/dovecot.conf",
            "reload",
        ],
    ],
    account_probe: AccountProbe::ImapLogin { endpoint: "imap" },
    client: ClientHints {
        protocol: "IMAP and SMTP submission",
        setup: "Add a mail account (Thunderbird, K-9 Mail, iOS Mail) with this username and \
                password. Incoming: IMAP, server <host>, port <imaps_port>, SSL/TLS. \
                Outgoing: SMTP, server <host>, port <submission_port>, STARTTLS, normal \
                password. Your address is <username>@<domain>; mail reaches the people of \
                the cell only. Import the cell's CA certificate on the device first.",
    },
    backup_paths: &["/srv/mail"],
};
