//! DNS test helpers: the real tools (`dig`, `kdig`, `named-checkzone`, `knotd`) and their
//! output, a picd whose DNS server listens where the test chooses, a standalone
//! `picd dns serve` (a zone to query, or an upstream resolver to forward to), a `knotd`
//! secondary, and a network namespace whose address is "the world" to picd.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::{json_of, TestClient};
use super::fixtures::CELL_DOMAIN;
use super::process::{clean_command, Picd, PicdOptions};

/// Where a missing tool or privilege is fixed.
pub const INSTALL_STEP: &str = "packaging/install-test-deps";
/// How long a change made through the API may take to reach the DNS server (the snapshot is
/// rebuilt in the background after the response).
pub const PROPAGATION: Duration = Duration::from_secs(10);
/// How long a started DNS server (picd, standalone, knotd) may take to answer.
const SERVER_START: Duration = Duration::from_secs(20);

/// The full path of a tool, or a failure naming the install step. Never a silent pass.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{tool} is missing: run {INSTALL_STEP} (Debian packages: knot knot-dnsutils \
         bind9-dnsutils bind9-utils dnsperf nsd)"
    );
}

pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        require_tool(tool);
    }
}

/// Network namespaces need root; a test that needs them fails without it.
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("running id");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "this test creates network namespaces and must run as root (see {INSTALL_STEP})"
    );
    require_tool("ip");
}

/// A port free for both UDP and TCP on `ip` (the kernel's ephemeral range: high ports).
pub fn free_dns_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).expect("binding a UDP probe");
        let port = udp.local_addr().expect("probe address").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on {ip}");
}

/// One resource record as dig or kdig print it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rr {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub data: String,
}

/// A DNS answer as dig or kdig printed it.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub text: String,
    pub status: String,
    pub flags: Vec<String>,
    /// The question's name exactly as printed (case kept).
    pub question: Option<String>,
    pub answer: Vec<Rr>,
    pub authority: Vec<Rr>,
    pub additional: Vec<Rr>,
    /// (version, UDP payload size) of the OPT record, when there is one.
    pub edns: Option<(u8, u16)>,
}

impl Reply {
    pub fn parse(text: &str) -> Reply {
        let mut reply = Reply {
            text: text.to_string(),
            ..Reply::default()
        };
        let mut section = "";
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.split("status: ").nth(1) {
                reply.status = rest
                    .split([',', ';', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            let lower = trimmed.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix(";; flags:") {
                reply.flags = rest
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            if let Some(edns) = parse_edns(&lower) {
                reply.edns = Some(edns);
            }
            if trimmed.starts_with(";;") && trimmed.ends_with("SECTION:") {
                section = if trimmed.contains("QUESTION") {
                    "question"
                } else if trimmed.contains("ANSWER") {
                    "answer"
                } else if trimmed.contains("AUTHORITY") {
                    "authority"
                } else if trimmed.contains("ADDITIONAL") {
                    "additional"
                } else {
                    ""
                };
                continue;
            }
            if trimmed.is_empty() {
                section = "";
                continue;
            }
            if section == "question" {
                let name = trimmed.trim_start_matches(';').split_whitespace().next();
                reply.question = name.map(str::to_string);
                continue;
            }
            if trimmed.starts_with(';') {
                continue;
            }
            let Some(rr) = parse_rr(trimmed) else {
                continue;
            };
            match section {
                "answer" => reply.answer.push(rr),
                "authority" => reply.authority.push(rr),
                "additional" => reply.additional.push(rr),
                _ => {}
            }
        }
        reply
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The data of the answer's records of `rtype`, sorted.
    pub fn data(&self, rtype: &str) -> Vec<String> {
        let mut data: Vec<String> = self
            .answer
            .iter()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.data.clone())
            .collect();
        data.sort();
        data
    }

    /// The serial of the SOA in the answer or the authority section.
    pub fn soa_serial(&self) -> Option<u32> {
        self.answer
            .iter()
            .chain(&self.authority)
            .find(|r| r.rtype == "SOA")
            .and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
    }

    /// The authority section's SOA, asserted to be there.
    pub fn negative_soa(&self) -> &Rr {
        self.authority
            .iter()
            .find(|r| r.rtype == "SOA")
            .unwrap_or_else(|| panic!("no SOA in the authority section:\n{}", self.text))
    }
}

fn parse_edns(lower: &str) -> Option<(u8, u16)> {
    // dig: "; EDNS: version: 0, flags:; udp: 1232"; kdig: ";; Version: 0; flags: ; UDP size: 1232 B; ..."
    let version_text = lower
        .strip_prefix("; edns: version:")
        .or_else(|| lower.strip_prefix(";; version:"))?;
    let version = version_text
        .trim()
        .split([',', ';'])
        .next()?
        .trim()
        .parse()
        .ok()?;
    let udp = lower
        .split("udp:")
        .nth(1)
        .or_else(|| lower.split("udp size:").nth(1))?
        .split_whitespace()
        .next()?
        .trim_end_matches(';')
        .parse()
        .ok()?;
    Some((version, udp))
}

fn parse_rr(line: &str) -> Option<Rr> {
    let mut parts = line.split_whitespace();
    let name = parts.next()?.to_string();
    let ttl = parts.next()?.parse().ok()?;
    let class = parts.next()?;
    if class != "IN" {
        return None;
    }
    let rtype = parts.next()?.to_string();
    let data = parts.collect::<Vec<_>>().join(" ");
    Some(Rr {
        name,
        ttl,
        rtype,
        data,
    })
}

/// Runs a command with a hard time limit (the tools' own timeouts bound it already; this is
/// the backstop) and returns its output.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} ran longer than {limit:?}; stdout:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which client asks, and from where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tool {
    Dig,
    Kdig,
}

/// Asks `server` one question with dig or kdig (UDP unless `+tcp` is among `options`),
/// optionally from inside a network namespace.
pub fn ask(
    tool: Tool,
    netns: Option<&str>,
    server: SocketAddr,
    name: &str,
    rtype: &str,
    options: &[&str],
) -> Reply {
    let binary = match tool {
        Tool::Dig => require_tool("dig"),
        Tool::Kdig => require_tool("kdig"),
    };
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new(require_tool("ip"));
            c.args(["netns", "exec", ns]).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    command
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string());
    match tool {
        Tool::Dig => command.args(["+time=2", "+tries=2", "+nocookie"]),
        Tool::Kdig => command.args(["+time=2", "+retry=1"]),
    };
    command.args(options).args(["-q", name, "-t", rtype]);
    let out = run_bounded(&mut command, Duration::from_secs(20));
    let mut reply = Reply::parse(&String::from_utf8_lossy(&out.stdout));
    // Errors (a refused transfer, a timeout) go to stderr; keep them for checks and messages.
    reply.text.push_str(&String::from_utf8_lossy(&out.stderr));
    reply
}

pub fn dig(server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Reply {
    ask(Tool::Dig, None, server, name, rtype, options)
}

pub fn kdig(server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Reply {
    ask(Tool::Kdig, None, server, name, rtype, options)
}

/// Asks until `check` accepts the reply, or fails after `limit` with the last reply.
pub async fn ask_until(
    limit: Duration,
    what: &str,
    mut query: impl FnMut() -> Reply,
    check: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + limit;
    loop {
        let reply = query();
        if check(&reply) {
            return reply;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not seen within {limit:?}; last reply:\n{}",
                reply.text
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A picd with a completed wizard whose DNS server listens on 127.0.0.1 (and, if asked, on
/// more addresses) at one high port.
pub struct DnsCell {
    pub picd: Picd,
    pub admin: TestClient,
    pub port: u16,
}

impl DnsCell {
    pub async fn start() -> DnsCell {
        DnsCell::start_on(&[]).await
    }

    /// Also listens on `extra` addresses (e.g. the root side of a namespace's veth pair).
    pub async fn start_on(extra: &[IpAddr]) -> DnsCell {
        let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listen: Vec<String> = std::iter::once(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .chain(extra.iter().copied())
            .map(|ip| SocketAddr::new(ip, port).to_string())
            .collect();
        let options = PicdOptions::default().with_dns_listen(&listen.join(","));
        let picd = Picd::start_with(options).await;
        let admin = picd.client();
        admin.run_setup().await;
        let cell = DnsCell { picd, admin, port };
        let server = cell.dns();
        ask_until(
            SERVER_START,
            "picd's DNS server answering for the cell's zone",
            || dig(server, CELL_DOMAIN, "SOA", &["+norec"]),
            |r| r.status == "NOERROR",
        )
        .await;
        cell
    }

    /// The DNS server on loopback (a peer's view).
    pub fn dns(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    pub fn dns_at(&self, ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, self.port)
    }

    /// The cell zone's serial as the DNS server gives it.
    pub fn serial(&self) -> u32 {
        let reply = dig(self.dns(), CELL_DOMAIN, "SOA", &["+norec"]);
        reply
            .soa_serial()
            .unwrap_or_else(|| panic!("no SOA serial:\n{}", reply.text))
    }

    /// Waits until the server's serial for `zone` is above `old`; returns it.
    pub async fn serial_above(&self, zone: &str, old: u32) -> u32 {
        let server = self.dns();
        ask_until(
            PROPAGATION,
            &format!("{zone} serial above {old}"),
            || dig(server, zone, "SOA", &["+norec"]),
            |r| r.soa_serial().is_some_and(|s| s > old),
        )
        .await
        .soa_serial()
        .expect("serial")
    }

    pub async fn send(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        json_of(self.admin.send_json(method, path, body).await).await
    }

    /// Adds a record through the API and asserts 201; returns the stored record.
    pub async fn add_record(&self, zone: &str, record: Value) -> Value {
        let path = format!("/api/dns/zones/{zone}/records");
        let (status, body) = self.send(Method::POST, &path, &record).await;
        assert_eq!(status, StatusCode::CREATED, "adding {record}: {body}");
        body
    }

    /// Every record of a zone as the API lists them.
    pub async fn records(&self, zone: &str) -> Vec<Value> {
        let (status, body) = self
            .admin
            .get_json(&format!("/api/dns/zones/{zone}/records?limit=1000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["records"].as_array().cloned().unwrap_or_default()
    }

    pub async fn create_zone(&self, zone: &str) {
        let (status, body) = self
            .send(Method::POST, "/api/dns/zones", &json!({ "name": zone }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating {zone}: {body}");
    }

    pub async fn create_peer(&self, name: &str) -> Value {
        let (status, body) = self
            .send(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating peer {name}: {body}");
        body
    }
}

/// `(name, type, ttl, data)` of API records, sorted: what "the same records" means.
pub fn record_set(records: &[Value]) -> Vec<(String, String, u64, String)> {
    let mut set: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["type"].as_str().unwrap_or_default().to_string(),
                r["ttl"].as_u64().unwrap_or_default(),
                r["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    set.sort();
    set
}

/// Stops a child we started: SIGTERM, then SIGKILL after a grace period.
fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `picd dns serve` of one zone file on 127.0.0.1 at a high port; stopped on drop.
pub struct ZoneServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl ZoneServer {
    pub async fn start(origin: &str, zone_text: &str) -> ZoneServer {
        require_tool("dig");
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("zone");
        std::fs::write(&file, zone_text).expect("writing the zone file");
        let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let child = clean_command()
            .args(["dns", "serve", "--zone-file"])
            .arg(&file)
            .args(["--origin", origin, "--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting picd dns serve");
        let mut server = ZoneServer {
            child: Some(child),
            addr,
            dir,
        };
        let deadline = Instant::now() + SERVER_START;
        loop {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                panic!("picd dns serve exited with {status}:\n{}", server.log());
            }
            if dig(addr, origin, "SOA", &["+norec", "+time=1", "+tries=1"]).status == "NOERROR" {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "picd dns serve never answered:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        log_of(&self.dir.path().join("log"))
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

impl Drop for ZoneServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real `knotd` serving `zone` as a secondary of `primary`, accepting NOTIFY from it; its
/// configuration and storage live in a temporary directory. Killed on drop.
pub struct KnotSecondary {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl KnotSecondary {
    pub async fn start(zone: &str, primary: SocketAddr) -> KnotSecondary {
        let knotd = require_tool("knotd");
        require_tool("kdig");
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).expect("db dir");
        std::fs::create_dir_all(d.join("run")).expect("run dir");
        let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let zone = format!("{}.", zone.trim_end_matches('.'));
        let conf = format!(
            r#"server:
    rundir: "{run}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{db}"
remote:
  - id: picd
    address: {primary_ip}@{primary_port}
acl:
  - id: notify_from_picd
    address: {primary_ip}
    action: notify
template:
  - id: default
    storage: "{storage}"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: {zone}
    master: picd
    acl: notify_from_picd
"#,
            run = d.join("run").display(),
            db = d.join("db").display(),
            storage = d.display(),
            primary_ip = primary.ip(),
            primary_port = primary.port(),
        );
        let conf_path = d.join("knot.conf");
        std::fs::write(&conf_path, conf).expect("writing knot.conf");
        let log = std::fs::File::create(d.join("knot.log")).expect("log file");
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting knotd");
        let mut knot = KnotSecondary {
            child: Some(child),
            addr,
            dir,
        };
        // Listening first (any answer will do: the zone may not be transferred yet).
        let deadline = Instant::now() + SERVER_START;
        loop {
            if let Some(Ok(Some(status))) = knot.child.as_mut().map(Child::try_wait) {
                panic!("knotd exited with {status}:\n{}", knot.log());
            }
            let reply = kdig(addr, &zone, "SOA", &["+notcp", "+time=1", "+retry=0"]);
            if !reply.status.is_empty() {
                return knot;
            }
            assert!(
                Instant::now() < deadline,
                "knotd never answered:\n{}",
                knot.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        log_of(&self.dir.path().join("knot.log"))
    }
}

impl Drop for KnotSecondary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

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

impl Netns {
    pub fn create() -> Netns {
        require_root();
        let n = NETNS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        assert!(n < 60, "too many namespaces in one test binary");
        let name = format!("picd-dns-{pid}-{n}");
        let host_if = format!("pdv{}x{n}h", pid % 100_000);
        let ns_if = format!("pdv{}x{n}n", pid % 100_000);
        // A /30 per namespace: third octet from the process, fourth from the counter.
        let third = (pid % 256) as u8;
        let base = (n as u8) * 4;
        let host_addr = Ipv4Addr::new(198, 18, third, base + 1);
        let ns_addr = Ipv4Addr::new(198, 18, third, base + 2);
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
