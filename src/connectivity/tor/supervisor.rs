//! The tor exits' processes: per connection one `tor` on a torrc picd wrote (0600) and
//! checked, supervised as a `child` (PID kept, started again when it dies with a growing
//! pause, an orphan of a killed picd stopped first). A pass starts what is missing, restarts
//! what changed and stops what is gone (and removes its folders); `stop_all` at shutdown.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::torrc::{self, TorPaths};
use crate::connectivity::child::{self, ChildSpec, Supervised};

const TOR: &str = "tor";

/// One tor exit as a pass wants it.
pub struct TorExit {
    pub id: String,
    pub name: String,
    pub slot: u8,
}

struct Running {
    identity: String,
    slot: u8,
    child: Supervised,
}

pub struct Supervisor {
    /// The program run as tor (the `tor_command` setting).
    command: String,
    run_root: PathBuf,
    data_root: PathBuf,
    running: Mutex<HashMap<String, Running>>,
    /// The last problem of each connection (a refused torrc), cleared when it runs.
    errors: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

impl Supervisor {
    pub fn new(state_dir: &Path, command: &str) -> Self {
        Supervisor {
            command: command.to_string(),
            run_root: state_dir.join("run").join("tor"),
            data_root: state_dir.join("tor"),
            running: Mutex::default(),
            errors: Mutex::default(),
        }
    }

    pub fn paths(&self, slot: u8) -> TorPaths {
        TorPaths::new(&self.run_root, &self.data_root, slot)
    }

    /// The PID of a connection's tor while it runs, its restarts and its last problem.
    pub fn seen(&self, id: &str) -> (Option<u32>, u32, Option<String>) {
        let running = lock(&self.running);
        let child = running.get(id).map(|r| &r.child);
        (
            child.and_then(Supervised::pid),
            child.map_or(0, Supervised::restarts),
            lock(&self.errors).get(id).cloned(),
        )
    }

    /// The control socket and cookie of a connection's tor, while picd runs one.
    pub fn control(&self, id: &str) -> Option<(PathBuf, PathBuf)> {
        let slot = lock(&self.running).get(id)?.slot;
        let paths = self.paths(slot);
        Some((paths.control(), paths.cookie()))
    }

    pub fn count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Makes the processes match `wanted`; answers a problem per connection that has one.
    /// `listen` is the cell's WireGuard address (None before setup: nothing can listen).
    pub async fn sync(&self, wanted: Vec<TorExit>, listen: Option<Ipv4Addr>) -> Vec<String> {
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
            old.child.stop().await;
        }
        lock(&self.errors).retain(|id, _| wanted.iter().any(|w| &w.id == id));
        self.remove_unused_folders(&wanted);
        let Some(listen) = listen else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for exit in wanted {
            match self.sync_one(&exit, listen).await {
                Ok(()) => {
                    lock(&self.errors).remove(&exit.id);
                }
                Err(e) => {
                    problems.push(format!("{}: {e}", exit.name));
                    lock(&self.errors).insert(exit.id, e);
                }
            }
        }
        problems
    }

    async fn sync_one(&self, exit: &TorExit, listen: Ipv4Addr) -> Result<(), String> {
        let paths = self.paths(exit.slot);
        let trans = super::trans_port(exit.slot);
        let text = torrc::render(
            &exit.name,
            &paths,
            listen,
            trans,
            super::dns_port(exit.slot),
        );
        let mut hash = Sha256::new();
        hash.update(self.command.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        let identity = hex::encode(hash.finalize());
        let current = lock(&self.running).remove(&exit.id);
        if let Some(r) = current {
            if r.identity == identity && !r.child.is_finished() {
                lock(&self.running).insert(exit.id.clone(), r);
                return Ok(());
            }
            r.child.stop().await;
        }
        private_dir(&paths.run)?;
        private_dir(&paths.data)?;
        let file = paths.torrc();
        crate::files::write_atomically(&file, text.as_bytes(), 0o600)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if let Err(e) = torrc::verify(&self.command, &file).await {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
        let child = Supervised::start(ChildSpec {
            label: TOR,
            connection: exit.name.clone(),
            program: self.command.clone(),
            args: torrc::args(&file),
            config: file,
            pidfile: paths.pidfile(),
            package: TOR,
        });
        let running = Running {
            identity,
            slot: exit.slot,
            child,
        };
        lock(&self.running).insert(exit.id.clone(), running);
        Ok(())
    }

    /// The folders of slots no tor connection holds: a tor an earlier picd left on them is
    /// stopped, and the folders (tor's cached directory data included) removed.
    fn remove_unused_folders(&self, wanted: &[TorExit]) {
        let Ok(entries) = std::fs::read_dir(&self.run_root) else {
            return;
        };
        for entry in entries.flatten() {
            let slot = entry.file_name().to_string_lossy().parse::<u8>().ok();
            let Some(slot) = slot.filter(|s| !wanted.iter().any(|w| w.slot == *s)) else {
                continue;
            };
            let paths = self.paths(slot);
            child::stop_stale(&paths.pidfile(), &self.command, &paths.torrc());
            let _ = std::fs::remove_dir_all(&paths.run);
            let _ = std::fs::remove_dir_all(&paths.data);
        }
    }

    /// Stops every process (picd is shutting down).
    pub async fn stop_all(&self) {
        let all: Vec<Running> = lock(&self.running).drain().map(|(_, r)| r).collect();
        for running in all {
            running.child.stop().await;
        }
    }
}
