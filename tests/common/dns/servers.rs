//! DNS servers beside picd: a standalone `picd dns serve` (a zone to query, or an upstream
//! resolver) and a real `knotd` secondary. Both run as our children and stop on drop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{dig, free_dns_port, kdig, require_tool, SERVER_START};
use crate::common::process::clean_command;

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
    /// Starts knotd on 127.0.0.1:`port` (see `free_dns_port`; the primary must know the
    /// secondary's address before knot asks for its first transfer).
    pub async fn start(zone: &str, primary: SocketAddr, port: u16) -> KnotSecondary {
        KnotSecondary::start_with_key(zone, primary, port, None).await
    }

    /// Like `start`, with a TSIG key (name, base64 secret; hmac-sha256) that knot signs its
    /// transfer requests with and requires on picd's NOTIFY.
    pub async fn start_with_key(
        zone: &str,
        primary: SocketAddr,
        port: u16,
        key: Option<(&str, &str)>,
    ) -> KnotSecondary {
        let knotd = require_tool("knotd");
        require_tool("kdig");
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).expect("db dir");
        std::fs::create_dir_all(d.join("run")).expect("run dir");
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let zone = format!("{}.", zone.trim_end_matches('.'));
        let (keys, key_ref) = match key {
            Some((name, secret)) => (
                format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
                format!("\n    key: {name}"),
            ),
            None => (String::new(), String::new()),
        };
        let conf = format!(
            r#"{keys}server:
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
    address: {primary_ip}@{primary_port}{key_ref}
acl:
  - id: notify_from_picd
    address: {primary_ip}
    action: notify{key_ref}
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
