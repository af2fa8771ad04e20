//! The DNS server's UDP loop, one thread per socket: datagrams come in and go out in batches
//! (one `recvmmsg` and one `sendmmsg` per batch, where a system call per packet each way used
//! to take most of the time) and are answered through the thread's own answer cache. Only
//! forwarded questions leave the thread, for the runtime.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
};
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

use super::answer::{self, Outcome, Transport};
use super::cache::{AnswerCache, Udp};
use super::forward::Forwarder;
use super::rrl::{RateLimiter, Verdict};
use super::server::Shared;
use super::snapshot::Snapshot;
use super::stats::{count, DnsStats};
use super::view::Interfaces;

/// Datagrams taken per system call. Under load it divides the calls by up to this; a batch's
/// answers leave before the next batch is read, so no answer waits behind more than this many.
const BATCH: usize = 32;
/// The longest query read (a longer datagram is cut, and then fails to decode).
const MAX_DATAGRAM: usize = 4096;

/// Serves `socket` until the process ends.
pub fn serve(shared: &Arc<Shared>, socket: UdpSocket) {
    // The arrival interface decides the view (view.rs); without it every client is the world.
    let fd = socket.as_fd();
    if setsockopt(&fd, sockopt::Ipv4PacketInfo, &true).is_err()
        && setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).is_err()
    {
        tracing::warn!(
            "DNS: no arrival interface on this socket; every client gets the world's view"
        );
    }
    let _ = setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true);
    let socket = Arc::new(socket);
    let mut batch = Batch::new();
    let mut cache = AnswerCache::default();
    let mut interfaces = Interfaces::new(&shared.wireguard_interface);
    let limits = &shared.limits;
    let mut rrl = RateLimiter::new(limits.rrl_rate, limits.rrl_window, limits.rrl_slip);
    loop {
        let received = batch.receive(&socket);
        if received == 0 {
            continue;
        }
        interfaces.refresh();
        if let Some(rrl) = rrl.as_mut() {
            rrl.tick();
        }
        let snapshot = shared.snapshot.load();
        batch.destinations.clear();
        for i in 0..received {
            let Some(client) = batch.sources[i] else {
                continue;
            };
            let peer = interfaces.is_peer(client.ip(), batch.interfaces[i]);
            let query = &batch.buffers[i][..batch.lengths[i]];
            let reply = &mut batch.replies[batch.destinations.len()];
            let signed = super::tsig_answer::carries_tsig(query)
                .then(|| {
                    super::tsig_answer::answer(&snapshot, query, client.ip(), peer, Transport::Udp)
                })
                .flatten();
            let ready = match signed {
                // Signed and checked: its answer (signed, or the TSIG refusal) goes out,
                // within the world's response rate like every other answer: a flood of
                // requests signed with a made-up key must not be a way around RRL.
                Some(Some(bytes)) => {
                    *reply = bytes;
                    match rrl.as_mut() {
                        Some(rrl) if !peer => limit(rrl, &shared.stats, client, query, reply),
                        _ => true,
                    }
                }
                Some(None) => false,
                None => answer_unsigned(
                    shared, &socket, &snapshot, &mut cache, &mut rrl, query, peer, client, reply,
                ),
            };
            if ready {
                batch.destinations.push(SocketAddrAny::from(client));
            }
        }
        batch.send(&socket);
    }
}

/// The usual path: the answer cache, RRL for the world, forwards for peers; whether `reply`
/// goes out.
#[allow(clippy::too_many_arguments)]
fn answer_unsigned(
    shared: &Arc<Shared>,
    socket: &Arc<UdpSocket>,
    snapshot: &Arc<Snapshot>,
    cache: &mut AnswerCache,
    rrl: &mut Option<RateLimiter>,
    query: &[u8],
    peer: bool,
    client: SocketAddr,
    reply: &mut Vec<u8>,
) -> bool {
    match cache.answer(snapshot, query, peer, reply) {
        Udp::Reply if peer => true,
        Udp::Reply => match rrl.as_mut() {
            None => true,
            Some(rrl) => limit(rrl, &shared.stats, client, query, reply),
        },
        Udp::Forward(query) => forward(shared, socket, snapshot, query, client, reply),
        Udp::Drop => false,
    }
}

/// Applies response-rate limiting to a world answer; whether `reply` (perhaps now a slip)
/// goes out.
fn limit(
    rrl: &mut RateLimiter,
    stats: &DnsStats,
    client: SocketAddr,
    query: &[u8],
    reply: &mut Vec<u8>,
) -> bool {
    match rrl.check(client.ip(), reply) {
        Verdict::Pass => {
            count(&stats.rrl_passed);
            true
        }
        Verdict::Drop => {
            count(&stats.rrl_dropped);
            false
        }
        Verdict::Slip => match answer::slip(query) {
            Some(bytes) => {
                count(&stats.rrl_slipped);
                *reply = bytes;
                true
            }
            None => {
                count(&stats.rrl_dropped);
                false
            }
        },
    }
}

/// Resolves on the runtime and answers from there through the shared socket, when the cap on
/// forwards in flight allows; past it, SERVFAIL goes out at once (in `reply`: true).
fn forward(
    shared: &Arc<Shared>,
    socket: &Arc<UdpSocket>,
    snapshot: &Snapshot,
    query: Message,
    client: SocketAddr,
    reply: &mut Vec<u8>,
) -> bool {
    let Some(permit) = shared.forwarder.admit() else {
        let response = Forwarder::response_to(&query, ResponseCode::ServFail);
        return match answer::encode(response, &query, Transport::Udp) {
            Outcome::Reply(bytes) => {
                *reply = bytes;
                true
            }
            _ => false,
        };
    };
    let socket = Arc::clone(socket);
    let forwarder = Arc::clone(&shared.forwarder);
    let upstreams = snapshot.upstreams.clone();
    shared.runtime.spawn(async move {
        let response = forwarder.resolve(&query, &upstreams).await;
        drop(permit);
        if let Outcome::Reply(bytes) = answer::encode(response, &query, Transport::Udp) {
            let _ = socket.send_to(&bytes, client);
        }
    });
    false
}

/// The buffers of one batch, kept from batch to batch.
struct Batch {
    buffers: Vec<Vec<u8>>,
    lengths: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    /// The interface each datagram arrived on (IP_PKTINFO / IPV6_PKTINFO).
    interfaces: [Option<u32>; BATCH],
    headers: MultiHeaders<SockaddrStorage>,
    /// Answers, the first `destinations.len()` of them ready to go.
    replies: Vec<Vec<u8>>,
    destinations: Vec<SocketAddrAny>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            buffers: vec![vec![0u8; MAX_DATAGRAM]; BATCH],
            lengths: [0; BATCH],
            sources: [None; BATCH],
            interfaces: [None; BATCH],
            headers: MultiHeaders::preallocate(
                BATCH,
                Some(nix::cmsg_space!(libc::in6_pktinfo, libc::in_pktinfo)),
            ),
            replies: vec![Vec::new(); BATCH],
            destinations: Vec::with_capacity(BATCH),
        }
    }

    /// Waits for a datagram, then takes those already queued behind it; how many.
    fn receive(&mut self, socket: &UdpSocket) -> usize {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|buffer| [IoSliceMut::new(buffer)])
            .collect();
        let messages = match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(messages) => messages,
            Err(Errno::EINTR) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "DNS receive failed");
                return 0;
            }
        };
        let mut count = 0;
        for message in messages {
            self.lengths[count] = message.bytes;
            self.sources[count] = message.address.as_ref().and_then(socket_addr);
            self.interfaces[count] = arrival_interface(&message);
            count += 1;
        }
        count
    }

    /// Sends the ready answers. One that cannot be sent is lost like a dropped datagram (the
    /// client asks again); the others still go.
    fn send(&mut self, socket: &UdpSocket) {
        let count = self.destinations.len();
        let mut start = 0;
        while start < count {
            let slices: Vec<[IoSlice<'_>; 1]> = self.replies[start..count]
                .iter()
                .map(|reply| [IoSlice::new(reply)])
                .collect();
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                (start..count).map(|_| Default::default()).collect();
            let mut messages: Vec<MMsgHdr<'_>> = slices
                .iter()
                .zip(&self.destinations[start..count])
                .zip(controls.iter_mut())
                .map(|((slice, to), control)| MMsgHdr::new_with_addr(to, slice, control))
                .collect();
            match sendmmsg(socket, &mut messages, SendFlags::empty()) {
                Ok(sent) => start += sent.max(1),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "DNS answer not sent");
                    start += 1;
                }
            }
        }
    }
}

fn arrival_interface<S>(message: &nix::sys::socket::RecvMsg<'_, '_, S>) -> Option<u32> {
    message.cmsgs().ok()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::Ipv4PacketInfo(info) => u32::try_from(info.ipi_ifindex).ok(),
        ControlMessageOwned::Ipv6PacketInfo(info) => Some(info.ipi6_ifindex),
        _ => None,
    })
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}
