//! A tiny web server for Caddy to route to: `python3 -m http.server` on a free loopback port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::super::netns::{eventually, require_tools};
use super::super::process::free_port;

/// The page the test backend serves.
pub const BACKEND_PAGE: &str = "hello from the test backend\n";

/// `python3 -m http.server` on a free loopback port, serving `BACKEND_PAGE`; killed on drop.
pub struct Backend {
    child: Child,
    _dir: tempfile::TempDir,
    pub upstream: String,
}

impl Backend {
    pub fn start() -> Backend {
        require_tools(&["python3"]);
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("index.html"), BACKEND_PAGE).expect("index.html");
        let port = free_port().to_string();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port,
                "--directory",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning python3 -m http.server");
        let upstream = format!("127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&upstream).is_ok()
        });
        assert!(up, "the test backend did not listen on {upstream}");
        Backend {
            child,
            _dir: dir,
            upstream,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
