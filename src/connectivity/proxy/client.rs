//! Opening a stream through a proxy: SOCKS5 (RFC 1928, username/password from RFC 1929) and
//! HTTP CONNECT (Basic auth). Used by the DNS forwarder and the health check; the cell's own
//! connection to the proxy goes out through `main`, as all of the cell's own traffic does.

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Upstream, TYPE_HTTP};

/// Longest an HTTP proxy's answer head may be.
const HEAD_MAX: usize = 8 * 1024;

/// Where to go through the proxy.
pub enum Target<'a> {
    Ip(std::net::SocketAddr),
    Name(&'a str, u16),
}

impl Target<'_> {
    /// `host:port` as typed (a probe target).
    pub fn parse(text: &str) -> Option<Target<'_>> {
        if let Ok(addr) = text.parse() {
            return Some(Target::Ip(addr));
        }
        let (host, port) = text.rsplit_once(':')?;
        Some(Target::Name(host, port.parse().ok()?))
    }
}

/// Connects to the proxy and, with a target, opens a stream to it; without one, a SOCKS5
/// proxy only greets and authenticates (an HTTP proxy has nothing to check without one).
pub async fn open(
    upstream: &Upstream,
    target: Option<&Target<'_>>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let work = async {
        let mut stream = TcpStream::connect(upstream.address)
            .await
            .map_err(|e| format!("connecting to the proxy: {e}"))?;
        match upstream.kind.as_str() {
            TYPE_HTTP => {
                if let Some(target) = target {
                    http_connect(&mut stream, upstream, target).await?;
                }
            }
            _ => socks5(&mut stream, upstream, target).await?,
        }
        Ok(stream)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| "the proxy did not answer in time".to_string())?
}

fn io(e: std::io::Error) -> String {
    format!("talking to the proxy: {e}")
}

async fn socks5(
    stream: &mut TcpStream,
    upstream: &Upstream,
    target: Option<&Target<'_>>,
) -> Result<(), String> {
    let login = upstream.username.as_ref().zip(upstream.password.as_ref());
    let method = if login.is_some() { 0x02 } else { 0x00 };
    stream.write_all(&[5, 1, method]).await.map_err(io)?;
    let mut chosen = [0u8; 2];
    stream.read_exact(&mut chosen).await.map_err(io)?;
    if chosen != [5, method] {
        return Err("the SOCKS5 proxy refused the authentication method".into());
    }
    if let Some((user, password)) = login {
        let mut auth = vec![1, user.len() as u8];
        auth.extend_from_slice(user.as_bytes());
        auth.push(password.len() as u8);
        auth.extend_from_slice(password.as_bytes());
        let sent = stream.write_all(&auth).await.map_err(io);
        zeroize::Zeroize::zeroize(&mut auth);
        sent?;
        let mut status = [0u8; 2];
        stream.read_exact(&mut status).await.map_err(io)?;
        if status[1] != 0 {
            return Err("the SOCKS5 proxy refused the username or password".into());
        }
    }
    let Some(target) = target else {
        return Ok(());
    };
    let mut request = vec![5, 1, 0];
    let port = match target {
        Target::Ip(addr) => {
            match addr.ip() {
                std::net::IpAddr::V4(v4) => {
                    request.push(1);
                    request.extend_from_slice(&v4.octets());
                }
                std::net::IpAddr::V6(v6) => {
                    request.push(4);
                    request.extend_from_slice(&v6.octets());
                }
            }
            addr.port()
        }
        Target::Name(host, port) => {
            request.push(3);
            request.push(host.len().min(255) as u8);
            request.extend_from_slice(&host.as_bytes()[..host.len().min(255)]);
            *port
        }
    };
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await.map_err(io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        return Err(format!(
            "the SOCKS5 proxy refused the connection (reply {})",
            head[1]
        ));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        _ => return Err("the SOCKS5 proxy answered an unknown address type".into()),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).await.map_err(io)?;
    Ok(())
}

async fn http_connect(
    stream: &mut TcpStream,
    upstream: &Upstream,
    target: &Target<'_>,
) -> Result<(), String> {
    let authority = match target {
        Target::Ip(addr) => addr.to_string(),
        Target::Name(host, port) => format!("{host}:{port}"),
    };
    let mut request = zeroize::Zeroizing::new(format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    ));
    if let (Some(user), Some(password)) = (&upstream.username, &upstream.password) {
        let token = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.as_str())),
        );
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            token.as_str()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    // Read the head byte by byte: what follows it already belongs to the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= HEAD_MAX {
            return Err("the HTTP proxy's answer has no end".into());
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.map_err(io)? == 0 {
            return Err("the HTTP proxy closed the connection".into());
        }
        head.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&head);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    match status.starts_with('2') {
        true => Ok(()),
        false => Err(format!("the HTTP proxy answered {status} to CONNECT")),
    }
}
