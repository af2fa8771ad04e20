//! TCP throughput of alice through the exit (iperf3 from her namespace to a server in the
//! "internet"), with picd's rules and without them. The anchor keeps every namespace, picd
//! and its exit interface, and replaces only picd's part of the kernel's state: its nftables
//! table and its `ip rule`s go, a hand-made rule steers alice's traffic into the exit's table
//! and a hand-made table masquerades it out of the exit.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::netns::*;
use crate::lab::{ExitBench, APPLY_TIMEOUT};
use serde_json::{json, Value};

const IPERF_PORT: u16 = 5201;
/// The preferences README names for picd's rules: the peers' rule and one per exit slot.
const PICD_RULE_PREFS: std::ops::RangeInclusive<u64> = 10000..=10199;
/// The anchor's own rule and table, named so nothing of picd's is mistaken for them.
const ANCHOR_RULE_PREF: u64 = 20000;
const ANCHOR_TABLE: &str = "exitbench";
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// iperf3's server in the internet namespace, on the address alice fetches from.
pub fn start_server(b: &mut ExitBench) {
    let child = Command::new("ip")
        .args(["netns", "exec", &b.provider.internet_ns, "iperf3", "-s"])
        .args(["-B", INTERNET_SERVER, "-p", &IPERF_PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 (run packaging/install-test-deps)");
    b.children.push(child);
    let listens = format!(
        "ip netns exec {} ss -Hltn sport = :{IPERF_PORT}",
        b.provider.internet_ns
    );
    let up = eventually(SERVER_TIMEOUT, || !run(&listens).trim().is_empty());
    assert!(up, "iperf3's server does not listen");
}

/// One iperf3 run of `seconds` from alice: Mbit/s received by the server. Asserts the bytes
/// went through the exit's interface (its transmit counter grew by at least what the server
/// received; what the client counts as sent may still have been in its socket's buffer).
pub fn run_iperf(b: &ExitBench, seconds: u32) -> f64 {
    let counter = format!("cat /sys/class/net/{}/statistics/tx_bytes", b.exit_if);
    let sent_before: u64 = b.cell(&counter).trim().parse().expect("tx_bytes");
    let out = run(&format!(
        "ip netns exec {} iperf3 -c {INTERNET_SERVER} -p {IPERF_PORT} -t {seconds} -J",
        b.alice.ns
    ));
    let report: Value = serde_json::from_str(&out).expect("iperf3 -J");
    let sent_after: u64 = b.cell(&counter).trim().parse().expect("tx_bytes");
    let payload = report["end"]["sum_received"]["bytes"]
        .as_u64()
        .expect("bytes");
    assert!(
        sent_after - sent_before >= payload,
        "{payload} bytes received, {} through the exit",
        sent_after - sent_before
    );
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bits_per_second")
        / 1e6
}

/// picd's rules (both families) as `(family, preference)`.
fn picd_rules(b: &ExitBench) -> Vec<(&'static str, u64)> {
    let mut found = Vec::new();
    for family in ["-4", "-6"] {
        let listed: Value = serde_json::from_str(&b.cell(&format!("ip -j {family} rule show")))
            .expect("ip -j rule show");
        for rule in listed.as_array().into_iter().flatten() {
            if let Some(pref) = rule["priority"].as_u64() {
                if PICD_RULE_PREFS.contains(&pref) {
                    found.push((family, pref));
                }
            }
        }
    }
    found
}

fn picd_table_present(b: &ExitBench) -> bool {
    succeeds(&format!(
        "ip netns exec {} nft list table inet picd",
        b.lab.cell_ns
    ))
}

/// Removes picd's table and rules and puts the anchor's in their place; returns how many
/// rules picd had.
pub fn install_anchor(b: &ExitBench) -> usize {
    let picd_rules_before = picd_rules(b).len();
    b.cell("nft delete table inet picd");
    for (family, pref) in picd_rules(b) {
        b.cell(&format!("ip {family} rule del pref {pref}"));
    }
    b.cell(&format!(
        "ip rule add pref {ANCHOR_RULE_PREF} from {} lookup {}",
        b.alice_v4(),
        b.exit_table
    ));
    b.cell(&format!("nft add table ip {ANCHOR_TABLE}"));
    b.cell(&format!(
        "nft add chain ip {ANCHOR_TABLE} post {{ type nat hook postrouting priority 100 ; }}"
    ));
    b.cell(&format!(
        "nft add rule ip {ANCHOR_TABLE} post oifname {} masquerade",
        b.exit_if
    ));
    picd_rules_before
}

/// Whether picd left the anchor alone (no table, no rule of its own came back).
pub fn anchor_untouched(b: &ExitBench) -> bool {
    !picd_table_present(b) && picd_rules(b).is_empty()
}

/// Removes the anchor's rule and table and has picd apply its own again (a change through
/// the API starts a pass at once); waits until alice goes through the exit with them.
pub async fn restore_picd(b: &ExitBench, picd_rule_count: usize) {
    b.cell(&format!("ip rule del pref {ANCHOR_RULE_PREF}"));
    b.cell(&format!("nft delete table ip {ANCHOR_TABLE}"));
    let body = json!({ "fail_open": false });
    b.put("/api/connectivity/peers/alice/failopen", body).await;
    let restored = eventually(APPLY_TIMEOUT, || {
        picd_table_present(b) && picd_rules(b).len() == picd_rule_count
    });
    assert!(
        restored,
        "picd did not apply its rules again:\n{}",
        b.lab.picd_log()
    );
    b.wait_through_exit("alice through the exit with picd's rules again");
}
