//! A tor exit's health from its control port (a unix socket, cookie authentication): healthy
//! when `status/bootstrap-phase` says PROGRESS=100 and `status/circuit-established` is 1.
//! One short connection per question.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Tor's cookie is 32 bytes; a larger file is not a cookie.
const COOKIE_MAX: u64 = 64;

/// What the control port answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bootstrap {
    pub progress: Option<u8>,
    pub circuit_established: bool,
}

impl Bootstrap {
    pub fn healthy(&self) -> bool {
        self.progress == Some(100) && self.circuit_established
    }
}

/// Asks the control port; None when it does not answer (or refuses the cookie).
pub async fn ask(socket: &Path, cookie: &Path) -> Option<Bootstrap> {
    tokio::time::timeout(ANSWER_TIMEOUT, ask_both(socket, cookie))
        .await
        .ok()
        .flatten()
}

async fn ask_both(socket: &Path, cookie: &Path) -> Option<Bootstrap> {
    let size = tokio::fs::metadata(cookie).await.ok()?.len();
    if size > COOKIE_MAX {
        return None;
    }
    let cookie = zeroize::Zeroizing::new(hex::encode(tokio::fs::read(cookie).await.ok()?));
    let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let auth = zeroize::Zeroizing::new(format!("AUTHENTICATE {}\r\n", cookie.as_str()));
    write.write_all(auth.as_bytes()).await.ok()?;
    if !lines.next_line().await.ok()??.starts_with("250") {
        return None;
    }
    let mut answers = Bootstrap::default();
    for key in ["status/bootstrap-phase", "status/circuit-established"] {
        write
            .write_all(format!("GETINFO {key}\r\n").as_bytes())
            .await
            .ok()?;
        loop {
            let line = lines.next_line().await.ok()??;
            if let Some(value) = line.strip_prefix(&format!("250-{key}=")) {
                match key {
                    "status/bootstrap-phase" => answers.progress = progress(value),
                    _ => answers.circuit_established = value.trim() == "1",
                }
            } else if line.starts_with("250 ") || !line.starts_with("250") {
                break;
            }
        }
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    Some(answers)
}

/// `NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"` -> 100.
pub fn progress(value: &str) -> Option<u8> {
    value
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PROGRESS="))
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_phase_gives_its_progress() {
        let done = "NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"";
        assert_eq!(progress(done), Some(100));
        let early = "WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY=\"Handshaking with a relay\"";
        assert_eq!(progress(early), Some(14));
        assert_eq!(progress("NOTICE BOOTSTRAP PROGRESS=900"), None);
        assert_eq!(progress("garbage"), None);
        let half = Bootstrap {
            progress: Some(100),
            circuit_established: false,
        };
        assert!(!half.healthy());
    }
}
