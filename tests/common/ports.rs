//! Ports for the servers a test starts (picd's API and DNS, Caddy, knotd, a WebDriver).
//!
//! A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range
//! every outgoing connection and client socket of the machine draws from: between probing it
//! and the server binding it, a client socket of a test running alongside can take it (seen
//! as a picd whose DNS port was never bound). These ports are taken below that range
//! instead, each process starting at its own offset and never handing one out twice, and
//! only when both TCP and UDP can bind them on the address. They also stay below the range
//! picd allocates service ports from.

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out.
const FIRST: u32 = 10_000;
/// Past the last one: picd's own range for service ports starts here (20000-29999), and
/// the tests' ports stay out of it as they stay out of the ephemeral range.
const END: u32 = 20_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A port free for both TCP and UDP on `ip` right now, from 10000 up to 19999 (below the
/// ephemeral range and picd's service ports).
pub fn free_port_on(ip: IpAddr) -> u16 {
    let end = ephemeral_start().min(END);
    assert!(
        end > FIRST + 1_000,
        "net.ipv4.ip_local_port_range starts at {end}: the tests need the ports from {FIRST} \
         to {END} free of ephemeral use"
    );
    let count = end - FIRST;
    let offset = std::process::id().wrapping_mul(2_654_435_761) % count;
    for _ in 0..count {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % count) as u16;
        if TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port from {FIRST} to {end} is free for both TCP and UDP on {ip}");
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
