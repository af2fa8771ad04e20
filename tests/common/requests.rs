//! Tables of requests that must be refused: who sends them, what they send, and the status and
//! error code expected. Each is checked for a 4xx and the API's JSON error shape.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::client::{assert_error_shape, TestClient};
use super::process::Picd;

#[derive(Clone, Copy, Debug)]
pub enum Who {
    Anonymous,
    /// The admin, sending the session's CSRF token. Before setup: the session that claimed the
    /// wizard, sending the claim's CSRF token.
    Admin,
    /// The admin (before setup: the wizard's owner) without the CSRF token.
    AdminNoCsrf,
    /// A peer-role user, sending its CSRF token.
    Peer,
    /// An API key with only the `read-only` scope, as a Bearer token (no session, no CSRF).
    ReadOnlyKey,
}

#[derive(Clone, Debug)]
pub enum Body {
    Empty,
    Json(Value),
    /// Bytes as they are, with this Content-Type (None: no Content-Type header).
    Raw(Option<&'static str>, Vec<u8>),
}

pub const JSON: Option<&str> = Some("application/json");

pub fn raw(content_type: Option<&'static str>, bytes: impl AsRef<[u8]>) -> Body {
    Body::Raw(content_type, bytes.as_ref().to_vec())
}

/// One refused request and the answer it must get.
pub struct Refused {
    pub who: Who,
    pub method: Method,
    pub path: String,
    pub body: Body,
    pub status: StatusCode,
    pub code: &'static str,
}

pub fn refused(
    who: Who,
    method: Method,
    path: &str,
    body: Body,
    (status, code): (u16, &'static str),
) -> Refused {
    Refused {
        who,
        method,
        path: path.to_string(),
        body,
        status: StatusCode::from_u16(status).expect("a status"),
        code,
    }
}

/// The clients a table's requests are sent with.
pub struct Clients {
    pub anonymous: TestClient,
    pub admin: TestClient,
    pub admin_token: String,
    pub peer: TestClient,
    pub peer_token: String,
    /// The token of a `read-only` API key (none before setup).
    pub read_only_key: Option<String>,
}

impl Clients {
    /// Clients for a picd whose setup is still pending: nobody is signed in, and `admin` is
    /// the owner who claimed the wizard with the setup code.
    pub async fn before_setup(picd: &Picd) -> Clients {
        let admin = picd.client();
        let claim = admin.claim_setup().await;
        Clients {
            anonymous: picd.client(),
            admin_token: claim["csrf_token"]
                .as_str()
                .expect("csrf_token")
                .to_string(),
            admin,
            peer: picd.client(),
            peer_token: String::new(),
            read_only_key: None,
        }
    }

    pub async fn signed_in(picd: &Picd, admin: TestClient, peer: TestClient) -> Clients {
        let (_, read_only_key) =
            super::keys::create_key_with(&admin, "table-reader", &["read-only"]).await;
        Clients {
            read_only_key: Some(read_only_key),
            anonymous: picd.client(),
            admin_token: admin.csrf_token().await,
            peer_token: peer.csrf_token().await,
            admin,
            peer,
        }
    }

    /// Sends every request of the table and checks each answer.
    pub async fn check_all(&self, table: &[Refused]) {
        for request in table {
            self.check(request).await;
        }
    }

    async fn check(&self, r: &Refused) {
        let (client, token) = match r.who {
            Who::Anonymous => (&self.anonymous, None),
            Who::Admin => (&self.admin, Some(&self.admin_token)),
            Who::AdminNoCsrf => (&self.admin, None),
            Who::Peer => (&self.peer, Some(&self.peer_token)),
            Who::ReadOnlyKey => (&self.anonymous, None),
        };
        let mut request = client.http.request(r.method.clone(), client.url(&r.path));
        if let Who::ReadOnlyKey = r.who {
            let key = self
                .read_only_key
                .as_ref()
                .expect("a read-only key exists only once setup is complete");
            request = request.bearer_auth(key);
        }
        if let Some(token) = token {
            request = request.header("x-csrf-token", token.as_str());
        }
        request = match &r.body {
            Body::Empty => request,
            Body::Json(v) => request.json(v),
            Body::Raw(Some(content_type), bytes) => request
                .header("content-type", *content_type)
                .body(bytes.clone()),
            Body::Raw(None, bytes) => request.body(bytes.clone()),
        };
        let what = format!("{:?} {} {} {}", r.who, r.method, r.path, describe(&r.body));
        let resp = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_client_error(), "{what}: {status} {text}");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_error_shape(&body, &what);
        assert_eq!(
            (status, body["code"].as_str().unwrap_or("")),
            (r.status, r.code),
            "{what}: {body}"
        );
    }
}

/// The start of a body, for failure messages.
fn describe(body: &Body) -> String {
    let text = match body {
        Body::Empty => String::new(),
        Body::Json(v) => v.to_string(),
        Body::Raw(ct, b) => format!("{ct:?} {}", String::from_utf8_lossy(b)),
    };
    text.chars().take(120).collect()
}

/// picd logs every 500 it answers; bad input must never cause one.
pub fn assert_no_internal_errors(picd: &Picd) {
    let log = picd.log();
    assert!(
        !log.contains("internal error"),
        "picd logged an internal error:\n{log}"
    );
}
