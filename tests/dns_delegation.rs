//! Delegations (RFC 1034 4.3.2 step 3b): a name at or below a zone cut belongs to the child
//! zone, so the answer is a referral (no AA, the child's NS in the authority section, glue in
//! the additional section), never an authoritative NXDOMAIN.

mod common;

use common::*;
use serde_json::json;

const ZONE: &str = "$ORIGIN d.test.\n$TTL 3600\n\
    @ IN SOA ns1 hostmaster 1 3600 900 604800 120\n\
    @ IN NS ns1\n\
    ns1 IN A 192.0.2.53\n\
    www IN A 192.0.2.1\n\
    sub IN NS ns.sub\n\
    sub IN NS ns1.example.org.\n\
    ns.sub IN A 192.0.2.54\n\
    ns.sub IN AAAA 2001:db8::54\n\
    to-sub IN CNAME host.sub\n";

fn assert_referral(reply: &Reply, how: &str) {
    assert_eq!(reply.status, "NOERROR", "{how}:\n{}", reply.text);
    assert!(
        !reply.has_flag("aa"),
        "{how}: a referral is not authoritative:\n{}",
        reply.text
    );
    let mut ns: Vec<(&str, &str)> = reply
        .authority
        .iter()
        .map(|r| (r.name.as_str(), r.data.as_str()))
        .collect();
    ns.sort();
    assert_eq!(
        ns,
        [
            ("sub.d.test.", "ns.sub.d.test."),
            ("sub.d.test.", "ns1.example.org.")
        ],
        "{how}:\n{}",
        reply.text
    );
    let mut glue: Vec<&str> = reply.additional.iter().map(|r| r.data.as_str()).collect();
    glue.sort();
    assert_eq!(
        glue,
        ["192.0.2.54", "2001:db8::54"],
        "{how}:\n{}",
        reply.text
    );
}

#[tokio::test]
async fn names_below_a_cut_get_a_referral() {
    let server = ZoneServer::start("d.test", ZONE).await;
    for (tool, transport) in [
        (Tool::Dig, "+notcp"),
        (Tool::Dig, "+tcp"),
        (Tool::Kdig, "+notcp"),
    ] {
        let how = format!("{tool:?} {transport}");
        let q = |name: &str, rtype: &str| {
            ask(tool, None, server.addr, name, rtype, &[transport, "+norec"])
        };
        for (name, rtype) in [
            ("www.sub.d.test", "A"),
            ("deep.below.sub.d.test", "TXT"),
            ("sub.d.test", "NS"),
            ("sub.d.test", "A"),
            ("ns.sub.d.test", "A"),
        ] {
            let reply = q(name, rtype);
            assert!(reply.answer.is_empty(), "{how} {name}:\n{}", reply.text);
            assert_referral(&reply, &format!("{how} {name} {rtype}"));
        }
        // Above the cut the zone answers for itself.
        let www = q("www.d.test", "A");
        assert!(www.has_flag("aa"), "{how}");
        assert_eq!(www.data("A"), ["192.0.2.1"]);
        // An alias into the child: the CNAME (authoritative), then the referral.
        let alias = q("to-sub.d.test", "A");
        assert_eq!(
            alias.data("CNAME"),
            ["host.sub.d.test."],
            "{how}:\n{}",
            alias.text
        );
        assert_eq!(alias.authority.len(), 2, "{how}:\n{}", alias.text);
    }
}

#[tokio::test]
async fn the_daemon_refers_delegated_names_too() {
    let cell = DnsCell::start().await;
    for (name, rtype, data) in [("lab", "NS", "ns.lab"), ("ns.lab", "A", "192.0.2.99")] {
        cell.add_record(
            CELL_DOMAIN,
            json!({ "name": name, "type": rtype, "data": data }),
        )
        .await;
    }
    let reply = ask_until(
        PROPAGATION,
        "a referral for the delegated lab.home.example",
        || dig(cell.dns(), "printer.lab.home.example", "A", &["+norec"]),
        |r| !r.authority.is_empty() && r.authority[0].rtype == "NS",
    )
    .await;
    assert_eq!(reply.status, "NOERROR", "{}", reply.text);
    assert!(!reply.has_flag("aa"), "{}", reply.text);
    assert_eq!(reply.authority[0].data, "ns.lab.home.example.");
    assert_eq!(
        reply
            .additional
            .iter()
            .map(|r| r.data.as_str())
            .collect::<Vec<_>>(),
        ["192.0.2.99"]
    );
}
