//! picd's `openvpn` children: one per connection, each watched by its own task that starts it,
//! restarts it when it dies (after a short, growing pause), and on stop kills it and removes
//! its secrets. The PID is kept in a file beside the config, so a process left behind by a
//! picd that was killed is found and stopped before its exit's next process starts (the old
//! one would hold the tun device's name). What the process prints is read for the server's
//! pushed DNS and for "Initialization Sequence Completed"; it is not logged (the lines name
//! the provider's servers and users).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use super::files::{self, Dirs};
use super::push;
use super::Secrets;

const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(30);
/// A process that ran this long was fine: the next restart is quick again.
const RAN_WELL: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const STALE_EXIT_WAIT: Duration = Duration::from_secs(2);

/// What the watcher learns of its process.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub pid: Option<u32>,
    pub restarts: u32,
    /// Counts "Initialization Sequence Completed": a new value means the tunnel (and its tun
    /// device, after a restart) is new, and the exit's route needs a pass.
    pub completed: u64,
    pub pushed_dns: Vec<IpAddr>,
    /// The tun device's IPv6 address, as the management socket last reported it and only if
    /// the server pushed it for this tunnel (None until then, and for a tunnel without IPv6):
    /// the exit carries its peers' IPv6 only with one.
    pub tunnel_v6: Option<Ipv6Addr>,
    /// The `ifconfig-ipv6` address of the server's latest reply, and whether that reply goes on
    /// in another message. A server that stops pushing it while OpenVPN keeps the tun device
    /// (and the management socket still names the old address) takes the exit's IPv6 away.
    pub pushed_ipv6: Option<Ipv6Addr>,
    pub push_continues: bool,
    pub last_error: Option<String>,
}

struct Proc {
    identity: String,
    dirs: Dirs,
    seen: Arc<Mutex<Seen>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// One connection as the supervisor runs it.
pub struct Wanted {
    pub id: String,
    pub ifname: String,
    pub secrets: Secrets,
}

pub struct Supervisor {
    run_dir: PathBuf,
    procs: tokio::sync::Mutex<HashMap<String, Proc>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fingerprint of what the process is started from; only the hash is kept.
fn identity(w: &Wanted) -> String {
    let mut hash = Sha256::new();
    hash.update(w.ifname.as_bytes());
    hash.update(w.secrets.config.as_bytes());
    if let Some((user, pass)) = &w.secrets.credentials {
        hash.update(user.as_bytes());
        hash.update([0]);
        hash.update(pass.as_bytes());
    }
    hex::encode(hash.finalize())
}

impl Supervisor {
    /// `run_dir` is the state dir's `run/openvpn`.
    pub fn new(run_dir: PathBuf) -> Supervisor {
        Supervisor {
            run_dir,
            procs: tokio::sync::Mutex::default(),
        }
    }

    /// Starts a process for each wanted connection that has none (or one started from other
    /// settings), and stops the processes of connections no longer wanted.
    pub async fn sync(&self, wanted: Vec<Wanted>) {
        let mut procs = self.procs.lock().await;
        let gone: Vec<String> = procs
            .keys()
            .filter(|id| !wanted.iter().any(|w| &w.id == *id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(p) = procs.remove(&id) {
                stop(p, true).await;
            }
        }
        for w in wanted {
            let identity = identity(&w);
            match procs.get(&w.id) {
                Some(p) if p.identity == identity && !p.task.is_finished() => continue,
                _ => {}
            }
            if let Some(old) = procs.remove(&w.id) {
                stop(old, false).await;
            }
            let dirs = Dirs::new(&self.run_dir, &w.ifname);
            let seen = Arc::new(Mutex::new(Seen::default()));
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = tokio::spawn(supervise(dirs.clone(), w.secrets, seen.clone(), stop_rx));
            procs.insert(
                w.id,
                Proc {
                    identity,
                    dirs,
                    seen,
                    stop: stop_tx,
                    task,
                },
            );
        }
    }

    /// What the watcher of a connection's process has seen.
    pub async fn seen(&self, id: &str) -> Option<Seen> {
        let procs = self.procs.lock().await;
        procs.get(id).map(|p| lock(&p.seen).clone())
    }

    /// Records the tunnel's IPv6 address the management socket reported, if the server pushed
    /// that address; answers whether it changed (the exit's IPv6 route then needs a pass).
    pub async fn learn_tunnel_v6(&self, id: &str, reported: Option<Ipv6Addr>) -> bool {
        let procs = self.procs.lock().await;
        let Some(p) = procs.get(id) else {
            return false;
        };
        let mut seen = lock(&p.seen);
        let v6 = reported.filter(|a| seen.pushed_ipv6 == Some(*a));
        let changed = seen.tunnel_v6 != v6;
        seen.tunnel_v6 = v6;
        changed
    }

    pub async fn socket(&self, id: &str) -> Option<PathBuf> {
        self.procs.lock().await.get(id).map(|p| p.dirs.socket())
    }

    pub async fn running(&self) -> usize {
        let procs = self.procs.lock().await;
        procs
            .values()
            .filter(|p| lock(&p.seen).pid.is_some())
            .count()
    }

    /// Stops every process (at picd's shutdown).
    pub async fn stop_all(&self) {
        let mut procs = self.procs.lock().await;
        for (_, p) in procs.drain() {
            stop(p, false).await;
        }
    }
}

async fn stop(p: Proc, remove: bool) {
    let _ = p.stop.send(true);
    let mut task = p.task;
    if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
        task.abort();
    }
    files::clean(&p.dirs);
    if remove {
        files::remove(&p.dirs);
    }
}

/// The watcher: start, wait, restart, until told to stop.
async fn supervise(
    dirs: Dirs,
    secrets: Secrets,
    seen: Arc<Mutex<Seen>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = RESTART_FIRST;
    loop {
        let started = Instant::now();
        match start(&dirs, &secrets, &seen).await {
            Ok(mut child) => {
                let ended = tokio::select! {
                    status = child.wait() => Some(status),
                    _ = stop.changed() => None,
                };
                match ended {
                    Some(status) => {
                        let status = status.map(|s| s.to_string()).unwrap_or_default();
                        tracing::warn!(interface = %dirs.ifname, %status, "openvpn ended; restarting it");
                        lock(&seen).last_error = Some(format!("openvpn ended ({status})"));
                    }
                    None => {
                        let _ = child.kill().await;
                        lock(&seen).pid = None;
                        files::clean(&dirs);
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(interface = %dirs.ifname, error = %e, "openvpn could not start");
                lock(&seen).last_error = Some(e);
            }
        }
        lock(&seen).pid = None;
        files::clean(&dirs);
        if started.elapsed() > RAN_WELL {
            pause = RESTART_FIRST;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        pause = (pause * 2).min(RESTART_MAX);
        lock(&seen).restarts += 1;
    }
}

async fn start(
    dirs: &Dirs,
    secrets: &Secrets,
    seen: &Arc<Mutex<Seen>>,
) -> Result<tokio::process::Child, String> {
    stop_stale(dirs).await;
    let config = files::write(dirs, secrets).map_err(|e| format!("writing its files: {e}"))?;
    let mut child = tokio::process::Command::new("openvpn")
        .arg("--config")
        .arg(&config)
        .current_dir(&dirs.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("openvpn could not run (apt-get install openvpn): {e}"))?;
    let pid = child.id();
    if let Some(pid) = pid {
        let _ = std::fs::write(dirs.pid_file(), format!("{pid}\n"));
    }
    {
        let mut seen = lock(seen);
        seen.pid = pid;
        seen.pushed_dns.clear();
        // A new process makes a new tunnel: its IPv6, if any, is learned again.
        seen.tunnel_v6 = None;
        seen.pushed_ipv6 = None;
        seen.push_continues = false;
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(read_output(stdout, seen.clone()));
    }
    Ok(child)
}

/// A process an earlier picd started for this exit (killed before it could stop it): found by
/// its PID file and its command line naming this exit's config, then killed.
async fn stop_stale(dirs: &Dirs) {
    let Ok(text) = std::fs::read_to_string(dirs.pid_file()) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let config = dirs.config();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*config.to_string_lossy());
    if !ours {
        return;
    }
    tracing::info!(pid, interface = %dirs.ifname, "stopping an openvpn left by an earlier picd");
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    let deadline = Instant::now() + STALE_EXIT_WAIT;
    while proc_dir.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn read_output(stdout: tokio::process::ChildStdout, seen: Arc<Mutex<Seen>>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(dns) = push::pushed_dns(&line) {
            let mut seen = lock(&seen);
            seen.pushed_dns = dns;
            // A reply in parts (push-continuation) gives the tunnel's IPv6 in one of them.
            let (v6, continues) = push::pushed_ipv6(&line).unwrap_or_default();
            if !seen.push_continues {
                seen.pushed_ipv6 = None;
            }
            seen.pushed_ipv6 = v6.or(seen.pushed_ipv6);
            seen.push_continues = continues;
        } else if line.ends_with("Initialization Sequence Completed") {
            let mut seen = lock(&seen);
            seen.completed += 1;
            seen.last_error = None;
        } else if line.contains("AUTH_FAILED") {
            lock(&seen).last_error = Some("the provider refused the username or password".into());
        }
    }
}

/// The processes' folder under a state dir.
pub fn run_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("run").join("openvpn")
}
