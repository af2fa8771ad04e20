//! The proxy exits' processes: per connection one `redsocks` (its config written 0600 by
//! picd, tracked by PID, started again when it dies, with a growing pause if it keeps dying)
//! and one DNS forwarder inside picd. A pass starts what is missing, restarts what changed and
//! stops what is gone; `stop_all` at shutdown. A redsocks an earlier picd left running (kill
//! -9) is found by its PID file and stopped before a new one takes the port.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{config, dns, Upstream};

const REDSOCKS: &str = "redsocks";
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);
/// A run this long counts as healthy: the next death restarts it after the first pause again.
const STEADY_RUN: Duration = Duration::from_secs(30);
const STALE_STOP_WAIT: Duration = Duration::from_secs(2);

/// One proxy exit as a pass wants it.
pub struct ProxyExit {
    pub id: String,
    pub name: String,
    pub slot: u8,
    pub upstream: Upstream,
    pub dns: Vec<IpAddr>,
}

struct Running {
    identity: String,
    stop: oneshot::Sender<()>,
    watcher: JoinHandle<()>,
    pid: Arc<AtomicU32>,
    forwarder: Option<dns::Forwarder>,
}

pub struct Supervisor {
    dir: PathBuf,
    running: Mutex<HashMap<String, Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Supervisor {
    pub fn new(state_dir: &Path) -> Self {
        Supervisor {
            dir: state_dir.join("connectivity"),
            running: Mutex::default(),
        }
    }

    fn paths(&self, slot: u8) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("redsocks-{slot}.conf")),
            self.dir.join(format!("redsocks-{slot}.pid")),
        )
    }

    /// The PID of a connection's redsocks while it runs.
    pub fn pid(&self, id: &str) -> Option<u32> {
        let running = lock(&self.running);
        let pid = running.get(id)?.pid.load(Ordering::SeqCst);
        (pid != 0).then_some(pid)
    }

    pub fn count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Makes the processes match `wanted`; answers a problem per connection that has one.
    /// `listen` is the cell's WireGuard address (None before setup: nothing can listen).
    pub async fn sync(&self, wanted: Vec<ProxyExit>, listen: Option<Ipv4Addr>) -> Vec<String> {
        let mut problems = Vec::new();
        let gone: Vec<Running> = {
            let mut running = lock(&self.running);
            let ids: Vec<String> = running
                .keys()
                .filter(|id| !wanted.iter().any(|w| &w.id == *id))
                .cloned()
                .collect();
            ids.iter().filter_map(|id| running.remove(id)).collect()
        };
        for old in gone {
            stop(old).await;
        }
        // Slots of removed connections leave no files behind.
        self.remove_unused_files(&wanted);
        let Some(listen) = listen else {
            return problems;
        };
        for exit in wanted {
            if let Err(e) = self.sync_one(&exit, listen).await {
                problems.push(format!("{}: {e}", exit.name));
            }
        }
        problems
    }

    async fn sync_one(&self, exit: &ProxyExit, listen: Ipv4Addr) -> Result<(), String> {
        let text = config::render(
            &exit.upstream,
            listen,
            super::redsocks_port(exit.slot),
            config::run_as(),
        );
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        hash.update(format!("{:?}", exit.dns).as_bytes());
        let identity = hex::encode(hash.finalize());
        let current = lock(&self.running).remove(&exit.id);
        let mut running = match current {
            Some(r) if r.identity == identity && !r.watcher.is_finished() => r,
            other => {
                if let Some(old) = other {
                    stop(old).await;
                }
                self.start(exit, &text, identity)?
            }
        };
        let mut result = Ok(());
        if running.forwarder.is_none() {
            let at = SocketAddr::new(IpAddr::V4(listen), super::dns_port(exit.slot));
            match dns::start(at, exit.upstream.clone(), exit.dns.clone()).await {
                Ok(f) => running.forwarder = Some(f),
                Err(e) => result = Err(format!("DNS forwarder on {at}: {e}")),
            }
        }
        lock(&self.running).insert(exit.id.clone(), running);
        result
    }

    fn start(&self, exit: &ProxyExit, text: &str, identity: String) -> Result<Running, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let (conf, pidfile) = self.paths(exit.slot);
        crate::files::write_atomically(&conf, text.as_bytes(), 0o600)
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        let (stop, stopped) = oneshot::channel();
        let pid = Arc::new(AtomicU32::new(0));
        let watcher = tokio::spawn(watch(
            exit.name.clone(),
            conf,
            pidfile,
            Arc::clone(&pid),
            stopped,
        ));
        Ok(Running {
            identity,
            stop,
            watcher,
            pid,
            forwarder: None,
        })
    }

    fn remove_unused_files(&self, wanted: &[ProxyExit]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let slot = name
                .strip_prefix("redsocks-")
                .and_then(|rest| rest.split('.').next())
                .and_then(|s| s.parse::<u8>().ok());
            if let Some(slot) = slot {
                if !wanted.iter().any(|w| w.slot == slot) {
                    let (conf, _) = self.paths(slot);
                    stop_stale(&entry.path(), &conf);
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Stops every process (picd is shutting down).
    pub async fn stop_all(&self) {
        let all: Vec<Running> = lock(&self.running).drain().map(|(_, r)| r).collect();
        for running in all {
            stop(running).await;
        }
    }
}

async fn stop(running: Running) {
    let _ = running.stop.send(());
    let _ = running.watcher.await;
}

/// Runs redsocks until told to stop; starts it again whenever it dies.
async fn watch(
    name: String,
    conf: PathBuf,
    pidfile: PathBuf,
    pid: Arc<AtomicU32>,
    mut stop: oneshot::Receiver<()>,
) {
    let (p, c) = (pidfile.clone(), conf.clone());
    let _ = tokio::task::spawn_blocking(move || stop_stale(&p, &c)).await;
    let mut pause = FIRST_PAUSE;
    loop {
        let started = Instant::now();
        let spawned = tokio::process::Command::new(REDSOCKS)
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Err(e) => {
                tracing::warn!(connection = %name, error = %e, "redsocks could not start (apt-get install redsocks)")
            }
            Ok(mut child) => {
                let id = child.id().unwrap_or(0);
                pid.store(id, Ordering::SeqCst);
                let _ = std::fs::write(&pidfile, format!("{id}\n"));
                tracing::info!(connection = %name, pid = id, "redsocks started");
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(carry_log(name.clone(), stderr));
                }
                tokio::select! {
                    status = child.wait() => {
                        pid.store(0, Ordering::SeqCst);
                        let status = status.map(|s| s.to_string()).unwrap_or_default();
                        tracing::warn!(connection = %name, %status, "redsocks ended; starting it again");
                    }
                    _ = &mut stop => {
                        let _ = child.kill().await;
                        finish(&name, &pid, &pidfile, &conf);
                        return;
                    }
                }
            }
        }
        if started.elapsed() >= STEADY_RUN {
            pause = FIRST_PAUSE;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut stop => {
                finish(&name, &pid, &pidfile, &conf);
                return;
            }
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

fn finish(name: &str, pid: &AtomicU32, pidfile: &Path, conf: &Path) {
    pid.store(0, Ordering::SeqCst);
    let _ = std::fs::remove_file(pidfile);
    let _ = std::fs::remove_file(conf);
    tracing::info!(connection = %name, "redsocks stopped");
}

/// redsocks' lines go into picd's log (they never hold the password: redsocks logs
/// addresses and errors).
async fn carry_log(name: String, stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(connection = %name, "redsocks: {line}");
    }
}

/// Stops the redsocks a PID file names, if that process is still redsocks on this config
/// (a PID can be reused by anything once its process is gone).
fn stop_stale(pidfile: &Path, conf: &Path) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    else {
        return;
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if !cmdline.contains(REDSOCKS) || !cmdline.contains(&*conf.to_string_lossy()) {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + STALE_STOP_WAIT;
    while proc.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if proc.exists() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    tracing::info!(pid, "stopped a redsocks an earlier picd left running");
}
