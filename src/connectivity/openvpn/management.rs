//! The tunnel's state from an `openvpn` process's management socket (`state`): CONNECTED once
//! the server accepted the client and the tun device has its address; RECONNECTING, WAIT,
//! AUTH, ... otherwise. The same line gives the tun device's IPv4 and IPv6 addresses, once
//! OpenVPN has set them (the IPv6 one only when the server pushed `ifconfig-ipv6`). One short
//! connection per question (the socket takes one client).

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// What the `state` line says of the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// `CONNECTED`, `RECONNECTING`, ...
    pub state: String,
    /// The tun device's IPv6 address, when the server gave it one.
    pub local_v6: Option<Ipv6Addr>,
}

impl Tunnel {
    pub fn connected(&self) -> bool {
        self.state == "CONNECTED"
    }
}

/// The tunnel's state; None when the socket does not answer.
pub async fn state(socket: &Path) -> Option<Tunnel> {
    tokio::time::timeout(ANSWER_TIMEOUT, ask_state(socket))
        .await
        .ok()
        .flatten()
}

async fn ask_state(socket: &Path) -> Option<Tunnel> {
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

/// `1700000000,CONNECTED,SUCCESS,10.8.0.2,198.51.100.2,1194,,,fd65::1000` -> CONNECTED with
/// fd65::1000: the fields are time, state, reason, tun IPv4, server address and port, local
/// address and port, tun IPv6 (OpenVPN 2.6's `log_entry_print`).
pub fn parse_state(line: &str) -> Option<Tunnel> {
    let fields: Vec<&str> = line.trim_end().split(',').collect();
    let name = fields.get(1)?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    let local_v6 = fields.get(8).and_then(|a| a.parse().ok());
    ok.then(|| Tunnel {
        state: name.to_string(),
        local_v6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_line_gives_the_state_name() {
        let line = "1700000000,CONNECTED,SUCCESS,10.8.0.2,198.51.100.2,1194,,,";
        let v4_only = parse_state(line).expect("a state");
        assert!(v4_only.connected());
        assert_eq!(v4_only.local_v6, None);
        let dual = "1700000000,CONNECTED,SUCCESS,10.8.0.2,198.51.100.2,1194,,,fd65::1000\r";
        let dual = parse_state(dual).expect("a state");
        assert_eq!(dual.local_v6, Some("fd65::1000".parse().unwrap()));
        // A server reached over IPv6 is no tunnel address.
        let remote6 = "1700000000,CONNECTED,SUCCESS,10.8.0.2,2001:db8::1,1194,,,";
        assert_eq!(parse_state(remote6).and_then(|t| t.local_v6), None);
        let reconnecting = parse_state("1700000000,RECONNECTING,ping-restart,,,,,");
        assert_eq!(
            reconnecting.map(|t| t.state).as_deref(),
            Some("RECONNECTING")
        );
        assert_eq!(parse_state("END"), None);
        assert_eq!(parse_state("ERROR: unknown command"), None);
    }
}
