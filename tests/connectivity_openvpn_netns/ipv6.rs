//! The openvpn exit's IPv6 (tests/connectivity_openvpn_netns.rs): through a tunnel with IPv6,
//! alice's IPv6 leaves from the provider's IPv6 address and her DNS over IPv6 reaches the
//! server's pushed IPv6 resolver, bob goes direct over both; through a tunnel the server gives
//! no IPv6, her IPv6 and her DNS over IPv6 (the cell's own resolver included) are refused at
//! once, and none of it leaves by the uplink.

use std::time::{Duration, Instant};

use super::common::netns::*;
use super::common::*;
use super::{OvpnLab, APPLY_TIMEOUT, ICMP_BUDGET_REFILL};

/// An IPv6 resolver on the internet a peer may hard-code (nothing answers there: only the
/// exit's DNAT to the provider's resolver gets an answer).
const HARD_CODED_RESOLVER6: &str = "2001:db8:ff::53";
const BOB_DNS_TIMEOUT: Duration = Duration::from_secs(10);

impl OvpnLab {
    /// alice reaches the internet's IPv6 server from the provider's IPv6 address (once picd
    /// has learned the tunnel's IPv6 address and given the exit its IPv6 route).
    pub(super) async fn waits_for_provider6(&self, what: &str) {
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

    /// Through the tunnel with IPv6, as the module says.
    pub(super) async fn assert_ipv6_through_the_exit(&self) {
        // The tunnel has IPv6: alice's IPv6 leaves through it too, NATed to the tunnel's address
        // and then to the provider's, and her DNS over IPv6 goes to the server's IPv6 resolver.
        self.waits_for_provider6("alice over IPv6 through the openvpn exit")
            .await;
        let process = self.exit().await["process"].clone();
        let tunnel6 = process["tunnel_ipv6"].as_str().unwrap_or_default();
        assert!(tunnel6.starts_with(OVPN_SUBNET6_PREFIX), "{process}");
        assert!(
            dns6_answered(&self.alice),
            "alice's DNS over IPv6 through the exit"
        );
        let dns6_log = self.lab.state_dir().join("../provider-dns6.log");
        let asked6 = std::fs::read_to_string(dns6_log).unwrap_or_default();
        assert!(
            asked6.lines().any(|l| l == tunnel6),
            "the pushed IPv6 resolver was not asked by {tunnel6}: {asked6:?}"
        );
        // bob goes direct, over both.
        let bob_direct = || {
            fetch(&self.bob).0.as_deref() == Some(CELL_UPLINK_ADDR)
                && fetch6(&self.bob).0.as_deref() == Some(CELL_UPLINK_ADDR6)
        };
        assert!(
            eventually(APPLY_TIMEOUT, bob_direct),
            "bob direct: {:?} {:?}",
            fetch(&self.bob),
            fetch6(&self.bob)
        );
        assert_eq!(
            self.lab.uplink_leaks(),
            0,
            "alice's packets on the uplink while the exit is up"
        );
    }

    /// The server restarted without IPv6, as the module says.
    pub(super) async fn assert_ipv6_refused_without_an_ipv6_tunnel(&mut self) {
        // The provider drops IPv6 (its server restarted without server-ipv6): the tunnel comes back
        // with IPv4 only, and alice's IPv6 and her DNS over IPv6 are refused at once again, none
        // of it sent by the uplink, while her IPv4 still leaves through the exit.
        self.server.stop();
        self.server.ipv6 = false;
        self.server.start();
        self.wait_tunnel_without_ipv6().await;
        self.waits_for_provider("alice through the exit without IPv6");
        std::thread::sleep(ICMP_BUDGET_REFILL);
        let (seen6, took6) = fetch6(&self.alice);
        assert!(
            seen6.is_none() && took6 < FAST_REFUSAL,
            "a tunnel without IPv6: alice's IPv6 got {seen6:?} after {took6:?}"
        );
        let started = Instant::now();
        assert!(!dns6_answered(&self.alice), "DNS over IPv6 without IPv6");
        let took_dns6 = started.elapsed();
        assert!(
            took_dns6 < FAST_REFUSAL,
            "DNS over IPv6 refused after {took_dns6:?}"
        );
        // Nor does the cell's own resolver answer it (it would ask its upstream by the uplink),
        // though it answers its own zone to a peer that goes direct (retried: a loaded machine
        // may take longer than dig's second).
        let answers_bob = || dig6(&self.bob, &cell_address6(), CELL_DOMAIN);
        assert!(
            eventually(BOB_DNS_TIMEOUT, answers_bob),
            "the cell's resolver over IPv6, to bob"
        );
        assert!(
            !dig6(&self.alice, &cell_address6(), CELL_DOMAIN),
            "the cell's resolver answered alice over IPv6 without the exit"
        );
        assert_eq!(
            self.lab.uplink_leaks(),
            0,
            "a tunnel without IPv6: alice's packets on the uplink"
        );
    }
}

/// One DNS question over IPv6 to a resolver the peer hard-coded; whether it was answered.
pub(super) fn dns6_answered(client: &WgClient) -> bool {
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
