//! redsocks' config file for one proxy exit. It holds the proxy's password, so picd writes it
//! 0600 (redsocks reads it as picd's user, before it drops to its own when picd runs as root)
//! and atomically. Pure rendering: tests compare strings.

use std::net::Ipv4Addr;

use super::Upstream;

/// redsocks' `type` for a connection type.
fn redsocks_type(kind: &str) -> &'static str {
    match kind {
        super::TYPE_HTTP => "http-connect",
        _ => "socks5",
    }
}

/// The config: redsocks stays in the foreground logging to stderr (picd watches it and
/// carries its lines), listens on the cell's WireGuard address only (where nft's `redirect`
/// sends the peers' TCP), and drops root for `user` when there is one.
pub fn render(upstream: &Upstream, listen: Ipv4Addr, port: u16, user: Option<&str>) -> String {
    let drop_to = user
        .map(|user| format!("\tuser = {user};\n\tgroup = {user};\n"))
        .unwrap_or_default();
    let mut out = format!(
        "base {{\n\tlog_debug = off;\n\tlog_info = on;\n\tlog = stderr;\n\tdaemon = off;\n\
         {drop_to}\tredirector = iptables;\n}}\n\
         redsocks {{\n\tlocal_ip = {listen};\n\tlocal_port = {port};\n\
         \tip = {};\n\tport = {};\n\ttype = {};\n",
        upstream.address.ip(),
        upstream.address.port(),
        redsocks_type(&upstream.kind)
    );
    // Validation keeps quotes and backslashes out of both (see input.rs).
    if let (Some(user), Some(password)) = (&upstream.username, &upstream.password) {
        out.push_str(&format!(
            "\tlogin = \"{user}\";\n\tpassword = \"{}\";\n",
            password.as_str()
        ));
    }
    out.push_str("}\n");
    out
}

/// The user redsocks drops to when picd runs as root: the one Debian's package made, else
/// `nobody`. None when picd is not root (under picd.service): redsocks then runs as picd's own
/// unprivileged user, and asking it to change user would end it, as the unit grants neither
/// CAP_SETUID nor CAP_SETGID.
pub fn run_as() -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    match passwd.lines().any(|l| l.starts_with("redsocks:")) {
        true => Some("redsocks"),
        false => Some("nobody"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(kind: &str, login: bool) -> Upstream {
        Upstream {
            kind: kind.into(),
            address: "198.51.100.2:1080".parse().unwrap(),
            username: login.then(|| "user".to_string()),
            password: login.then(|| zeroize::Zeroizing::new("pass word".to_string())),
        }
    }

    #[test]
    fn a_socks5_exit_with_a_login_listens_on_the_cell_address_only() {
        let text = render(
            &upstream("socks5", true),
            "10.8.0.1".parse().unwrap(),
            12301,
            Some("redsocks"),
        );
        assert_eq!(
            text,
            "base {\n\tlog_debug = off;\n\tlog_info = on;\n\tlog = stderr;\n\tdaemon = off;\n\
             \tuser = redsocks;\n\tgroup = redsocks;\n\tredirector = iptables;\n}\n\
             redsocks {\n\tlocal_ip = 10.8.0.1;\n\tlocal_port = 12301;\n\
             \tip = 198.51.100.2;\n\tport = 1080;\n\ttype = socks5;\n\
             \tlogin = \"user\";\n\tpassword = \"pass word\";\n}\n"
        );
    }

    #[test]
    fn an_http_exit_without_login_is_http_connect_and_has_no_credentials() {
        let text = render(
            &upstream("http", false),
            "10.8.0.1".parse().unwrap(),
            12302,
            None,
        );
        assert!(text.contains("\ttype = http-connect;\n"), "{text}");
        // Not root: redsocks keeps picd's user.
        assert!(
            !text.contains("user =") && !text.contains("group ="),
            "{text}"
        );
        assert!(
            !text.contains("login") && !text.contains("password"),
            "{text}"
        );
    }
}
