//! A minimal client for Caddy's admin API: read the running config and load a new one.
//! HTTP/1.1 with Connection: close, bounded by a timeout. Whoever reaches that API can read
//! and replace Caddy's whole config, so it is a unix socket in a directory only Caddy's group
//! can enter (the package's way), or a TCP port on loopback; any other address is refused.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from the admin API (a running config is small).
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Caddy's prefix for a unix socket address (`unix//run/caddy-admin/admin.sock`).
const UNIX_PREFIX: &str = "unix/";
/// The Host picd sends over the socket; Caddy's admin `origins` must allow it (Caddy refuses
/// every request on a socket without `origins`).
pub const SOCKET_ORIGIN: &str = "localhost";

/// Where Caddy's admin API listens, as `caddy_admin` says.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminAddress {
    /// host:port, the host on loopback.
    Tcp(String),
    /// An absolute path.
    Socket(PathBuf),
}

impl AdminAddress {
    /// `unix//PATH` or `/PATH` for a socket; `host:port` with a loopback host (`localhost`,
    /// `127.x.y.z`, `[::1]`) for TCP.
    pub fn parse(text: &str) -> Result<AdminAddress, String> {
        let text = text.trim();
        let path = text.strip_prefix(UNIX_PREFIX).unwrap_or(text);
        if path.starts_with('/') {
            return Ok(AdminAddress::Socket(PathBuf::from(path)));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("caddy_admin `{text}` is neither unix//PATH nor host:port"))?;
        if port.parse::<u16>().is_err() {
            return Err(format!("caddy_admin `{text}`: `{port}` is not a port"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            // Caddy's admin API has no authentication: on any other address, whoever reaches
            // it (the LAN, a container) could read the config and replace it.
            return Err(format!(
                "caddy_admin `{text}` is not on loopback; use a unix socket (unix//PATH) or 127.0.0.1:PORT"
            ));
        }
        Ok(AdminAddress::Tcp(text.to_string()))
    }

    /// The address as Caddy's `admin.listen` spells it.
    pub fn caddy_listen(&self) -> String {
        match self {
            AdminAddress::Tcp(addr) => addr.clone(),
            AdminAddress::Socket(path) => format!("{UNIX_PREFIX}{}", path.display()),
        }
    }
}

impl std::fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.caddy_listen())
    }
}

async fn exchange(
    addr: &AdminAddress,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let work = async {
        let unreachable =
            |e: std::io::Error| format!("cannot reach Caddy's admin API at {addr}: {e}");
        // Caddy checks the Host against its admin listener (or its `origins` on a socket).
        let answer = match addr {
            AdminAddress::Tcp(tcp) => {
                let stream = TcpStream::connect(tcp).await.map_err(unreachable)?;
                talk(stream, tcp, method, path, body).await?
            }
            AdminAddress::Socket(socket) => {
                let stream = UnixStream::connect(socket).await.map_err(unreachable)?;
                talk(stream, SOCKET_ORIGIN, method, path, body).await?
            }
        };
        parse_answer(&answer)
    };
    tokio::time::timeout(ADMIN_TIMEOUT, work)
        .await
        .map_err(|_| format!("Caddy's admin API at {addr} timed out"))?
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Vec<u8>, String> {
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER as u64)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

fn parse_answer(answer: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(answer).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status from Caddy")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The running config as JSON (`null` when Caddy runs empty).
pub async fn running_config(addr: &AdminAddress) -> Result<serde_json::Value, String> {
    let (status, body) = exchange(addr, "GET", "/config/", None).await?;
    if status != 200 {
        return Err(format!("Caddy answered {status} to GET /config/"));
    }
    serde_json::from_str(body.trim()).map_err(|e| format!("Caddy's config is not JSON: {e}"))
}

/// Replaces Caddy's whole config.
pub async fn load(addr: &AdminAddress, config: &serde_json::Value) -> Result<(), String> {
    let (status, body) = exchange(addr, "POST", "/load", Some(&config.to_string())).await?;
    if status == 200 {
        Ok(())
    } else {
        Err(format!(
            "Caddy refused the config ({status}): {}",
            body.chars().take(300).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_and_loopback_are_accepted_other_addresses_refused() {
        let socket = AdminAddress::Socket("/run/caddy-admin/admin.sock".into());
        assert_eq!(
            AdminAddress::parse("unix//run/caddy-admin/admin.sock"),
            Ok(socket.clone())
        );
        assert_eq!(
            AdminAddress::parse("/run/caddy-admin/admin.sock"),
            Ok(socket.clone())
        );
        assert_eq!(socket.caddy_listen(), "unix//run/caddy-admin/admin.sock");
        for ok in [
            "127.0.0.1:2019",
            "localhost:2019",
            "[::1]:2019",
            "127.0.0.2:1",
        ] {
            assert_eq!(
                AdminAddress::parse(ok),
                Ok(AdminAddress::Tcp(ok.into())),
                "{ok}"
            );
        }
        for bad in [
            "0.0.0.0:2019",
            ":2019",
            "192.0.2.1:2019",
            "[::]:2019",
            "caddy:2019",
        ] {
            let err = AdminAddress::parse(bad).unwrap_err();
            assert!(err.contains("not on loopback"), "{bad}: {err}");
        }
        for bad in ["unix/relative.sock", "nonsense", "127.0.0.1:http"] {
            assert!(AdminAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
