//! An OpenVPN provider for the connectivity tests: Debian's `openvpn` 2.6 as a server in the
//! provider namespace (`--disable-dco`, self-signed certificates made here with `openssl`,
//! each side pinning the other's with `--peer-fingerprint`, no CA), pushing its tunnel
//! address as the DNS server (the provider namespace's resolver answers there too), its
//! clients masqueraded into the internet by the provider's NAT. The tunnel has IPv6 as well
//! (`--server-ipv6`: the server pushes `ifconfig-ipv6`, a `route-ipv6` and its IPv6 resolver),
//! and the provider reaches the internet over IPv6, its clients masqueraded (NAT66) to its own
//! IPv6 address.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{run, Lab, Provider};

/// The provider's OpenVPN tunnel: its subnet and the server's address (its pushed DNS).
pub const OVPN_SERVER_ADDR: &str = "10.65.0.1";
pub const OVPN_SUBNET_PREFIX: &str = "10.65.0.";
const OVPN_NET: &str = "10.65.0.0 255.255.255.0";
pub const OVPN_PORT: u16 = 1194;
/// The tunnel's IPv6: its network, the server's address (its pushed IPv6 resolver).
const OVPN_NET6: &str = "fd65::/64";
pub const OVPN_SERVER_ADDR6: &str = "fd65::1";
pub const OVPN_SUBNET6_PREFIX: &str = "fd65::";
/// What the server pushes besides `ifconfig-ipv6`: what a provider's full-tunnel IPv6 pushes.
const OVPN_ROUTE6: &str = "route-ipv6 2000::/3";
/// The provider's IPv6 address on the internet (what the internet sees from its clients), and
/// the internet's side of that link.
pub const PROVIDER_ADDR6: &str = "2001:db8:2::2";
const INTERNET_PROVIDER_SIDE6: &str = "2001:db8:2::1";

/// The provider's resolver on its tunnel's IPv6 address: an empty NOERROR to every query,
/// printing the asker's address.
const DNS_SERVER6: &str = r#"
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(('::', 53))
while True:
    d, a = s.recvfrom(4096)
    print(a[0], flush=True)
    if len(d) >= 12:
        s.sendto(d[:2] + bytes([d[2] | 0x80, 0x80]) + d[4:], a)
"#;

/// The OpenVPN server the test runs; stopped by its PID.
pub struct OvpnServer {
    ns: String,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// The .ovpn its customer (the cell) gets.
    pub customer_config: String,
    /// Whether the tunnel has IPv6 (the next `start` reads it).
    pub ipv6: bool,
}

fn openssl_pair(dir: &Path, name: &str) -> (String, String, String) {
    let (key, cert) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    run(&format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
         -subj /CN={name} -keyout {} -out {}",
        key.display(),
        cert.display()
    ));
    let out = run(&format!(
        "openssl x509 -in {} -noout -fingerprint -sha256",
        cert.display()
    ));
    let fingerprint = out.trim().rsplit('=').next().unwrap_or("").to_string();
    let read = |p: &Path| std::fs::read_to_string(p).expect("openssl output");
    (read(&key), read(&cert), fingerprint)
}

impl OvpnServer {
    /// Starts (or starts again) the server; its PID.
    pub fn start(&mut self) -> u32 {
        assert!(self.child.is_none(), "the server runs already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let file = |n: &str| self.dir.join(n).to_string_lossy().into_owned();
        let client_fp = std::fs::read_to_string(self.dir.join("client.fp")).expect("fp");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns, "openvpn"])
            .args(["--dev", "ovs0", "--dev-type", "tun", "--disable-dco"])
            .args(["--port", &OVPN_PORT.to_string(), "--proto", "udp"])
            .args(["--server", OVPN_NET.split(' ').next().unwrap()])
            .arg(OVPN_NET.split(' ').nth(1).unwrap());
        if self.ipv6 {
            command
                .args(["--server-ipv6", OVPN_NET6])
                .args(["--push", OVPN_ROUTE6])
                .args(["--push", &format!("dhcp-option DNS6 {OVPN_SERVER_ADDR6}")]);
        }
        let child = command
            .args(["--topology", "subnet", "--dh", "none"])
            .args(["--cert", &file("server.crt"), "--key", &file("server.key")])
            .args(["--peer-fingerprint", client_fp.trim()])
            .args(["--keepalive", "2", "10"])
            .args(["--push", &format!("dhcp-option DNS {OVPN_SERVER_ADDR}")])
            .args(["--verb", "3"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("openvpn (apt-get install openvpn)");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    /// Stops the server by its PID (SIGTERM), and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OvpnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Lab {
    /// An OpenVPN server in the provider's namespace (see `provider`), started, with the
    /// provider's IPv6 to the internet and its IPv6 resolver (logging to provider-dns6.log).
    pub fn openvpn_server(&mut self, provider: &Provider) -> OvpnServer {
        provider_ipv6(provider);
        self.python_in(&provider.ns, DNS_SERVER6, "provider-dns6.log");
        let dir = self.dir.path().join("ovpn");
        std::fs::create_dir_all(&dir).expect("dir");
        let (_, _, server_fp) = openssl_pair(&dir, "server");
        let (client_key, client_cert, client_fp) = openssl_pair(&dir, "client");
        std::fs::write(dir.join("client.fp"), &client_fp).expect("fp");
        let customer_config = format!(
            "# picd test provider\nclient\ndev tun\nproto udp\nremote {} {OVPN_PORT}\nnobind\n\
             resolv-retry infinite\npersist-key\ncipher AES-256-GCM\nverb 3\n\
             peer-fingerprint {server_fp}\n<cert>\n{}</cert>\n<key>\n{}</key>\n",
            super::PROVIDER_ADDR,
            client_cert,
            client_key
        );
        let mut server = OvpnServer {
            ns: provider.ns.clone(),
            log: self.dir.path().join("ovpn-server.log"),
            dir,
            child: None,
            customer_config,
            ipv6: true,
        };
        server.start();
        server
    }

    /// The PIDs of the `openvpn` processes picd started (from the PID files in its run folder).
    pub fn picd_openvpn_pids(&self) -> Vec<u32> {
        let run_dir = self.state_dir().join("run/openvpn");
        let Ok(entries) = std::fs::read_dir(run_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("pid")).ok())
            .filter_map(|t| t.trim().parse().ok())
            .filter(|pid: &u32| Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    }

    /// Kills what picd's `openvpn` children left running (a picd killed by the test cannot).
    pub fn kill_picd_openvpn(&self) {
        for pid in self.picd_openvpn_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The provider's IPv6 to the internet: its side of their link, its default route, forwarding,
/// and its clients' IPv6 masqueraded to its own address, as their IPv4 is.
fn provider_ipv6(provider: &Provider) {
    let (ns, internet) = (&provider.ns, &provider.internet_ns);
    run(&format!(
        "ip -n {internet} addr add {INTERNET_PROVIDER_SIDE6}/64 dev eth1 nodad"
    ));
    run(&format!(
        "ip -n {ns} addr add {PROVIDER_ADDR6}/64 dev eth0 nodad"
    ));
    run(&format!(
        "ip -n {ns} -6 route add default via {INTERNET_PROVIDER_SIDE6}"
    ));
    run(&format!(
        "ip netns exec {ns} sysctl -q -w net.ipv6.conf.all.forwarding=1"
    ));
    run(&format!("ip netns exec {ns} nft add table ip6 provider6"));
    run(&format!(
        "ip netns exec {ns} nft add chain ip6 provider6 post {{ type nat hook postrouting priority 100 ; }}"
    ));
    run(&format!(
        "ip netns exec {ns} nft add rule ip6 provider6 post oifname eth0 masquerade"
    ));
}
