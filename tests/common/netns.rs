//! Real WireGuard in network namespaces the test creates (`Lab`). picd's interface is its own
//! userspace WireGuard, which lives in picd's process, so picd runs inside a "cell" namespace;
//! the test's HTTP client reaches it from the root namespace over a veth pair, and each
//! WireGuard client (`wireguard-go`, configured with `wg` from the config picd served) lives in
//! a namespace of its own with a veth pair to the cell. Everything the lab made (processes,
//! namespaces, veth pairs, sockets) goes away when it is dropped, also when the test fails.
//!
//! Addresses: the lab leases 10.213.X.0/24 (X unique among running tests, see `Lease`) and
//! cuts it into /30s: slot 0 joins the root namespace (.1) and the cell (.2), slot k joins the
//! cell (4k+1) and client k (4k+2). Names carry the test process's pid and a counter; the
//! WireGuard interface names must be unique machine-wide because their control sockets all
//! live in /var/run/wireguard, whatever the namespace.

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::client::TestClient;
use super::fixtures::*;
use super::process::PICD;
use reqwest::StatusCode;

mod client_ns;
mod exits;
mod internet;
mod leaks;
mod openvpn;
mod peers;
mod provider;
mod proxies;
mod system;
mod unit;
mod wg_clients;
pub use client_ns::*;
pub use exits::*;
pub use openvpn::*;
pub use peers::*;
pub use provider::*;
pub use proxies::*;
pub use system::*;
pub use unit::UNIT_UID;

/// What installs every tool these tests need.
pub use super::tools::{require_tools, INSTALL_STEP};
/// The port picd listens on inside its namespace (nothing else listens there).
const API_PORT: u16 = 3000;
/// Bounds of the waits: start-up on a loaded 2-core machine, a clean stop, a tool's socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
const WG_RUN_DIR: &str = "/var/run/wireguard";

static LABS: AtomicU32 = AtomicU32::new(0);

/// How the lab's cell is set up and run.
#[derive(Clone)]
pub struct LabOptions {
    pub subnet_v4: String,
    pub reconcile_interval_seconds: u64,
    /// More `PICD_*` settings for the cell's picd (a Docker socket, say).
    pub env: Vec<(String, String)>,
    /// Runs picd as systemd/picd.service would (see `unit`), not as root.
    pub unit_privileges: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            subnet_v4: SUBNET_V4.into(),
            reconcile_interval_seconds: 60,
            env: Vec::new(),
            unit_privileges: false,
        }
    }
}

/// A WireGuard client the lab started: its namespace, interface and the config it applied.
#[derive(Clone, Debug)]
pub struct WgClient {
    pub ns: String,
    pub ifname: String,
    pub config: WgConfig,
}

/// A cell (picd with userspace WireGuard in its own namespace) and its clients.
pub struct Lab {
    pub tag: String,
    lease: Lease,
    dir: tempfile::TempDir,
    options: LabOptions,
    pub cell_ns: String,
    /// picd's WireGuard interface.
    pub ifname: String,
    namespaces: Vec<String>,
    sockets: Vec<String>,
    picd: Option<Child>,
    wg_children: Vec<Child>,
    next_slot: u32,
}

impl Lab {
    /// Creates the cell's namespace, sets the cell up with `picd setup`, starts picd in it.
    pub async fn start(options: LabOptions) -> Lab {
        require_root_and_tools(&["ip", "wg", "wireguard-go", "ping"]);
        let pid = std::process::id();
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{pid}x{n}");
        let mut lab = Lab {
            lease: Lease::take(pid.wrapping_mul(7) + n),
            dir: tempfile::tempdir().expect("temporary directory"),
            options,
            cell_ns: format!("pc{tag}c"),
            ifname: format!("pw{tag}"),
            namespaces: Vec::new(),
            sockets: Vec::new(),
            picd: None,
            wg_children: Vec::new(),
            next_slot: 1,
            tag,
        };
        let (ns, veth) = (lab.cell_ns.clone(), lab.root_veth());
        lab.add_namespace(&ns);
        run(&format!(
            "ip link add {veth} type veth peer name eth0 netns {ns}"
        ));
        run(&format!("ip addr add {}/30 dev {veth}", lab.addr(1)));
        run(&format!("ip link set {veth} up"));
        run(&format!(
            "ip -n {ns} addr add {}/30 dev eth0",
            lab.cell_addr()
        ));
        run(&format!("ip -n {ns} link set eth0 up"));
        run(&format!("ip -n {ns} link set lo up"));
        if lab.options.unit_privileges {
            unit::prepare(lab.dir.path());
        }
        lab.setup_cell();
        lab.start_picd().await;
        lab
    }

    fn root_veth(&self) -> String {
        format!("pv{}", self.tag)
    }

    /// A second address on the root namespace's side of the cell's veth, which the cell routes
    /// back over the same pair: a second source for a test, as another host would be. Gone
    /// with the veth when the lab is dropped.
    pub fn second_test_side_addr(&self) -> String {
        let addr = self.addr(254);
        run(&format!("ip addr add {addr}/32 dev {}", self.root_veth()));
        run(&format!(
            "ip -n {} route add {addr}/32 dev eth0",
            self.cell_ns
        ));
        addr
    }

    /// 10.213.X.<host>
    fn addr(&self, host: u32) -> String {
        format!("10.213.{}.{host}", self.lease.octet)
    }

    /// The cell's address facing the test (and the WireGuard endpoint the configs name).
    pub fn cell_addr(&self) -> String {
        self.addr(2)
    }

    /// The cell's own address in its WireGuard subnet (the first host).
    pub fn cell_wg_addr(&self) -> String {
        let net: ipnet::Ipv4Net = self.options.subnet_v4.parse().expect("subnet_v4");
        Ipv4Addr::from(u32::from(net.network()) + 1).to_string()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}:{API_PORT}", self.cell_addr())
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(&self.base_url())
    }

    /// A client signed in as the cell's admin.
    pub async fn admin(&self) -> TestClient {
        let admin = self.client();
        admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
        admin
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// What picd wrote to stderr so far.
    pub fn picd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("picd.log")).unwrap_or_default()
    }

    fn add_namespace(&mut self, ns: &str) {
        run(&format!("ip netns add {ns}"));
        self.namespaces.push(ns.to_string());
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        let path = self.dir.path().join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("log file")
    }

    /// picd's command line inside the cell namespace, with no `PICD_*` variable inherited.
    fn picd_command(&self, args: &[&str]) -> Command {
        let config = self.dir.path().join("picd.toml");
        std::fs::write(&config, "").expect("settings file");
        let mut command = match self.options.unit_privileges {
            true => unit::command(&self.cell_ns, self.dir.path()),
            false => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", &self.cell_ns]);
                ip
            }
        };
        command.arg(PICD).arg("--config").arg(&config).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PICD_") {
                command.env_remove(key);
            }
        }
        let interval = self.options.reconcile_interval_seconds.to_string();
        command
            .env("PICD_WIREGUARD_MODE", "userspace")
            .env("PICD_WIREGUARD_INTERFACE", &self.ifname)
            .env("PICD_RECONCILE_INTERVAL_SECONDS", interval)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// `picd setup --answers` with the fixtures, the lab's endpoint and subnet.
    fn setup_cell(&self) {
        let quoted = |s: &str| format!("\"{s}\"");
        let answers = answers_toml()
            .replace(&quoted(PUBLIC_ENDPOINT), &quoted(&self.cell_addr()))
            .replace(&quoted(SUBNET_V4), &quoted(&self.options.subnet_v4));
        let file = self.dir.path().join("answers.toml");
        std::fs::write(&file, answers).expect("answers file");
        let (file, state) = (file.to_string_lossy(), self.state_dir());
        let out = self
            .picd_command(&[
                "setup",
                "--answers",
                &file,
                "--state-dir",
                &state.to_string_lossy(),
            ])
            .output()
            .expect("picd setup");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "picd setup: {err}");
    }

    async fn start_picd(&mut self) {
        let (state, listen) = (self.state_dir(), format!("{}:{API_PORT}", self.cell_addr()));
        let child = self
            .picd_command(&[
                "serve",
                "--state-dir",
                &state.to_string_lossy(),
                "--listen",
                &listen,
            ])
            .stdout(Stdio::null())
            .stderr(self.log_file("picd.log"))
            .spawn()
            .expect("spawning picd in the cell namespace");
        self.picd = Some(child);
        self.sockets.push(self.ifname.clone());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build();
        let (http, url) = (http.expect("client"), format!("{}/health", self.base_url()));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.picd.as_mut().expect("spawned").try_wait() {
                self.picd = None;
                panic!("picd exited with {status}; log:\n{}", self.picd_log());
            }
            if let Ok(resp) = http.get(&url).send().await {
                if resp.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no answer on {url} within {STARTUP_TIMEOUT:?}; log:\n{}",
            self.picd_log()
        );
    }

    /// Stops picd with SIGTERM, as systemd would; kills it if it is still running after
    /// `STOP_TIMEOUT`. Returns whether it exited on SIGTERM.
    pub fn stop_picd(&mut self) -> bool {
        let Some(mut child) = self.picd.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let stopped = eventually(STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
        if !stopped {
            let _ = child.kill();
        }
        let _ = child.wait();
        stopped
    }

    /// Stops picd and starts it again on the same state directory; returns whether the stop
    /// was clean (see `stop_picd`).
    pub async fn restart_picd(&mut self) -> bool {
        let clean = self.stop_picd();
        self.start_picd().await;
        clean
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- picd log of lab {} ---\n{}", self.tag, self.picd_log());
        }
        // Our own children, by their handles.
        for child in self.wg_children.iter_mut().chain(self.picd.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            succeeds(&format!("ip netns del {ns}"));
        }
        // Normally gone with the cell's namespace; our own name in any case.
        let veth = self.root_veth();
        if succeeds(&format!("ip link show {veth}")) {
            succeeds(&format!("ip link del {veth}"));
        }
        for ifname in &self.sockets {
            let _ = std::fs::remove_file(Path::new(WG_RUN_DIR).join(format!("{ifname}.sock")));
        }
    }
}
