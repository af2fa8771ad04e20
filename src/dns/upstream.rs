//! The sockets picd asks upstream resolvers through: a small pool per address family, opened
//! once and shared by every forwarded question, so a flood of distinct names costs memory for
//! its pending entries, never a file descriptor each. One task per socket reads the replies and
//! hands each to the question waiting for its (ID, upstream) pair.
//!
//! Spoofing: a reply counts only from the upstream asked, with the random ID picked for the
//! question (never one in use on that socket) and the same question; the pool's ports are
//! random ephemeral ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{oneshot, OnceCell};

/// How long one upstream gets to answer one question (UDP, or the TCP retry after TC).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1200);
/// How long a forwarded question may take across all upstreams: under the 2 s a stub
/// resolver (dig, glibc, systemd-resolved) waits before its retry, so a client whose upstreams
/// are all down gets a SERVFAIL it can act on rather than silence.
pub const FORWARD_BUDGET: Duration = Duration::from_millis(1800);
/// Sockets per address family.
const POOL_SIZE: usize = 4;
/// The longest upstream reply read over UDP (picd advertises less).
const MAX_REPLY: usize = 4096;

/// Questions waiting for a reply, by (ID, upstream).
type Pending = HashMap<(u16, SocketAddr), oneshot::Sender<Vec<u8>>>;
type Waiters = Mutex<Pending>;

struct PoolSocket {
    socket: UdpSocket,
    waiting: Waiters,
}

#[derive(Default)]
pub struct UpstreamPool {
    v4: OnceCell<Vec<Arc<PoolSocket>>>,
    v6: OnceCell<Vec<Arc<PoolSocket>>>,
}

/// Removes a question's waiting entry however its wait ends (answer, timeout, cancellation).
struct Waiting<'a> {
    socket: &'a PoolSocket,
    key: (u16, SocketAddr),
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.socket.waiting).remove(&self.key);
    }
}

fn lock(waiters: &Waiters) -> std::sync::MutexGuard<'_, Pending> {
    waiters.lock().unwrap_or_else(|e| e.into_inner())
}

impl UpstreamPool {
    async fn sockets(&self, v4: bool) -> std::io::Result<&[Arc<PoolSocket>]> {
        let (cell, bind) = match v4 {
            true => (&self.v4, "0.0.0.0:0"),
            false => (&self.v6, "[::]:0"),
        };
        let sockets = cell
            .get_or_try_init(|| async {
                let mut sockets = Vec::with_capacity(POOL_SIZE);
                for _ in 0..POOL_SIZE {
                    let socket = Arc::new(PoolSocket {
                        socket: UdpSocket::bind(bind).await?,
                        waiting: Mutex::new(HashMap::new()),
                    });
                    tokio::spawn(run_upstream_reader(Arc::clone(&socket)));
                    sockets.push(socket);
                }
                Ok::<_, std::io::Error>(sockets)
            })
            .await?;
        Ok(sockets)
    }

    /// Sends `request` (its ID is replaced) to `upstream` and waits for the reply; TCP when
    /// the reply is truncated. The reply must answer `check` (the question).
    pub async fn ask(
        &self,
        request: &mut Message,
        upstream: SocketAddr,
        answers: impl Fn(&Message) -> bool,
    ) -> anyhow::Result<Message> {
        let sockets = self.sockets(upstream.is_ipv4()).await?;
        let socket = &sockets[rand::random::<usize>() % sockets.len()];
        let (sender, receiver) = oneshot::channel();
        let id = {
            let mut waiting = lock(&socket.waiting);
            let mut id = rand::random::<u16>();
            for _ in 0..16 {
                if !waiting.contains_key(&(id, upstream)) {
                    break;
                }
                id = rand::random::<u16>();
            }
            anyhow::ensure!(!waiting.contains_key(&(id, upstream)), "no free query ID");
            waiting.insert((id, upstream), sender);
            id
        };
        let _waiting = Waiting {
            socket,
            key: (id, upstream),
        };
        request.metadata.id = id;
        let bytes = request.to_vec()?;
        socket.socket.send_to(&bytes, upstream).await?;
        let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, receiver).await??;
        let reply = Message::from_vec(&reply)?;
        anyhow::ensure!(answers(&reply), "the reply answers another question");
        if reply.metadata.truncation {
            return ask_tcp(&bytes, id, upstream).await;
        }
        Ok(reply)
    }
}

/// Reads one pool socket's replies for as long as picd runs.
async fn run_upstream_reader(socket: Arc<PoolSocket>) {
    let mut buf = vec![0u8; MAX_REPLY];
    loop {
        let (n, from) = match socket.socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!(error = %e, "upstream receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if n < 12 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        if let Some(waiter) = lock(&socket.waiting).remove(&(id, from)) {
            let _ = waiter.send(buf[..n].to_vec());
        }
    }
}

async fn ask_tcp(bytes: &[u8], id: u16, upstream: SocketAddr) -> anyhow::Result<Message> {
    let work = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .await?;
        stream.write_all(bytes).await?;
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let reply = Message::from_vec(&buf)?;
        anyhow::ensure!(reply.metadata.id == id, "mismatched answer");
        Ok(reply)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, work).await?
}
