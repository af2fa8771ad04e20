//! The DNS sockets. UDP is served by a dedicated thread per socket, off the async runtime
//! (`udp.rs`: batched receive-answer-send with an answer cache); only forwarded questions go
//! to the runtime. TCP (for truncated answers and zone transfers) runs on the runtime, within
//! bounds (limits.rs): connections at once in all and per address, an idle and a write
//! timeout, a whole-connection lifetime, and a pause after a failed accept.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::answer::{self, Outcome, Transport};
use super::forward::Forwarder;
use super::limits::{DnsLimits, ACCEPT_BACKOFF, TCP_IDLE, TCP_WRITE};
use super::snapshot::Snapshot;
use super::stats::{count, DnsStats};

/// What every socket shares.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub forwarder: Arc<Forwarder>,
    pub runtime: tokio::runtime::Handle,
    pub limits: DnsLimits,
    pub stats: Arc<DnsStats>,
    /// The interface whose arrivals are peers' (view.rs).
    pub wireguard_interface: String,
    /// Open TCP connections per client address.
    tcp_clients: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    pub fn new(limits: DnsLimits, wireguard_interface: &str) -> Self {
        let stats = Arc::new(DnsStats::default());
        Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            forwarder: Arc::new(Forwarder::new(
                limits.forward_max_in_flight,
                Arc::clone(&stats),
            )),
            runtime: tokio::runtime::Handle::current(),
            limits,
            stats,
            wireguard_interface: wireguard_interface.to_string(),
            tcp_clients: Mutex::default(),
        }
    }
}

/// Binds UDP and TCP on `addr` and serves until the process ends.
pub fn start(shared: Arc<Shared>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let udp = std::net::UdpSocket::bind(addr)?;
    let bound = udp.local_addr()?;
    let tcp = std::net::TcpListener::bind(bound)?;
    tcp.set_nonblocking(true)?;
    let udp_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name(format!("dns-udp-{bound}"))
        .spawn(move || super::udp::serve(&udp_shared, udp))?;
    let tcp = {
        let _guard = shared.runtime.enter();
        TcpListener::from_std(tcp)?
    };
    shared.runtime.spawn(serve_tcp(Arc::clone(&shared), tcp));
    Ok(bound)
}

/// One admitted TCP connection, counted until it drops.
struct TcpSlot {
    shared: Arc<Shared>,
    client: IpAddr,
}

impl TcpSlot {
    /// A slot for `client`, or `None` over either limit.
    fn take(shared: &Arc<Shared>, client: IpAddr) -> Option<TcpSlot> {
        let mut clients = shared.tcp_clients.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = clients.values().sum();
        let mine = clients.get(&client).copied().unwrap_or(0);
        if total >= shared.limits.tcp_max_clients || mine >= shared.limits.tcp_max_per_address {
            return None;
        }
        *clients.entry(client).or_default() += 1;
        Some(TcpSlot {
            shared: Arc::clone(shared),
            client,
        })
    }
}

impl Drop for TcpSlot {
    fn drop(&mut self) {
        let mut clients = self
            .shared
            .tcp_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = clients.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                count(&shared.stats.tcp_accept_errors);
                tracing::debug!(error = %e, "DNS TCP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over a limit the connection is closed at once: it costs the client a handshake and
        // picd nothing that lasts.
        let Some(slot) = TcpSlot::take(&shared, client.ip()) else {
            count(&shared.stats.tcp_refused);
            drop(stream);
            continue;
        };
        count(&shared.stats.tcp_accepted);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let served = serve_tcp_connection(&shared, stream, client.ip());
            match tokio::time::timeout(shared.limits.tcp_lifetime, served).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%client, error = %e, "DNS TCP connection ended"),
                Err(_) => count(&shared.stats.tcp_timed_out),
            }
            drop(slot);
        });
    }
}

/// Writes one length-prefixed message within the write timeout: a client that stops reading
/// is cut off instead of holding the connection and its send buffer.
async fn send(shared: &Shared, stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
    let write = async {
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(message).await
    };
    match tokio::time::timeout(TCP_WRITE, write).await {
        Ok(result) => result,
        Err(_) => {
            count(&shared.stats.tcp_timed_out);
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client not reading",
            ))
        }
    }
}

async fn serve_tcp_connection(
    shared: &Shared,
    mut stream: TcpStream,
    client: IpAddr,
) -> std::io::Result<()> {
    let local = stream.local_addr()?;
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return Ok(()),
        };
        let mut buf = vec![0u8; len];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await??;
        let snapshot = shared.snapshot.load_full();
        if let Some(messages) = super::transfer::answer(&snapshot, &buf, client) {
            for message in messages {
                send(shared, &mut stream, &message).await?;
            }
            continue;
        }
        let peer = super::view::tcp_is_peer(&snapshot, client, local, &shared.wireguard_interface);
        if super::tsig_answer::carries_tsig(&buf) {
            match super::tsig_answer::answer(&snapshot, &buf, client, peer, Transport::Tcp) {
                Some(Some(reply)) => {
                    send(shared, &mut stream, &reply).await?;
                    continue;
                }
                Some(None) => return Ok(()),
                None => {}
            }
        }
        let reply = match answer::handle(&snapshot, &buf, peer, Transport::Tcp) {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward(query) => {
                let response = match shared.forwarder.admit() {
                    Some(_permit) => shared.forwarder.resolve(&query, &snapshot.upstreams).await,
                    None => {
                        Forwarder::response_to(&query, hickory_proto::op::ResponseCode::ServFail)
                    }
                };
                match answer::encode(response, &query, Transport::Tcp) {
                    Outcome::Reply(bytes) => bytes,
                    _ => return Ok(()),
                }
            }
            Outcome::Drop => return Ok(()),
        };
        send(shared, &mut stream, &reply).await?;
    }
}
