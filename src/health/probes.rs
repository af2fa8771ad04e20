//! Drivers for the subsystems whose desired state picd does not manage yet: each finds out
//! whether its component can be driven on this machine (nft works) and reports that truthfully in /api/status. Domains replace
//! these with their real drivers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

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
) -> Drivers {
    Drivers::new(vec![
        wireguard,
        dns,
        caddy,
        Arc::new(Probe::Nftables),
        Arc::new(crate::services::driver::DockerDriver::new(
            settings.docker_socket.clone(),
            &settings.state_dir,
        )),
    ])
}

pub enum Probe {
    Nftables,
}

#[async_trait]
impl Driver for Probe {
    fn name(&self) -> &'static str {
        match self {
            Probe::Nftables => "nftables",
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
            Probe::Nftables => nftables().await,
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

async fn nftables() -> Result<String, String> {
    let run = tokio::process::Command::new("nft")
        .args(["list", "tables"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => Ok("nft works".into()),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "nft failed: {}",
                err.lines().next().unwrap_or("no message")
            ))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("nft is not installed (Debian package nftables)".into())
        }
        Ok(Err(e)) => Err(format!("nft could not run: {e}")),
        Err(_) => Err("nft timed out".into()),
    }
}
