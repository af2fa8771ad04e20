//! Leak counters on the cell's uplink: every packet from given addresses that leaves through
//! it, counted before the cell's masquerade rewrites the source (a table of the test's own,
//! beside picd's).

use super::*;

const LEAK_TABLE: &str = "leakwatch";

impl Lab {
    /// Starts counting, from zero, the packets from these addresses that leave through the
    /// uplink.
    pub fn watch_uplink_for(&self, v4: &str, v6: &str) {
        let cell = |line: &str| run(&format!("ip netns exec {} {line}", self.cell_ns));
        let _ = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.cell_ns,
                "nft",
                "delete",
                "table",
                "inet",
            ])
            .arg(LEAK_TABLE)
            .output();
        cell(&format!("nft add table inet {LEAK_TABLE}"));
        cell(&format!(
            "nft add chain inet {LEAK_TABLE} out {{ type filter hook postrouting priority -300 ; }}"
        ));
        for m in [format!("ip saddr {v4}"), format!("ip6 saddr {v6}")] {
            cell(&format!(
                "nft add rule inet {LEAK_TABLE} out oifname {UPLINK_IF} {m} counter"
            ));
        }
    }

    /// The packets counted since `watch_uplink_for`.
    pub fn uplink_leaks(&self) -> u64 {
        let out = run(&format!(
            "ip netns exec {} nft -j list table inet {LEAK_TABLE}",
            self.cell_ns
        ));
        let json: serde_json::Value = serde_json::from_str(&out).expect("nft -j");
        json["nftables"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["rule"]["expr"].as_array())
            .flat_map(|e| e.iter().filter_map(|x| x["counter"]["packets"].as_u64()))
            .sum()
    }

    /// The leak table as nft lists it (for a failure).
    pub fn uplink_watch(&self) -> String {
        run(&format!(
            "ip netns exec {} nft list table inet {LEAK_TABLE}",
            self.cell_ns
        ))
    }
}
