//! picd's DNS forwarder for one proxy exit: nft redirects the exit peers' udp and tcp 53 here
//! (on the cell's WireGuard address, whatever resolver they asked), and each query goes to the
//! connection's resolver as DNS over TCP through the proxy. The cell's own resolver and uplink
//! never see it. A query no resolver answers gets SERVFAIL.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::client::{self, Target};
use super::Upstream;

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// A TCP client's stream stays open this long at most.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Queries in flight at once per exit; more wait (UDP) or are refused (TCP).
const IN_FLIGHT: usize = 64;
const DNS_PORT: u16 = 53;

/// The forwarder's tasks; they end when it is dropped.
pub struct Forwarder {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds udp and tcp on `listen` and starts answering.
pub async fn start(
    listen: SocketAddr,
    upstream: Upstream,
    resolvers: Vec<IpAddr>,
) -> std::io::Result<Forwarder> {
    let udp = Arc::new(UdpSocket::bind(listen).await?);
    let tcp = TcpListener::bind(listen).await?;
    let upstream = Arc::new((upstream, resolvers));
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let udp_task = tokio::spawn(serve_udp(udp, Arc::clone(&upstream), Arc::clone(&limit)));
    let tcp_task = tokio::spawn(serve_tcp(tcp, upstream, limit));
    Ok(Forwarder {
        tasks: vec![udp_task, tcp_task],
    })
}

type Shared = Arc<(Upstream, Vec<IpAddr>)>;

async fn serve_udp(socket: Arc<UdpSocket>, upstream: Shared, limit: Arc<Semaphore>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let query = buf[..len].to_vec();
        let (socket, upstream) = (Arc::clone(&socket), Arc::clone(&upstream));
        tokio::spawn(async move {
            let answer = match ask(&upstream.0, &upstream.1, &query).await {
                Some(answer) => answer,
                None => servfail(&query),
            };
            if !answer.is_empty() {
                let _ = socket.send_to(&answer, from).await;
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(listener: TcpListener, upstream: Shared, limit: Arc<Semaphore>) {
    loop {
        let Ok((mut peer, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            continue;
        };
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            // DNS over TCP is framed the same on both sides: the client's stream is piped
            // through the proxy to the first resolver that accepts.
            for resolver in &upstream.1 {
                let target = Target::Ip(SocketAddr::new(*resolver, DNS_PORT));
                let Ok(mut remote) = client::open(&upstream.0, Some(&target), QUERY_TIMEOUT).await
                else {
                    continue;
                };
                let pipe = tokio::io::copy_bidirectional(&mut peer, &mut remote);
                let _ = tokio::time::timeout(STREAM_TIMEOUT, pipe).await;
                break;
            }
            drop(permit);
        });
    }
}

/// One query to each resolver in turn, over TCP through the proxy; the first answer.
async fn ask(upstream: &Upstream, resolvers: &[IpAddr], query: &[u8]) -> Option<Vec<u8>> {
    let framed_len = u16::try_from(query.len()).ok()?;
    for resolver in resolvers {
        let target = Target::Ip(SocketAddr::new(*resolver, DNS_PORT));
        let exchange = async {
            let mut stream = client::open(upstream, Some(&target), QUERY_TIMEOUT)
                .await
                .ok()?;
            let mut framed = framed_len.to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            stream.write_all(&framed).await.ok()?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.ok()?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut answer).await.ok()?;
            Some(answer)
        };
        if let Ok(Some(answer)) = tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
            return Some(answer);
        }
    }
    None
}

/// SERVFAIL for a query (its id and question kept); nothing for what is not a query.
pub fn servfail(query: &[u8]) -> Vec<u8> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Vec::new();
    }
    // The header and the one question; an OPT record or anything else after it goes.
    let mut end = 12;
    while let Some(&len) = query.get(end) {
        end += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    let end = (end + 4).min(query.len());
    let mut answer = query[..end].to_vec();
    answer[2] = 0x80 | (query[2] & 0x79); // QR, the opcode and RD kept
    answer[3] = 0x80 | 0x02; // RA, SERVFAIL
    answer[4..6].copy_from_slice(&[0, 1]);
    answer[6..12].fill(0); // no answer, authority or additional records
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servfail_keeps_the_id_and_question_and_ignores_answers() {
        let mut query = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        query.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
        let answer = servfail(&query);
        assert_eq!(&answer[..4], &[0xab, 0xcd, 0x81, 0x82]);
        assert_eq!(&answer[4..6], &[0, 1]);
        assert_eq!(&answer[10..12], &[0, 0], "the OPT record is not echoed");
        assert_eq!(answer.len(), query.len(), "header and question only");
        assert!(servfail(&answer).is_empty(), "an answer is not answered");
        assert!(servfail(&[1, 2, 3]).is_empty());
    }
}
