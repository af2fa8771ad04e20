//! An HTTP client with a cookie jar that knows the API's habits: the wizard, login, the CSRF
//! header, and the JSON error shape.

use std::sync::Arc;
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
        }
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

    /// POST a JSON body without a CSRF token (as /api/auth/* and /api/setup/* allow).
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

    /// The session's CSRF token; panics when there is no signed-in session.
    pub async fn csrf_token(&self) -> String {
        let (status, body) = self.get_json("/api/auth/csrf-token").await;
        assert_eq!(status, StatusCode::OK, "csrf-token: {body}");
        body["csrf_token"]
            .as_str()
            .expect("csrf_token is a string")
            .to_string()
    }

    /// Walks the wizard with the fixtures and completes it; the client ends signed in as the
    /// admin. Returns the completion's body.
    pub async fn run_setup(&self) -> Value {
        for (step, data) in [
            ("admin", admin_step()),
            ("cell", cell_step()),
            ("dns", dns_step()),
            ("tls", tls_step()),
        ] {
            let (status, body) = json_of(
                self.post_json("/api/setup/step", &json!({ "step": step, "data": data }))
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "setup step {step}: {body}");
        }
        let (status, body) = json_of(self.post_json("/api/setup/complete", &json!({})).await).await;
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
        let url = Url::parse(&self.base).expect("base url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .map(str::trim)
            .find_map(|c| c.strip_prefix(&format!("{SESSION_COOKIE}=")))
            .map(str::to_string)
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
