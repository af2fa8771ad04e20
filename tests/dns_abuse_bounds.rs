//! More of the DNS server's bounds, on the real binary: a burst of one question asked
//! upstream once (coalescing), the global TCP connection cap, the whole-connection lifetime of
//! a busy TCP client, and a large TXT answer to the world kept within the UDP limit. Upstreams
//! are loopback stand-ins.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Identical questions sent at once, and how slowly the stand-in upstream answers each.
const SIMULTANEOUS: u16 = 20;
const UPSTREAM_DELAY: Duration = Duration::from_millis(300);
/// Questions the stand-in may see for the burst (one, or a straggler after the first answer).
const UPSTREAM_QUESTIONS_BOUND: usize = 2;
/// The global TCP cap set for the test, below the per-address default (16).
const TCP_CAP: usize = 4;
const TCP_OVER_CAP: usize = 6;
/// The connection lifetime set for the test, and how often its client asks.
const TCP_LIFETIME: Duration = Duration::from_secs(4);
const TCP_QUERY_EVERY: Duration = Duration::from_secs(1);
/// Large TXT: records of `BIG_TXT_LEN` characters (2.5 KB in all, over 1232 bytes).
const BIG_TXT_RECORDS: usize = 10;
const BIG_TXT_LEN: usize = 240;
/// A truncated answer is the question again with a header: at most this many times its size.
const TRUNCATED_AMPLIFICATION: f64 = 1.5;

#[tokio::test]
async fn identical_questions_in_flight_are_asked_upstream_once() {
    let cell = DnsCell::start().await;
    let upstream = SlowUpstream::start(UPSTREAM_DELAY);
    set_dns_upstream(&cell, upstream.addr).await;
    let expected = vec![SLOW_UPSTREAM_ANSWER.to_string()];
    ask_until(
        PROPAGATION,
        "the stand-in answering as the upstream",
        || dig(cell.dns(), "warm-up.example.org", "A", &[]),
        |r| r.data("A") == expected,
    )
    .await;
    let asked_before = upstream.questions();
    let before = dns_stats(&cell).await;

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    for id in 0..SIMULTANEOUS {
        let q = raw_query(id, "same.example.org.", RecordType::A, false);
        socket
            .send_to(&q.to_vec().expect("encode"), cell.dns())
            .expect("send");
    }
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut answered = BTreeSet::new();
    let mut buf = vec![0u8; 4096];
    while answered.len() < usize::from(SIMULTANEOUS) {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            break;
        };
        let reply = Message::from_vec(&buf[..n]).expect("decode");
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let addresses: Vec<_> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        assert_eq!(addresses, [SLOW_UPSTREAM_ANSWER], "{reply:?}");
        answered.insert(reply.metadata.id);
    }
    let took = started.elapsed();
    let asked = upstream.questions() - asked_before;
    let after = dns_stats(&cell).await;
    let coalesced = after["forward"]["coalesced"].as_u64().unwrap_or(0)
        - before["forward"]["coalesced"].as_u64().unwrap_or(0);
    eprintln!(
        "{SIMULTANEOUS} identical questions: {} answered in {took:?}, upstream asked {asked}, \
         coalesced +{coalesced}",
        answered.len()
    );
    assert_eq!(answered.len(), usize::from(SIMULTANEOUS), "{answered:?}");
    assert!(
        (1..=UPSTREAM_QUESTIONS_BOUND).contains(&asked),
        "the upstream was asked {asked} times"
    );
    assert!(
        coalesced >= u64::from(SIMULTANEOUS) - UPSTREAM_QUESTIONS_BOUND as u64,
        "coalesced grew by {coalesced}"
    );
    assert_no_internal_errors(&cell.picd);
}

fn framed_query(id: u16) -> Vec<u8> {
    let q = raw_query(id, "home.example.", RecordType::SOA, false)
        .to_vec()
        .expect("encode");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    framed
}

/// Asks one question on `stream`; whether an answer came back within a few seconds.
async fn ask_over(stream: &mut TcpStream, id: u16) -> bool {
    let exchange = async {
        stream.write_all(&framed_query(id)).await?;
        let len = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        std::io::Result::Ok(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), exchange).await,
        Ok(Ok(()))
    )
}

/// A TCP connection to `server` from `source` (any port).
async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .expect("bind");
    socket.connect(server).await.expect("connect")
}

#[tokio::test]
async fn tcp_connections_past_the_global_cap_are_refused() {
    let cap = TCP_CAP.to_string();
    let cell = DnsCell::start_with(&[], &[("PICD_DNS_TCP_MAX_CLIENTS", &cap)]).await;
    let before = dns_stats(&cell).await;
    assert_eq!(
        before["limits"]["tcp_max_clients"],
        json!(TCP_CAP),
        "{before}"
    );
    // Each connection from its own loopback address: the per-address limit never applies.
    let mut held = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for i in 0..TCP_CAP + TCP_OVER_CAP {
        let source = Ipv4Addr::new(127, 0, 0, 10 + i as u8);
        let mut stream = connect_from(source, cell.dns()).await;
        if ask_over(&mut stream, i as u16).await {
            served += 1;
            held.push(stream);
        } else {
            refused += 1;
        }
    }
    let after = dns_stats(&cell).await;
    let grown = after["tcp"]["refused"].as_u64().unwrap_or(0)
        - before["tcp"]["refused"].as_u64().unwrap_or(0);
    eprintln!("global cap {TCP_CAP}: {served} served, {refused} refused, tcp.refused +{grown}");
    assert_eq!(served, TCP_CAP, "{after}");
    assert_eq!(refused, TCP_OVER_CAP, "{after}");
    assert!(grown >= TCP_OVER_CAP as u64, "{after}");
    // Once they close, a new connection is served again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 99), cell.dns()).await;
    assert!(
        ask_over(&mut stream, 99).await,
        "not served after the others closed"
    );
}

#[tokio::test]
async fn a_busy_tcp_connection_is_closed_at_its_lifetime() {
    let lifetime = TCP_LIFETIME.as_secs().to_string();
    let cell = DnsCell::start_with(&[], &[("PICD_DNS_TCP_LIFETIME_SECONDS", &lifetime)]).await;
    let before = dns_stats(&cell).await;
    assert_eq!(
        before["limits"]["tcp_lifetime_seconds"],
        json!(TCP_LIFETIME.as_secs()),
        "{before}"
    );
    let mut stream = TcpStream::connect(cell.dns()).await.expect("connect");
    let started = Instant::now();
    let mut answered = 0u16;
    // A question every second: never idle (10 s), so only the lifetime can end it.
    let closed = loop {
        if !ask_over(&mut stream, answered).await {
            break started.elapsed();
        }
        answered += 1;
        assert!(
            started.elapsed() < TCP_LIFETIME * 3,
            "still connected after {:?} ({answered} answers)",
            started.elapsed()
        );
        tokio::time::sleep(TCP_QUERY_EVERY).await;
    };
    let after = dns_stats(&cell).await;
    let timed_out = after["tcp"]["timed_out"].as_u64().unwrap_or(0)
        - before["tcp"]["timed_out"].as_u64().unwrap_or(0);
    eprintln!("lifetime {TCP_LIFETIME:?}: closed after {closed:?}, {answered} answers, timed_out +{timed_out}");
    assert!(
        closed >= TCP_LIFETIME - Duration::from_millis(200)
            && closed <= TCP_LIFETIME + TCP_QUERY_EVERY + Duration::from_secs(1),
        "closed after {closed:?}"
    );
    assert!(answered >= 3, "{answered} answers");
    assert_eq!(timed_out, 1, "{after}");
    assert_no_internal_errors(&cell.picd);
}

/// The world's UDP reply to `name` TXT: (query bytes, reply bytes, decoded reply).
fn ask_txt_from(
    socket: &UdpSocket,
    server: SocketAddr,
    name: &str,
    edns: bool,
) -> (usize, usize, Message) {
    let query = raw_query(1, name, RecordType::TXT, edns)
        .to_vec()
        .expect("encode");
    let reply = udp_exchange(socket, server, &query).expect("an answer");
    let decoded = Message::from_vec(&reply).expect("decode");
    (query.len(), reply.len(), decoded)
}

#[tokio::test]
async fn a_large_txt_answer_to_the_world_stays_within_the_udp_limit() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    for i in 0..BIG_TXT_RECORDS {
        let data = format!("{i}{}", "t".repeat(BIG_TXT_LEN - 1));
        cell.add_record(
            CELL_DOMAIN,
            json!({ "name": "big", "type": "TXT", "data": data }),
        )
        .await;
    }
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "small", "type": "TXT", "data": "t".repeat(100) }),
    )
    .await;
    let full = ask_until(
        PROPAGATION,
        "the large TXT over TCP",
        || dig(cell.dns(), "big.home.example", "TXT", &["+tcp"]),
        |r| r.answer.len() == BIG_TXT_RECORDS,
    )
    .await;
    assert!(!full.has_flag("tc"), "{}", full.text);

    // Asked from a world address: neither loopback nor through WireGuard.
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(world.host_addr), 0)).expect("bind");
    for (edns, limit) in [(true, 1232), (false, 512)] {
        let (asked, got, reply) = ask_txt_from(&socket, server, "big.home.example.", edns);
        let ratio = got as f64 / asked as f64;
        eprintln!(
            "large TXT, EDNS {edns}: {asked} bytes in, {got} out ({ratio:.2}x), TC {}",
            reply.metadata.truncation
        );
        assert!(got <= limit, "{got} bytes over UDP (limit {limit})");
        assert!(reply.metadata.truncation, "no TC: {reply:?}");
        assert!(reply.answers.is_empty(), "{} answers", reply.answers.len());
        assert!(ratio <= TRUNCATED_AMPLIFICATION, "{ratio:.2}x");
    }
    // What fits goes out whole, and still within the limit.
    let (asked, got, reply) = ask_txt_from(&socket, server, "small.home.example.", true);
    eprintln!(
        "small TXT: {asked} bytes in, {got} out ({:.2}x)",
        got as f64 / asked as f64
    );
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 1);
    assert!(got <= 1232);
    assert_no_internal_errors(&cell.picd);
}
