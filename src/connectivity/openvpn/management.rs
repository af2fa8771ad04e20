//! The tunnel's state from an `openvpn` process's management socket (`state`): CONNECTED once
//! the server accepted the client and the tun device has its address; RECONNECTING, WAIT,
//! AUTH, ... otherwise. One short connection per question (the socket takes one client).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// The state's name (`CONNECTED`, `RECONNECTING`, ...); None when the socket does not answer.
pub async fn state(socket: &Path) -> Option<String> {
    tokio::time::timeout(ANSWER_TIMEOUT, ask_state(socket))
        .await
        .ok()
        .flatten()
}

async fn ask_state(socket: &Path) -> Option<String> {
    let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"state\n").await.ok()?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await.ok()? {
        // `>INFO:` greets the client; real-time notifications also start with '>'.
        if line.starts_with('>') {
            continue;
        }
        let _ = write.write_all(b"quit\n").await;
        return parse_state(&line);
    }
    None
}

/// `1700000000,CONNECTED,SUCCESS,10.8.0.2,198.51.100.2,1194,,,` -> CONNECTED.
pub fn parse_state(line: &str) -> Option<String> {
    let name = line.split(',').nth(1)?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    ok.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_line_gives_the_state_name() {
        let line = "1700000000,CONNECTED,SUCCESS,10.8.0.2,198.51.100.2,1194,,,";
        assert_eq!(parse_state(line).as_deref(), Some("CONNECTED"));
        assert_eq!(
            parse_state("1700000000,RECONNECTING,ping-restart,,,,,").as_deref(),
            Some("RECONNECTING")
        );
        assert_eq!(parse_state("END"), None);
        assert_eq!(parse_state("ERROR: unknown command"), None);
    }
}
