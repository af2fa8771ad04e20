//! The proxy exits' processes: per connection one `redsocks` (its config written 0600 by
//! picd, supervised as a `child`: tracked by PID, started again when it dies, an orphan of a
//! killed picd stopped first) and one DNS forwarder inside picd. A pass starts what is
//! missing, restarts what changed and stops what is gone; `stop_all` at shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{config, dns, Upstream};
use crate::connectivity::child::{self, ChildSpec, Supervised};

const REDSOCKS: &str = "redsocks";

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
    child: Supervised,
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
        lock(&self.running).get(id)?.child.pid()
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
            Some(r) if r.identity == identity && !r.child.is_finished() => r,
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
        let child = Supervised::start(ChildSpec {
            label: REDSOCKS,
            connection: exit.name.clone(),
            program: REDSOCKS.into(),
            args: vec!["-c".into(), conf.clone().into()],
            config: conf,
            pidfile,
            package: REDSOCKS,
        });
        Ok(Running {
            identity,
            child,
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
                    child::stop_stale(&entry.path(), REDSOCKS, &conf);
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
    running.child.stop().await;
}
