//! A `wireguard_ext` exit applied for real: a cell (picd in its namespace) with an uplink to
//! an "internet" namespace, a WireGuard provider behind that internet, and two peers on full
//! tunnels. The peer assigned to the exit reaches the internet from the provider's address and
//! its DNS (to a hard-coded resolver) goes to the provider's resolver; the other peer goes
//! direct. When the provider stops, the exit peer is refused at once and not one of its
//! packets leaves through the cell's uplink, also when picd's `ip rule` is deleted or its
//! table flushed by hand (the kill switch in the forward chain holds); the next pass restores
//! both; after kill -9 and a restart picd builds the same state. A fail-open peer goes direct
//! while the exit is down and back when it returns; a moved peer's old flows are flushed.

mod common;
#[path = "connectivity_netns/traffic.rs"]
mod traffic;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
/// Passes every 3 s: slow enough that a rule deleted by hand stays deleted for a moment.
const RECONCILE_SECONDS: u64 = 3;
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
const ICMP_BUDGET_REFILL: Duration = Duration::from_secs(4);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pages alice fetches through the exit for her traffic count.
const FETCHES: usize = 20;

struct ExitLab {
    lab: Lab,
    admin: TestClient,
    alice: WgClient,
    bob: WgClient,
    provider: Provider,
    exit_id: String,
}

fn cell(lab: &Lab, line: &str) -> String {
    run(&format!("ip netns exec {} {line}", lab.cell_ns))
}

impl ExitLab {
    async fn start() -> ExitLab {
        require_root_and_tools(&["nft", "curl", "dig", "python3", "ping", "conntrack"]);
        let mut start = ExitsLab::start(RECONCILE_SECONDS, &["alice", "bob"]).await;
        let (exit_id, _) = start.add_wireguard_exit().await;
        let ExitsLab {
            lab,
            admin,
            mut peers,
            provider,
        } = start;
        let bob = peers.pop().expect("bob");
        let alice = peers.pop().expect("alice");
        ExitLab {
            lab,
            admin,
            alice,
            bob,
            provider,
            exit_id,
        }
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        let resp = self.admin.send_json(Method::PUT, path, &body).await;
        let (status, answer) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "PUT {path} {body}: {answer}");
        answer
    }

    async fn state(&self) -> String {
        let (status, body) = self.admin.get_json("/api/connectivity/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["connections"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn wait_state(&self, wanted: &str) {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while self.state().await != wanted {
            assert!(
                Instant::now() < deadline,
                "the exit is not {wanted}; log:\n{}",
                self.lab.picd_log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn waits_for(&self, client: &WgClient, seen: &str, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch(client).0;
            last.as_deref() == Some(seen)
        });
        assert!(reached, "{what}: saw {last:?}; {}", self.kernel_state());
    }

    /// The cell's rules, exit table and nftables ruleset, and picd's log, for a failure.
    fn kernel_state(&self) -> String {
        let show = |line: &str| cell(&self.lab, line);
        format!(
            "rules:\n{}\ntable 1001:\n{}\nruleset:\n{}\nlog:\n{}",
            show("ip rule show"),
            show("ip route show table 1001") + &show("ip -6 route show table 1001"),
            show("nft list ruleset"),
            self.lab.picd_log()
        )
    }

    /// A counter of every packet from alice's addresses leaving through the uplink.
    fn watch_uplink(&self) {
        let [v4, v6] = tunnel_addrs(&self.alice);
        self.lab.watch_uplink_for(&v4, &v6);
    }

    /// alice is refused at once (not a timeout), DNS to a hard-coded resolver goes unanswered,
    /// and nothing of hers has left through the uplink.
    fn assert_cut_off(&self, when: &str) {
        assert_cut_off(&self.lab, &self.alice, when);
    }

    /// alice's HTTP is refused at once over IPv4 and IPv6, with nothing on the uplink.
    fn assert_refused_at_once(&self, when: &str) {
        assert_refused_at_once(&self.lab, &self.alice, when);
    }

    /// None of alice's tracked flows is still masqueraded to the exit's tunnel address (each
    /// `curl` left one in TIME_WAIT for two minutes, unless picd flushed them on the move).
    fn assert_no_flow_through_the_exit(&self, when: &str) {
        let [v4, _] = tunnel_addrs(&self.alice);
        let flows = || cell(&self.lab, &format!("conntrack -L -s {v4}"));
        // The flush follows the new table, so the peer may be direct a moment before it.
        let flushed = eventually(FLUSH_TIMEOUT, || !flows().contains(CELL_TUNNEL_ADDR));
        assert!(flushed, "{when}: old flows kept:\n{}", flows());
    }

    /// Each `assert_cut_off` costs alice about four ICMP errors, and Linux sends one host a
    /// burst of six, then one a second (net.ipv4.icmp_ratelimit): past it a refusal is silent
    /// and looks like a timeout. Waits for the budget to refill.
    fn refill_icmp_budget(&self) {
        std::thread::sleep(ICMP_BUDGET_REFILL);
    }

    fn picd_rule_present(&self) -> bool {
        cell(&self.lab, "ip rule show").contains("lookup 1001")
    }
}

/// The cell's rules, the exit's table and picd's nftables table without its counters.
fn kernel_snapshot(lab: &Lab) -> (String, String, String) {
    let table = cell(lab, "nft list table inet picd");
    let table: String = table.lines().filter(|l| !l.contains("counter")).collect();
    let rules = cell(lab, "ip rule show");
    (rules, cell(lab, "ip route show table 1001"), table)
}

fn tunnel_addrs(client: &WgClient) -> [String; 2] {
    let family = |v6: bool| {
        let address = client
            .config
            .addresses
            .iter()
            .find(|a| a.contains(':') == v6);
        address
            .expect("an address of each family")
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    [family(false), family(true)]
}

/// Deletes something of picd's by hand, checks alice is still cut off while it is gone (retries
/// if a pass restored it meanwhile), then waits for a pass to restore it.
async fn tamper(x: &ExitLab, what: &str, break_it: &str, restored: impl Fn() -> bool) {
    let mut checked = false;
    for _ in 0..5 {
        x.refill_icmp_budget();
        cell(&x.lab, break_it);
        // Quick, so that the next pass seldom restores it before the check ends.
        x.assert_refused_at_once(what);
        if !restored() {
            checked = true;
            break;
        }
    }
    assert!(checked, "{what}: every check raced a pass that restored it");
    assert!(
        eventually(APPLY_TIMEOUT, &restored),
        "{what}: not restored by the next pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_peer_leaves_through_the_provider_and_nowhere_else() {
    let mut x = ExitLab::start().await;
    let (_, listed) = x.admin.get_json(CONNECTIONS).await;
    let private_key = x
        .provider
        .customer_config
        .lines()
        .find_map(|l| l.strip_prefix("PrivateKey = "));
    assert!(
        !listed.to_string().contains(private_key.expect("key")),
        "a key was echoed: {listed}"
    );
    x.put(
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": x.exit_id }),
    )
    .await;
    x.watch_uplink();
    x.wait_state("up").await;
    x.waits_for(&x.alice, PROVIDER_ADDR, "alice through the exit");
    x.waits_for(&x.bob, CELL_UPLINK_ADDR, "bob direct");
    x.assert_traffic_counted().await;
    let bob6 = || fetch6(&x.bob).0.as_deref() == Some(CELL_UPLINK_ADDR6);
    let log6 = || std::fs::read_to_string(x.lab.state_dir().join("../internet-http6.log"));
    assert!(
        eventually(APPLY_TIMEOUT, bob6),
        "bob direct over IPv6: {:?} {:?}; {}",
        fetch6(&x.bob),
        log6(),
        x.kernel_state()
    );
    // The provider offers no IPv6: alice's is refused at once, never sent out of the uplink.
    let (seen6, took6) = fetch6(&x.alice);
    assert!(
        seen6.is_none() && took6 < FAST_REFUSAL,
        "alice over IPv6: {seen6:?} after {took6:?}"
    );
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "alice's packets on the uplink while the exit is up"
    );
    assert!(
        dns_answered(&x.alice, false),
        "alice's DNS through the exit"
    );
    let asked = std::fs::read_to_string(&x.provider.dns_log).unwrap_or_default();
    assert!(
        asked.contains(CELL_TUNNEL_ADDR),
        "the provider's resolver was not asked: {asked:?}"
    );

    // Idempotent: further passes leave rules, routes and the table as they are.
    let before = kernel_snapshot(&x.lab);
    tokio::time::sleep(Duration::from_secs(2 * RECONCILE_SECONDS + 1)).await;
    assert_eq!(
        before,
        kernel_snapshot(&x.lab),
        "a pass changed the kernel state"
    );

    run(&format!(
        "ip -n {} link set {} down",
        x.provider.ns, x.provider.ifname
    ));
    x.wait_state("down").await;
    x.refill_icmp_budget();
    x.assert_cut_off("provider down");
    tamper(&x, "ip rule deleted", "ip rule del pref 10101", || {
        x.picd_rule_present()
    })
    .await;
    let rule6 = || cell(&x.lab, "ip -6 rule show").contains("lookup 1001");
    tamper(
        &x,
        "IPv6 ip rule deleted",
        "ip -6 rule del pref 10101",
        rule6,
    )
    .await;
    let table_whole = || cell(&x.lab, "ip route show table 1001").contains("unreachable");
    tamper(
        &x,
        "table flushed",
        "ip route flush table 1001",
        table_whole,
    )
    .await;
    assert_eq!(x.lab.uplink_leaks(), 0, "alice's packets on the uplink");

    run(&format!(
        "ip -n {} link set {} up",
        x.provider.ns, x.provider.ifname
    ));
    x.wait_state("up").await;
    x.waits_for(&x.alice, PROVIDER_ADDR, "alice through the exit again");
    let path = format!("{CONNECTIONS}/{}/health", x.exit_id);
    let (status, probed) = x.admin.get_json(&path).await;
    assert_eq!(
        (status, &probed["answered"]),
        (StatusCode::OK, &json!(true)),
        "{probed}"
    );

    // kill -9 and a restart: the exit's interface is built again, with the same rules, routes
    // and table.
    let applied = kernel_snapshot(&x.lab);
    x.lab.kill_and_restart_picd().await;
    x.waits_for(
        &x.alice,
        PROVIDER_ADDR,
        "alice through the exit after a restart",
    );
    assert_eq!(
        applied,
        kernel_snapshot(&x.lab),
        "a restart built another state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_open_peer_goes_direct_while_its_exit_is_down() {
    let x = ExitLab::start().await;
    x.put(
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": x.exit_id }),
    )
    .await;
    let peer = x
        .put(
            "/api/connectivity/peers/alice/failopen",
            json!({ "fail_open": true }),
        )
        .await;
    assert_eq!(
        (&peer["fail_open"], &peer["connection"]),
        (&json!(true), &json!(x.exit_id))
    );
    x.wait_state("up").await;
    x.waits_for(&x.alice, PROVIDER_ADDR, "alice through the exit");

    let resp = x
        .admin
        .send_json(
            Method::DELETE,
            &format!("{CONNECTIONS}/{}", x.exit_id),
            &json!({}),
        )
        .await;
    let body = expect_error(resp, StatusCode::CONFLICT, "in_use").await;
    assert!(body.to_string().contains("alice"), "{body}");

    run(&format!(
        "ip -n {} link set {} down",
        x.provider.ns, x.provider.ifname
    ));
    x.wait_state("down").await;
    x.waits_for(
        &x.alice,
        CELL_UPLINK_ADDR,
        "fail-open alice direct while the exit is down",
    );
    x.assert_no_flow_through_the_exit("after the move to direct");
    run(&format!(
        "ip -n {} link set {} up",
        x.provider.ns, x.provider.ifname
    ));
    x.wait_state("up").await;
    x.waits_for(&x.alice, PROVIDER_ADDR, "alice back through the exit");

    // Moved by the owner: the same, through the API.
    x.put(
        "/api/connectivity/peers/alice/exit",
        json!({ "connection": null }),
    )
    .await;
    x.waits_for(&x.alice, CELL_UPLINK_ADDR, "alice direct");
    x.assert_no_flow_through_the_exit("after the owner moved alice");
}
