//! Waits until a service accepts a new account: the manifest's login with the account's
//! credentials (an HTTP request, or an IMAP LOGIN) on the service's loopback port, retried (a
//! server may take a moment to see a changed account file: Dovecot up to about a second).

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::services::catalog::AccountProbe;
use crate::services::store::Installed;

/// Longest a provisioning waits for the service to accept the account.
pub const WAIT: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(100);
/// One attempt's limit: Dovecot answers a refused login only after its 2 s failure delay.
const ATTEMPT: Duration = Duration::from_secs(4);

/// Whether the service accepts the login: Ok(Err(what it answered)) when it refused.
async fn attempt(
    port: u16,
    probe: &AccountProbe,
    user: &str,
    password: &str,
) -> std::io::Result<Result<(), String>> {
    let ask = async {
        match probe {
            AccountProbe::Http {
                method,
                path,
                headers,
                expect,
                ..
            } => {
                let code = http_status(port, method, path, headers, user, password).await?;
                Ok(if code == *expect {
                    Ok(())
                } else {
                    Err(format!("answered {code}, expected {expect}"))
                })
            }
            AccountProbe::ImapLogin { .. } => imap_login(port, user, password).await,
        }
    };
    tokio::time::timeout(ATTEMPT, ask)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

/// The status the service answers to the request with these credentials.
async fn http_status(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    user: &str,
    password: &str,
) -> std::io::Result<u16> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut request =
        format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await?;
    String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// The greeting, `a LOGIN "user" "password"`, and the tagged answer: `a OK` is accepted.
async fn imap_login(port: u16, user: &str, password: &str) -> std::io::Result<Result<(), String>> {
    // picd's usernames are DNS labels and its passwords base64url: neither needs escaping,
    // and anything that would is refused rather than sent.
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    if !plain(user) || !plain(password) {
        return Ok(Err("credentials IMAP cannot carry as quoted strings".into()));
    }
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if !line.starts_with("* OK") {
        return Ok(Err(format!("greeted {:?}", line.trim_end())));
    }
    let login = format!("a LOGIN \"{user}\" \"{password}\"\r\n");
    reader.get_mut().write_all(login.as_bytes()).await?;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("closed before answering LOGIN"));
        }
        // Untagged lines (capabilities) come first; the tagged one is the answer.
        if let Some(answer) = line.strip_prefix("a ") {
            let accepted = answer.starts_with("OK");
            let _ = reader.get_mut().write_all(b"b LOGOUT\r\n").await;
            return Ok(if accepted {
                Ok(())
            } else {
                // The server's words, never the command (it holds the password).
                Err(format!("answered {:?}", answer.trim_end()))
            });
        }
    }
}

/// Ok(how long it took) once the service accepts the login, Err(the last answer) after WAIT.
pub async fn wait_accepted(
    installed: &Installed,
    probe: &AccountProbe,
    user: &str,
    password: &str,
) -> Result<Duration, String> {
    let endpoint = match probe {
        AccountProbe::Http { endpoint, .. } | AccountProbe::ImapLogin { endpoint } => *endpoint,
    };
    let port = installed
        .port(endpoint)
        .ok_or_else(|| format!("no port for the {endpoint} endpoint"))?;
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < WAIT {
        match attempt(port, probe, user, password).await {
            Ok(Ok(())) => return Ok(started.elapsed()),
            Ok(Err(answer)) => last = answer,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(EVERY).await;
    }
    Err(last)
}
