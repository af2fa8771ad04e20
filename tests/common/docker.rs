//! A private Docker engine for the service tests: its own data root, exec root, pid file and
//! unix socket under a temporary directory, no bridge and no iptables rules (services use host
//! networking on loopback ports). One engine is shared by the tests of a test binary that run
//! at the same time, and stopped by its PID when the last of them drops it. Service images
//! are built once per run into `target/service-images`, keyed by recipe hash (picd's build
//! takes a lock there, so parallel test binaries build each recipe once).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::tools::require_tool;

const DOCKERD_START: Duration = Duration::from_secs(60);
const DOCKERD_STOP: Duration = Duration::from_secs(20);

/// The image cache every service test shares.
pub fn image_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/service-images")
}

pub struct Dockerd {
    child: Mutex<Option<Child>>,
    dir: tempfile::TempDir,
    /// The network namespace the engine runs in (None: the test's own).
    netns: Option<String>,
}

static SHARED: Mutex<Weak<Dockerd>> = Mutex::new(Weak::new());

impl Dockerd {
    /// The engine shared by the running tests, started if none runs.
    pub fn shared() -> Arc<Dockerd> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = shared.upgrade() {
            return running;
        }
        let started = Arc::new(Dockerd::start(Dockerd::new_dir(), None));
        *shared = Arc::downgrade(&started);
        started
    }

    /// An engine of the caller's own, for a test that stops or restarts it, or that counts
    /// every container on it.
    pub fn private() -> Arc<Dockerd> {
        Arc::new(Dockerd::start(Dockerd::new_dir(), None))
    }

    /// A directory for an engine's data, whose `socket_in` a test can hand to picd before
    /// the engine starts.
    pub fn new_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("picd-dockerd-")
            .tempdir()
            .expect("temporary directory")
    }

    /// The socket of an engine started on `dir`.
    pub fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("docker.sock")
    }

    /// An engine of the caller's own started inside the network namespace `netns`: host
    /// networking then means that namespace (a cell's), and its containers listen there.
    pub fn private_in_netns(netns: &str, dir: tempfile::TempDir) -> Arc<Dockerd> {
        Arc::new(Dockerd::start(dir, Some(netns.to_string())))
    }

    fn start(dir: tempfile::TempDir, netns: Option<String>) -> Dockerd {
        super::require_root();
        require_tool("dockerd");
        require_tool("docker");
        let child = Dockerd::spawn(dir.path(), netns.as_deref());
        let dockerd = Dockerd {
            child: Mutex::new(Some(child)),
            dir,
            netns,
        };
        dockerd.wait_answering();
        dockerd
    }

    /// Stops the engine (its containers stop with it) and starts it again on the same data.
    pub fn restart(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = child.as_mut() {
            stop_child(running);
        }
        let _ = std::fs::remove_file(self.socket());
        *child = Some(Dockerd::spawn(self.dir.path(), self.netns.as_deref()));
        drop(child);
        self.wait_answering();
    }

    fn wait_answering(&self) {
        let started = Instant::now();
        while started.elapsed() < DOCKERD_START {
            if self.socket().exists() && self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "dockerd did not answer within {DOCKERD_START:?}:\n{}",
            self.log()
        );
    }

    fn spawn(root: &Path, netns: Option<&str>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .expect("dockerd log");
        // nsenter enters the network namespace only and execs dockerd (the child is dockerd
        // itself); `ip netns exec` would also remount /sys, hiding the cgroup tree dockerd needs.
        let mut command = match netns {
            Some(ns) => {
                let mut command = Command::new("nsenter");
                command.arg(format!("--net=/run/netns/{ns}")).arg("dockerd");
                command
            }
            None => Command::new("dockerd"),
        };
        command
            .arg(format!("--data-root={}", root.join("data").display()))
            .arg(format!("--exec-root={}", root.join("exec").display()))
            .arg(format!("--pidfile={}", root.join("dockerd.pid").display()))
            .arg(format!(
                "--host=unix://{}",
                root.join("docker.sock").display()
            ))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting dockerd")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running docker")
    }

    /// The docker CLI's standard output, asserting success.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        // Containers first (the engine would leave their processes to containerd otherwise).
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        stop_child(&mut child);
        // The engine leaves its network namespace handle (`exec/netns/default`, an nsfs
        // mount) behind; TempDir cannot remove a mount point, and each engine's data is
        // hundreds of MB of imported images, so a run would fill the disk.
        unmount_under(self.dir.path());
    }
}

/// Detaches every mount below `root`, deepest first.
fn unmount_under(root: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(root))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

/// SIGTERM to our own dockerd, by its id; SIGKILL if it is still there after DOCKERD_STOP.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while started.elapsed() < DOCKERD_STOP {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The name picd gives a service's container: `picd-<the cell's id, 12 digits>-<service>`.
pub fn container_name(db: &rusqlite::Connection, service: &str) -> String {
    let cell: String = db
        .query_row("SELECT cell_id FROM cell_identity", [], |r| r.get(0))
        .expect("the cell's id");
    format!("picd-{}-{service}", &cell[..12])
}

/// `picd services build-images` for a test picd's state directory, against this engine, with
/// the shared cache: the first test of a run builds, the others import.
pub fn build_images(state_dir: &Path, dockerd: &Dockerd) -> String {
    let out = build_images_with(state_dir, dockerd, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "picd services build-images failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `build_images` with more `PICD_*` settings, its output whether it succeeded or not.
pub fn build_images_with(state_dir: &Path, dockerd: &Dockerd, env: &[(&str, &str)]) -> Output {
    require_tool("debootstrap");
    super::clean_command()
        .args(["services", "build-images", "--state-dir"])
        .arg(state_dir)
        .arg("--cache")
        .arg(image_cache_dir())
        .env("PICD_DOCKER_SOCKET", dockerd.socket())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running picd services build-images")
}

/// A cell driving `dockerd` with its reconciler every `reconcile_seconds`, the service
/// images built (the cache is shared: once per run), and `service` installed to its `done`
/// step.
pub async fn cell_with_service(
    dockerd: &Dockerd,
    reconcile_seconds: &str,
    service: &str,
) -> (super::Picd, super::TestClient) {
    let options = super::PicdOptions {
        env: vec![
            (
                "PICD_DOCKER_SOCKET".into(),
                dockerd.socket().display().to_string(),
            ),
            (
                "PICD_RECONCILE_INTERVAL_SECONDS".into(),
                reconcile_seconds.into(),
            ),
        ],
        ..super::PicdOptions::default()
    };
    let (picd, admin) = super::picd_with_admin_using(options).await;
    let built = build_images(&picd.state_dir(), dockerd);
    assert!(
        built.contains(&format!("{service}: image sha256:")),
        "{built}"
    );
    let resp = admin
        .send_json(
            reqwest::Method::POST,
            "/api/store/install",
            &serde_json::json!({ "id": service }),
        )
        .await;
    let events = resp.text().await.unwrap();
    assert!(events.contains(r#""step":"done""#), "{events}");
    (picd, admin)
}

/// The HTTP status a service answers on its loopback port (curl's `000` when nothing does).
pub fn http_status(port: u16) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
