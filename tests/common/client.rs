//! An HTTP client with a cookie jar that knows the API's habits: the wizard (claimed with the
//! setup code from the state directory), login, the CSRF header, and the JSON error shape.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Method, Response, StatusCode, Url};
use serde_json::{json, Value};

use super::fixtures::*;

/// An HTTP client with its own cookie jar, as one browser would be.
pub struct TestClient {
    pub http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
    /// The state directory of the picd this client talks to, where the setup code is.
    state_dir: Option<PathBuf>,
    /// The CSRF token the wizard's claim handed back.
    setup_csrf: Mutex<Option<String>>,
}

impl TestClient {
    pub fn new(base: &str) -> TestClient {
        TestClient::with_builder(base, reqwest::Client::builder())
    }

    /// A client configured beyond the defaults (e.g. no redirects).
    pub fn with_builder(base: &str, builder: reqwest::ClientBuilder) -> TestClient {
        let jar = Arc::new(Jar::default());
        let http = builder
            .cookie_provider(Arc::clone(&jar))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        TestClient {
            http,
            jar,
            base: base.to_string(),
            state_dir: None,
            setup_csrf: Mutex::new(None),
        }
    }

    /// Where the picd's setup code is to be read (the process launcher sets it).
    pub fn with_state_dir(mut self, state_dir: PathBuf) -> TestClient {
        self.state_dir = Some(state_dir);
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.get(path).await).await
    }

    /// POST a JSON body without a CSRF token (as login, the wizard's claim and
    /// /api/invite/accept allow; every other mutating route, logout and the password routes
    /// included, refuses it: use `post_with_csrf` or `send_json`).
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Sends a JSON body with the session's CSRF token, as the UI does.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        let token = self.csrf_token().await;
        self.http
            .request(method, self.url(path))
            .header("x-csrf-token", token)
            .json(body)
            .send()
            .await
            .expect("request with CSRF token")
    }

    /// A request whose body is `body` as given (malformed JSON included), with the session's
    /// CSRF token.
    pub async fn send_body(&self, method: Method, path: &str, body: String) -> Response {
        let token = self.csrf_token().await;
        self.http
            .request(method, self.url(path))
            .header("x-csrf-token", token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request with CSRF token")
    }

    /// POST a JSON body with the session's CSRF token.
    pub async fn post_with_csrf(&self, path: &str, body: &Value) -> Response {
        self.send_json(Method::POST, path, body).await
    }

    /// Logs out with the CSRF token, as the UI does.
    pub async fn logout(&self) -> Response {
        self.post_with_csrf("/api/auth/logout", &json!({})).await
    }

    /// The session's CSRF token; panics when there is no signed-in session.
    pub async fn csrf_token(&self) -> String {
        let (status, body) = self.get_json("/api/auth/csrf-token").await;
        assert_eq!(status, StatusCode::OK, "csrf-token: {body}");
        body["csrf_token"]
            .as_str()
            .expect("csrf_token is a string")
            .to_string()
    }

    /// The setup code picd wrote to `setup-token` in its state directory, as the owner would
    /// read it (`picd setup token` prints the same).
    pub fn setup_token(&self) -> String {
        let dir = self
            .state_dir
            .as_ref()
            .expect("a client of a started picd (Picd::client) knows its state directory");
        let path = dir.join(SETUP_TOKEN_FILE);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Claims the wizard with `token`, unchecked; on success the claim's CSRF token is kept
    /// for `setup_post`.
    pub async fn claim_setup_with(&self, token: &str) -> (StatusCode, Value) {
        let (status, body) = json_of(
            self.post_json("/api/setup/claim", &json!({ "token": token }))
                .await,
        )
        .await;
        if let Some(csrf) = body["csrf_token"].as_str() {
            *self.setup_csrf.lock().unwrap() = Some(csrf.to_string());
        }
        (status, body)
    }

    /// Claims the wizard with the setup code from the state directory; asserts success.
    pub async fn claim_setup(&self) -> Value {
        let (status, body) = self.claim_setup_with(&self.setup_token()).await;
        assert_eq!(status, StatusCode::OK, "setup claim: {body}");
        body
    }

    /// POSTs to a wizard route with the claim's CSRF token (none when this client has not
    /// claimed), as the wizard's page does.
    pub async fn setup_post(&self, path: &str, body: &Value) -> Response {
        let token = self.setup_csrf.lock().unwrap().clone();
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send().await.expect("POST to the wizard")
    }

    /// Claims the wizard, walks it with the fixtures and completes it; the client ends signed
    /// in as the admin. Returns the completion's body.
    pub async fn run_setup(&self) -> Value {
        self.claim_setup().await;
        for (step, data) in [
            ("admin", admin_step()),
            ("cell", cell_step()),
            ("dns", dns_step()),
            ("tls", tls_step()),
        ] {
            let (status, body) = json_of(
                self.setup_post("/api/setup/step", &json!({ "step": step, "data": data }))
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "setup step {step}: {body}");
        }
        let (status, body) =
            json_of(self.setup_post("/api/setup/complete", &json!({})).await).await;
        assert_eq!(status, StatusCode::OK, "setup complete: {body}");
        body
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Logs in and asserts success; returns the body.
    pub async fn login_ok(&self, username: &str, password: &str) -> Value {
        let (status, body) = json_of(self.login(username, password).await).await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body
    }

    /// The session cookie's value as the jar holds it.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookie_sent_to("/", SESSION_COOKIE)
    }

    /// The value of cookie `name` as the jar would send it to `path`.
    pub fn cookie_sent_to(&self, path: &str, name: &str) -> Option<String> {
        let url = Url::parse(&self.url(path)).expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .map(str::trim)
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }

    /// Puts cookie `name` in the jar for `path`, as a browser that holds it would send it.
    pub fn set_cookie(&self, path: &str, name: &str, value: &str) {
        let url = Url::parse(&self.base).expect("base url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path={path}"), &url);
    }

    /// Puts a session cookie in the jar, as a browser that holds it would send it.
    pub fn set_session_cookie(&self, value: &str) {
        let url = Url::parse(&self.base).expect("base url");
        self.jar
            .add_cookie_str(&format!("{SESSION_COOKIE}={value}; Path=/"), &url);
    }
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub async fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts the API's error shape: the status, and a JSON body with a message and `code`.
/// The names of the fields a validation error lists, sorted.
pub fn field_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("no fields in {body}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    let what = format!("{} {}", resp.url().path(), resp.url().query().unwrap_or(""));
    let (got, body) = json_of(resp).await;
    assert_eq!(got, status, "{what}: {body}");
    assert_error_shape(&body, &what);
    assert_eq!(body["code"], code, "{what}: {body}");
    body
}

/// `{"error": "<non-empty message>", "code": "snake_case"}`.
pub fn assert_error_shape(body: &Value, what: &str) {
    let message = body["error"].as_str();
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: no error message in {body}"
    );
    let code = body["code"].as_str().unwrap_or("");
    assert!(
        !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "{what}: code is not snake_case in {body}"
    );
}
