//! A network namespace of the test's own, whose address is "the world" to picd.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{ask, require_root, require_tool, run_bounded, Reply, Tool};

static NETNS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace joined to the root namespace by a veth pair: the root side has
/// `host_addr`, the namespace side `ns_addr` (198.18.0.0/15, the benchmarking range, so
/// neither loopback nor the cell's subnets: "the world" to picd). Deleted on drop.
pub struct Netns {
    pub name: String,
    host_if: String,
    ns_if: String,
    pub host_addr: Ipv4Addr,
    pub ns_addr: Ipv4Addr,
}

fn ip_cmd(args: &[&str]) {
    let out = run_bounded(
        Command::new(require_tool("ip")).args(args),
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A /30 in 198.18.0.0/15 that no interface of the machine uses (another test run, of this
/// checkout or another, may hold one): starting from the process and the counter.
fn free_pair(pid: u32, n: u32) -> (Ipv4Addr, Ipv4Addr) {
    let out = run_bounded(
        Command::new(require_tool("ip")).args(["-o", "-4", "addr", "show"]),
        Duration::from_secs(10),
    );
    let used = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = (pid % 512) * 64 + n;
    for i in 0..(512 * 64) {
        let slot = (start + i) % (512 * 64);
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + slot * 4;
        let (host, ns) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        if !used.contains(&format!("inet {host}/")) && !used.contains(&format!("inet {ns}/")) {
            return (host, ns);
        }
    }
    panic!("no free /30 in 198.18.0.0/15");
}

impl Netns {
    pub fn create() -> Netns {
        require_root();
        let n = NETNS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        assert!(n < 60, "too many namespaces in one test binary");
        let name = format!("picd-dns-{pid}-{n}");
        let host_if = format!("pdv{}x{n}h", pid % 100_000);
        let ns_if = format!("pdv{}x{n}n", pid % 100_000);
        let (host_addr, ns_addr) = free_pair(pid, n);
        let netns = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
            ns_if: ns_if.clone(),
            host_addr,
            ns_addr,
        };
        ip_cmd(&["netns", "add", &name]);
        ip_cmd(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &name,
        ]);
        ip_cmd(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_if]);
        ip_cmd(&["link", "set", &host_if, "up"]);
        ip_cmd(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{ns_addr}/30"),
            "dev",
            &ns_if,
        ]);
        ip_cmd(&["-n", &name, "link", "set", &ns_if, "up"]);
        ip_cmd(&["-n", &name, "link", "set", "lo", "up"]);
        netns
    }

    /// Gives the namespace side one more address (e.g. one inside the cell's WireGuard
    /// subnet), reachable from the root namespace by a host route over this veth only.
    pub fn add_address(&self, addr: Ipv4Addr) {
        let dev = self.ns_if.as_str();
        ip_cmd(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{addr}/32"),
            "dev",
            dev,
        ]);
        ip_cmd(&["route", "add", &format!("{addr}/32"), "dev", &self.host_if]);
    }

    /// Asks from inside the namespace (from `source` when given, else the veth address).
    pub fn ask(
        &self,
        tool: Tool,
        server: SocketAddr,
        source: Option<Ipv4Addr>,
        name: &str,
        rtype: &str,
        options: &[&str],
    ) -> Reply {
        let bind = source.map(|s| s.to_string());
        let mut all: Vec<&str> = Vec::new();
        if let Some(b) = &bind {
            all.push("-b");
            all.push(b.as_str());
        }
        all.extend_from_slice(options);
        ask(tool, Some(&self.name), server, name, rtype, &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only what this test made: its namespace (which takes its veth end along) and the
        // root side of the pair.
        let ip = require_tool("ip");
        let _ = Command::new(&ip)
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new(&ip)
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}
