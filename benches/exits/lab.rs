//! The benchmark's cell: the connectivity lab of the tests (picd in its namespace, the
//! "internet" as its uplink, a WireGuard provider behind it) with one peer, alice, on a full
//! tunnel and assigned to the provider's `wireguard_ext` exit.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::netns::*;
use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// No periodic pass while the benchmark runs: one would put picd's rules back in the middle
/// of an anchor run. A change through the API and a change of the exit's health still start a
/// pass at once, as they always do.
const RECONCILE_SECONDS: u64 = 3600;
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the exit's state is read while a change is timed.
const STATE_POLL: Duration = Duration::from_millis(20);

pub struct ExitBench {
    /// What the benchmark started itself (iperf3's server, the provider's wireguard-go once
    /// restarted); stopped before the lab (a field dropped after `drop`) goes.
    pub children: Vec<Child>,
    pub lab: Lab,
    pub admin: TestClient,
    pub alice: WgClient,
    pub provider: Provider,
    pub exit_id: String,
    pub exit_if: String,
    pub exit_table: u64,
}

impl Drop for ExitBench {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ExitBench {
    pub async fn start() -> ExitBench {
        require_root_and_tools(&["nft", "curl", "python3", "iperf3", "conntrack"]);
        let mut start = ExitsLab::start(RECONCILE_SECONDS, &["alice"]).await;
        let (exit_id, exit_if) = start.add_wireguard_exit().await;
        let ExitsLab {
            lab,
            admin,
            mut peers,
            provider,
        } = start;
        let alice = peers.pop().expect("alice");
        let mut bench = ExitBench {
            children: Vec::new(),
            lab,
            admin,
            alice,
            provider,
            exit_id,
            exit_if,
            exit_table: 0,
        };
        let exit = json!({ "connection": bench.exit_id });
        bench.put("/api/connectivity/peers/alice/exit", exit).await;
        bench.wait_state("up").await;
        bench.wait_through_exit("alice through the exit");
        let (_, exits) = bench.admin.get_json("/api/connectivity/exits").await;
        let table = exits["exits"][0]["table"].as_u64();
        bench.exit_table = table.unwrap_or_else(|| panic!("no table in {exits}"));
        bench
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let resp = self.admin.send_json(Method::PUT, path, &body).await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "PUT {path} {body}: {answer}");
        answer
    }

    /// A command line run in the cell's namespace; panics when it fails.
    pub fn cell(&self, line: &str) -> String {
        run(&format!("ip netns exec {} {line}", self.lab.cell_ns))
    }

    pub async fn state(&self) -> String {
        let (status, body) = self.admin.get_json("/api/connectivity/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["connections"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits for the exit's state in /api/connectivity/status; returns how long after
    /// `since` it was first seen.
    pub async fn state_seen_after(&self, wanted: &str, since: Instant) -> Duration {
        while self.state().await != wanted {
            assert!(
                since.elapsed() < 2 * APPLY_TIMEOUT,
                "the exit is not {wanted}; log:\n{}",
                self.lab.picd_log()
            );
            tokio::time::sleep(STATE_POLL).await;
        }
        since.elapsed()
    }

    pub async fn wait_state(&self, wanted: &str) {
        self.state_seen_after(wanted, Instant::now()).await;
    }

    /// Waits until alice reaches the internet from the provider's address.
    pub fn wait_through_exit(&self, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch(&self.alice).0;
            last.as_deref() == Some(PROVIDER_ADDR)
        });
        assert!(
            reached,
            "{what}: saw {last:?}; log:\n{}",
            self.lab.picd_log()
        );
    }

    /// alice's IPv4 address in the tunnel.
    pub fn alice_v4(&self) -> String {
        let address = self
            .alice
            .config
            .addresses
            .iter()
            .find(|a| !a.contains(':'));
        let address = address.expect("an IPv4 address");
        address.split('/').next().unwrap_or(address).to_string()
    }
}
