//! The cell's picd under the packaged unit's privileges (`LabOptions::unit_privileges`). PID 1
//! here is not systemd, so `setpriv` stands in for systemd/picd.service: a uid and gid of no
//! account (the state dir is chowned to them), no new privileges, and only the capabilities the
//! unit names, as its bounding, inheritable and ambient sets. They are read from the unit file,
//! so the test proves what the package ships.
//!
//! picd's userspace WireGuard (this machine has no kernel module) makes its control sockets in
//! /var/run/wireguard, which only root may write: picd gets a directory of the lab's bind-mounted
//! there, in the mount namespace of its own that `ip netns exec` gives it. And /dev/net/tun is
//! 0600 here where Debian's udev makes it 0666: a node of the lab's with Debian's mode is
//! mounted over it the same way.

use std::path::Path;
use std::process::Command;

use super::{run, succeeds, Lab};

/// A uid and gid no account has (checked), which picd runs as.
pub const UNIT_UID: u32 = 61016;
/// The lab's directory that stands in for /var/run/wireguard.
const WG_RUN: &str = "wireguard-run";
/// The lab's /dev/net/tun, mode 0666 as on Debian.
const TUN_NODE: &str = "tun";
const UNIT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/picd.service");

/// The capabilities a `Key=CAP_A CAP_B` line of the unit names, as setpriv writes them
/// (`+a,+b`).
fn unit_capabilities(key: &str) -> String {
    let unit = std::fs::read_to_string(UNIT_FILE).expect("systemd/picd.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key}= in {UNIT_FILE}"));
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| format!("+{}", c.strip_prefix("cap_").unwrap_or(&c)))
        .collect();
    caps.join(",")
}

/// Makes the lab's directory (state dir, settings, the socket directory) the unit uid's.
pub(super) fn prepare(dir: &Path) {
    for db in ["passwd", "group"] {
        assert!(
            !succeeds(&format!("getent {db} {UNIT_UID}")),
            "{UNIT_UID} is taken in {db}: pick another UNIT_UID"
        );
    }
    std::fs::create_dir_all(dir.join(WG_RUN)).expect("socket directory");
    run(&format!(
        "mknod -m 0666 {} c 10 200",
        dir.join(TUN_NODE).display()
    ));
    run(&format!("chown -R {UNIT_UID}:{UNIT_UID} {}", dir.display()));
}

/// `ip netns exec <ns>`, then as the unit would start a program: the socket directory and
/// the tun node mounted, the uid, gid and capabilities set, no new privileges. The program follows.
pub(super) fn command(ns: &str, dir: &Path) -> Command {
    let (bounding, ambient) = (
        unit_capabilities("CapabilityBoundingSet"),
        unit_capabilities("AmbientCapabilities"),
    );
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, "sh", "-c"]);
    command.arg(format!(
        r#"mount --bind "$0/{WG_RUN}" /var/run/wireguard && \
           mount --bind "$0/{TUN_NODE}" /dev/net/tun && exec "$@""#
    ));
    command.arg(dir);
    command.arg("setpriv").args([
        format!("--reuid={UNIT_UID}"),
        format!("--regid={UNIT_UID}"),
        "--clear-groups".into(),
        "--no-new-privs".into(),
        format!("--bounding-set=-all,{bounding}"),
        format!("--inh-caps=-all,{ambient}"),
        format!("--ambient-caps=-all,{ambient}"),
    ]);
    command
}

impl Lab {
    /// The running picd's /proc/<pid>/status (its uid, capabilities, NoNewPrivs).
    pub fn picd_status(&self) -> String {
        let pid = self.picd.as_ref().expect("picd runs").id();
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("picd's status")
    }
}
