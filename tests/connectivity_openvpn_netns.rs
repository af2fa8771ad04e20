//! An `openvpn` exit applied for real: the namespace lab of connectivity_netns.rs (a cell with
//! an uplink to an "internet" namespace, a provider behind it), the provider running Debian's
//! OpenVPN 2.6 server. picd runs the client as its own child. The peer on the exit reaches the
//! internet from the provider's address, and its DNS to a hard-coded resolver goes to the
//! resolver the server pushed; the tunnel has IPv6 too (`server-ipv6`), so her IPv6 reaches
//! the internet from the provider's IPv6 address and her DNS over IPv6 goes to the server's
//! pushed IPv6 resolver, while bob goes direct over both. The server stopped (by its PID): the
//! peer is refused at once over both and not one of its packets (DNS included) leaves through
//! the cell's uplink. picd's openvpn
//! killed: picd starts another and the peer comes back; picd killed and restarted: the new
//! picd replaces the process the old one left; picd stopped: its child stops too.
//! A file with `up /bin/sh` is refused naming its line, and nothing is stored.

mod common;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
const RECONCILE_SECONDS: u64 = 3;
const APPLY_TIMEOUT: Duration = Duration::from_secs(40);
/// Linux answers one host with a burst of six ICMP errors, then one a second: each cut-off
/// check uses about four, so the budget refills between checks.
const ICMP_BUDGET_REFILL: Duration = Duration::from_secs(4);
/// An IPv6 resolver on the internet a peer may hard-code (nothing answers there: only the
/// exit's DNAT to the provider's resolver gets an answer).
const HARD_CODED_RESOLVER6: &str = "2001:db8:ff::53";

struct OvpnLab {
    lab: Lab,
    admin: TestClient,
    alice: WgClient,
    bob: WgClient,
    server: OvpnServer,
}

impl Drop for OvpnLab {
    /// A picd killed by a failing test leaves its openvpn child behind: it goes first.
    fn drop(&mut self) {
        self.lab.kill_picd_openvpn();
    }
}

fn tunnel_v4_v6(client: &WgClient) -> (String, String) {
    let addr = |v6: bool| {
        let a = client
            .config
            .addresses
            .iter()
            .find(|a| a.contains(':') == v6);
        a.expect("an address of each family")
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    (addr(false), addr(true))
}

impl OvpnLab {
    async fn start() -> OvpnLab {
        require_root_and_tools(&[
            "nft", "curl", "dig", "python3", "ping", "openvpn", "openssl",
        ]);
        let ExitsLab {
            mut lab,
            admin,
            mut peers,
            provider,
        } = ExitsLab::start(RECONCILE_SECONDS, &["alice", "bob"]).await;
        let bob = peers.pop().expect("bob");
        let alice = peers.pop().expect("alice");
        let server = lab.openvpn_server(&provider);
        OvpnLab {
            lab,
            admin,
            alice,
            bob,
            server,
        }
    }

    async fn exit(&self) -> Value {
        let (status, body) = self.admin.get_json("/api/connectivity/exits").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["exits"][0].clone()
    }

    async fn wait_state(&self, wanted: &str) {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while self.exit().await["state"] != wanted {
            assert!(
                Instant::now() < deadline,
                "the exit is not {wanted}: {}\nserver:\n{}\nlog:\n{}",
                self.exit().await,
                self.server.log(),
                self.lab.picd_log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn waits_for_provider(&self, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch(&self.alice).0;
            last.as_deref() == Some(PROVIDER_ADDR)
        });
        let cell = |l: &str| run(&format!("ip netns exec {} {l}", self.lab.cell_ns));
        assert!(
            reached,
            "{what}: saw {last:?}; rules:\n{}\ntable:\n{}\nlinks:\n{}\nlog:\n{}",
            cell("ip rule show"),
            cell("ip route show table 1001"),
            cell("ip -br link"),
            self.lab.picd_log()
        );
    }

    /// alice reaches the internet's IPv6 server from the provider's IPv6 address (once picd
    /// has learned the tunnel's IPv6 address and given the exit its IPv6 route).
    async fn waits_for_provider6(&self, what: &str) {
        let mut last = None;
        let reached = eventually(APPLY_TIMEOUT, || {
            last = fetch6(&self.alice).0;
            last.as_deref() == Some(PROVIDER_ADDR6)
        });
        let cell = |l: &str| run(&format!("ip netns exec {} {l}", self.lab.cell_ns));
        assert!(
            reached,
            "{what}: saw {last:?}; exit: {}\nrules:\n{}\ntable:\n{}\naddresses:\n{}\nlog:\n{}",
            self.exit().await,
            cell("ip -6 rule show"),
            cell("ip -6 route show table 1001"),
            cell("ip -br -6 addr"),
            self.lab.picd_log()
        );
    }

    /// Waits until picd's tunnel is up again without an IPv6 address.
    async fn wait_tunnel_without_ipv6(&self) {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let process = self.exit().await["process"].clone();
            if process["tunnel"] == "CONNECTED" && process["tunnel_ipv6"].is_null() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the tunnel kept IPv6: {process}\nserver:\n{}",
                self.server.log()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// alice is refused at once over IPv4 and IPv6, her DNS to a hard-coded resolver goes
    /// unanswered, and nothing of hers left through the uplink.
    fn assert_cut_off(&self, when: &str) {
        std::thread::sleep(ICMP_BUDGET_REFILL);
        assert_cut_off(&self.lab, &self.alice, when);
        assert!(
            !dns6_answered(&self.alice),
            "{when}: DNS over IPv6 answered"
        );
        assert_eq!(
            self.lab.uplink_leaks(),
            0,
            "{when}: alice's packets on the uplink"
        );
    }
}

/// One DNS question over IPv6 to a resolver the peer hard-coded; whether it was answered.
fn dns6_answered(client: &WgClient) -> bool {
    dig6(client, HARD_CODED_RESOLVER6, "example.org")
}

fn dig6(client: &WgClient, server: &str, name: &str) -> bool {
    let server = format!("@{server}");
    std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "dig", &server, "+time=1"])
        .args(["+tries=1", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The cell's own IPv6 address on its WireGuard interface (its resolver answers there).
fn cell_address6() -> String {
    let net: ipnet::Ipv6Net = SUBNET_V6.parse().expect("subnet_v6");
    std::net::Ipv6Addr::from(u128::from(net.network()) + 1).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openvpn_exit_peer_leaves_through_the_provider_and_nowhere_else() {
    let mut x = OvpnLab::start().await;

    // A file that would run a shell: refused naming its line, nothing stored.
    let evil = x
        .server
        .customer_config
        .replace("nobind\n", "nobind\nup /bin/sh\n");
    let body = json!({ "name": "evil", "type": "openvpn", "config": evil });
    let resp = x.admin.send_json(Method::POST, CONNECTIONS, &body).await;
    let (status, refused) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused.to_string().contains("line 7: up is refused"),
        "{refused}"
    );
    let db = rusqlite::Connection::open(x.lab.state_dir().join("picd.db")).expect("db");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM connectivity_connections"), 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM secrets WHERE name LIKE 'connectivity.%'"),
        0
    );

    let body = json!({ "name": "provider", "type": "openvpn", "config": x.server.customer_config });
    let resp = x.admin.send_json(Method::POST, CONNECTIONS, &body).await;
    let (status, created) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["settings"]["remotes"],
        json!([{ "host": PROVIDER_ADDR, "port": OVPN_PORT, "proto": "udp" }])
    );
    let key_line = x
        .server
        .customer_config
        .lines()
        .find(|l| l.len() > 40 && !l.contains(' '));
    let (_, listed) = x.admin.get_json(CONNECTIONS).await;
    assert!(
        !listed.to_string().contains(key_line.expect("a key line")),
        "key material echoed"
    );
    let id = created["id"].as_str().expect("id").to_string();
    let resp = x
        .admin
        .send_json(
            Method::PUT,
            "/api/connectivity/peers/alice/exit",
            &json!({ "connection": id }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (v4, v6) = tunnel_v4_v6(&x.alice);
    x.lab.watch_uplink_for(&v4, &v6);

    x.wait_state("up").await;
    x.waits_for_provider("alice through the openvpn exit");
    assert!(
        dns_answered(&x.alice, false),
        "alice's DNS through the exit"
    );
    let dns_log = x.lab.state_dir().join("../provider-dns.log");
    let asked = std::fs::read_to_string(dns_log).unwrap_or_default();
    assert!(
        asked.contains(OVPN_SUBNET_PREFIX),
        "the pushed resolver was not asked: {asked:?}"
    );
    // The tunnel has IPv6: alice's IPv6 leaves through it too, NATed to the tunnel's address
    // and then to the provider's, and her DNS over IPv6 goes to the server's IPv6 resolver.
    x.waits_for_provider6("alice over IPv6 through the openvpn exit")
        .await;
    let process = x.exit().await["process"].clone();
    let tunnel6 = process["tunnel_ipv6"].as_str().unwrap_or_default();
    assert!(tunnel6.starts_with(OVPN_SUBNET6_PREFIX), "{process}");
    assert!(
        dns6_answered(&x.alice),
        "alice's DNS over IPv6 through the exit"
    );
    let dns6_log = x.lab.state_dir().join("../provider-dns6.log");
    let asked6 = std::fs::read_to_string(dns6_log).unwrap_or_default();
    assert!(
        asked6.lines().any(|l| l == tunnel6),
        "the pushed IPv6 resolver was not asked by {tunnel6}: {asked6:?}"
    );
    // bob goes direct, over both.
    let bob_direct = || {
        fetch(&x.bob).0.as_deref() == Some(CELL_UPLINK_ADDR)
            && fetch6(&x.bob).0.as_deref() == Some(CELL_UPLINK_ADDR6)
    };
    assert!(
        eventually(APPLY_TIMEOUT, bob_direct),
        "bob direct: {:?} {:?}",
        fetch(&x.bob),
        fetch6(&x.bob)
    );
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "alice's packets on the uplink while the exit is up"
    );

    // The provider goes away: alice gets nothing, at once, and nothing leaks.
    x.server.stop();
    x.wait_state("down").await;
    x.assert_cut_off("openvpn server stopped");
    // Routing broken by hand (picd's rule deleted): the kill switch alone still holds.
    let cell = |l: &str| run(&format!("ip netns exec {} {l}", x.lab.cell_ns));
    std::thread::sleep(ICMP_BUDGET_REFILL);
    cell("ip rule del pref 10101");
    let (seen, took) = fetch(&x.alice);
    assert!(
        seen.is_none() && took < FAST_REFUSAL,
        "rule deleted: {seen:?} after {took:?}"
    );
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "rule deleted: alice's packets on the uplink"
    );
    let restored = eventually(APPLY_TIMEOUT, || {
        cell("ip rule show").contains("lookup 1001")
    });
    assert!(restored, "the next pass did not restore picd's rule");

    // It comes back, then picd's own openvpn is killed: picd starts another.
    x.server.start();
    x.wait_state("up").await;
    x.waits_for_provider("alice through the exit again");
    x.waits_for_provider6("alice over IPv6 through the exit again")
        .await;
    let pids = x.lab.picd_openvpn_pids();
    assert_eq!(pids.len(), 1, "picd's openvpn children: {pids:?}");
    run(&format!("kill -KILL {}", pids[0]));
    let restarted = eventually(APPLY_TIMEOUT, || {
        let now = x.lab.picd_openvpn_pids();
        now.len() == 1 && now[0] != pids[0]
    });
    assert!(
        restarted,
        "picd did not start openvpn again:\n{}",
        x.lab.picd_log()
    );
    x.waits_for_provider("alice through the restarted openvpn");
    let process = x.exit().await["process"].clone();
    assert!(process["restarts"].as_u64() >= Some(1), "{process}");
    assert_eq!(x.lab.uplink_leaks(), 0, "alice's packets on the uplink");

    // picd killed (no chance to stop its child) and started again: the new picd stops the
    // process the old one left (it holds the tun device's name) and starts its own.
    let orphan = x.lab.picd_openvpn_pids()[0];
    x.lab.kill_and_restart_picd().await;
    let replaced = eventually(APPLY_TIMEOUT, || {
        let now = x.lab.picd_openvpn_pids();
        now.len() == 1 && now[0] != orphan
    });
    assert!(
        replaced,
        "after kill -9 and a restart: {:?}",
        x.lab.picd_openvpn_pids()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{orphan}")).exists(),
        "the orphan runs on"
    );
    x.waits_for_provider("alice through the exit after picd's kill -9 and restart");
    assert_eq!(x.lab.uplink_leaks(), 0, "alice's packets on the uplink");

    // The provider drops IPv6 (its server restarted without server-ipv6): the tunnel comes back
    // with IPv4 only, and alice's IPv6 and her DNS over IPv6 are refused at once again, none
    // of it sent by the uplink, while her IPv4 still leaves through the exit.
    x.server.stop();
    x.server.ipv6 = false;
    x.server.start();
    x.wait_tunnel_without_ipv6().await;
    x.waits_for_provider("alice through the exit without IPv6");
    std::thread::sleep(ICMP_BUDGET_REFILL);
    let (seen6, took6) = fetch6(&x.alice);
    assert!(
        seen6.is_none() && took6 < FAST_REFUSAL,
        "a tunnel without IPv6: alice's IPv6 got {seen6:?} after {took6:?}"
    );
    let started = Instant::now();
    assert!(!dns6_answered(&x.alice), "DNS over IPv6 without IPv6");
    let took_dns6 = started.elapsed();
    assert!(
        took_dns6 < FAST_REFUSAL,
        "DNS over IPv6 refused after {took_dns6:?}"
    );
    // Nor does the cell's own resolver answer it (it would ask its upstream by the uplink),
    // though it answers its own zone at once to a peer that goes direct.
    assert!(
        dig6(&x.bob, &cell_address6(), CELL_DOMAIN),
        "the cell's resolver over IPv6, to bob"
    );
    assert!(
        !dig6(&x.alice, &cell_address6(), CELL_DOMAIN),
        "the cell's resolver answered alice over IPv6 without the exit"
    );
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "a tunnel without IPv6: alice's packets on the uplink"
    );

    // picd stops: its child stops with it and takes its secrets along.
    let pid = x.lab.picd_openvpn_pids()[0];
    assert!(
        x.lab.stop_picd(),
        "picd did not stop on SIGTERM; log:\n{}",
        x.lab.picd_log()
    );
    let gone = eventually(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "picd's openvpn outlived it");
    let run_dir = x.lab.state_dir().join("run/openvpn");
    let secrets: Vec<_> = std::fs::read_dir(&run_dir)
        .expect("run dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("secrets").exists())
        .collect();
    assert!(secrets.is_empty(), "secrets left in {}", run_dir.display());
}
