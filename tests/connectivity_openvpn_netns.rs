//! An `openvpn` exit applied for real: the namespace lab of connectivity_netns.rs (a cell with
//! an uplink to an "internet" namespace, a provider behind it), the provider running Debian's
//! OpenVPN 2.6 server. picd runs the client as its own child. The peer on the exit reaches the
//! internet from the provider's address, and its DNS to a hard-coded resolver goes to the
//! resolver the server pushed; the tunnel has IPv6 too (`server-ipv6`), and so has she, while
//! bob goes direct over both (see `ipv6`). The server stopped (by its PID): the peer is refused
//! at once over both and not one of its packets (DNS included) leaves through the cell's
//! uplink. picd's openvpn killed: picd starts another and the peer comes back; picd killed and
//! restarted: the new picd replaces the process the old one left; the server restarted
//! without IPv6: her IPv6 is refused at once; picd stopped: its child stops too. A file with
//! `up /bin/sh` is refused naming its line, and nothing is stored.

mod common;
#[path = "connectivity_openvpn_netns/ipv6.rs"]
mod ipv6;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use ipv6::dns6_answered;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
const RECONCILE_SECONDS: u64 = 3;
const APPLY_TIMEOUT: Duration = Duration::from_secs(40);
/// Linux answers one host with a burst of six ICMP errors, then one a second: each cut-off
/// check uses about four, so the budget refills between checks.
const ICMP_BUDGET_REFILL: Duration = Duration::from_secs(4);

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
    x.assert_ipv6_through_the_exit().await;

    // The provider goes away: alice gets nothing, at once, and nothing leaks.
    x.server.stop();
    x.wait_state("down").await;
    x.assert_cut_off("openvpn server stopped");
    // Routing broken by hand (picd's rules deleted): the kill switch alone still holds.
    let cell = |l: &str| run(&format!("ip netns exec {} {l}", x.lab.cell_ns));
    std::thread::sleep(ICMP_BUDGET_REFILL);
    cell("ip rule del pref 10101");
    cell("ip -6 rule del pref 10101");
    for (family, (seen, took)) in [("IPv4", fetch(&x.alice)), ("IPv6", fetch6(&x.alice))] {
        assert!(
            seen.is_none() && took < FAST_REFUSAL,
            "rules deleted: {family} {seen:?} after {took:?}"
        );
    }
    assert_eq!(
        x.lab.uplink_leaks(),
        0,
        "rules deleted: alice's packets on the uplink"
    );
    let restored = eventually(APPLY_TIMEOUT, || {
        cell("ip rule show").contains("lookup 1001")
            && cell("ip -6 rule show").contains("lookup 1001")
    });
    assert!(restored, "the next pass did not restore picd's rules");

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

    x.assert_ipv6_refused_without_an_ipv6_tunnel().await;

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
