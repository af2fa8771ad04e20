//! One supervised child process of an exit (redsocks for a proxy exit, tor for a tor exit):
//! started by its own watcher task, its PID kept (in memory and in a PID file beside its
//! config), started again when it dies after a pause that grows while it keeps dying, killed
//! when told to stop. A child an earlier picd left running (picd killed with -9) is found by
//! its PID file and stopped before a new one takes its ports.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(10);
/// A run this long counts as healthy: the next death restarts it after the first pause again.
const STEADY_RUN: Duration = Duration::from_secs(30);
const STALE_STOP_WAIT: Duration = Duration::from_secs(2);

/// What to run and where its files are.
#[derive(Clone)]
pub struct ChildSpec {
    /// What the logs call it (`redsocks`, `tor`).
    pub label: &'static str,
    /// The connection's name, for the logs.
    pub connection: String,
    pub program: String,
    pub args: Vec<OsString>,
    /// Its config file: a stale process must name it on its command line to be ours.
    pub config: PathBuf,
    pub pidfile: PathBuf,
    /// What `apt-get install` brings the program, for the log line when it cannot start.
    pub package: &'static str,
}

/// A running watcher and what it knows of its child.
pub struct Supervised {
    stop: oneshot::Sender<()>,
    watcher: JoinHandle<()>,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
}

impl Supervised {
    /// Starts the watcher (which first stops a stale child named by the PID file).
    pub fn start(spec: ChildSpec) -> Supervised {
        let (stop, stopped) = oneshot::channel();
        let pid = Arc::new(AtomicU32::new(0));
        let restarts = Arc::new(AtomicU32::new(0));
        let watcher = tokio::spawn(watch(
            spec,
            Arc::clone(&pid),
            Arc::clone(&restarts),
            stopped,
        ));
        Supervised {
            stop,
            watcher,
            pid,
            restarts,
        }
    }

    /// The child's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid = self.pid.load(Ordering::SeqCst);
        (pid != 0).then_some(pid)
    }

    /// How many times the child was started again after it ended.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }

    pub fn is_finished(&self) -> bool {
        self.watcher.is_finished()
    }

    /// Kills the child and waits for the watcher (which removes the PID and config files).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.watcher.await;
    }
}

/// Runs the child until told to stop; starts it again whenever it dies.
async fn watch(
    spec: ChildSpec,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
    mut stop: oneshot::Receiver<()>,
) {
    let stale = spec.clone();
    let _ = tokio::task::spawn_blocking(move || {
        stop_stale(&stale.pidfile, &stale.program, &stale.config)
    })
    .await;
    let mut pause = FIRST_PAUSE;
    loop {
        let started = Instant::now();
        let spawned = tokio::process::Command::new(&spec.program)
            .args(&spec.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Err(e) => tracing::warn!(connection = %spec.connection, error = %e,
                "{} could not start (apt-get install {})", spec.label, spec.package),
            Ok(mut child) => {
                let id = child.id().unwrap_or(0);
                pid.store(id, Ordering::SeqCst);
                let _ = std::fs::write(&spec.pidfile, format!("{id}\n"));
                tracing::info!(connection = %spec.connection, pid = id, "{} started", spec.label);
                if let Some(out) = child.stdout.take() {
                    tokio::spawn(carry_log(spec.label, spec.connection.clone(), out));
                }
                if let Some(err) = child.stderr.take() {
                    tokio::spawn(carry_log(spec.label, spec.connection.clone(), err));
                }
                tokio::select! {
                    status = child.wait() => {
                        pid.store(0, Ordering::SeqCst);
                        let status = status.map(|s| s.to_string()).unwrap_or_default();
                        tracing::warn!(connection = %spec.connection, %status,
                            "{} ended; starting it again", spec.label);
                    }
                    _ = &mut stop => {
                        let _ = child.kill().await;
                        finish(&spec, &pid);
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
                finish(&spec, &pid);
                return;
            }
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
        restarts.fetch_add(1, Ordering::SeqCst);
    }
}

fn finish(spec: &ChildSpec, pid: &AtomicU32) {
    pid.store(0, Ordering::SeqCst);
    let _ = std::fs::remove_file(&spec.pidfile);
    let _ = std::fs::remove_file(&spec.config);
    tracing::info!(connection = %spec.connection, "{} stopped", spec.label);
}

/// The child's lines go into picd's log (neither redsocks nor tor prints a secret: they log
/// addresses, progress and errors).
async fn carry_log<R: tokio::io::AsyncRead + Unpin>(label: &'static str, name: String, out: R) {
    let mut lines = tokio::io::BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(connection = %name, "{label}: {line}");
    }
}

/// Stops the process a PID file names, if that process is still `program` on this config
/// (a PID can be reused by anything once its process is gone).
pub fn stop_stale(pidfile: &Path, program: &str, config: &Path) {
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
    if !cmdline.contains(program) || !cmdline.contains(&*config.to_string_lossy()) {
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
    tracing::info!(pid, program, "stopped a child an earlier picd left running");
}
