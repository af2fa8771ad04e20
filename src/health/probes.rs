//! Drivers for the subsystems whose desired state picd does not manage yet: each finds out
//! whether its component can be driven on this machine (the Docker socket answers, nft
//! works) and reports that truthfully in /api/status. Domains replace
//! these with their real drivers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Settings;
use crate::db::Db;
use crate::driver::{Driver, DriverError, Drivers, SubsystemStatus};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The drivers of this build, in /api/status order.
pub fn default_drivers(
    settings: &Settings,
    wireguard: Arc<dyn Driver>,
    dns: Arc<dyn Driver>,
    caddy: Arc<dyn Driver>,
    nftables: Arc<dyn Driver>,
) -> Drivers {
    Drivers::new(vec![
        wireguard,
        dns,
        caddy,
        nftables,
        Arc::new(Probe::Docker(settings.docker_socket.clone())),
    ])
}

pub enum Probe {
    Docker(PathBuf),
}

#[async_trait]
impl Driver for Probe {
    fn name(&self) -> &'static str {
        match self {
            Probe::Docker(_) => "docker",
        }
    }

    async fn reconcile(&self, _db: &Db) -> Result<(), DriverError> {
        // Nothing is desired of these subsystems yet, so there is nothing to apply; their state
        // is probed when /api/status asks (probing here would spawn `nft` on every change).
        Ok(())
    }

    async fn status(&self) -> SubsystemStatus {
        let name = self.name();
        let result = match self {
            Probe::Docker(socket) => docker(socket).await,
        };
        match result {
            Ok(reason) => SubsystemStatus::ok(name, Some(reason)),
            Err(reason) => SubsystemStatus::unavailable(name, reason),
        }
    }
}

/// Whether this process holds CAP_NET_ADMIN in its effective set.
pub fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// One HTTP/1.0 GET over an already-connected stream; Ok with the status line on 2xx.
async fn http_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> Result<String, String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 256];
    let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    match line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(line),
        _ => Err(format!("unexpected answer: {line}")),
    }
}

async fn docker(socket: &Path) -> Result<String, String> {
    let attempt = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        http_get(stream, "docker", "/_ping").await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Ok(_)) => Ok(format!("engine answers at {}", socket.display())),
        Ok(Err(e)) => Err(format!("no Docker engine at {}: {e}", socket.display())),
        Err(_) => Err(format!(
            "the Docker engine at {} timed out",
            socket.display()
        )),
    }
}
