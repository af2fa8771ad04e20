//! Helpers of the vault, CA and API-key tests: the real `openssl`, `age` and `wg` tools run as
//! processes, a cookie-less client that authenticates with an API key, a record of every
//! response a test saw (to search for secrets), and `picd serve` on an existing state
//! directory that must refuse to start.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::client::{json_of, TestClient};
use super::process::{stderr_of, Picd, PICD};

/// What installs the tools these tests run.
pub use super::tools::{require_tools, INSTALL_STEP};
/// How long a `picd serve` that must refuse to start may take to exit.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs an external tool with `stdin` as its input; a tool that cannot be started fails the
/// test with the install step.
pub fn run_tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): run `{INSTALL_STEP}`"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("writing the tool's stdin");
    }
    drop(input);
    child.wait_with_output().expect("waiting for the tool")
}

/// Runs a tool that must succeed; returns its standard output.
pub fn tool_ok(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = run_tool(program, args, stdin);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    out.stdout
}

/// `tool_ok` as text.
pub fn tool_text(program: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    String::from_utf8(tool_ok(program, args, stdin)).expect("the tool's output is UTF-8")
}

/// `age -d -i IDENTITY` of a ciphertext: the plaintext, or age's complaint.
pub fn age_decrypt(identity: &Path, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
    let out = run_tool(
        "age",
        &["-d", "-i", identity.to_str().expect("UTF-8 path")],
        Some(ciphertext),
    );
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(stderr_of(&out))
    }
}

/// The base64 lines of a PEM document (what a leak of it would contain).
pub fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

/// Whether `needle` occurs in `haystack`, byte for byte.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every secret of the vault as stored: (name, ciphertext), by name.
pub fn stored_secrets(conn: &rusqlite::Connection) -> Vec<(String, Vec<u8>)> {
    conn.prepare("SELECT name, ciphertext FROM secrets ORDER BY name")
        .expect("secrets query")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("secrets rows")
        .collect::<Result<_, _>>()
        .expect("secrets")
}

/// Every response a test collected, headers and body, to search for secrets afterwards.
#[derive(Default)]
pub struct Transcript {
    responses: Vec<(String, Vec<u8>)>,
}

impl Transcript {
    /// Records a response; returns its status and body.
    pub async fn record(&mut self, resp: Response) -> (StatusCode, Vec<u8>) {
        let status = resp.status();
        let mut text = format!("{} {status}\n", resp.url().path());
        for (name, value) in resp.headers() {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
        }
        let body = resp.bytes().await.expect("body").to_vec();
        let mut all = text.clone().into_bytes();
        all.extend_from_slice(&body);
        self.responses.push((text, all));
        (status, body)
    }

    /// Records a response that must be 2xx and JSON; returns the JSON.
    pub async fn json_ok(&mut self, resp: Response) -> Value {
        let (status, body) = self.record(resp).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(status.is_success(), "{status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    pub fn len(&self) -> usize {
        self.responses.len()
    }

    /// Fails the test, naming the response, if any recorded response contains `needle`.
    pub fn assert_absent(&self, needle: &[u8], what: &str) {
        for (head, all) in &self.responses {
            assert!(
                !contains_bytes(all, needle),
                "{what} appears in a response: {head}"
            );
        }
    }
}

/// How a key is presented.
#[derive(Clone, Copy, Debug)]
pub enum KeyHeader {
    Bearer,
    XApiKey,
}

/// A client with no cookie jar that authenticates every request with an API key, as a
/// script would.
pub struct KeyClient {
    pub http: reqwest::Client,
    base: String,
    pub token: String,
    pub header: KeyHeader,
}

impl KeyClient {
    pub fn new(picd: &Picd, token: &str) -> KeyClient {
        KeyClient::with_header(picd, token, KeyHeader::Bearer)
    }

    pub fn with_header(picd: &Picd, token: &str, header: KeyHeader) -> KeyClient {
        KeyClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: picd.base_url(),
            token: token.to_string(),
            header,
        }
    }

    /// A request with the key and, if given, a JSON body; never a cookie or a CSRF token.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match self.header {
            KeyHeader::Bearer => request.bearer_auth(&self.token),
            KeyHeader::XApiKey => request.header("x-api-key", &self.token),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request with an API key")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.get(path).await).await
    }
}

/// Creates an API key through the admin's session; asserts success and returns the answer
/// (with its `token`).
pub async fn create_key(admin: &TestClient, body: &Value) -> Value {
    let (status, created) = json_of(admin.send_json(Method::POST, "/api/keys", body).await).await;
    assert_eq!(status, StatusCode::OK, "creating key {body}: {created}");
    created
}

/// A key with `scopes` and the default rate limit: (id, token).
pub async fn create_key_with(admin: &TestClient, name: &str, scopes: &[&str]) -> (String, String) {
    let created = create_key(admin, &json!({ "name": name, "scopes": scopes })).await;
    (
        created["id"].as_str().expect("id").to_string(),
        created["token"].as_str().expect("token").to_string(),
    )
}

/// Runs `picd serve` on an existing state directory that it must refuse: returns its output
/// once it has exited with a failure; fails the test (killing it) if it keeps running.
pub fn serve_state_dir_expecting_failure(state_dir: &Path) -> Output {
    let root = tempfile::tempdir().expect("temporary directory");
    let config = root.path().join("picd.toml");
    std::fs::write(&config, "").expect("writing settings");
    let port = super::ports::free_port();
    let mut command = Command::new(PICD);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PICD_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .env("PICD_WIREGUARD_MODE", "off")
        .env("PICD_ROUTING_MODE", "off")
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning picd");
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "picd serve exited with success");
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Our own child, by its handle.
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "picd serve started on a state directory it must refuse; stderr:\n{}",
        stderr_of(&out)
    );
}

/// A scratch folder for the files the tools read; paths are handed out as text, as the
/// tools' arguments want them.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(tempfile::tempdir().expect("temporary directory"))
    }

    pub fn path(&self, name: &str) -> String {
        let path = self.0.path().join(name);
        path.to_str().expect("UTF-8 path").to_string()
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("writing a scratch file");
        path
    }
}

/// `openssl ARGS`, which must succeed: its output.
pub fn openssl(args: &[&str]) -> String {
    tool_text("openssl", args, None)
}

/// `openssl verify` of `cert` against `ca`, with `-crl_check` and the CRL when given:
/// (success, everything it said).
pub fn openssl_verify(ca: &str, cert: &str, crl: Option<&str>) -> (bool, String) {
    let mut args = vec!["verify"];
    if let Some(crl) = crl {
        args.extend(["-crl_check", "-CRLfile", crl]);
    }
    args.extend(["-CAfile", ca, cert]);
    let out = run_tool("openssl", &args, None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    (out.status.success(), said)
}

/// GET of a download that must succeed with `content_type`: its bytes.
pub async fn download(client: &TestClient, path: &str, content_type: &str) -> Vec<u8> {
    let resp = client.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(kind, content_type, "{path}");
    resp.bytes().await.expect("body").to_vec()
}

/// POST /api/vault/certs, which must succeed: the answer (with `key_pem`).
pub async fn issue_cert(admin: &TestClient, body: &Value) -> Value {
    let resp = admin
        .send_json(Method::POST, "/api/vault/certs", body)
        .await;
    let (status, issued) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "issuing {body}: {issued}");
    issued
}

/// Fails the test if `needle` is in picd's database file, its WAL or its log.
pub fn assert_absent_from_state(picd: &Picd, needle: &[u8], what: &str) {
    let db = std::fs::read(picd.db_path()).expect("reading picd.db");
    let wal_path = picd.state_dir().join("picd.db-wal");
    assert!(
        wal_path.exists(),
        "picd runs in WAL mode: no {}",
        wal_path.display()
    );
    let wal = std::fs::read(&wal_path).expect("reading picd.db-wal");
    let log = picd.log();
    for (file, haystack) in [
        ("picd.db", &db[..]),
        ("picd.db-wal", &wal),
        ("the log", log.as_bytes()),
    ] {
        assert!(
            !contains_bytes(haystack, needle),
            "{what} is in {file} in plain text"
        );
    }
}

/// Whether picd's database file or its WAL holds `needle` (the control of the searches).
pub fn stored_in_state(picd: &Picd, needle: &[u8]) -> bool {
    let db = std::fs::read(picd.db_path()).expect("reading picd.db");
    let wal = std::fs::read(picd.state_dir().join("picd.db-wal")).unwrap_or_default();
    contains_bytes(&db, needle) || contains_bytes(&wal, needle)
}

/// Asserts a response's status, with its body in the failure message.
pub async fn expect_status(resp: Response, status: StatusCode) {
    let what = resp.url().path().to_string();
    let got = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: {body}");
}

/// A numeric response header, which must be there.
pub fn header_u64(resp: &Response, name: &str) -> u64 {
    let value = resp
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"));
    let text = value.to_str().unwrap_or_default();
    text.parse().unwrap_or_else(|_| panic!("{name}: {text:?}"))
}

/// An RFC 3339 time `secs` from now, in whole seconds.
pub fn rfc3339_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let t = t.replace_nanosecond(0).expect("whole seconds");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

pub fn parse_rfc3339(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("not RFC 3339: {text}"))
}

pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// GET /api/keys as text, and the entry of key `id` in it.
pub async fn listed_key(admin: &TestClient, id: &str) -> (String, Value) {
    let text = admin.get("/api/keys").await.text().await.expect("body");
    let list: Value = serde_json::from_str(&text).expect("JSON listing");
    let keys = list["keys"].as_array().expect("keys");
    let entry = keys.iter().find(|k| k["id"] == id).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{id} not listed: {text}"));
    (text, entry)
}
