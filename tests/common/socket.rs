//! picd's unix socket for Caddy (`--listen-socket`): where forwarded headers count. A test
//! makes a `PicdSocket`, starts picd with `options`, and sends requests over the socket with
//! `curl --unix-socket`, as Caddy would (naming the client in X-Forwarded-For and the
//! browser's scheme in X-Forwarded-Proto).

use std::path::PathBuf;

use super::caddy::{curl, Answer};
use super::process::PicdOptions;

/// One curl over the socket, connection and answer.
const CURL_TIMEOUT_SECONDS: &str = "10";

/// A private directory holding picd's socket; removed on drop.
pub struct PicdSocket {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl PicdSocket {
    pub fn new() -> PicdSocket {
        let dir = tempfile::tempdir().expect("temporary directory");
        PicdSocket {
            path: dir.path().join("http.sock"),
            _dir: dir,
        }
    }

    /// `options` with `--listen-socket` at this socket.
    pub fn options(&self, mut options: PicdOptions) -> PicdOptions {
        options.args.push("--listen-socket".into());
        options.args.push(self.path.to_string_lossy().into_owned());
        options
    }

    /// A request over the socket; `headers` as curl's `-H` ("Name: value"), a JSON `body`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> Answer {
        let socket = self.path.to_string_lossy().into_owned();
        let url = format!("http://localhost{path}");
        let mut args = vec!["curl", "-sS", "--max-time", CURL_TIMEOUT_SECONDS, "-D", "-"];
        args.extend(["--unix-socket", &socket, "-X", method]);
        for header in headers {
            args.extend(["-H", header]);
        }
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "--data", body]);
        }
        args.push(&url);
        curl(&args)
    }
}

impl Default for PicdSocket {
    fn default() -> Self {
        PicdSocket::new()
    }
}
