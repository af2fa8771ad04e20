//! Stopping: SIGTERM ends picd cleanly and promptly, even while a client holds a request open
//! (a stalled upload, a browser tab left streaming) on TCP or on the socket Caddy uses:
//! requests in flight get a grace period, then picd stops anyway instead of waiting for them
//! forever, and the socket file goes with it.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

/// picd's grace period for requests in flight, and what the test allows beyond it.
const GRACE: Duration = Duration::from_secs(5);
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test]
async fn sigterm_stops_an_idle_picd_at_once() {
    let mut picd = Picd::start().await;
    let (took, status) = picd.terminate().expect("picd exits on SIGTERM");
    assert!(status.success(), "picd exited with {status}");
    assert!(took < SLACK, "an idle picd took {took:?} to stop");
}

/// A request whose body never arrives in full: its handler waits on the body.
const STALLED_HEAD: &str = "POST /api/setup/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n\
    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"token\":";

#[tokio::test]
async fn sigterm_stops_picd_while_a_request_is_stalled() {
    let mut picd = Picd::start().await;
    let mut stalled = TcpStream::connect(("127.0.0.1", picd.port())).expect("connect");
    stalled
        .write_all(STALLED_HEAD.as_bytes())
        .expect("send the start of a request");
    std::thread::sleep(Duration::from_millis(300));

    let (took, status) = picd
        .terminate()
        .expect("picd exits on SIGTERM even with a request stalled");
    assert!(status.success(), "picd exited with {status}");
    assert!(
        took < GRACE + SLACK,
        "picd took {took:?} to stop with a request stalled"
    );
    assert!(
        picd.log().contains("still in flight"),
        "picd says it stopped with a request unfinished: {}",
        picd.log()
    );
    drop(stalled);
}

#[tokio::test]
async fn sigterm_stops_picd_while_a_request_is_stalled_on_its_socket() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("http.sock");
    let mut picd = Picd::start_with(PicdOptions {
        args: vec![
            "--listen-socket".into(),
            socket.to_string_lossy().into_owned(),
        ],
        ..PicdOptions::default()
    })
    .await;
    let mut stalled = UnixStream::connect(&socket).expect("connect to the socket");
    stalled
        .write_all(STALLED_HEAD.as_bytes())
        .expect("send the start of a request");
    std::thread::sleep(Duration::from_millis(300));

    let (took, status) = picd
        .terminate()
        .expect("picd exits on SIGTERM even with a request stalled on the socket");
    assert!(status.success(), "picd exited with {status}");
    assert!(
        took < GRACE + SLACK,
        "picd took {took:?} to stop with a request stalled on the socket"
    );
    assert!(picd.log().contains("still in flight"), "{}", picd.log());
    assert!(!socket.exists(), "the socket file outlived picd");
    drop(stalled);
}
