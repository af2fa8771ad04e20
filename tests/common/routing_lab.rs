//! The routing lab: a cell namespace with picd applying its nftables table, and ways to read
//! that table back (tests/routing_netns.rs, tests/routing_limits_netns.rs).

use std::time::Duration;

use serde_json::Value;

use super::netns::*;
use super::*;

pub const FIREWALL: &str = "/api/routing/firewall";
pub const IP_LIST: &str = "/api/routing/ip-list";
/// The reconciler's period in these tests.
pub const RECONCILE_SECONDS: u64 = 1;
/// Longest wait for a change to show in the kernel.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn table_json(lab: &Lab) -> Option<Value> {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.cell_ns,
            "nft",
            "-j",
            "list",
            "table",
            "inet",
            "picd",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())?
}

/// The comments of the table's rules.
pub fn comments(lab: &Lab) -> Vec<String> {
    let Some(table) = table_json(lab) else {
        return Vec::new();
    };
    table["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["rule"]["comment"].as_str().map(String::from))
        .collect()
}

pub fn has_comment(lab: &Lab, comment: &str) -> bool {
    comments(lab).iter().any(|c| c == comment)
}

pub fn pings(lab: &Lab) -> bool {
    succeeds(&format!("ping -c 1 -W 1 {}", lab.cell_addr()))
}

/// The root namespace's end of the veth pair to the cell: where the test's requests come from.
pub fn test_side_addr(lab: &Lab) -> String {
    let cell: std::net::Ipv4Addr = lab.cell_addr().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(cell) - 1).to_string()
}

pub async fn lab_with_routing() -> (Lab, TestClient) {
    require_root_and_tools(&["nft", "ping"]);
    let options = LabOptions {
        reconcile_interval_seconds: RECONCILE_SECONDS,
        ..LabOptions::default()
    };
    let lab = Lab::start(options).await;
    let admin = lab.admin().await;
    assert!(
        eventually(APPLY_TIMEOUT, || has_comment(&lab, "nat4")),
        "no table inet picd with NAT in the cell; log:\n{}",
        lab.picd_log()
    );
    (lab, admin)
}
