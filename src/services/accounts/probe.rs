//! Waits until a service accepts a new account: the manifest's request with the account's
//! credentials, on the service's loopback port, retried (a server may take a moment to see a
//! changed account file).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::services::catalog::AccountProbe;

/// Longest a provisioning waits for the service to accept the account.
pub const WAIT: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(100);

/// The status the service answers to the probe with these credentials.
async fn status(
    port: u16,
    probe: &AccountProbe,
    user: &str,
    password: &str,
) -> std::io::Result<u16> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut request = format!(
        "{} {} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n",
        probe.method, probe.path
    );
    for (name, value) in probe.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await?;
        String::from_utf8_lossy(&head[..n])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

/// Ok(how long it took) once the service accepts the login, Err(the last answer) after WAIT.
pub async fn wait_accepted(
    port: u16,
    probe: &AccountProbe,
    user: &str,
    password: &str,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < WAIT {
        match status(port, probe, user, password).await {
            Ok(code) if code == probe.expect => return Ok(started.elapsed()),
            Ok(code) => last = format!("answered {code}, expected {}", probe.expect),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(EVERY).await;
    }
    Err(last)
}
