//! Zone transfers to a real `knotd` secondary: refused before the secondary is on the list,
//! a full AXFR once it is (public records only), and the change after a NOTIFY.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Knot transfers the zone on start and after a NOTIFY; both take well under this.
const TRANSFER: Duration = Duration::from_secs(30);

fn transferred(reply: &Reply) -> bool {
    reply.status == "NOERROR" && !reply.answer.is_empty()
}

#[tokio::test]
async fn knot_transfers_the_public_zone_and_follows_notify() {
    require_tools(&["knotd", "kdig"]);
    let cell = DnsCell::start().await;
    let picd = cell.dns();
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "www", "type": "A", "data": "192.0.2.80" }),
    )
    .await;
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "nas", "type": "A", "data": "10.77.0.50", "view": "internal" }),
    )
    .await;
    cell.create_peer("bob").await;

    // Not on the list yet: refused, over TCP as transfers go.
    let refused = kdig(picd, CELL_DOMAIN, "AXFR", &[]);
    assert!(refused.text.contains("REFUSED"), "{}", refused.text);
    assert!(refused.answer.is_empty());

    let knot_port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/secondaries",
            &json!({ "address": format!("127.0.0.1:{knot_port}") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/secondaries",
            &json!({ "address": format!("127.0.0.1:{knot_port}") }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, list) = cell.admin.get_json("/api/dns/secondaries").await;
    assert_eq!(
        list["secondaries"],
        json!([format!("127.0.0.1:{knot_port}")])
    );

    // The transfer itself, as kdig sees it (the secondary's address is loopback too).
    let axfr = kdig(picd, CELL_DOMAIN, "AXFR", &[]);
    let soas = axfr.answer.iter().filter(|r| r.rtype == "SOA").count();
    assert_eq!(soas, 2, "SOA first and last:\n{}", axfr.text);
    assert_eq!(axfr.answer.first().map(|r| r.rtype.as_str()), Some("SOA"));
    assert_eq!(axfr.answer.last().map(|r| r.rtype.as_str()), Some("SOA"));
    let names: Vec<&str> = axfr.answer.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"www.home.example."), "{}", axfr.text);
    assert!(
        !names.contains(&"nas.home.example.") && !names.contains(&"bob.home.example."),
        "internal names never leave the cell:\n{}",
        axfr.text
    );

    let knot = KnotSecondary::start(CELL_DOMAIN, picd, knot_port).await;
    let at_knot = |name: &str, rtype: &str| kdig(knot.addr, name, rtype, &["+norec"]);
    let www = ask_until(
        TRANSFER,
        "knot serving the transferred zone",
        || at_knot("www.home.example", "A"),
        transferred,
    )
    .await;
    assert_eq!(
        www.data("A"),
        ["192.0.2.80"],
        "{}\n{}",
        www.text,
        knot.log()
    );
    assert!(www.has_flag("aa"), "knot is authoritative for it");
    assert_eq!(at_knot("nas.home.example", "A").status, "NXDOMAIN");
    assert_eq!(at_knot("bob.home.example", "A").status, "NXDOMAIN");
    let serial = cell.serial();
    assert_eq!(at_knot(CELL_DOMAIN, "SOA").soa_serial(), Some(serial));

    // A change through the API: NOTIFY, and knot fetches the new serial.
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "new", "type": "TXT", "data": "\"after notify\"" }),
    )
    .await;
    let new_serial = cell.serial_above(CELL_DOMAIN, serial).await;
    let fresh = ask_until(
        TRANSFER,
        "knot picking up the change after NOTIFY",
        || at_knot("new.home.example", "TXT"),
        transferred,
    )
    .await;
    assert_eq!(fresh.data("TXT"), ["\"after notify\""], "{}", knot.log());
    assert_eq!(at_knot(CELL_DOMAIN, "SOA").soa_serial(), Some(new_serial));
    assert!(
        knot.log().to_ascii_lowercase().contains("notify"),
        "knot logged no NOTIFY:\n{}",
        knot.log()
    );

    // Off the list again: refused again.
    let (status, body) = cell
        .send(
            Method::DELETE,
            &format!("/api/dns/secondaries/127.0.0.1:{knot_port}"),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask_until(
        PROPAGATION,
        "transfers refused after the secondary was removed",
        || kdig(picd, CELL_DOMAIN, "AXFR", &[]),
        |r| r.text.contains("REFUSED"),
    )
    .await;
    assert_no_internal_errors(&cell.picd);
}
