//! The DNS sockets. UDP is served by a dedicated thread per socket, off the async runtime
//! (`udp.rs`: batched receive-answer-send with an answer cache); only forwarded questions go
//! to the runtime. TCP (for truncated answers and zone transfers) runs on the runtime.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::answer::{self, Outcome, Transport};
use super::forward::Forwarder;
use super::snapshot::Snapshot;

/// What every socket shares.
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub forwarder: Forwarder,
    pub runtime: tokio::runtime::Handle,
}

/// Largest TCP connections kept open without a question.
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

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

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, client)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(e) = serve_tcp_connection(&shared, stream, client.ip()).await {
                tracing::debug!(%client, error = %e, "DNS TCP connection ended");
            }
        });
    }
}

async fn serve_tcp_connection(
    shared: &Shared,
    mut stream: tokio::net::TcpStream,
    client: IpAddr,
) -> std::io::Result<()> {
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
                stream
                    .write_all(&(message.len() as u16).to_be_bytes())
                    .await?;
                stream.write_all(&message).await?;
            }
            continue;
        }
        let reply = match answer::handle(&snapshot, &buf, client, Transport::Tcp) {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward(query) => {
                let response = shared.forwarder.resolve(&query, &snapshot.upstreams).await;
                match answer::encode(response, &query, Transport::Tcp) {
                    Outcome::Reply(bytes) => bytes,
                    _ => return Ok(()),
                }
            }
            Outcome::Drop => return Ok(()),
        };
        stream
            .write_all(&(reply.len() as u16).to_be_bytes())
            .await?;
        stream.write_all(&reply).await?;
    }
}
