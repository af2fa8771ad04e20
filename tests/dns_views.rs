//! Split horizon, asked with `dig` and `kdig`: peers (the cell itself on loopback; a peer is
//! otherwise whoever arrives through WireGuard) see the peers' names, internal records and the cell at its
//! WireGuard addresses, and get recursion through the upstreams with a cache; the world (an
//! address in a network namespace of the test's own, even one inside the cell's WireGuard
//! subnet, since it did not come through WireGuard) sees only public records and is refused
//! everything else. Peer names follow the peers, and every change moves the SOA serial.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An address inside the fixtures' subnet_v4 (10.77.0.0/24) that no peer of this test is
/// given (peers get the lowest free ones), different per process so that two runs side by
/// side do not claim the same host route.
fn peer_subnet_client() -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 128 + (std::process::id() % 120) as u8)
}
type Asker<'a> = dyn Fn(Tool, &str, &str, &[&str]) -> Reply + 'a;
const INTERNAL_ADDRESS: &str = "10.77.0.50";
const PUBLIC_ADDRESS: &str = "192.0.2.80";

/// The cell's WireGuard addresses, as a peer's config names its DNS server.
async fn cell_wireguard_addresses(cell: &DnsCell, peer: &str) -> (String, String) {
    let resp = cell.admin.get(&format!("/api/peers/{peer}/config")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("config text");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("DNS = "))
        .unwrap_or_else(|| panic!("no DNS line in\n{text}"));
    let (v4, v6) = line.split_once(", ").expect("two DNS addresses");
    (v4.to_string(), v6.to_string())
}

#[tokio::test]
async fn peers_and_the_world_see_their_own_views() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let subnet_client = peer_subnet_client();
    world.add_address(subnet_client);
    // The root side of the veth pair, where the namespace's clients ask; and loopback.
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    let loopback = cell.dns();

    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "www", "type": "A", "data": PUBLIC_ADDRESS }),
    )
    .await;
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "nas", "type": "A", "data": INTERNAL_ADDRESS, "view": "internal" }),
    )
    .await;
    let bob = cell.create_peer("bob").await;
    let (bob_v4, bob_v6) = (
        bob["address_v4"].as_str().expect("v4").to_string(),
        bob["address_v6"].as_str().expect("v6").to_string(),
    );
    let (cell_v4, cell_v6) = cell_wireguard_addresses(&cell, "bob").await;
    ask_until(
        PROPAGATION,
        "bob's name",
        || dig(cell.dns(), "bob.home.example", "A", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;

    // Three clients: loopback is a peer; the namespace's own address is the world, and so is
    // an address in subnet_v4 that arrives over the veth instead of WireGuard.
    let from_loopback: &Asker = &|tool: Tool, name: &str, rtype: &str, opts: &[&str]| {
        ask(tool, None, loopback, name, rtype, opts)
    };
    let from_subnet: &Asker = &|tool: Tool, name: &str, rtype: &str, opts: &[&str]| {
        world.ask(tool, server, Some(subnet_client), name, rtype, opts)
    };
    let from_world: &Asker = &|tool: Tool, name: &str, rtype: &str, opts: &[&str]| {
        world.ask(tool, server, None, name, rtype, opts)
    };

    for tool in [Tool::Dig, Tool::Kdig] {
        for transport in ["+notcp", "+tcp"] {
            let how = format!("{tool:?} {transport}");
            {
                let peer = from_loopback;
                let how = format!("{how} from loopback");
                let a = peer(tool, "bob.home.example", "A", &[transport]);
                assert_eq!(a.data("A"), [bob_v4.as_str()], "{how}:\n{}", a.text);
                assert!(a.has_flag("aa"), "{how}");
                let aaaa = peer(tool, "bob.home.example", "AAAA", &[transport]);
                assert_eq!(
                    aaaa.data("AAAA"),
                    [bob_v6.as_str()],
                    "{how}:\n{}",
                    aaaa.text
                );
                let nas = peer(tool, "nas.home.example", "A", &[transport]);
                assert_eq!(nas.data("A"), [INTERNAL_ADDRESS], "{how}:\n{}", nas.text);
                let www = peer(tool, "www.home.example", "A", &[transport]);
                assert_eq!(www.data("A"), [PUBLIC_ADDRESS], "{how}");
                // The cell itself at its WireGuard addresses, not its public endpoint.
                let apex = peer(tool, "home.example", "A", &[transport]);
                assert_eq!(apex.data("A"), [cell_v4.as_str()], "{how}:\n{}", apex.text);
                let apex6 = peer(tool, "home.example", "AAAA", &[transport]);
                assert_eq!(apex6.data("AAAA"), [cell_v6.as_str()], "{how}");
            }

            for (who, from_world) in [("world", from_world), ("subnet", from_subnet)] {
                let how = format!("{how} from the {who}");
                for name in ["bob.home.example", "nas.home.example"] {
                    let hidden = from_world(tool, name, "A", &[transport]);
                    assert_eq!(hidden.status, "NXDOMAIN", "{how} {name}:\n{}", hidden.text);
                    assert!(hidden.answer.is_empty(), "{how} {name}");
                    assert!(hidden.has_flag("aa"), "{how} {name}");
                }
                let www = from_world(tool, "www.home.example", "A", &[transport]);
                assert_eq!(www.data("A"), [PUBLIC_ADDRESS], "{how}:\n{}", www.text);
                assert!(www.has_flag("aa"), "{how}");
                // The apex at the cell's public endpoint; no WireGuard address leaks.
                let apex = from_world(tool, "home.example", "A", &[transport]);
                assert_eq!(apex.data("A"), [PUBLIC_ENDPOINT], "{how}:\n{}", apex.text);
                let apex6 = from_world(tool, "home.example", "AAAA", &[transport]);
                assert!(apex6.answer.is_empty(), "{how}:\n{}", apex6.text);
                // No recursion for the world, whatever it asks for.
                let outside = from_world(tool, "example.org", "A", &[transport, "+rec"]);
                assert_eq!(outside.status, "REFUSED", "{how}:\n{}", outside.text);
                assert!(!outside.has_flag("ra") && !outside.has_flag("aa"), "{how}");
            }
        }
    }
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn peer_names_follow_the_peers_and_the_serial_moves() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    let start = cell.serial();

    let carol = cell.create_peer("carol").await;
    let carol_v4 = carol["address_v4"].as_str().expect("v4").to_string();
    let seen = ask_until(
        PROPAGATION,
        "carol's name after she was added",
        || dig(s, "carol.home.example", "A", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    assert_eq!(seen.data("A"), [carol_v4]);
    let after_add = cell.serial_above(CELL_DOMAIN, start).await;

    let dave = cell.create_peer("dave").await;
    let after_second = cell.serial_above(CELL_DOMAIN, after_add).await;
    let dave_v4 = dave["address_v4"].as_str().expect("v4").to_string();
    assert_eq!(
        kdig(s, "dave.home.example", "A", &[]).data("A"),
        [dave_v4],
        "serial {after_second}"
    );

    let (status, body) = cell
        .send(Method::DELETE, "/api/peers/carol", &json!(null))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gone = ask_until(
        PROPAGATION,
        "carol's name gone after she was deleted",
        || dig(s, "carol.home.example", "A", &[]),
        |r| r.status == "NXDOMAIN",
    )
    .await;
    gone.negative_soa();
    let after_delete = cell.serial_above(CELL_DOMAIN, after_second).await;
    assert!(after_delete > after_second);
    // dave is untouched.
    assert!(!dig(s, "dave.home.example", "A", &[]).answer.is_empty());
}

const UPSTREAM_ZONE: &str = "$ORIGIN upstream.test.\n$TTL 3600\n\
    @ IN SOA ns hostmaster 7 3600 900 604800 120\n\
    @ IN NS ns\nns IN A 127.0.0.1\n\
    www IN A 198.51.100.7\n\
    mail IN MX 10 mx.upstream.test.\n";

/// Points the cell's recursion at `upstream` through PUT /api/config.
async fn set_upstream(cell: &DnsCell, upstream: &str) {
    let (status, mut config) = cell.admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    config["dns"]["upstreams"] = json!([upstream]);
    let (status, body) = cell.send(Method::PUT, "/api/config", &config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dns"]["upstreams"], json!([upstream]), "{body}");
}

#[tokio::test]
async fn peers_get_forwarded_answers_that_the_cache_keeps() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    let mut upstream = ZoneServer::start("upstream.test", UPSTREAM_ZONE).await;
    set_upstream(&cell, &upstream.addr.to_string()).await;

    let first = ask_until(
        PROPAGATION,
        "a forwarded answer",
        || dig(s, "www.upstream.test", "A", &[]),
        |r| r.status == "NOERROR" && !r.answer.is_empty(),
    )
    .await;
    assert_eq!(first.data("A"), ["198.51.100.7"], "{}", first.text);
    assert!(first.has_flag("ra"), "RA:\n{}", first.text);
    assert!(
        !first.has_flag("aa"),
        "not picd's own zone:\n{}",
        first.text
    );
    let first_ttl = first.answer[0].ttl;
    assert!(first_ttl <= 3600 && first_ttl > 3500, "{}", first.text);
    // Over TCP, with kdig, the same.
    let tcp = kdig(s, "mail.upstream.test", "MX", &["+tcp"]);
    assert_eq!(tcp.data("MX"), ["10 mx.upstream.test."], "{}", tcp.text);
    assert!(tcp.has_flag("ra"), "{}", tcp.text);
    // A negative answer, with the upstream's SOA.
    let missing = dig(s, "nothere.upstream.test", "A", &[]);
    assert_eq!(missing.status, "NXDOMAIN", "{}", missing.text);
    assert!(missing.has_flag("ra"));
    let negative_ttl = missing.negative_soa().ttl;
    assert!(negative_ttl <= 120, "{}", missing.text);
    // Without RD there is no recursion: REFUSED.
    let norec = dig(s, "www.upstream.test", "A", &["+norec"]);
    assert_eq!(norec.status, "REFUSED", "{}", norec.text);

    // The upstream goes away: what was asked before is answered from the cache, its TTLs
    // counting down; what was not is a SERVFAIL.
    upstream.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for tool in [Tool::Dig, Tool::Kdig] {
        let cached = ask(tool, None, s, "www.upstream.test", "A", &[]);
        assert_eq!(
            cached.data("A"),
            ["198.51.100.7"],
            "{tool:?}:\n{}",
            cached.text
        );
        assert!(cached.has_flag("ra"));
        let ttl = cached.answer[0].ttl;
        assert!(
            ttl + 2 <= first_ttl,
            "{tool:?}: TTL {ttl} after {first_ttl}"
        );
        let cached_missing = ask(tool, None, s, "nothere.upstream.test", "A", &[]);
        assert_eq!(
            cached_missing.status, "NXDOMAIN",
            "{tool:?}:\n{}",
            cached_missing.text
        );
        let ttl = cached_missing.negative_soa().ttl;
        assert!(
            ttl + 2 <= negative_ttl,
            "{tool:?}: negative TTL {ttl} after {negative_ttl}"
        );
    }
    // picd gives up within its forwarding budget (under 2 s); one try, waited for in full.
    let never_asked = dig(s, "other.upstream.test", "A", &["+tries=1", "+time=5"]);
    assert_eq!(never_asked.status, "SERVFAIL", "{}", never_asked.text);
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn the_world_is_refused_recursion_even_with_an_upstream() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let upstream = ZoneServer::start("upstream.test", UPSTREAM_ZONE).await;
    set_upstream(&cell, &upstream.addr.to_string()).await;
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    // A peer gets the answer (so recursion is on) ...
    ask_until(
        PROPAGATION,
        "a forwarded answer for a peer",
        || dig(cell.dns(), "www.upstream.test", "A", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    // ... the world, asking the same (now cached) question, does not.
    for tool in [Tool::Dig, Tool::Kdig] {
        let refused = world.ask(tool, server, None, "www.upstream.test", "A", &["+rec"]);
        assert_eq!(refused.status, "REFUSED", "{tool:?}:\n{}", refused.text);
        assert!(refused.answer.is_empty());
    }
    let body: Value = cell.admin.get_json("/api/status").await.1;
    assert!(body.to_string().contains("dns"), "{body}");
}

#[tokio::test]
async fn a_new_domain_gets_its_zone_and_is_answered() {
    const MOVED: &str = "moved.example";
    let cell = DnsCell::start().await;
    let (status, mut config) = cell.admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    config["cell"]["domain"] = json!(MOVED);
    let (status, body) = cell.send(Method::PUT, "/api/config", &config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The reconcile creates the zone it finds missing, then serves it.
    let soa = ask_until(
        PROPAGATION,
        "the new domain's SOA",
        || dig(cell.dns(), MOVED, "SOA", &[]),
        |r| r.status == "NOERROR" && !r.data("SOA").is_empty(),
    )
    .await;
    assert!(soa.has_flag("aa"), "{}", soa.text);
    let (status, zones) = cell.admin.get_json("/api/dns/zones").await;
    assert_eq!(status, StatusCode::OK);
    assert!(zones.to_string().contains(&format!("{MOVED}.")), "{zones}");
}
