//! picd's DNS engine, for the fuzz targets. picd is one binary crate; rather than split it into
//! a library for fuzzing's sake, this crate compiles the engine's pure modules straight from
//! picd's sources: `zone.rs` (zones, views, the snapshot), `answer.rs` (one message in, one
//! answer out), `cache.rs` (UDP answers encoded once, patched per query) and `zonefile/`
//! (BIND import and export). They depend on nothing but hickory-proto, ipnet, serde and
//! foldhash, so the code fuzzed here is exactly the code picd runs.
//!
//! Each check below is what a target asserts for one input: no panic, and answers that are
//! well-formed DNS.

use std::sync::{Arc, OnceLock};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{Name, Record, RecordType};

// At the crate root, as siblings, the way `super::zone` in answer.rs expects them.
#[path = "../../src/dns/answer.rs"]
pub mod answer;
#[path = "../../src/dns/cache.rs"]
pub mod cache;
#[path = "../../src/dns/marker.rs"]
pub mod marker;
// A library's public `len` wants an `is_empty`; in picd (a binary) it would be dead code.
#[allow(clippy::len_without_is_empty)]
#[path = "../../src/dns/zone.rs"]
pub mod zone;
/// The transfer keys picd reads from its vault: the fuzz targets serve no transfers.
pub mod tsig {
    #[derive(Debug, Clone, Default)]
    pub struct TransferKeys;
}
#[path = "../../src/dns/zonefile/mod.rs"]
pub mod zonefile;

use answer::{Outcome, Transport};
use zone::{Snapshot, View, Zone};

/// The zone every message is asked against: what the server tests use (wildcards, CNAME
/// chains, empty non-terminals, an answer too big for UDP).
const ZONE: &str = include_str!("../seeds/zone_file/rfc_features.zone");
const ORIGIN: &str = "t.test.";
/// A record only peers see.
const INTERNAL: &str = "secret 300 IN A 10.77.0.9";

fn build_snapshot() -> Snapshot {
    let origin = Name::from_ascii(ORIGIN).expect("origin");
    let mut text = ZONE.replace("$INCLUDE /etc/hostname\n", "");
    for i in 0..40 {
        text.push_str(&format!(
            "big IN TXT \"record {i:02} padding padding padding padding\"\n"
        ));
    }
    let imported = zonefile::import(&text, &origin, 3600).expect("fixture zone");
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    let soa = zonefile::parse_one(
        &origin,
        3600,
        "@ IN SOA ns1 hostmaster 2024010101 3600 900 604800 120",
    )
    .expect("soa");
    let mut world = Zone::new(origin.clone(), soa);
    for (_, record) in imported.records {
        world.insert(record);
    }
    let mut peers = world.clone();
    peers.insert(zonefile::parse_one(&origin, 300, INTERNAL).expect("internal"));
    Snapshot {
        peers: View::new(vec![peers]),
        world: View::new(vec![world]),
        internal_subnets: vec!["10.77.0.0/24".parse().expect("net")],
        upstreams: vec!["127.0.0.1:53".parse().expect("addr")],
        recursion: true,
        transfer_allow: Vec::new(),
        transfer_keys: Default::default(),
    }
}

pub fn snapshot() -> &'static Arc<Snapshot> {
    static SNAPSHOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| Arc::new(build_snapshot()))
}

/// A peer (the view is decided by the socket, from the arrival interface) and the world.
const CLIENTS: [bool; 2] = [true, false];

/// One message from every kind of client over both transports: no panic; every answer is a
/// response to the same ID that decodes, and fits the transport; only peers are forwarded.
/// Over UDP the answer cache gives what `handle` gives, for the message and for the same
/// message asked again with another ID and another case.
pub fn check_message(bytes: &[u8]) {
    let snapshot = snapshot();
    for client in CLIENTS {
        check_cache(bytes, client);
        for transport in [Transport::Udp, Transport::Tcp] {
            match answer::handle(snapshot, bytes, client, transport) {
                Outcome::Reply(reply) => check_reply(bytes, &reply, transport),
                Outcome::Forward(query) => {
                    assert!(client, "world query forwarded");
                    // What the forwarder sends back when every upstream fails.
                    let mut failed = Message::new(
                        query.metadata.id,
                        MessageType::Response,
                        query.metadata.op_code,
                    );
                    failed.queries = query.queries.clone();
                    if let Outcome::Reply(reply) = answer::encode(failed, &query, transport) {
                        check_reply(bytes, &reply, transport);
                    }
                }
                Outcome::Drop => {}
            }
        }
    }
}

fn check_cache(bytes: &[u8], client: bool) {
    let mut cache = cache::AnswerCache::default();
    let again = other_id_and_case(bytes);
    for message in [bytes, &again[..], &again[..]] {
        let mut reply = Vec::new();
        let cached = cache.answer(snapshot(), message, client, &mut reply);
        match (answer::handle(snapshot(), message, client, Transport::Udp), cached) {
            (Outcome::Reply(expected), cache::Udp::Reply) => assert_eq!(
                reply, expected,
                "the cache's answer differs from handle's for {message:?}"
            ),
            (Outcome::Forward(_), cache::Udp::Forward(_)) | (Outcome::Drop, cache::Udp::Drop) => {}
            _ => panic!("the cache and handle disagree on what to do with {message:?}"),
        }
    }
}

/// `bytes` with the ID changed and the letters of the question's name (as far as it is a
/// plain name) alternately in the other case.
fn other_id_and_case(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() < 12 {
        return out;
    }
    out[0] ^= 0x5a;
    let mut at = 12;
    while let Some(&len) = out.get(at) {
        let len = usize::from(len);
        if len == 0 || len & 0xc0 != 0 || at + 1 + len > out.len() {
            break;
        }
        for (i, byte) in out[at + 1..at + 1 + len].iter_mut().enumerate() {
            if i % 2 == 0 && byte.is_ascii_alphabetic() {
                *byte ^= 0x20;
            }
        }
        at += 1 + len;
    }
    out
}

fn check_reply(query: &[u8], reply: &[u8], transport: Transport) {
    assert!(reply.len() >= 12, "short reply");
    assert_eq!(reply[..2], query[..2], "reply ID differs from the query's");
    assert_ne!(reply[2] & 0x80, 0, "reply without QR");
    if transport == Transport::Udp {
        assert!(
            reply.len() <= usize::from(answer::EDNS_PAYLOAD),
            "UDP reply of {} bytes",
            reply.len()
        );
    }
    let decoded = Message::from_vec(reply)
        .unwrap_or_else(|e| panic!("picd's reply does not decode: {e}: {reply:?}"));
    assert_eq!(decoded.metadata.message_type, MessageType::Response);
}

/// Types the API writes, whose export must import back as the same record.
const ROUND_TRIP_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::NS,
    RecordType::PTR,
];

/// The zone's origin: the first `$ORIGIN` of the text, else example.net.
fn origin_of(text: &str) -> Name {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("$ORIGIN "))
        .and_then(|n| Name::from_ascii(n.trim()).ok())
        .filter(|n| n.is_fqdn())
        .unwrap_or_else(|| Name::from_ascii("example.net.").expect("name"))
}

/// Any text: import does not panic and keeps records inside the zone; the export of what was
/// imported (the types the API writes) imports back to the same records.
pub fn check_zone_file(text: &str) {
    let origin = origin_of(text);
    let Ok(imported) = zonefile::import(text, &origin, 3600) else {
        return;
    };
    for (_, record) in &imported.records {
        assert!(
            origin.zone_of(&record.name),
            "{} outside {origin}",
            record.name
        );
    }
    let kept: Vec<&Record> = imported
        .records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| ROUND_TRIP_TYPES.contains(&r.record_type()))
        .collect();
    // An origin the zone parser cannot itself write out (odd characters): nothing to export.
    let Ok(soa) = zonefile::parse_one(
        &origin,
        3600,
        "@ IN SOA ns hostmaster 1 3600 900 1209600 300",
    ) else {
        return;
    };
    let exported = zonefile::export(&origin, 3600, &soa, kept.iter().copied());
    let again = zonefile::import(&exported, &origin, 3600)
        .unwrap_or_else(|e| panic!("the export does not split: {e:?}\n{exported}"));
    assert!(
        again.errors.is_empty(),
        "the export does not import: {:?}\n{exported}",
        again.errors
    );
    let mut before: Vec<String> = kept.iter().map(|r| r.to_string().to_lowercase()).collect();
    let mut after: Vec<String> = again
        .records
        .iter()
        .map(|(_, r)| r.to_string().to_lowercase())
        .collect();
    before.sort();
    before.dedup();
    after.sort();
    after.dedup();
    assert_eq!(
        before, after,
        "export round trip changed records:\n{exported}"
    );
}
