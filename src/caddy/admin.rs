//! A minimal client for Caddy's admin API (on localhost only): read the running config and
//! load a new one. HTTP/1.1 with Connection: close, bounded by a timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from the admin API (a running config is small).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

async fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let work = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach Caddy's admin API at {addr}: {e}"))?;
        let body = body.unwrap_or("");
        // Caddy checks Host/Origin against its admin listener; speak as a local client.
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
        let text = String::from_utf8_lossy(&answer).into_owned();
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
    };
    tokio::time::timeout(ADMIN_TIMEOUT, work)
        .await
        .map_err(|_| format!("Caddy's admin API at {addr} timed out"))?
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
pub async fn running_config(addr: &str) -> Result<serde_json::Value, String> {
    let (status, body) = exchange(addr, "GET", "/config/", None).await?;
    if status != 200 {
        return Err(format!("Caddy answered {status} to GET /config/"));
    }
    serde_json::from_str(body.trim()).map_err(|e| format!("Caddy's config is not JSON: {e}"))
}

/// Replaces Caddy's whole config.
pub async fn load(addr: &str, config: &serde_json::Value) -> Result<(), String> {
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
