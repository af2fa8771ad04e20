//! A client namespace for tests that need a client whose address is not 127.0.0.1 (e.g. a
//! browser behind Caddy): a network namespace joined to the root namespace by a veth pair.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use super::system::{require_root_and_tools, run, succeeds, Lease};

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

/// A network namespace joined to the root namespace by a veth pair (a /30 of a leased
/// 10.213.X.0/24): the root side is `root_addr`, the namespace's side `addr`. The namespace
/// reaches only the root side; both go away on drop.
pub struct ClientNamespace {
    pub name: String,
    pub root_addr: String,
    pub addr: String,
    veth: String,
    _lease: Lease,
}

impl ClientNamespace {
    pub fn create() -> ClientNamespace {
        require_root_and_tools(&["ip"]);
        let pid = std::process::id();
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let lease = Lease::take(pid.wrapping_mul(13) + n);
        let net = Ipv4Addr::new(10, 213, lease.octet, 0);
        let host = |h: u8| Ipv4Addr::from(u32::from(net) + u32::from(h)).to_string();
        let ns = ClientNamespace {
            name: format!("pcy{pid}x{n}"),
            root_addr: host(1),
            addr: host(2),
            veth: format!("pcy{pid}v{n}"),
            _lease: lease,
        };
        run(&format!("ip netns add {}", ns.name));
        run(&format!(
            "ip link add {} type veth peer name eth0 netns {}",
            ns.veth, ns.name
        ));
        run(&format!("ip addr add {}/30 dev {}", ns.root_addr, ns.veth));
        run(&format!("ip link set {} up", ns.veth));
        run(&format!(
            "ip -n {} addr add {}/30 dev eth0",
            ns.name, ns.addr
        ));
        run(&format!("ip -n {} link set eth0 up", ns.name));
        run(&format!("ip -n {} link set lo up", ns.name));
        ns
    }

    /// The prefix that runs a command inside the namespace.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }
}

impl Drop for ClientNamespace {
    fn drop(&mut self) {
        // Our own names only; deleting the namespace deletes the veth pair with it.
        succeeds(&format!("ip netns del {}", self.name));
        if Path::new("/sys/class/net").join(&self.veth).exists() {
            succeeds(&format!("ip link del {}", self.veth));
        }
    }
}
