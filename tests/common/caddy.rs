//! Real Caddy in front of a real picd (`CaddyCell`), arranged as the package arranges them:
//! Caddy starts empty with only its admin API, on a unix socket in a directory of mode 0750
//! (under Caddy's umask 0007, as the package's caddy.service drop-in sets it); picd is pointed
//! at that socket, listens on a socket of its own that Caddy proxies to, and loads Caddy's
//! config; the test talks to the cell over https with `curl --cacert` (the cell's CA) and
//! `--resolve`, as a browser that trusts the CA would; `Backend` is a tiny web server to route
//! to. Everything started here is stopped by its own handle when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::client::TestClient;
use super::fixtures::*;
use super::netns::{eventually, require_tools};
use super::process::{free_port, Picd, PicdOptions};

mod backend;
pub use backend::{Backend, BACKEND_PAGE};

/// How long Caddy gets to open its admin API, and picd to push its config into it.
pub const CADDY_TIMEOUT: Duration = Duration::from_secs(20);
/// One curl through Caddy, connection and answer.
const CURL_TIMEOUT_SECONDS: &str = "10";

/// Fails the test, naming the install step, unless Caddy and the client tools are installed.
pub fn require_caddy_tools() {
    require_tools(&["caddy", "curl", "openssl"]);
}

/// How to start a test Caddy beyond the defaults.
#[derive(Default, Clone)]
pub struct CaddyOptions {
    /// Extra environment (e.g. `SSL_CERT_FILE` naming the roots Caddy trusts).
    pub env: Vec<(String, String)>,
    /// A network namespace to run Caddy in (the test's own); the admin API then listens on
    /// `admin_ip`, an address of that namespace reachable from the test.
    pub netns: Option<String>,
    /// The admin API on TCP at this address (a free port), instead of the socket.
    pub admin_ip: Option<String>,
    /// Apps to start with (`apps` of Caddy's JSON config); none when Null.
    pub apps: Value,
}

/// The directory of Caddy's admin socket: Caddy's own group may enter, nobody else (the
/// package's /run/caddy-admin).
pub const ADMIN_DIR_MODE: u32 = 0o750;
/// Caddy's umask in the package (its caddy.service drop-in): the admin socket is then
/// srwxrwx---, reachable by the group, which picd is in.
const CADDY_UMASK: &str = "0007";

/// `caddy run` with an empty config (only the admin API) and its own XDG directories, so that
/// nothing lands in the machine's trust store or in root's home.
pub struct Caddy {
    child: Option<Child>,
    dir: tempfile::TempDir,
    options: CaddyOptions,
    /// The admin API as picd's `caddy_admin` names it: `unix//PATH` or host:port.
    pub admin: String,
    /// The admin API's socket, unless it is on TCP (`admin_ip`).
    pub admin_socket: Option<PathBuf>,
}

impl Caddy {
    pub fn start() -> Caddy {
        Caddy::start_with(CaddyOptions::default())
    }

    pub fn start_with(options: CaddyOptions) -> Caddy {
        require_caddy_tools();
        let dir = tempfile::tempdir().expect("temporary directory");
        // Anyone may walk up to the admin socket's directory (as anyone may enter /run): what
        // keeps other users out is that directory's mode alone.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let (admin, admin_listen, admin_socket) = match &options.admin_ip {
            Some(ip) => {
                let admin = format!("{ip}:{}", free_port());
                (admin.clone(), json!({ "listen": admin }), None)
            }
            None => {
                let admin_dir = dir.path().join("admin");
                std::fs::create_dir(&admin_dir).expect("admin directory");
                std::fs::set_permissions(
                    &admin_dir,
                    std::fs::Permissions::from_mode(ADMIN_DIR_MODE),
                )
                .expect("chmod");
                let socket = admin_dir.join("admin.sock");
                let admin = format!("unix/{}", socket.display());
                // Caddy refuses every request on a socket unless `origins` names the Host.
                let listen = json!({ "listen": admin, "origins": ["localhost"] });
                (admin, listen, Some(socket))
            }
        };
        let mut apps = match &options.apps {
            Value::Null => json!({}),
            apps => apps.clone(),
        };
        // Caddy's local CA must never install its root into the machine's trust store.
        apps["pki"]["certificate_authorities"]["local"]["install_trust"] = json!(false);
        let config = json!({ "admin": admin_listen, "apps": apps });
        std::fs::write(dir.path().join("caddy.json"), config.to_string()).expect("caddy.json");
        let mut caddy = Caddy {
            child: None,
            dir,
            options,
            admin,
            admin_socket,
        };
        caddy.spawn();
        caddy
    }

    /// Caddy's data directory (its local CA's root is under `caddy/pki/authorities/local`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts Caddy again from its config file (after `stop`).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "Caddy is already running");
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("caddy.log"))
            .expect("log file");
        // Under the package's umask; `exec` keeps the child's PID Caddy's own.
        let mut command = Command::new("sh");
        command.args(["-c", &format!("umask {CADDY_UMASK} && exec \"$@\""), "sh"]);
        if let Some(ns) = &self.options.netns {
            command.args(["ip", "netns", "exec", ns]);
        }
        let child = command
            .arg("caddy")
            .arg("run")
            .arg("--config")
            .arg(dir.join("caddy.json"))
            .env("XDG_DATA_HOME", self.data_dir())
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("HOME", dir)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning caddy");
        self.child = Some(child);
        let up = eventually(CADDY_TIMEOUT, || self.config().is_some());
        assert!(up, "Caddy's admin API did not answer; log:\n{}", self.log());
    }

    /// Stops Caddy (SIGTERM, then the hard way) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if !eventually(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Caddy's running config (`Null` when empty); None when the admin API does not answer.
    pub fn config(&self) -> Option<Value> {
        let out = self.admin_curl(&[], "/config/").output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `curl -f` to the admin API at `path`, run after `prefix` (e.g. `setpriv ...` to run it
    /// as another user).
    pub fn admin_curl(&self, prefix: &[&str], path: &str) -> Command {
        let mut args: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        args.extend(["curl", "-sS", "--max-time", "5", "-f"].map(String::from));
        let url = match &self.admin_socket {
            Some(socket) => {
                args.push("--unix-socket".into());
                args.push(socket.to_string_lossy().into_owned());
                format!("http://localhost{path}")
            }
            None => format!("http://{}{path}", self.admin),
        };
        args.push(url);
        let mut command = Command::new(&args[0]);
        command.args(&args[1..]).stdin(Stdio::null());
        command
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What curl got: the status line's code (0 when no answer), headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub error: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Every value of a header that may repeat (`Set-Cookie`).
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let skip = prefix.len();
        self.headers
            .lines()
            .filter(move |l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(move |l| l[skip..].trim())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A picd set up by the wizard, behind a Caddy that serves it at `CELL_DOMAIN` on `https`.
pub struct CaddyCell {
    pub caddy: Caddy,
    pub picd: Picd,
    pub admin: TestClient,
    /// Where Caddy serves https and http: `ip` and a free port each.
    pub ip: String,
    pub https_port: u16,
    pub http_port: u16,
    /// The cell's CA certificate (PEM), as GET /api/vault/ca.crt gave it.
    pub ca_file: PathBuf,
    /// picd's own socket, which Caddy proxies to (`listen_socket`).
    pub picd_socket: PathBuf,
    _sockets: tempfile::TempDir,
}

impl CaddyCell {
    /// Caddy listens on `ip` (127.0.0.1, or an address of the root namespace); picd reconciles
    /// every second so that a Caddy restarted empty is repaired quickly.
    pub async fn start(ip: &str) -> CaddyCell {
        let ports = (free_port_on(ip), free_port_on(ip));
        CaddyCell::start_with(Caddy::start(), ip, ports).await
    }

    /// `start` on 127.0.0.1 with more environment for picd (a Docker engine's socket, say).
    pub async fn start_with_env(extra: &[(&str, String)]) -> CaddyCell {
        let ip = "127.0.0.1";
        let ports = (free_port_on(ip), free_port_on(ip));
        CaddyCell::start_inner(Caddy::start(), ip, ports, extra).await
    }

    /// `start` with a given Caddy, and Caddy's https and http ports.
    pub async fn start_with(caddy: Caddy, ip: &str, ports: (u16, u16)) -> CaddyCell {
        CaddyCell::start_inner(caddy, ip, ports, &[]).await
    }

    async fn start_inner(
        caddy: Caddy,
        ip: &str,
        (https_port, http_port): (u16, u16),
        extra: &[(&str, String)],
    ) -> CaddyCell {
        let sockets = tempfile::tempdir().expect("temporary directory");
        let picd_socket = sockets.path().join("http.sock");
        let env = [
            ("PICD_CADDY_ADMIN", caddy.admin.clone()),
            (
                "PICD_LISTEN_SOCKET",
                picd_socket.to_string_lossy().into_owned(),
            ),
            ("PICD_CADDY_HTTPS_LISTEN", format!("{ip}:{https_port}")),
            ("PICD_CADDY_HTTP_LISTEN", format!("{ip}:{http_port}")),
            ("PICD_RECONCILE_INTERVAL_SECONDS", "1".to_string()),
        ];
        let options = PicdOptions {
            env: env
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..PicdOptions::default()
        };
        let (picd, admin) = super::picd_with_admin_using(options).await;
        let resp = admin.get("/api/vault/ca.crt").await;
        assert_eq!(resp.status(), StatusCode::OK, "GET /api/vault/ca.crt");
        let ca_file = picd.root().join("cell-ca.crt");
        std::fs::write(&ca_file, resp.text().await.expect("CA PEM")).expect("CA file");
        let cell = CaddyCell {
            caddy,
            picd,
            admin,
            ip: ip.to_string(),
            https_port,
            http_port,
            ca_file,
            picd_socket,
            _sockets: sockets,
        };
        cell.expect_served(CELL_DOMAIN, "/health", 200);
        cell
    }

    /// `curl` to `https://host:port/path` through Caddy, trusting only the cell's CA; `prefix`
    /// runs it elsewhere (e.g. `ip netns exec NS`), `extra` adds arguments.
    pub fn curl_in(&self, prefix: &[&str], host: &str, path: &str, extra: &[&str]) -> Answer {
        let resolve = format!("{host}:{}:{}", self.https_port, self.ip);
        let url = format!("https://{host}:{}{path}", self.https_port);
        let ca = self.ca_file.to_string_lossy().into_owned();
        let mut args: Vec<&str> = prefix.to_vec();
        args.extend(["curl", "-sS", "--max-time", CURL_TIMEOUT_SECONDS, "-D", "-"]);
        args.extend(["--cacert", &ca, "--resolve", &resolve]);
        args.extend(extra);
        args.push(&url);
        curl(&args)
    }

    pub fn curl(&self, host: &str, path: &str, extra: &[&str]) -> Answer {
        self.curl_in(&[], host, path, extra)
    }

    /// Plain http to Caddy's http listener.
    pub fn curl_http(&self, host: &str, path: &str) -> Answer {
        let resolve = format!("{host}:{}:{}", self.http_port, self.ip);
        let url = format!("http://{host}:{}{path}", self.http_port);
        curl(
            &["curl", "-sS", "--max-time", CURL_TIMEOUT_SECONDS, "-D", "-"]
                .into_iter()
                .chain(["--resolve", &resolve, &url])
                .collect::<Vec<_>>(),
        )
    }

    /// Waits until `host` answers `path` with `status` through Caddy; fails the test with the
    /// last answer and both logs otherwise.
    pub fn expect_served(&self, host: &str, path: &str, status: u16) -> Answer {
        let deadline = Instant::now() + CADDY_TIMEOUT;
        loop {
            let answer = self.curl(host, path, &[]);
            if answer.status == status {
                return answer;
            }
            if Instant::now() >= deadline {
                panic!(
                    "https://{host}{path} through Caddy: wanted {status}, last {answer:?}\n\
                     --- picd ---\n{}\n--- caddy ---\n{}",
                    self.picd.log(),
                    self.caddy.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `host` is no longer served with a certificate from the cell's CA.
    pub fn expect_not_served(&self, host: &str) {
        let gone = eventually(CADDY_TIMEOUT, || self.curl(host, "/", &[]).status == 0);
        assert!(
            gone,
            "{host} is still served: {:?}",
            self.curl(host, "/", &[])
        );
    }

    /// The serial and issuer of the certificate Caddy serves for `host`.
    pub fn served_certificate(&self, host: &str) -> (String, String) {
        let connect = format!("{}:{}", self.ip, self.https_port);
        let hello = Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-servername", host])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("openssl s_client");
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-issuer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl x509");
        use std::io::Write;
        let _ = x509.stdin.take().expect("stdin").write_all(&hello.stdout);
        let out = x509.wait_with_output().expect("openssl x509");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in the served certificate: {text}"))
                .trim()
                .to_string()
        };
        (field("serial="), field("issuer="))
    }
}

/// Runs curl (`args[0]` is the program) with `-D -`: headers, then the body, on stdout.
pub fn curl(args: &[&str]) -> Answer {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
        error: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A port free on `ip` right now.
fn free_port_on(ip: &str) -> u16 {
    super::ports::free_port_on(ip.parse().expect("an address"))
}
