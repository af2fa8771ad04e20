//! The allow-list of a provider's .ovpn: what is refused by name (commands, what is picd's,
//! compression), what is kept as written, what is accepted and left out, and the inline blocks.
//! Chosen from what providers' client files really carry.

/// Directives that run a program, or that would take over what picd keeps (the device, the
/// management socket, the logs, where and as whom OpenVPN runs): refused by name, with why.
pub(super) const REFUSED: [&str; 26] = [
    "up",
    "down",
    "route-up",
    "route-pre-down",
    "ipchange",
    "tls-verify",
    "client-connect",
    "client-disconnect",
    "auth-user-pass-verify",
    "learn-address",
    "script-security",
    "plugin",
    "log",
    "log-append",
    "status",
    "cd",
    "chroot",
    "daemon",
    "dev-node",
    "writepid",
    "config",
    "up-restart",
    "iproute",
    "ifconfig",
    "route",
    "pull-filter",
];
/// Prefixes refused the same way (`management-*`, `setenv`, `setenv-safe`, `log*`).
pub(super) const REFUSED_PREFIXES: [&str; 3] = ["management", "setenv", "log"];
pub(super) const COMPRESSION: [&str; 2] = ["comp-lzo", "compress"];
/// Kept as written: flags and tunnel settings whose arguments are checked below.
pub(super) const FLAGS: [&str; 9] = [
    "client",
    "tls-client",
    "nobind",
    "persist-key",
    "float",
    "remote-random",
    "auth-nocache",
    "mute-replay-warnings",
    "pull",
];
/// Directives with one or a few plain arguments (names of ciphers, numbers).
pub(super) const VALUED: [&str; 27] = [
    "cipher",
    "data-ciphers",
    "data-ciphers-fallback",
    "ncp-ciphers",
    "auth",
    "tls-cipher",
    "tls-ciphersuites",
    "tls-groups",
    "tls-version-min",
    "tls-version-max",
    "remote-cert-tls",
    "remote-cert-ku",
    "remote-cert-eku",
    "ns-cert-type",
    "verify-x509-name",
    "key-direction",
    "resolv-retry",
    "connect-retry",
    "connect-retry-max",
    "server-poll-timeout",
    "hand-window",
    "reneg-sec",
    "ping",
    "ping-restart",
    "tun-mtu",
    "mssfix",
    "auth-retry",
];
/// Accepted and left out: picd sets these itself (device, verbosity, privileges) or they
/// only add routes, which are picd's. `tun-ipv6`, which older IPv6 providers' files still
/// carry, does nothing since OpenVPN 2.4: a tun device carries IPv6 whenever the server pushes
/// `ifconfig-ipv6` (the client-side `ifconfig-ipv6` and `route-ipv6` stay refused, as their
/// IPv4 forms: the addresses come from the server, the routes are picd's).
pub(super) const DROPPED: [&str; 13] = [
    "dev",
    "dev-type",
    "persist-tun",
    "verb",
    "mute",
    "redirect-gateway",
    "block-outside-dns",
    "register-dns",
    "route-delay",
    "route-method",
    "user",
    "group",
    "tun-ipv6",
];
/// Inline blocks: certificates and keys, kept only in the vault.
pub(super) const BLOCKS: [&str; 8] = [
    "ca",
    "cert",
    "key",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "peer-fingerprint",
    "extra-certs",
];
