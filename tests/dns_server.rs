//! The DNS server's protocol behaviour, asked with real `dig` and `kdig` over UDP and TCP:
//! the AA flag, NXDOMAIN vs NODATA with the SOA (negative TTL) in the authority section,
//! CNAME chains, wildcards, case, EDNS sizes and truncation, REFUSED, BADVERS, FORMERR and
//! NOTIMP. The zone is served by `picd dns serve` (the same engine as the daemon); the last
//! test asks the daemon itself.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

const ORIGIN: &str = "t.test";
/// The SOA's own TTL is 3600 and its MINIMUM 120: negative answers carry 120 (RFC 2308).
const NEGATIVE_TTL: u32 = 120;
const BIG_TXT_RECORDS: usize = 40;
const MANY_A_RECORDS: usize = 60;

fn zone_text() -> String {
    let mut zone = String::from(
        "$ORIGIN t.test.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster ( 2024010101 3600 900 604800 120 )\n\
         @ IN NS ns1\n\
         ns1 IN A 192.0.2.53\n\
         www IN A 192.0.2.1\n\
         www IN AAAA 2001:db8::1\n\
         Mixed IN A 192.0.2.2\n\
         alias IN CNAME www\n\
         chain1 IN CNAME chain2\n\
         chain2 IN CNAME alias\n\
         dangling IN CNAME nothere\n\
         external IN CNAME example.org.\n\
         *.wild IN A 192.0.2.99\n\
         *.wild IN TXT \"from the wildcard\"\n\
         exists.wild IN TXT \"a real name\"\n\
         a.b.ent IN A 192.0.2.7\n",
    );
    for i in 1..=BIG_TXT_RECORDS {
        zone.push_str(&format!(
            "big IN TXT \"record {i:02}: padding padding padding padding padding\"\n"
        ));
    }
    for i in 1..=MANY_A_RECORDS {
        zone.push_str(&format!("many IN A 10.0.0.{i}\n"));
    }
    zone
}

/// Both tools, both transports.
const WAYS: [(Tool, &str); 4] = [
    (Tool::Dig, "+notcp"),
    (Tool::Dig, "+tcp"),
    (Tool::Kdig, "+notcp"),
    (Tool::Kdig, "+tcp"),
];

fn q(tool: Tool, server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Reply {
    ask(tool, None, server, name, rtype, options)
}

#[tokio::test]
async fn authoritative_answers_negative_answers_and_cname_chains() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    for (tool, transport) in WAYS {
        let how = format!("{tool:?} {transport}");
        let ask = |name: &str, rtype: &str| q(tool, server.addr, name, rtype, &[transport]);

        let www = ask("www.t.test", "A");
        assert_eq!(www.status, "NOERROR", "{how}:\n{}", www.text);
        assert!(www.has_flag("aa"), "{how}: AA flag:\n{}", www.text);
        assert_eq!(www.data("A"), ["192.0.2.1"], "{how}");
        assert_eq!(www.answer[0].ttl, 3600, "{how}");
        assert!(www.authority.is_empty(), "{how}:\n{}", www.text);

        // NXDOMAIN: the name does not exist; the SOA says for how long to remember that.
        let missing = ask("nothere.t.test", "A");
        assert_eq!(missing.status, "NXDOMAIN", "{how}:\n{}", missing.text);
        assert!(missing.has_flag("aa"), "{how}");
        assert!(missing.answer.is_empty(), "{how}");
        let soa = missing.negative_soa();
        assert_eq!(
            (soa.name.as_str(), soa.ttl),
            ("t.test.", NEGATIVE_TTL),
            "{how}"
        );

        // NODATA: the name exists, the type does not.
        let nodata = ask("www.t.test", "MX");
        assert_eq!(nodata.status, "NOERROR", "{how}:\n{}", nodata.text);
        assert!(nodata.answer.is_empty(), "{how}");
        assert_eq!(nodata.negative_soa().ttl, NEGATIVE_TTL, "{how}");
        assert!(nodata.has_flag("aa"), "{how}");

        // A chain of aliases inside the zone is followed to the end, in order.
        let chain = ask("chain1.t.test", "A");
        assert_eq!(chain.status, "NOERROR", "{how}:\n{}", chain.text);
        let steps: Vec<(&str, &str)> = chain
            .answer
            .iter()
            .map(|r| (r.name.as_str(), r.rtype.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("chain1.t.test.", "CNAME"),
                ("chain2.t.test.", "CNAME"),
                ("alias.t.test.", "CNAME"),
                ("www.t.test.", "A")
            ],
            "{how}"
        );
        // Asking for the CNAME itself gives just the CNAME.
        let cname = ask("alias.t.test", "CNAME");
        assert_eq!(cname.data("CNAME"), ["www.t.test."], "{how}");
        assert_eq!(cname.answer.len(), 1, "{how}");
        // An alias to a missing name: the CNAME, then NXDOMAIN for its target (RFC 6604).
        let dangling = ask("dangling.t.test", "A");
        assert_eq!(dangling.status, "NXDOMAIN", "{how}:\n{}", dangling.text);
        assert_eq!(dangling.data("CNAME"), ["nothere.t.test."], "{how}");
        // An alias leaving the zone: the CNAME only, the client resolves the rest.
        let external = ask("external.t.test", "A");
        assert_eq!(external.status, "NOERROR", "{how}:\n{}", external.text);
        assert_eq!(external.data("CNAME"), ["example.org."], "{how}");
        assert!(external.data("A").is_empty(), "{how}");
    }
}

#[tokio::test]
async fn wildcards_and_empty_non_terminals() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    for (tool, transport) in WAYS {
        let how = format!("{tool:?} {transport}");
        let ask = |name: &str, rtype: &str| q(tool, server.addr, name, rtype, &[transport]);

        // A name under the wildcard is synthesised with the query's name as owner.
        let synth = ask("anything.wild.t.test", "A");
        assert_eq!(synth.status, "NOERROR", "{how}:\n{}", synth.text);
        assert!(synth.has_flag("aa"), "{how}");
        assert_eq!(synth.data("A"), ["192.0.2.99"], "{how}");
        assert_eq!(synth.answer[0].name, "anything.wild.t.test.", "{how}");
        let deeper = ask("x.y.wild.t.test", "TXT");
        assert_eq!(deeper.data("TXT"), ["\"from the wildcard\""], "{how}");
        // The wildcard's NODATA.
        let wild_nodata = ask("anything.wild.t.test", "MX");
        assert_eq!(
            wild_nodata.status, "NOERROR",
            "{how}:\n{}",
            wild_nodata.text
        );
        assert!(wild_nodata.answer.is_empty(), "{how}");
        wild_nodata.negative_soa();

        // An existing name blocks the wildcard: its own TXT, and NODATA for A.
        let real = ask("exists.wild.t.test", "TXT");
        assert_eq!(real.data("TXT"), ["\"a real name\""], "{how}");
        let blocked = ask("exists.wild.t.test", "A");
        assert_eq!(blocked.status, "NOERROR", "{how}:\n{}", blocked.text);
        assert!(
            blocked.answer.is_empty(),
            "{how}: wildcard leaked:\n{}",
            blocked.text
        );
        // The wildcard's parent itself is an empty non-terminal, not a wildcard match.
        let parent = ask("wild.t.test", "A");
        assert_eq!(parent.status, "NOERROR", "{how}:\n{}", parent.text);
        assert!(parent.answer.is_empty(), "{how}");

        // Empty non-terminals (b.ent and ent exist only because a.b.ent does): NODATA.
        for name in ["b.ent.t.test", "ent.t.test"] {
            let ent = ask(name, "A");
            assert_eq!(ent.status, "NOERROR", "{how} {name}:\n{}", ent.text);
            assert!(ent.answer.is_empty(), "{how} {name}");
            assert_eq!(ent.negative_soa().ttl, NEGATIVE_TTL, "{how} {name}");
        }
        // Below an empty non-terminal without a wildcard: NXDOMAIN.
        let below = ask("c.ent.t.test", "A");
        assert_eq!(below.status, "NXDOMAIN", "{how}:\n{}", below.text);
    }
}

#[tokio::test]
async fn names_match_in_any_case_and_keep_the_querys_case() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    // dig only: kdig lowercases the names it sends.
    for transport in ["+notcp", "+tcp"] {
        let how = format!("dig {transport}");
        let ask = |name: &str, rtype: &str| dig(server.addr, name, rtype, &[transport]);
        let upper = ask("WwW.T.TeSt", "A");
        assert_eq!(upper.status, "NOERROR", "{how}:\n{}", upper.text);
        assert_eq!(upper.question.as_deref(), Some("WwW.T.TeSt."), "{how}");
        assert_eq!(upper.answer[0].name, "WwW.T.TeSt.", "{how}");
        assert_eq!(upper.data("A"), ["192.0.2.1"], "{how}");
        // A record written "Mixed" in the zone file is found as "mIXED" and answered so.
        let mixed = ask("mIXED.t.test", "A");
        assert_eq!(mixed.data("A"), ["192.0.2.2"], "{how}:\n{}", mixed.text);
        assert_eq!(mixed.answer[0].name, "mIXED.t.test.", "{how}");
        // Wildcard synthesis keeps the query's case too; the chain's first owner as well.
        let wild = ask("SoMe.WILD.t.test", "A");
        assert_eq!(wild.answer[0].name, "SoMe.WILD.t.test.", "{how}");
        let chain = ask("CHAIN1.t.test", "A");
        assert_eq!(
            chain.answer[0].name, "CHAIN1.t.test.",
            "{how}:\n{}",
            chain.text
        );
        assert_eq!(chain.data("A"), ["192.0.2.1"], "{how}");
    }
}

#[tokio::test]
async fn edns_sizes_and_truncation() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    let s = server.addr;

    // EDNS in, EDNS out, with the payload picd accepts (1232: no fragments).
    let edns = dig(s, "www.t.test", "A", &["+edns=0", "+bufsize=4096"]);
    assert_eq!(edns.edns, Some((0, 1232)), "{}", edns.text);
    let kedns = kdig(s, "www.t.test", "A", &["+edns=0", "+bufsize=4096"]);
    assert_eq!(kedns.edns, Some((0, 1232)), "{}", kedns.text);
    // No EDNS in, none out.
    let plain = dig(s, "www.t.test", "A", &["+noedns"]);
    assert_eq!(plain.edns, None, "{}", plain.text);
    assert_eq!(plain.status, "NOERROR");

    for (name, rtype, count) in [
        ("big.t.test", "TXT", BIG_TXT_RECORDS),
        ("many.t.test", "A", MANY_A_RECORDS),
    ] {
        // Over UDP without EDNS (512 bytes) and with a 512-byte EDNS buffer: TC, empty answer.
        for options in [
            &["+notcp", "+noedns", "+ignore"][..],
            &["+notcp", "+bufsize=512", "+ignore"][..],
        ] {
            let cut = dig(s, name, rtype, options);
            assert!(cut.has_flag("tc"), "{name} {options:?}:\n{}", cut.text);
            assert!(cut.answer.is_empty(), "{name} {options:?}");
            assert_eq!(cut.question.as_deref(), Some(&*format!("{name}.")));
        }
        let kcut = kdig(s, name, rtype, &["+notcp", "+noedns", "+ignore"]);
        assert!(kcut.has_flag("tc"), "{name}:\n{}", kcut.text);
        // dig retries truncated answers over TCP by itself and gets everything.
        let retried = dig(s, name, rtype, &["+noedns"]);
        assert!(!retried.has_flag("tc"), "{}", retried.text);
        assert_eq!(retried.answer.len(), count, "{name}:\n{}", retried.text);
        // Over TCP the whole answer comes at once.
        for tool in [Tool::Dig, Tool::Kdig] {
            let full = q(tool, s, name, rtype, &["+tcp"]);
            assert!(!full.has_flag("tc"), "{tool:?} {name}:\n{}", full.text);
            assert_eq!(full.answer.len(), count, "{tool:?} {name}:\n{}", full.text);
        }
    }
    // 60 A records (about 1 KB) fit in picd's 1232-byte EDNS payload: no truncation.
    let fits = dig(
        s,
        "many.t.test",
        "A",
        &["+notcp", "+bufsize=1232", "+ignore"],
    );
    assert!(!fits.has_flag("tc"), "{}", fits.text);
    assert_eq!(fits.answer.len(), MANY_A_RECORDS);
    // The 40 long TXT strings (about 2.5 KB) do not, even when the client offers 4096.
    let big = dig(
        s,
        "big.t.test",
        "TXT",
        &["+notcp", "+bufsize=4096", "+ignore"],
    );
    assert!(big.has_flag("tc"), "{}", big.text);
}

#[tokio::test]
async fn refused_badvers_and_notimp() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    let s = server.addr;
    for (tool, transport) in WAYS {
        let how = format!("{tool:?} {transport}");
        // Not authoritative, no recursion here: REFUSED, without AA.
        let outside = q(tool, s, "example.org", "A", &[transport]);
        assert_eq!(outside.status, "REFUSED", "{how}:\n{}", outside.text);
        assert!(!outside.has_flag("aa"), "{how}");
        assert!(!outside.has_flag("ra"), "{how}");
    }
    // EDNS version 1 is not spoken: BADVERS, with picd's version (0) in the OPT record.
    let v1 = dig(s, "www.t.test", "A", &["+edns=1", "+noednsneg"]);
    assert_eq!(v1.status, "BADVERS", "{}", v1.text);
    assert_eq!(v1.edns.map(|e| e.0), Some(0), "{}", v1.text);
    assert!(v1.answer.is_empty());
    let kv1 = kdig(s, "www.t.test", "A", &["+edns=1"]);
    assert_eq!(kv1.status, "BADVERS", "{}", kv1.text);
    // Opcodes other than QUERY: NOTIMP.
    for opcode in ["status", "update"] {
        let other = dig(s, "www.t.test", "A", &[&format!("+opcode={opcode}")]);
        assert_eq!(other.status, "NOTIMP", "{opcode}:\n{}", other.text);
    }
    // Classes other than IN: REFUSED.
    let chaos = dig(s, "version.bind", "TXT", &["-c", "CH"]);
    assert_eq!(chaos.status, "REFUSED", "{}", chaos.text);
    // A zone transfer from an address not on the list: REFUSED.
    let axfr = kdig(s, "t.test", "AXFR", &[]);
    assert!(axfr.text.contains("REFUSED"), "{}", axfr.text);
}

/// A query in wire format: header with `qdcount` and the same question repeated.
fn raw_query(id: u16, qdcount: u16) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00]); // RD
    msg.extend_from_slice(&qdcount.to_be_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    for _ in 0..qdcount {
        msg.extend_from_slice(b"\x03www\x01t\x04test\x00\x00\x01\x00\x01");
    }
    msg
}

fn exchange(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = [0u8; 4096];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

#[tokio::test]
async fn malformed_messages_get_formerr_or_silence() {
    let server = ZoneServer::start(ORIGIN, &zone_text()).await;
    let s = server.addr;
    const FORMERR: u8 = 1;

    // The well-formed query works over the raw socket.
    let ok = exchange(s, &raw_query(0x1234, 1)).expect("an answer");
    assert_eq!((&ok[..2], rcode(&ok)), (&[0x12, 0x34][..], 0));
    assert_eq!(ok[2] & 0x84, 0x84, "QR and AA");

    // No question, two questions: FORMERR, same ID, QR set.
    for qdcount in [0, 2] {
        let reply = exchange(s, &raw_query(0x4242, qdcount)).expect("an answer");
        assert_eq!(&reply[..2], &[0x42, 0x42], "qdcount {qdcount}");
        assert_eq!(rcode(&reply), FORMERR, "qdcount {qdcount}: {reply:?}");
        assert_ne!(reply[2] & 0x80, 0, "QR");
    }
    // A header that promises a question that is not there: FORMERR from the header alone.
    let mut cut = raw_query(0x0707, 1);
    cut.truncate(16);
    let reply = exchange(s, &cut).expect("an answer");
    assert_eq!((&reply[..2], rcode(&reply)), (&[0x07, 0x07][..], FORMERR));
    assert_eq!(reply.len(), 12, "header only");
    // Too short for a header, or a response (QR set): no answer at all (no reflection).
    assert_eq!(exchange(s, &[0x01, 0x02, 0x03]), None);
    let mut response = raw_query(0x0808, 1);
    response[2] |= 0x80;
    assert_eq!(exchange(s, &response), None);
    // The server is still serving.
    assert_eq!(dig(s, "www.t.test", "A", &[]).status, "NOERROR");
}

#[tokio::test]
async fn the_daemon_answers_with_the_same_rules() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    cell.add_record(
        CELL_DOMAIN,
        serde_json::json!({ "name": "www", "type": "A", "data": "192.0.2.80", "ttl": 600 }),
    )
    .await;
    let www = ask_until(
        PROPAGATION,
        "www in the cell's zone",
        || dig(s, "WWW.home.example", "A", &["+norec"]),
        |r| !r.answer.is_empty(),
    )
    .await;
    assert!(www.has_flag("aa"), "{}", www.text);
    assert_eq!(www.answer[0].name, "WWW.home.example.");
    assert_eq!(
        (www.answer[0].ttl, www.data("A")),
        (600, vec!["192.0.2.80".to_string()])
    );
    for transport in ["+notcp", "+tcp"] {
        let missing = kdig(s, "nothere.home.example", "A", &[transport, "+norec"]);
        assert_eq!(missing.status, "NXDOMAIN", "{}", missing.text);
        // The cell's SOA: TTL 3600, MINIMUM 300.
        assert_eq!(missing.negative_soa().ttl, 300, "{}", missing.text);
        let nodata = kdig(s, "www.home.example", "TXT", &[transport, "+norec"]);
        assert_eq!(nodata.status, "NOERROR", "{}", nodata.text);
        assert!(nodata.answer.is_empty() && nodata.has_flag("aa"));
    }
    let v1 = dig(s, "www.home.example", "A", &["+edns=1", "+noednsneg"]);
    assert_eq!(v1.status, "BADVERS", "{}", v1.text);
}
