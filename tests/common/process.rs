//! The real `picd` binary: a daemon on a free port with its own temporary state directory,
//! and one-shot runs of its subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rusqlite::Connection;

use super::client::TestClient;
use super::store::open_db;

pub const PICD: &str = env!("CARGO_BIN_EXE_picd");

/// Start-up on a loaded 2-core machine can be slow; a healthy picd answers far sooner.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped picd gets to exit on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at finding a free port: another process may take the port between our probe and
/// picd's bind.
const PORT_ATTEMPTS: usize = 3;
/// How to start picd beyond the defaults.
#[derive(Default, Clone)]
pub struct PicdOptions {
    /// Extra environment variables (`PICD_*` overrides).
    pub env: Vec<(String, String)>,
    /// Extra arguments after `serve` (before the test's own --state-dir and --listen).
    pub args: Vec<String>,
    /// Contents of the settings file passed with --config; empty when None.
    pub config_toml: Option<String>,
    /// Working directory of the process (for --dev); the temporary root when None.
    pub current_dir: Option<PathBuf>,
    /// An existing state directory to serve; a fresh one in the temporary root when None.
    pub state_dir: Option<PathBuf>,
}

impl PicdOptions {
    /// Runs picd's DNS server on these socket addresses (`PICD_DNS_LISTEN`, comma-separated);
    /// by default a test picd serves no DNS at all.
    pub fn with_dns_listen(mut self, addresses: &str) -> Self {
        self.env
            .push(("PICD_DNS_LISTEN".to_string(), addresses.to_string()));
        self
    }
}

/// A running `picd serve` with its own temporary state directory; killed on drop.
pub struct Picd {
    child: Option<Child>,
    root: tempfile::TempDir,
    port: u16,
    options: PicdOptions,
}

impl Picd {
    pub async fn start() -> Picd {
        Picd::start_with(PicdOptions::default()).await
    }

    pub async fn start_with(options: PicdOptions) -> Picd {
        let root = tempfile::tempdir().expect("temporary directory");
        let mut picd = Picd {
            child: None,
            root,
            port: 0,
            options,
        };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            picd.port = free_port();
            match picd.spawn_and_wait().await {
                Ok(()) => return picd,
                Err(e) => last_error = e,
            }
        }
        panic!("picd did not start: {last_error}");
    }

    /// Stops picd (SIGTERM) and starts it again on the same port and state directory.
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait().await {
            panic!("picd did not restart: {e}");
        }
    }

    /// Sets (or replaces) an environment variable for picd's next start (`restart`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.options.env.retain(|(k, _)| k != key);
        self.options.env.push((key.to_string(), value.to_string()));
    }

    /// Stops picd and waits for it to exit.
    pub fn stop(&mut self) {
        self.terminate();
    }

    /// Sends picd SIGTERM and waits for it to exit: how long it took and how it ended, or
    /// None when it had to be killed after STOP_TIMEOUT (or was not running).
    pub fn terminate(&mut self) -> Option<(Duration, std::process::ExitStatus)> {
        let mut child = self.child.take()?;
        // Our own child, by its id: a clean shutdown first, then the hard way.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = child.try_wait() {
                return Some((start.elapsed(), status));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Kills picd with SIGKILL (no shutdown at all, as a power cut would) and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.options
            .state_dir
            .clone()
            .unwrap_or_else(|| self.root.path().join("state"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("picd.db")
    }

    /// What picd wrote to stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("picd.log")).unwrap_or_default()
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(&self.base_url()).with_state_dir(self.state_dir())
    }

    /// A client whose connections come from `source` (any 127.0.0.0/8 address reaches picd on
    /// 127.0.0.1): another client address for picd's per-address limits, without relying on
    /// forwarded headers.
    pub fn client_from(&self, source: &str) -> TestClient {
        let source: std::net::IpAddr = source.parse().expect("a source address");
        TestClient::with_builder(
            &self.base_url(),
            reqwest::Client::builder().local_address(source),
        )
    }

    /// The process id of the running picd (it re-executes itself once at start, in place).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("picd is running").id()
    }

    /// A `Name:   value` line of /proc/PID/status as a number (e.g. VmHWM in kB, Threads).
    pub fn proc_status(&self, name: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
    }

    /// Opens the state's database (picd keeps running beside it: WAL allows that).
    pub fn db(&self) -> Connection {
        open_db(&self.db_path())
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let config = self.root.path().join("picd.toml");
        std::fs::write(
            &config,
            self.options.config_toml.clone().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("picd.log"))
            .map_err(|e| e.to_string())?;
        let mut command = clean_command();
        command
            .arg("serve")
            .args(&self.options.args)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .current_dir(
                self.options
                    .current_dir
                    .clone()
                    .unwrap_or_else(|| self.root.path().to_path_buf()),
            )
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|e| format!("spawning {PICD}: {e}"))?;
        self.child = Some(child);
        self.wait_for_health().await
    }

    async fn wait_for_health(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let url = format!("{}/health", self.base_url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("picd exited with {status}; log:\n{}", self.log()));
            }
            if let Ok(resp) = http.get(&url).send().await {
                if resp.status() == StatusCode::OK {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop();
        Err(format!(
            "no answer on /health within {STARTUP_TIMEOUT:?}; log:\n{}",
            self.log()
        ))
    }
}

impl Drop for Picd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub use super::ports::free_port;

/// The picd binary with no `PICD_*` variable inherited from the test's environment.
/// WireGuard is off: CI runs as root, and a test picd must not build an interface in the
/// machine's own namespace (the WireGuard tests run picd inside namespaces they create).
pub fn clean_command() -> Command {
    let mut command = Command::new(PICD);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PICD_") {
            command.env_remove(key);
        }
    }
    command.env("PICD_WIREGUARD_MODE", "off");
    // Nor an nftables table in the machine's own namespace; the routing tests that apply
    // one run picd inside a namespace they made.
    command.env("PICD_ROUTING_MODE", "off");
    // Nor a DNS server on the machine's port 53; DNS tests choose their own address.
    command.env("PICD_DNS_LISTEN", "");
    // Nor a Caddy it did not start: a Caddy of the machine's own on the default admin port
    // would otherwise get the test cell's config. Nothing listens on port 1, so the caddy
    // subsystem is `unavailable`; the Caddy tests name the admin API of the Caddy they start.
    command.env("PICD_CADDY_ADMIN", NO_CADDY_ADMIN);
    command
}

/// Where test picds look for Caddy's admin API unless a test says otherwise.
pub const NO_CADDY_ADMIN: &str = "127.0.0.1:1";

/// Runs a picd subcommand to completion, with `stdin` as its standard input.
pub fn picd_cli(args: &[&str], stdin: Option<&str>) -> Output {
    picd_cli_in(None, args, stdin)
}

/// `picd_cli` in a given working directory (for --dev, which keeps state relative to it).
pub fn picd_cli_in(dir: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = clean_command();
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("spawning picd");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    drop(input);
    child.wait_with_output().expect("waiting for picd")
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `picd serve` with settings that must make it refuse to start: returns its output once
/// it has exited with a failure, and fails the test (killing it) if it exits successfully or
/// is still running after the start-up timeout.
pub fn serve_expecting_failure(config_toml: &str, env: &[(&str, &str)]) -> Output {
    let root = tempfile::tempdir().expect("temporary directory");
    let config = root.path().join("picd.toml");
    std::fs::write(&config, config_toml).expect("writing settings");
    let mut command = clean_command();
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(root.path().join("state"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawning picd");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(
                !status.success(),
                "picd exited with success on bad settings"
            );
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "picd started although its settings are bad; stderr:\n{}",
        stderr_of(&out)
    );
}
