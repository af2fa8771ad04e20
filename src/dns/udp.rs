//! The DNS server's UDP loop, one thread per socket: datagrams come in and go out in batches
//! (one `recvmmsg` and one `sendmmsg` per batch, where a system call per packet each way used
//! to take most of the time) and are answered through the thread's own answer cache. Only
//! forwarded questions leave the thread, for the runtime.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hickory_proto::op::Message;
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

use super::answer::{self, Outcome, Transport};
use super::cache::{AnswerCache, Udp};
use super::server::Shared;
use super::snapshot::Snapshot;

/// Datagrams taken per system call. Under load it divides the calls by up to this; a batch's
/// answers leave before the next batch is read, so no answer waits behind more than this many.
const BATCH: usize = 32;
/// The longest query read (a longer datagram is cut, and then fails to decode).
const MAX_DATAGRAM: usize = 4096;

/// Serves `socket` until the process ends.
pub fn serve(shared: &Arc<Shared>, socket: UdpSocket) {
    let mut batch = Batch::new();
    let mut cache = AnswerCache::default();
    loop {
        let received = batch.receive(&socket);
        if received == 0 {
            continue;
        }
        let snapshot = shared.snapshot.load();
        batch.destinations.clear();
        for i in 0..received {
            let Some(client) = batch.sources[i] else {
                continue;
            };
            let query = &batch.buffers[i][..batch.lengths[i]];
            let reply = &mut batch.replies[batch.destinations.len()];
            match cache.answer(&snapshot, query, client.ip(), reply) {
                Udp::Reply => batch.destinations.push(SocketAddrAny::from(client)),
                Udp::Forward(query) => forward(shared, &socket, &snapshot, query, client),
                Udp::Drop => {}
            }
        }
        batch.send(&socket);
    }
}

/// Resolves on the runtime and answers from there (a clone of the socket: the loop goes on).
fn forward(
    shared: &Arc<Shared>,
    socket: &UdpSocket,
    snapshot: &Snapshot,
    query: Message,
    client: SocketAddr,
) {
    let Ok(socket) = socket.try_clone() else {
        return;
    };
    let shared_for_task = Arc::clone(shared);
    let upstreams = snapshot.upstreams.clone();
    shared.runtime.spawn(async move {
        let response = shared_for_task.forwarder.resolve(&query, &upstreams).await;
        if let Outcome::Reply(bytes) = answer::encode(response, &query, Transport::Udp) {
            let _ = socket.send_to(&bytes, client);
        }
    });
}

/// The buffers of one batch, kept from batch to batch.
struct Batch {
    buffers: Vec<Vec<u8>>,
    lengths: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
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
            headers: MultiHeaders::preallocate(BATCH, None),
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

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}
