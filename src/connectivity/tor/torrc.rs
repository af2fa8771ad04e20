//! The torrc of one tor exit, and its check. picd writes the whole file (nothing of the owner
//! goes into it), 0600, and checks it with `tor --verify-config` before tor runs on it; a
//! failing check is the connection's error. Pure rendering: tests compare strings.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A check that takes longer than this counts as failed.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);
/// Tor's own default for the virtual addresses AutomapHostsOnResolve hands out.
const VIRTUAL_NETWORK: &str = "10.192.0.0/10";

/// Where one exit's files live: its run folder (torrc, control socket, cookie, PID file) and
/// its DataDirectory, both 0700 (tor refuses a control socket in a folder others can read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorPaths {
    pub run: PathBuf,
    pub data: PathBuf,
}

impl TorPaths {
    /// `run_root` is the state dir's `run/tor`, `data_root` its `tor`.
    pub fn new(run_root: &Path, data_root: &Path, slot: u8) -> TorPaths {
        TorPaths {
            run: run_root.join(slot.to_string()),
            data: data_root.join(slot.to_string()),
        }
    }

    pub fn torrc(&self) -> PathBuf {
        self.run.join("torrc")
    }

    pub fn control(&self) -> PathBuf {
        self.run.join("control")
    }

    pub fn cookie(&self) -> PathBuf {
        self.run.join("control.authcookie")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.run.join("tor.pid")
    }
}

/// The torrc: a client only (`ClientOnly`, `SocksPort 0`, no relay or exit lines), staying in
/// the foreground and logging to stderr (picd watches it and carries its lines), TransPort
/// and DNSPort on the cell's WireGuard address only (where nft's `redirect` sends the peers'
/// packets, never reachable from the uplink), and the control port on a unix socket with
/// cookie authentication, so only who can read the run folder (picd) can ask it anything.
/// No `User` line: tor runs as picd's own user, which holds no right to change user.
pub fn render(name: &str, paths: &TorPaths, listen: Ipv4Addr, trans: u16, dns: u16) -> String {
    let mut out = String::new();
    // Validation keeps newlines out of a connection's name.
    out.push_str(&format!(
        "# written by picd for the tor exit \"{name}\"; picd replaces it\n"
    ));
    let lines = [
        "RunAsDaemon 0".to_string(),
        "ClientOnly 1".into(),
        "SocksPort 0".into(),
        format!("TransPort {listen}:{trans} IsolateClientAddr"),
        format!("DNSPort {listen}:{dns}"),
        format!("VirtualAddrNetworkIPv4 {VIRTUAL_NETWORK}"),
        "AutomapHostsOnResolve 1".into(),
        format!("ControlPort unix:{}", paths.control().display()),
        "CookieAuthentication 1".into(),
        format!("CookieAuthFile {}", paths.cookie().display()),
        format!("DataDirectory {}", paths.data.display()),
        "Log notice stderr".into(),
    ];
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The arguments tor runs with on a torrc: no defaults file (Debian's would add a SocksPort,
/// a PID file and a user of its own), and this file only.
pub fn args(torrc: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "--defaults-torrc".into(),
        "/dev/null".into(),
        "-f".into(),
        torrc.into(),
    ]
}

/// `tor --verify-config` on the file; Err with tor's complaint when it refuses it.
pub async fn verify(command: &str, torrc: &Path) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.arg("--verify-config")
        .args(args(torrc))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(VERIFY_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("tor --verify-config took over {VERIFY_TIMEOUT:?}")),
        Ok(Err(e)) => {
            return Err(format!(
                "{command} could not run (apt-get install tor): {e}"
            ))
        }
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let complaint: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[warn]") || l.contains("[err]"))
        .take(3)
        .collect();
    Err(format!(
        "tor --verify-config refused the torrc ({}): {}",
        out.status,
        complaint.join(" / ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_torrc_listens_on_the_cell_address_with_a_cookie_control_socket() {
        let paths = TorPaths::new(Path::new("/s/run/tor"), Path::new("/s/tor"), 2);
        let text = render("t", &paths, "10.8.0.1".parse().unwrap(), 13002, 13302);
        assert_eq!(
            text,
            "# written by picd for the tor exit \"t\"; picd replaces it\n\
             RunAsDaemon 0\nClientOnly 1\nSocksPort 0\n\
             TransPort 10.8.0.1:13002 IsolateClientAddr\nDNSPort 10.8.0.1:13302\n\
             VirtualAddrNetworkIPv4 10.192.0.0/10\nAutomapHostsOnResolve 1\n\
             ControlPort unix:/s/run/tor/2/control\nCookieAuthentication 1\n\
             CookieAuthFile /s/run/tor/2/control.authcookie\nDataDirectory /s/tor/2\n\
             Log notice stderr\n"
        );
        assert!(!text.contains("ExitRelay") && !text.contains("ORPort"));
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_or_missing_check_is_an_error_and_a_passed_one_is_not() {
        let file = Path::new("/nonexistent/torrc");
        assert_eq!(verify("true", file).await, Ok(()));
        let refused = verify("false", file).await.unwrap_err();
        assert!(
            refused.starts_with("tor --verify-config refused the torrc"),
            "{refused}"
        );
        let missing = verify("/nonexistent/tor", file).await.unwrap_err();
        assert!(missing.contains("apt-get install tor"), "{missing}");
    }
}
