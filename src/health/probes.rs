//! The drivers of this build, in /api/status order, and the capability check the drivers that
//! touch the network share. Every subsystem now has a real driver in its own domain.

use std::sync::Arc;

use crate::driver::{Driver, Drivers};

/// The drivers of this build, in /api/status order.
pub fn default_drivers(
    wireguard: Arc<dyn Driver>,
    dns: Arc<dyn Driver>,
    caddy: Arc<dyn Driver>,
    nftables: Arc<dyn Driver>,
    docker: Arc<dyn Driver>,
) -> Drivers {
    Drivers::new(vec![wireguard, dns, caddy, nftables, docker])
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
