//! Stopping: SIGTERM ends picd cleanly and promptly, even while a client holds a request open
//! (a stalled upload, a browser tab left streaming): requests in flight get a grace period,
//! then picd stops anyway instead of waiting for them forever.

mod common;

use std::io::Write;
use std::net::TcpStream;
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

#[tokio::test]
async fn sigterm_stops_picd_while_a_request_is_stalled() {
    let mut picd = Picd::start().await;
    // A request whose body never arrives in full: its handler waits on the body.
    let mut stalled = TcpStream::connect(("127.0.0.1", picd.port())).expect("connect");
    let head = "POST /api/setup/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"token\":";
    stalled
        .write_all(head.as_bytes())
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
