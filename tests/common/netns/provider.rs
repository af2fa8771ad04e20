//! An exit provider for the connectivity tests: an "internet" namespace that is the cell's
//! uplink (the cell's default route points at it) and answers HTTP with the source address it
//! sees, and a "provider" namespace behind it running a WireGuard server (`wireguard-go`
//! configured with `wg`) that masquerades its clients into the internet and answers DNS on its
//! tunnel address, logging who asked. Documentation ranges only, inside these namespaces.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{eventually, run, Lab, WgClient, SOCKET_TIMEOUT, WG_RUN_DIR};

/// The cell's uplink: its interface, its addresses and the internet's side.
pub const UPLINK_IF: &str = "up0";
pub const CELL_UPLINK_ADDR: &str = "192.0.2.2";
const INTERNET_UPLINK_ADDR: &str = "192.0.2.1";
pub const CELL_UPLINK_ADDR6: &str = "2001:db8:1::2";
const INTERNET_UPLINK_ADDR6: &str = "2001:db8:1::1";
/// The internet's IPv6 server (the provider offers no IPv6).
pub const INTERNET_SERVER6: &str = "2001:db8:ff::10";
/// The provider's address on the internet (what the internet sees from its clients).
pub const PROVIDER_ADDR: &str = "198.51.100.2";
const INTERNET_PROVIDER_SIDE: &str = "198.51.100.1";
/// The HTTP server that answers the source address, and a resolver a peer may hard-code.
pub const INTERNET_SERVER: &str = "203.0.113.10";
pub const HTTP_PORT: u16 = 8080;
pub const HARD_CODED_RESOLVER: &str = "203.0.113.53";
/// The tunnel: the provider's address (and DNS server) and the one it gives the cell.
pub const PROVIDER_TUNNEL_ADDR: &str = "10.64.0.1";
pub const CELL_TUNNEL_ADDR: &str = "10.64.0.2";
pub const PROVIDER_PORT: u16 = 51820;
/// How long a fetch through a tunnel may take before curl gives up.
const CURL_MAX_SECONDS: &str = "5";

const HTTP_SERVER: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()
"#;

/// The same over IPv6 only (a dual-stack socket would show IPv4 clients as ::ffff:...).
const HTTP_SERVER6: &str = r#"
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()
S(('::', 8080), H).serve_forever()
"#;

/// Answers every query with an empty NOERROR (the question echoed, QR and RA set) and prints
/// the asker's address. UDP only: a peer's TCP query to it is not needed by the tests.
const DNS_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 53))
while True:
    d, a = s.recvfrom(4096)
    print(a[0], flush=True)
    if len(d) >= 12:
        s.sendto(d[:2] + bytes([d[2] | 0x80, 0x80]) + d[4:], a)
"#;

/// What the test needs to know of the provider.
pub struct Provider {
    pub ns: String,
    pub internet_ns: String,
    /// The provider's WireGuard interface (stop it to take the exit down).
    pub ifname: String,
    /// The wg-quick file the provider hands its customer (the cell).
    pub customer_config: String,
    /// Where the provider's DNS server logs the addresses that asked.
    pub dns_log: std::path::PathBuf,
}

fn wg_key(command: &str, input: Option<&str>) -> String {
    let mut child = Command::new("wg")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg");
    if let Some(input) = input {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wg output");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Lab {
    /// Starts `python3 -c script` in `ns`, logging to `log`; killed with the lab.
    pub(super) fn python_in(&mut self, ns: &str, script: &str, log: &str) {
        let log = self.log_file(log);
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("python3 (apt-get install python3)");
        self.wg_children.push(child);
    }

    /// The internet (the cell's uplink and default route) and a WireGuard provider behind it.
    pub fn provider(&mut self) -> Provider {
        let (cell, tag) = (self.cell_ns.clone(), self.tag.clone());
        let (internet, ns) = (format!("pc{tag}n"), format!("pc{tag}v"));
        self.add_namespace(&internet);
        self.add_namespace(&ns);
        run(&format!(
            "ip link add {UPLINK_IF} netns {cell} type veth peer name eth0 netns {internet}"
        ));
        run(&format!(
            "ip -n {cell} addr add {CELL_UPLINK_ADDR}/24 dev {UPLINK_IF}"
        ));
        run(&format!("ip -n {cell} link set {UPLINK_IF} up"));
        run(&format!(
            "ip -n {cell} route add default via {INTERNET_UPLINK_ADDR}"
        ));
        let nodad = "nodad";
        run(&format!(
            "ip -n {cell} addr add {CELL_UPLINK_ADDR6}/64 dev {UPLINK_IF} {nodad}"
        ));
        run(&format!(
            "ip -n {cell} -6 route add default via {INTERNET_UPLINK_ADDR6}"
        ));
        run(&format!(
            "ip -n {internet} addr add {INTERNET_UPLINK_ADDR6}/64 dev eth0 {nodad}"
        ));
        run(&format!(
            "ip -n {internet} addr add {INTERNET_SERVER6}/128 dev lo"
        ));
        run(&format!(
            "ip -n {internet} addr add {INTERNET_UPLINK_ADDR}/24 dev eth0"
        ));
        run(&format!("ip -n {internet} link set eth0 up"));
        run(&format!(
            "ip link add eth1 netns {internet} type veth peer name eth0 netns {ns}"
        ));
        run(&format!(
            "ip -n {internet} addr add {INTERNET_PROVIDER_SIDE}/24 dev eth1"
        ));
        run(&format!("ip -n {internet} link set eth1 up"));
        run(&format!("ip -n {internet} link set lo up"));
        for server in [INTERNET_SERVER, HARD_CODED_RESOLVER] {
            run(&format!("ip -n {internet} addr add {server}/32 dev lo"));
        }
        run(&format!(
            "ip netns exec {internet} sysctl -q -w net.ipv4.ip_forward=1"
        ));
        run(&format!("ip -n {ns} addr add {PROVIDER_ADDR}/24 dev eth0"));
        run(&format!("ip -n {ns} link set eth0 up"));
        run(&format!("ip -n {ns} link set lo up"));
        run(&format!(
            "ip -n {ns} route add default via {INTERNET_PROVIDER_SIDE}"
        ));
        run(&format!(
            "ip netns exec {ns} sysctl -q -w net.ipv4.ip_forward=1"
        ));
        run(&format!("ip netns exec {ns} nft add table ip provider"));
        run(&format!(
            "ip netns exec {ns} nft add chain ip provider post {{ type nat hook postrouting priority 100 ; }}"
        ));
        run(&format!(
            "ip netns exec {ns} nft add rule ip provider post oifname eth0 masquerade"
        ));
        self.python_in(&internet, HTTP_SERVER, "internet-http.log");
        self.python_in(&internet, HTTP_SERVER6, "internet-http6.log");
        let ifname = format!("pw{tag}v");
        let customer_config = self.provider_wireguard(&ns, &ifname);
        self.python_in(&ns, DNS_SERVER, "provider-dns.log");
        Provider {
            ns,
            internet_ns: internet,
            ifname,
            customer_config,
            dns_log: self.dir.path().join("provider-dns.log"),
        }
    }

    /// The provider's WireGuard server; returns the file its customer gets.
    fn provider_wireguard(&mut self, ns: &str, ifname: &str) -> String {
        let log = self.log_file(&format!("{ifname}.log"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "wireguard-go", ifname])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning wireguard-go");
        self.wg_children.push(child);
        self.sockets.push(ifname.to_string());
        let socket = Path::new(WG_RUN_DIR).join(format!("{ifname}.sock"));
        assert!(
            eventually(SOCKET_TIMEOUT, || socket.exists()),
            "wireguard-go did not create {}",
            socket.display()
        );
        let (server_key, customer_key) = (wg_key("genkey", None), wg_key("genkey", None));
        let server_public = wg_key("pubkey", Some(&server_key));
        let customer_public = wg_key("pubkey", Some(&customer_key));
        let psk = wg_key("genpsk", None);
        let file = |name: &str, text: &str| {
            let path = self.dir.path().join(format!("{ifname}.{name}"));
            std::fs::write(&path, text).expect("key file");
            path.to_string_lossy().into_owned()
        };
        run(&format!(
            "ip netns exec {ns} wg set {ifname} listen-port {PROVIDER_PORT} private-key {} \
             peer {customer_public} preshared-key {} allowed-ips {CELL_TUNNEL_ADDR}/32",
            file("key", &server_key),
            file("psk", &psk),
        ));
        run(&format!(
            "ip -n {ns} addr add {PROVIDER_TUNNEL_ADDR}/24 dev {ifname}"
        ));
        run(&format!("ip -n {ns} link set {ifname} up"));
        format!(
            "# picd test provider\n[Interface]\nPrivateKey = {customer_key}\n\
             Address = {CELL_TUNNEL_ADDR}/32\nDNS = {PROVIDER_TUNNEL_ADDR}\n\n\
             [Peer]\nPublicKey = {server_public}\nPresharedKey = {psk}\n\
             Endpoint = {PROVIDER_ADDR}:{PROVIDER_PORT}\nAllowedIPs = 0.0.0.0/0, ::/0\n\
             PersistentKeepalive = 5\n"
        )
    }

    /// Kills picd with SIGKILL (no chance to clean up, as a crash) and starts it again on the
    /// same state directory.
    pub async fn kill_and_restart_picd(&mut self) {
        if let Some(mut child) = self.picd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.start_picd().await;
    }

    /// Remembers a WireGuard control socket picd makes (an exit's), removed with the lab.
    pub fn forget_socket_later(&mut self, ifname: &str) {
        self.sockets.push(ifname.to_string());
    }
}

/// curl from a peer's namespace to the internet's HTTP server: the address it saw (None when
/// refused or timed out), and how long it took.
pub fn fetch(client: &WgClient) -> (Option<String>, Duration) {
    fetch_from(client, INTERNET_SERVER)
}

/// `fetch` over IPv6, from the internet's IPv6 server.
pub fn fetch6(client: &WgClient) -> (Option<String>, Duration) {
    fetch_from(client, &format!("[{INTERNET_SERVER6}]"))
}

fn fetch_from(client: &WgClient, host: &str) -> (Option<String>, Duration) {
    let started = Instant::now();
    let url = format!("http://{host}:{HTTP_PORT}/");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.ns,
            "curl",
            "-g",
            "-s",
            "--max-time",
        ])
        .args([CURL_MAX_SECONDS, &url])
        .output()
        .expect("curl");
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success().then_some(seen), started.elapsed())
}

/// One DNS question to a resolver the peer hard-coded; whether it was answered.
pub fn dns_answered(client: &WgClient, tcp: bool) -> bool {
    let server = format!("@{HARD_CODED_RESOLVER}");
    let mut args = vec![
        "netns", "exec", &client.ns, "dig", &server, "+time=1", "+tries=1",
    ];
    if tcp {
        args.push("+tcp");
    }
    args.push("example.org");
    Command::new("ip")
        .args(&args)
        .output()
        .is_ok_and(|o| o.status.success())
}
