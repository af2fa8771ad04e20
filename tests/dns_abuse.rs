//! The DNS server against the attacks it must hold against, on the real binary: a FORMERR
//! bait with hundreds of questions, ANY, a burst from one world network (RRL, also of
//! requests signed with an unknown key), 30,000 names at once (forwards capped, file
//! descriptors bounded, `/health` fast), a forward that loops back to picd, a TCP client that
//! never reads, and more TCP connections than allowed. Upstreams are loopback stand-ins in
//! the test.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::json;

/// Questions in the FORMERR bait (the attack used ~150 for 26x).
const BAIT_QUESTIONS: usize = 300;
/// Distinct names in the flood.
const FLOOD_NAMES: usize = 30_000;
/// Open file descriptors picd may reach during the flood.
const FD_BOUND: usize = 400;
/// The slowest `/health` allowed while DNS is under attack.
const HEALTH_BOUND: Duration = Duration::from_secs(2);

fn open_fds(picd: &Picd) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", picd.pid()))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn error_replies_and_any_stay_small() {
    let cell = DnsCell::start().await;
    for i in 0..4 {
        cell.add_record(
            CELL_DOMAIN,
            json!({ "name": "many", "type": "TXT", "data": format!("text {i} {}", "x".repeat(200)) }),
        )
        .await;
    }
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "many", "type": "A", "data": "192.0.2.9" }),
    )
    .await;
    ask_until(
        PROPAGATION,
        "the records",
        || dig(cell.dns(), "many.home.example", "TXT", &[]),
        |r| r.answer.len() == 4,
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");

    // Hundreds of questions: FORMERR with at most the first, within 512 bytes (no EDNS).
    let mut bait = raw_query(7, "a.home.example.", RecordType::A, false);
    for i in 1..BAIT_QUESTIONS {
        let name = format!("{}{i}.home.example.", "q".repeat(40));
        bait.queries.push(Query::query(
            Name::from_ascii(&name).expect("name"),
            RecordType::A,
        ));
    }
    let bytes = bait.to_vec().expect("encode");
    assert!(bytes.len() > 10_000, "the bait is {} bytes", bytes.len());
    let reply = udp_exchange(&socket, cell.dns(), &bytes).expect("an answer to the bait");
    assert!(reply.len() <= 512, "{} bytes out", reply.len());
    let reply = Message::from_vec(&reply).expect("decode");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(
        reply.queries.len() <= 1,
        "{} questions echoed",
        reply.queries.len()
    );

    // ANY over UDP: one RRset (RFC 8482), within the limit; over TCP everything.
    let any = raw_query(8, "many.home.example.", RecordType::ANY, true);
    let reply = udp_exchange(&socket, cell.dns(), &any.to_vec().expect("encode")).expect("ANY");
    assert!(reply.len() <= 1232, "{} bytes", reply.len());
    let reply = Message::from_vec(&reply).expect("decode");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let types: std::collections::BTreeSet<RecordType> =
        reply.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "{:?}", reply.answers);
    let full = dig(cell.dns(), "many.home.example", "ANY", &["+tcp"]);
    assert_eq!(full.answer.len(), 5, "{}", full.text);
    assert_no_internal_errors(&cell.picd);
}

/// Sends `BURST` queries made by `make` from the world namespace's address at once and counts
/// the replies: (full answers, slips), and the RRL counters' growth (slipped, dropped).
async fn burst_from_the_world(
    cell: &DnsCell,
    world: &Netns,
    make: impl Fn(u16) -> Vec<u8>,
) -> (u64, u64, u64, u64) {
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(world.host_addr), 0)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let before = dns_stats(cell).await;
    for id in 0..BURST {
        socket.send_to(&make(id), server).expect("send");
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let reply = Message::from_vec(&buf[..n]).expect("decode");
        if reply.metadata.truncation {
            assert!(reply.answers.is_empty());
            truncated += 1;
        } else {
            full += 1;
        }
    }
    let after = dns_stats(cell).await;
    let grown = |what: &str| {
        after["rrl"][what].as_u64().unwrap_or(0) - before["rrl"][what].as_u64().unwrap_or(0)
    };
    eprintln!("burst of {BURST}: {full} answers, {truncated} slips, stats {after}");
    (full, truncated, grown("slipped"), grown("dropped"))
}

const BURST: u16 = 200;

#[tokio::test]
async fn a_burst_from_one_world_network_is_rate_limited_with_slips() {
    // The namespace's root-side address is not loopback and did not come through
    // WireGuard: the world, even when asked from this host.
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let (full, truncated, slipped, dropped) = burst_from_the_world(&cell, &world, |id| {
        let q = raw_query(id, "home.example.", RecordType::SOA, false);
        q.to_vec().expect("encode")
    })
    .await;
    assert!(full <= 40, "{full} full answers went out of {BURST}");
    assert!(truncated > 0 && slipped >= truncated, "{slipped} slipped");
    assert!(dropped > 0, "none dropped");
    // Loopback (the cell itself) is not limited.
    for _ in 0..50 {
        assert_eq!(
            dig(cell.dns(), "home.example", "SOA", &[]).status,
            "NOERROR"
        );
    }
}

/// Requests signed with a key the cell does not know get a TSIG refusal (BADKEY), and those
/// refusals are answers like any other: within the world's response rate.
#[tokio::test]
async fn a_burst_of_requests_signed_with_an_unknown_key_is_rate_limited() {
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::TSigner;
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let key_name = Name::from_ascii("nobody-knows-me.").expect("key name");
    let signer =
        TSigner::new(vec![7u8; 32], TsigAlgorithm::HmacSha256, key_name, 300).expect("signer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (full, _, _, dropped) = burst_from_the_world(&cell, &world, |id| {
        let mut q = raw_query(id, "home.example.", RecordType::SOA, false);
        q.finalize(&signer, now).expect("signing");
        q.to_vec().expect("encode")
    })
    .await;
    assert!(full > 0, "no refusal came back at all");
    assert!(full <= 40, "{full} full refusals went out of {BURST}");
    assert!(dropped > 0, "none dropped");
}

#[tokio::test]
async fn a_flood_of_names_keeps_descriptors_bounded_and_health_fast() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    // An upstream that never answers: every forward waits for its timeout.
    let blackhole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    set_dns_upstream(&cell, blackhole.local_addr().expect("addr")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_fds(&cell.picd);

    let done = Arc::new(AtomicBool::new(false));
    let flood = |source: IpAddr, server: SocketAddr, done: Arc<AtomicBool>| {
        std::thread::spawn(move || {
            let socket = UdpSocket::bind(SocketAddr::new(source, 0)).expect("bind");
            socket.set_nonblocking(true).expect("nonblocking");
            let mut buf = vec![0u8; 4096];
            let mut servfail = 0;
            for i in 0..FLOOD_NAMES {
                let q = raw_query(i as u16, &format!("n{i}.flood.test."), RecordType::A, false);
                let _ = socket.send_to(&q.to_vec().expect("encode"), server);
                while let Ok((n, _)) = socket.recv_from(&mut buf) {
                    if n > 3 && buf[3] & 0x0f == 2 {
                        servfail += 1;
                    }
                }
                if i % 1000 == 999 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            done.store(true, Ordering::SeqCst);
            servfail
        })
    };
    // From loopback (the cell itself: forwarded) and from a non-WireGuard source (the world:
    // refused, never forwarded).
    let peer = flood(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        cell.dns(),
        Arc::clone(&done),
    );
    let outsider = flood(
        IpAddr::V4(world.host_addr),
        cell.dns_at(IpAddr::V4(world.host_addr)),
        Arc::new(AtomicBool::new(false)),
    );
    let client = cell.picd.client();
    let (mut max_fds, mut slowest) = (0, Duration::ZERO);
    while !done.load(Ordering::SeqCst) {
        let started = Instant::now();
        let resp = client.get("/health").await;
        assert!(resp.status().is_success(), "{}", resp.status());
        slowest = slowest.max(started.elapsed());
        max_fds = max_fds.max(open_fds(&cell.picd));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let servfail = peer.join().expect("flood");
    outsider.join().expect("flood");
    let after = dns_stats(&cell).await;
    eprintln!(
        "flood of {FLOOD_NAMES} names x2: fds {fds_before} -> max {max_fds}, slowest /health \
         {slowest:?}, {servfail} SERVFAIL seen, stats {after}"
    );
    assert!(max_fds < FD_BOUND, "picd reached {max_fds} descriptors");
    assert!(slowest < HEALTH_BOUND, "/health took {slowest:?}");
    assert!(
        after["forward"]["over_cap"].as_u64().unwrap_or(0) > 0,
        "{after}"
    );
    // The world's questions were never forwarded: at most the peer's 30,000.
    let forwarded = after["forward"]["total"].as_u64().unwrap_or(0);
    assert!(forwarded <= FLOOD_NAMES as u64, "{after}");
    assert_no_internal_errors(&cell.picd);
}

/// A resolver stand-in that relays every question to picd and picd's answer back: picd as its
/// own upstream, one step removed.
fn relay_to(picd_dns: SocketAddr, stop: Arc<AtomicBool>) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = front.local_addr().expect("addr");
    std::thread::spawn(move || {
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind");
        back.set_read_timeout(Some(Duration::from_secs(3))).ok();
        front
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok();
        let mut buf = vec![0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, from)) = front.recv_from(&mut buf) else {
                continue;
            };
            let _ = back.send_to(&buf[..n], picd_dns);
            if let Ok((m, _)) = back.recv_from(&mut buf) {
                let _ = front.send_to(&buf[..m], from);
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_forward_that_comes_back_is_answered_servfail() {
    let cell = DnsCell::start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let relay = relay_to(cell.dns(), Arc::clone(&stop));
    set_dns_upstream(&cell, relay).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_fds(&cell.picd);
    let reply = dig(
        cell.dns(),
        "loop.example.org",
        "A",
        &["+tries=1", "+time=5"],
    );
    assert_eq!(reply.status, "SERVFAIL", "{}", reply.text);
    let after = dns_stats(&cell).await;
    assert!(
        after["forward"]["loops"].as_u64().unwrap_or(0) >= 1,
        "{after}"
    );
    assert!(
        after["forward"]["total"].as_u64().unwrap_or(0) <= 2,
        "{after}"
    );
    assert!(open_fds(&cell.picd) < fds_before + 20);
    stop.store(true, Ordering::SeqCst);
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn a_tcp_client_that_never_reads_is_cut_off() {
    let cell = DnsCell::start().await;
    let mut stream = TcpStream::connect(cell.dns()).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let q = raw_query(1, "home.example.", RecordType::SOA, false)
        .to_vec()
        .expect("encode");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let pipelined: Vec<u8> = framed.repeat(1000);
    let started = Instant::now();
    let cut = loop {
        match stream.write(&pipelined) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break started.elapsed(),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still connected after a minute of not reading"
        );
    };
    let after = dns_stats(&cell).await;
    eprintln!("slow reader cut off after {cut:?}; stats {after}");
    assert!(cut < Duration::from_secs(30), "{cut:?}");
    assert!(
        after["tcp"]["timed_out"].as_u64().unwrap_or(0) >= 1,
        "{after}"
    );
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn tcp_connections_from_one_address_are_capped() {
    let cell = DnsCell::start().await;
    let (_, body) = cell.admin.get_json("/api/dns/stats").await;
    let per_address = body["limits"]["tcp_clients_per_address"]
        .as_u64()
        .or(body["limits"]["tcp_max_clients_per_address"].as_u64())
        .expect("limit") as usize;
    let q = raw_query(1, "home.example.", RecordType::SOA, false)
        .to_vec()
        .expect("encode");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let mut held = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..per_address + 20 {
        let mut stream = TcpStream::connect(cell.dns()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let answered = stream.write_all(&framed).is_ok() && {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).is_ok()
        };
        if answered {
            served += 1;
            held.push(stream);
        } else {
            refused += 1;
        }
    }
    let after = dns_stats(&cell).await;
    eprintln!("{served} served, {refused} refused; stats {after}");
    assert_eq!(served, per_address, "{after}");
    assert_eq!(refused, 20);
    assert!(after["tcp"]["refused"].as_u64().unwrap_or(0) >= 20);
    // Once they close, new connections are served again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = dig(cell.dns(), "home.example", "SOA", &["+tcp"]);
    assert_eq!(again.status, "NOERROR", "{}", again.text);
}
