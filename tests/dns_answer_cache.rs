//! The UDP answer cache, seen from outside: a question asked again with another ID and its
//! name in another case gets the answer the uncached path gives (the same bytes as over TCP,
//! which never uses the cache), and a change to the zone is answered at once, though the old
//! answer was cached.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const ORIGIN: &str = "t.test";
const ZONE: &str = "$ORIGIN t.test.\n$TTL 3600\n\
    @ IN SOA ns1 hostmaster ( 2024010101 3600 900 604800 120 )\n\
    @ IN NS ns1\n\
    ns1 IN A 192.0.2.53\n\
    www IN A 192.0.2.1\n\
    Mixed IN A 192.0.2.2\n\
    alias IN CNAME www\n\
    *.wild IN A 192.0.2.99\n";
const TYPE_A: u16 = 1;
const TYPE_TXT: u16 = 16;
const TIMEOUT: Duration = Duration::from_secs(2);

/// A query for `name` and `rtype` (RD set), with an EDNS OPT record (payload 1232) or without.
fn query(id: u16, name: &str, rtype: u16, edns: bool) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&rtype.to_be_bytes());
    msg.extend_from_slice(&[0, 1]);
    if edns {
        msg.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    msg
}

fn over_udp(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    socket.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a UDP answer");
    buf[..n].to_vec()
}

fn over_tcp(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .expect("send");
    stream.write_all(bytes).expect("send");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("a TCP answer");
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).expect("a TCP answer");
    reply
}

/// The name as written in the question of `reply`.
fn question_name(reply: &[u8]) -> String {
    let mut labels = Vec::new();
    let mut at = 12;
    while reply[at] != 0 {
        let len = usize::from(reply[at]);
        labels.push(String::from_utf8_lossy(&reply[at + 1..at + 1 + len]).into_owned());
        at += 1 + len;
    }
    labels.join(".")
}

#[tokio::test]
async fn repeated_questions_get_their_own_id_and_case() {
    let server = ZoneServer::start(ORIGIN, ZONE).await;
    let s = server.addr;
    let questions = [
        ("www.t.test", TYPE_A),
        ("mixed.t.test", TYPE_A),
        ("alias.t.test", TYPE_A),
        ("some.wild.t.test", TYPE_A),
        ("nothere.t.test", TYPE_A),
        ("www.t.test", TYPE_TXT),
    ];
    for (name, rtype) in questions {
        for edns in [false, true] {
            // The first fills the cache; the others are answered from it.
            for (id, asked) in [
                (0x0101, name.to_string()),
                (0x0202, name.to_string()),
                (0xbeef, name.to_uppercase()),
                (0x0303, alternate_case(name)),
            ] {
                let bytes = query(id, &asked, rtype, edns);
                let reply = over_udp(s, &bytes);
                assert_eq!(&reply[..2], &id.to_be_bytes(), "{asked} {rtype}");
                assert_eq!(question_name(&reply), asked, "{asked} {rtype}");
                assert_eq!(
                    reply,
                    over_tcp(s, &bytes),
                    "{asked} {rtype} edns {edns}: UDP (cache) and TCP differ"
                );
            }
        }
    }
}

fn alternate_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// The last four bytes of a reply holding one A record and nothing after it.
fn only_address(reply: &[u8]) -> [u8; 4] {
    assert_eq!(&reply[6..8], &[0, 1], "one answer: {reply:?}");
    reply[reply.len() - 4..].try_into().expect("four bytes")
}

#[tokio::test]
async fn a_changed_record_is_answered_at_once() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    let www = format!("www.{CELL_DOMAIN}");
    let record = cell
        .add_record(
            CELL_DOMAIN,
            json!({ "name": "www", "type": "A", "data": "192.0.2.80", "ttl": 600 }),
        )
        .await;
    let serial = cell.serial_above(CELL_DOMAIN, 0).await;
    let ask = |id| only_address(&over_udp(s, &query(id, &www, TYPE_A, false)));
    assert_eq!(ask(1), [192, 0, 2, 80]);
    // Asked twice: the second is answered from the cache.
    assert_eq!(ask(2), [192, 0, 2, 80]);
    assert_eq!(ask(3), [192, 0, 2, 80]);

    let id = record["id"].as_str().expect("id");
    let (status, body) = cell
        .send(
            Method::PUT,
            &format!("/api/dns/zones/{CELL_DOMAIN}/records/{id}"),
            &json!({ "data": "192.0.2.81" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cell.serial_above(CELL_DOMAIN, serial).await;
    assert_eq!(
        ask(4),
        [192, 0, 2, 81],
        "the cached answer outlived its snapshot"
    );
}
